package admin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/httpapi"
)

func TestReload(t *testing.T) {
	tests := []struct {
		name   string
		reload func(context.Context) (string, error)
		want   error
	}{
		{"not available", nil, httpapi.ErrNotFound},
		{"reloaded", func(context.Context) (string, error) { return "certificates read again", nil }, nil},
		{"failed", func(context.Context) (string, error) { return "", errors.New("config: broken") }, httpapi.ErrConflict},
	}
	for _, tt := range tests {
		b := &Backend{d: Deps{Reload: tt.reload}}
		err := b.Reload(context.Background())
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if tt.name == "failed" && !strings.Contains(err.Error(), "config: broken") {
			t.Errorf("the failure does not say why: %v", err)
		}
	}
}
