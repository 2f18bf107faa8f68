package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsonBotPath builds the example bot of the bot package once, with -race
// when the tests run with it.
var jsonBotPath = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ambrosia-jsonbot-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "jsonbot")
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./bot/example/jsonbot")...)
	cmd.Dir = moduleRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{err, string(b)}
	}
	return out, nil
})

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// botTarget is a server the example bot logs in to.
type botTarget struct {
	server, caFile string   // the client listener and the CA its certificate comes from
	bot, botPass   string   // the bot's account
	user, userPass string   // a user of the server
	client         []string // the connection arguments of the user's script
}

// logField matches key=value and key="quoted value" in slog's text
// output.
var logField = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logFields returns the fields of the first line of log holding msg.
func logFields(log, msg string) map[string]string {
	for line := range strings.Lines(log) {
		if !strings.Contains(line, `msg="`+msg+`"`) {
			continue
		}
		f := map[string]string{}
		for _, m := range logField.FindAllStringSubmatch(line, -1) {
			v := m[2]
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
			f[m[1]] = v
		}
		return f
	}
	return nil
}

// startJSONBot runs bot/example/jsonbot on tg and returns the fields of
// its "logged in" line once it is logged in.
func startJSONBot(t *testing.T, tg botTarget) (*daemon, map[string]string) {
	t.Helper()
	path, err := jsonBotPath()
	if err != nil {
		t.Fatalf("building the example bot: %v", err)
	}
	cmd := exec.Command(path, "-jid", tg.bot, "-server", tg.server, "-ca", tg.caFile)
	cmd.Env = append(os.Environ(), "BOT_PASSWORD="+tg.botPass)
	d := runDaemon(t, "jsonbot", cmd, 10*time.Second, "", nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if f := logFields(d.logs(), "logged in"); f != nil {
			return d, f
		}
		select {
		case <-d.done:
			t.Fatalf("the bot exited before logging in:\n%s", d.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bot is not logged in after 30 s:\n%s", d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBotJSON logs the example bot (bot/example/jsonbot) in to Ambrosia,
// a real Prosody 0.12 and a real ejabberd 23.01, as Debian ships them,
// with the same code and no setting but the address; a slixmpp user of
// each server asks it for arithmetic in JSON and checks the answers.
// want holds what the login must have used, as the bot logs it: SASL2
// with Bind 2 where offered (Ambrosia; Debian's Prosody 0.12 and ejabberd
// 23.01 predate it, and prosody-modules' mod_sasl2 of Debian 12 needs a
// newer Prosody), RFC 6120 SASL and binding elsewhere, and Stream
// Management with resumption everywhere.
func TestBotJSON(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tools []string
		start func(t *testing.T) botTarget
		want  map[string]string
	}{
		{"ambrosia", []string{"slixmpp"}, func(t *testing.T) botTarget {
			s := startServer(t, ServerOptions{})
			addUser(t, s, "bot@localhost", "bot-pw")
			addUser(t, s, alice, alicePass)
			return botTarget{s.Addr, s.CAFile, "bot@localhost", "bot-pw", alice, alicePass, s.clientArgs(false)}
		}, map[string]string{"sasl2": "true", "bind2": "true", "sm": "true", "mechanism": "SCRAM-SHA-512-PLUS", "channel_binding": "tls-exporter"}},
		{"prosody", prosodyPeer.tools, func(t *testing.T) botTarget {
			return startPeerForBot(t, "prosody.test", func(ca *fedCA, ip, ambIP string) string {
				return startProsody(t, ca, ip, ambIP, false)
			})
		}, map[string]string{"sasl2": "false", "offered_sasl2": "false", "sm": "true"}},
		{"ejabberd", ejabberdPeer.tools, func(t *testing.T) botTarget {
			return startPeerForBot(t, "ejabberd.test", func(ca *fedCA, ip, ambIP string) string {
				startEjabberd(t, ca, ip, ambIP, false)
				return ""
			})
		}, map[string]string{"sasl2": "false", "offered_sasl2": "false", "sm": "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireTools(t, tc.tools...)
			tg := tc.start(t)
			_, f := startJSONBot(t, tg)
			t.Logf("the bot logged in to %s: %v", tc.name, f)
			for k, v := range tc.want {
				if f[k] != v {
					t.Errorf("%s=%q, want %q", k, f[k], v)
				}
			}
			if !strings.HasPrefix(f["full_jid"], tg.bot+"/") {
				t.Fatalf("bound %q, want a resource of %s", f["full_jid"], tg.bot)
			}
			mustPython(t, "bot_json", append(tg.client, "--jid", tg.user, "--password", tg.userPass,
				"--bot", tg.bot, "--bot-full", f["full_jid"])...)
		})
	}
}

// startPeerForBot starts a real peer with start, which returns its
// configuration file for prosodyctl ("" for ejabberd, which registers
// the bot itself), registers the bot's account where needed, and returns
// where the bot and the user log in.
func startPeerForBot(t *testing.T, domain string, start func(ca *fedCA, ip, ambIP string) (cfgFile string)) botTarget {
	t.Helper()
	ca := newFedCA(t)
	ambIP, ip := loopbackPair(t)
	if cfg := start(ca, ip, ambIP); cfg != "" {
		if out, err := exec.Command("prosodyctl", "--config", cfg, "register", "bot", domain, "bot-pw").CombinedOutput(); err != nil {
			t.Fatalf("prosodyctl register: %v\n%s", err, out)
		}
	}
	return botTarget{
		server: net.JoinHostPort(ip, "5222"), caFile: ca.CAFile,
		bot: "bot@" + domain, botPass: "bot-pw",
		user: "bob@" + domain, userPass: "bob-pw",
		client: []string{"--host", ip, "--port", "5222", "--ca", ca.CAFile},
	}
}
