package c2s

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlowSteadyReaderOutlivesWriteTimeout: a client that reads slowly but
// steadily keeps its connection although its backlog takes longer than
// the write timeout to drain; the timeout bounds a client that stops
// reading. (One deadline over a whole backlog cut such clients off.)
func TestSlowSteadyReaderOutlivesWriteTimeout(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	var failed atomic.Bool
	o := &outConn{Conn: server, timeout: time.Second, max: 64 << 20, onErr: func() { failed.Store(true) }}
	const size = 512 << 10 // read at 320 KiB/s: 1.6 s, a chunk in 0.2 s
	if _, err := o.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	for got := 0; got < size; {
		time.Sleep(100 * time.Millisecond)
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.ReadFull(client, buf[:min(len(buf), size-got)])
		if err != nil {
			t.Fatalf("after %d bytes: %v (connection failed: %v)", got, err, failed.Load())
		}
		got += n
	}
	if failed.Load() {
		t.Fatal("the connection failed although its client read everything")
	}
}

// TestStalledReaderHitsWriteTimeout: a client that stops reading is cut
// off once one chunk could not be written within the timeout.
func TestStalledReaderHitsWriteTimeout(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	failed := make(chan struct{})
	o := &outConn{Conn: server, timeout: 200 * time.Millisecond, max: 64 << 20, onErr: func() { close(failed) }}
	if _, err := o.Write(make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, make([]byte, 16<<10)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("a client that stopped reading was not cut off")
	}
}
