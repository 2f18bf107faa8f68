package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	echoDomain    = "echo.localhost"
	biboumiDomain = "biboumi.localhost"
	// ircPort is fixed: biboumi cannot be told another port (it tries TLS
	// on 6697 and 6670, then plain 6667), so no other test may use it.
	ircPort = 6667
)

// startWithComponents starts a server that accepts the given components
// (domain -> secret) on a free port and returns that port; extra are more
// server flags.
func startWithComponents(t *testing.T, comps map[string]string, extra ...string) (*Server, int) {
	t.Helper()
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"--component-addr", addr}
	for d, secret := range comps {
		args = append(args, "--component", d+"="+secret)
	}
	s := startServer(t, ServerOptions{ExtraArgs: append(args, extra...)})
	waitListening(t, addr, nil, "ambrosia's component listener", nil)
	return s, port
}

// TestExternalComponentEcho connects slixmpp's ComponentXMPP as a plain
// XEP-0114 component and has a user exchange a message with it.
func TestExternalComponentEcho(t *testing.T) {
	requireTools(t, "slixmpp")
	const secret = "echo-Secret-3"
	s, port := startWithComponents(t, map[string]string{echoDomain: secret})
	addUser(t, s, alice, alicePass)

	t.Run("wrong secret", func(t *testing.T) {
		code, out := runPython(t, "echo_component", "--port", strconv.Itoa(port), "--domain", echoDomain, "--secret", "not-"+secret, "--timeout", "20")
		if code != 1 || !strings.Contains(out, "FAIL: disconnected") || strings.Contains(out, "READY") {
			t.Fatalf("want a refused handshake (exit code 1), got exit code %d:\n%s", code, out)
		}
	})

	comp := startPython(t, "echo_component", "--port", strconv.Itoa(port), "--domain", echoDomain, "--secret", secret)
	comp.waitLine(t, "READY", 20*time.Second)
	mustPython(t, "component_echo", append(s.clientArgs(false),
		"--jid", alice, "--password", alicePass,
		"--component", echoDomain, "--to", "bot@"+echoDomain, "--body", "ping over XEP-0114")...)
	if !strings.Contains(comp.out.String(), "echoing 'ping over XEP-0114' from "+alice+"/") {
		t.Errorf("the component did not see the message from alice's full JID:\n%s", comp.out.String())
	}
}

// TestPrivilegedComponentRoster: slixmpp's ComponentXMPP with its
// XEP-0356 plugin, granted roster = both (--component-privileges), gets
// the advertisement of its privileges, adds a legacy contact to alice's
// roster with subscription both and reads it back, and receives the
// roster push; alice, logged in with slixmpp, gets the push and sees the
// contact in her roster.
func TestPrivilegedComponentRoster(t *testing.T) {
	requireTools(t, "slixmpp")
	const (
		secret  = "bridge-Secret-5"
		contact = "legacy-42@" + echoDomain
	)
	s, port := startWithComponents(t, map[string]string{echoDomain: secret},
		"--component-privileges", echoDomain+"=roster:both")
	addUser(t, s, alice, alicePass)

	user := startPython(t, "privileged_roster_client", append(s.clientArgs(false),
		"--jid", alice, "--password", alicePass, "--contact", contact, "--timeout", "40")...)
	user.waitLine(t, "READY", 20*time.Second)
	out := mustPython(t, "privileged_component", "--port", strconv.Itoa(port), "--domain", echoDomain, "--secret", secret,
		"--user", alice, "--contact", contact)
	if !strings.Contains(out, "advertisement from localhost") {
		t.Errorf("the advertisement did not come from the server's domain:\n%s", out)
	}
	if got := user.wait(t); !strings.Contains(got, contact+" is in the roster of "+alice) {
		t.Errorf("alice did not see the contact:\n%s", got)
	}
	if !strings.Contains(s.Log(), `"privileges":"ns=urn:xmpp:privilege:2 roster=both push=true"`) {
		t.Errorf("the server did not log the component's privileges")
	}
}

// startDaemon runs a program in the foreground of its own process group
// and stops it (SIGTERM, then SIGKILL) when the test ends.
func startDaemon(t *testing.T, name string, args ...string) (<-chan struct{}, *syncBuffer) {
	t.Helper()
	path, _ := findProgram(name)
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d := runDaemon(t, name, cmd, 5*time.Second, "", nil)
	return d.done, d.out
}

// TestBiboumiIRCGateway runs Debian's biboumi, an IRC gateway component,
// against the server and an ngircd IRC server, all on loopback: an XMPP
// user joins an IRC channel through biboumi and exchanges a message with a
// plain IRC client in each direction.
func TestBiboumiIRCGateway(t *testing.T) {
	requireTools(t, "slixmpp", "biboumi", "ngircd")
	ircAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ircPort))
	if l, err := net.Listen("tcp", ircAddr); err != nil {
		t.Fatalf("port %d is taken (%v): biboumi reaches IRC servers only there; stop whatever listens on it (a system ngircd? `service ngircd stop`)", ircPort, err)
	} else {
		l.Close()
	}
	dir := t.TempDir()

	ngircdConf := filepath.Join(dir, "ngircd.conf")
	writeFile(t, ngircdConf, fmt.Sprintf(`[Global]
	Name = irc.test
	Info = Ambrosia end-to-end test
	AdminInfo1 = test
	AdminInfo2 = test
	AdminEMail = test@localhost
	Listen = 127.0.0.1
	Ports = %d
	MotdPhrase = test
	PidFile = %s
[Limits]
	MaxConnectionsIP = 0
[Options]
	DNS = no
	Ident = no
	PAM = no
`, ircPort, filepath.Join(dir, "ngircd.pid")))
	ircDone, _ := startDaemon(t, "ngircd", "-n", "-f", ngircdConf)
	waitListening(t, ircAddr, ircDone, "ngircd", nil)

	const secret = "biboumi-Secret-4"
	s, port := startWithComponents(t, map[string]string{biboumiDomain: secret})
	addUser(t, s, alice, alicePass)

	biboumiConf := filepath.Join(dir, "biboumi.cfg")
	writeFile(t, biboumiConf, fmt.Sprintf(`hostname=%s
password=%s
xmpp_server_ip=127.0.0.1
port=%d
db_name=%s
identd_port=0
policy_directory=%s
realname_customization=false
log_level=0
`, biboumiDomain, secret, port, filepath.Join(dir, "biboumi.sqlite"), dir))
	bibDone, bibOut := startDaemon(t, "biboumi", biboumiConf)
	deadline := time.Now().Add(20 * time.Second)
	for !componentConnected(s.Log(), biboumiDomain) {
		select {
		case <-bibDone:
			t.Fatalf("biboumi exited before connecting:\n%s", bibOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("biboumi not connected after 20 s:\n%s", bibOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	mustPython(t, "biboumi_irc", append(s.clientArgs(false),
		"--jid", alice, "--password", alicePass,
		"--room", "#test%127.0.0.1@"+biboumiDomain, "--nick", "alicex",
		"--channel", "#test", "--irc-port", strconv.Itoa(ircPort), "--irc-nick", "ircbob",
		"--timeout", "40")...)
}

// componentConnected reports whether the server's JSON log shows the
// component of domain connected.
func componentConnected(log, domain string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"msg":"component connected"`) && strings.Contains(l, `"domain":"`+domain+`"`) {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
