package listen

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// flaky fails its first accepts the way a process out of descriptors does.
type flaky struct {
	net.Listener
	fails atomic.Int32
}

func (f *flaky) Accept() (net.Conn, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, errors.New("accept: too many open files")
	}
	return f.Listener.Accept()
}

func TestAcceptSurvivesErrorsAndStops(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flaky{Listener: l}
	fl.fails.Store(3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan net.Conn, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		Accept(ctx, fl, slog.New(slog.DiscardHandler), func(c net.Conn) bool {
			got <- c
			n++
			return n < 2
		})
	}()
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		select {
		case s := <-got:
			s.Close()
		case <-time.After(5 * time.Second):
			t.Fatal("connection not handed over")
		}
	}
	// handle said stop after the second connection.
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return when handle said stop")
	}
	l.Close()
}

func TestAcceptReturnsWhenClosed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Accept(context.Background(), l, slog.New(slog.DiscardHandler), func(c net.Conn) bool { c.Close(); return true })
	}()
	l.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}
