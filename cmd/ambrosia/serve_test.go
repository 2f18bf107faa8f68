package main

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/muc/room"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// freeAddr returns a loopback address that was free a moment ago, from
// ports below the kernel's ephemeral range (and apart from the e2e
// tests'): a port the kernel picked for "port 0" could go to another
// test's outgoing connection before the server under test binds it.
func freeAddr(t *testing.T) string {
	t.Helper()
	const low, span = 28000, 4000
	for range span {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(low+int(nextPort.Add(1)%span)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		return addr
	}
	t.Fatal("no free port")
	return ""
}

// nextPort is the last port freeAddr handed out, less its range's start,
// which is spread by the process id.
var nextPort = func() *atomic.Int32 {
	var n atomic.Int32
	n.Store(int32(os.Getpid() % 4000))
	return &n
}()

// hasStatus reports whether a presence carries a muc#user status code.
func hasStatus(el *xmlstream.Element, code string) bool {
	x := el.Child(room.NSUser, "x")
	if x == nil {
		return false
	}
	for c := range x.ChildElements {
		if c.Local == "status" && c.Attr("code") == code {
			return true
		}
	}
	return false
}

// TestServeShutdownReachesOccupants: when serve stops, the conference
// service tells each occupant that it goes away (XEP-0045 status 332)
// before the client connections close, not into session managers that
// have already stopped.
func TestServeShutdownReachesOccupants(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	t.Setenv("AMBROSIA_UPLOAD_ADDR", freeAddr(t))
	if code, _, errOut := runCmd(t, "", "user", "add", "alice@localhost", "--data", dir, "--password", "alice-pw", "--create"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, []string{"--domain", "localhost", "--data", dir, "--c2s-addr", addr, "--c2s-tls-addr", freeAddr(t)}, io.Discard, io.Discard)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve not listening after 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "localhost.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)

	c := xmpptest.Dial(t, addr, "localhost")
	c.Open()
	c.StartTLS(roots)
	if cond := c.AuthSCRAM("SCRAM-SHA-256", "alice", "alice-pw", ""); cond != "" {
		t.Fatalf("login: %s", cond)
	}
	c.Bind("test")
	c.Send(`<presence to='room@conference.localhost/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	c.Expect("the self-presence", func(el *xmlstream.Element) bool {
		return el.Local == "presence" && el.Attr("type") == "" && hasStatus(el, "110")
	})

	cancel()
	c.Expect("the shutdown notice (332)", func(el *xmlstream.Element) bool {
		return el.Local == "presence" && el.Attr("type") == "unavailable" && hasStatus(el, "332")
	})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve still running 10 s after its context ended")
	}
}
