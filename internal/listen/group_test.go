package listen

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"
)

// served is a connection as an edge sees it: the socket and whether the
// edge ended it with a stream error.
type served struct {
	nc     net.Conn
	ended  string // written by Shutdown's caller only
	finish chan struct{}
}

func (s *served) end(cond string) {
	s.ended = cond
	s.nc.Close()
	close(s.finish)
}

func TestGroupShutdown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		detached bool
	}{
		{"tracked while run runs", false},
		{"tracked until Remove", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Group[*served]
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			started := make(chan *served, 4)
			open := func(nc net.Conn) *served { return &served{nc: nc, finish: make(chan struct{})} }
			run := func(s *served) {
				started <- s
				if tc.detached {
					// The connection lives on after its goroutine, as a
					// session handed to a poller does.
					go func() { <-s.finish; g.Remove(s) }()
					return
				}
				<-s.finish
			}
			serveDone := make(chan struct{})
			go func() {
				defer close(serveDone)
				if tc.detached {
					g.ServeDetached(context.Background(), l, slog.New(slog.DiscardHandler), open, run)
				} else {
					g.Serve(context.Background(), l, slog.New(slog.DiscardHandler), open, run)
				}
			}()
			var clients []net.Conn
			var conns []*served
			for range 2 {
				c, err := net.Dial("tcp", l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				clients = append(clients, c)
				select {
				case s := <-started:
					conns = append(conns, s)
				case <-time.After(5 * time.Second):
					t.Fatal("connection not served")
				}
			}
			if n := g.Len(); n != 2 {
				t.Fatalf("Len = %d, want 2", n)
			}
			g.Shutdown(func(s *served) { s.end("system-shutdown") })
			<-serveDone
			for i, s := range conns {
				if s.ended != "system-shutdown" {
					t.Errorf("connection %d ended with %q, want system-shutdown", i, s.ended)
				}
			}
			if n := g.Len(); n != 0 {
				t.Errorf("Len after Shutdown = %d, want 0", n)
			}
			// The listener is closed: a new client is refused or hung up on.
			if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err == nil {
					t.Error("a connection after Shutdown was served")
				}
				c.Close()
			}
			for _, c := range clients {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err == nil {
					t.Error("a client's socket stayed open after Shutdown")
				}
			}
		})
	}
}

func TestGroupRefusesAfterStop(t *testing.T) {
	var g Group[int]
	if !g.Add(1) {
		t.Fatal("Add before Stop refused")
	}
	if !g.Go(func() {}) {
		t.Fatal("Go before Stop refused")
	}
	if g.Stopped() {
		t.Fatal("Stopped before Stop")
	}
	if got := g.Stop(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("Stop = %v, want [1]", got)
	}
	if !g.Stopped() {
		t.Error("not Stopped after Stop")
	}
	if g.Add(2) {
		t.Error("Add after Stop accepted")
	}
	ran := false
	if g.Go(func() { ran = true }) {
		t.Error("Go after Stop accepted")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.Serve(context.Background(), l, slog.New(slog.DiscardHandler), func(net.Conn) int { return 3 }, func(int) {})
	if _, err := l.Accept(); err == nil {
		t.Error("Serve after Stop left the listener open")
	}
	g.Remove(1)
	g.Remove(1) // a second Remove must not unbalance the WaitGroup
	g.Wait()
	if ran {
		t.Error("a refused Go ran")
	}
	n := 0
	g.Each(func(int) { n++ })
	if n != 0 {
		t.Errorf("Each saw %d connections after Remove, want 0", n)
	}
}

func TestGroupServeStopsWithContext(t *testing.T) {
	var g Group[net.Conn]
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Serve(ctx, l, slog.New(slog.DiscardHandler), func(nc net.Conn) net.Conn { return nc }, func(nc net.Conn) { nc.Close() })
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return when its context ended")
	}
	g.Wait()
	if g.Stopped() {
		t.Error("the end of one listener's context stopped the group")
	}
}
