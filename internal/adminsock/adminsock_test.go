package adminsock

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCall(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SocketName)
	// A socket file left by a server that died is replaced.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Listen(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ctx, func(_ context.Context, args []string) (string, error) {
			if args[0] == "echo" {
				return strings.Join(args[1:], " "), nil
			}
			return "", errors.New("unknown command " + args[0] + "\nsecond line")
		})
	}()
	if got, err := Call(ctx, path, "echo", "a@b", "c"); err != nil || got != "a@b c" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	if _, err := Call(ctx, path, "frob"); err == nil || err.Error() != "unknown command frob second line" {
		t.Fatalf("frob: %v", err)
	}
	if _, err := Call(ctx, path, "echo", "two words"); err == nil {
		t.Fatal("an argument with a space was sent")
	}
	cancel()
	<-done
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
	if _, err := Call(context.Background(), path, "echo"); !errors.Is(err, ErrNoServer) {
		t.Fatalf("without a server: %v", err)
	}
}
