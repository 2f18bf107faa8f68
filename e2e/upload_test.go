package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startWithUpload starts a server whose HTTP File Upload listener is on a
// free loopback port, with a small size limit, and adds alice.
func startWithUpload(t *testing.T, maxSize int) (*Server, int) {
	t.Helper()
	requireTools(t, "slixmpp", "aiohttp")
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "ambrosia.toml")
	// upload.localhost need not resolve: the URLs name localhost, which the
	// generated certificate covers as well.
	doc := fmt.Sprintf("[upload]\npublic_url = 'https://localhost:%d'\nmax_file_size = %d\n", port, maxSize)
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, ServerOptions{ExtraArgs: []string{"--config", conf}, UploadPort: port})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload listener %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	addUser(t, s, alice, alicePass)
	return s, port
}

// TestUploadSlixmpp: slixmpp's XEP-0363 plugin finds the upload service
// through disco, uploads a file through a slot over HTTPS (trusting only
// the server's certificate), fetches it back by the GET URL with the same
// bytes and safe headers; a slot over the limit is refused with
// not-acceptable and the limit. The file is on disk afterwards, under the
// data directory.
func TestUploadSlixmpp(t *testing.T) {
	const maxSize = 300000
	s, _ := startWithUpload(t, maxSize)
	out := mustPython(t, "upload_file", append(s.clientArgs(false),
		"--jid", alice, "--password", alicePass, "--service", "upload."+domain,
		"--size", "200000", "--max", strconv.Itoa(maxSize))...)
	for _, want := range []string{"fetched back 200000 identical bytes", "over the limit: not-acceptable, max-file-size 300000"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q", want)
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.DataDir, "upload"))
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Size() == 200000 {
			stored++
		}
	}
	if stored != 1 {
		t.Fatalf("%d files of 200000 bytes in the store", stored)
	}
}
