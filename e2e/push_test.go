package e2e

import (
	"net"
	"strconv"
	"testing"
)

// TestPushStreamManagementOffline: slixmpp's ComponentXMPP plays the push
// app server (XEP-0357); alice registers it, loses her connection with a
// resumable session, and bob writes. The app server is notified while the
// session waits for a resumption and again when it expires and the
// messages go to offline storage; alice then gets each message once, and
// her archive holds each once.
func TestPushStreamManagementOffline(t *testing.T) {
	requireTools(t, "slixmpp")
	const appDomain, appSecret = "push.localhost", "push-secret"
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := startServer(t, ServerOptions{ExtraArgs: []string{
		"--component-addr", addr, "--component", appDomain + "=" + appSecret,
		"--resume-timeout", "2s",
	}})
	waitListening(t, addr, nil, "ambrosia's component listener", nil)
	addUser(t, s, alice, alicePass)
	addUser(t, s, bob, bobPass)
	mustPython(t, "push_flow", append(s.clientArgs(false),
		"--jid", alice, "--password", alicePass, "--to", bob, "--to-password", bobPass,
		"--component-port", strconv.Itoa(port), "--app-domain", appDomain, "--app-secret", appSecret)...)
}
