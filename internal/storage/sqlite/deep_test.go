package sqlite

import (
	"context"
	"errors"
	"testing"
)

func TestDeepPool(t *testing.T) {
	var p deepPool
	ran := false
	if err := p.run(t.Context(), func() { ran = true }); err != nil || !ran {
		t.Fatalf("run: %v, ran %v", err, ran)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// A worker may still take the job; if it does not, the context's
	// error comes back and fn has not run.
	ran = false
	if err := p.run(ctx, func() { ran = true }); err != nil && (!errors.Is(err, context.Canceled) || ran) {
		t.Fatalf("run with a cancelled context: %v, ran %v", err, ran)
	}
	p.close()
	p.close() // as a store closed twice does
	ran = false
	if err := p.run(t.Context(), func() { ran = true }); err != nil || !ran {
		t.Fatalf("run after close: %v, ran %v", err, ran)
	}
}
