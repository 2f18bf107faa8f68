package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// compareSize is how much TestCompareLogins does: by default enough to
// check that every server and mode works; with AMBROSIA_COMPARE_LOGINS=N,
// the measurement of docs/logins.md.
type compareSize struct {
	accounts, logins, rounds, concurrency int
	full                                  bool
}

func compareSizeFromEnv(t *testing.T) compareSize {
	v := os.Getenv("AMBROSIA_COMPARE_LOGINS")
	if v == "" {
		// Ten in flight, not a hundred: on a busy machine a
		// race-built Ambrosia could take longer than its 10 s
		// limits.auth_timeout over a hundred TLS logins at once.
		return compareSize{accounts: 100, logins: 300, rounds: 1, concurrency: 10}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("AMBROSIA_COMPARE_LOGINS=%q: want a number of logins per round", v)
	}
	return compareSize{accounts: 10000, logins: n, rounds: 3, concurrency: 100, full: true}
}

// compareServer is one server of the comparison, as the load client
// reaches and measures it.
type compareServer struct {
	name   string
	domain string
	addr   string // its STARTTLS listener, which also takes plain logins
	caFile string
	pid    int // the server process whose CPU time is read
	// exe is what /proc/PID/exe must name: the pid is the server, not a
	// wrapper that exec'd it or a parent that forked it.
	exe func(string) bool
}

// compareModes are the ways of logging in, the rows of each server.
var compareModes = []struct {
	name string
	args []string
}{
	{"plain", nil},
	{"starttls", []string{"--tls"}},
	{"starttls-resume", []string{"--tls", "--resume-tls"}},
}

// compareRun is what the test reads of one `bench logins --json`.
type compareRun struct {
	Logins struct {
		OK          int     `json:"ok"`
		Failed      int     `json:"failed"`
		PerSecond   float64 `json:"per_second"`
		ServerCPUms float64 `json:"server_cpu_ms_per_login"`
		Resumed     int     `json:"tls_resumed"`
		FirstErr    string  `json:"first_error"`
		Latency     struct {
			P50ms float64 `json:"p50_ms"`
			P99ms float64 `json:"p99_ms"`
		} `json:"latency"`
	} `json:"logins"`
	Error string `json:"error"`
}

// compareRow is one line of the table: a server and a mode, the median of
// each figure over the rounds.
type compareRow struct {
	Server         string     `json:"server"`
	Mode           string     `json:"mode"`
	Rounds         int        `json:"rounds"`
	Logins         int        `json:"logins"` // per round
	PerSecond      float64    `json:"logins_per_second"`
	ServerCPUms    float64    `json:"server_cpu_ms_per_login"`
	P50ms          float64    `json:"p50_ms"`
	P99ms          float64    `json:"p99_ms"`
	Failed         int        `json:"failed"`      // all rounds
	Resumed        int        `json:"tls_resumed"` // all rounds
	PerSecondRange [2]float64 `json:"logins_per_second_range"`
	CPURange       [2]float64 `json:"server_cpu_ms_range"`
}

// TestCompareLogins measures logins side by side on Ambrosia (serve on
// SQLite, plain logins allowed), ejabberd 23.01 and Prosody 0.12 with the
// same load client, `ambrosia bench logins` with SCRAM-SHA-1 and the
// salted password cached: plain TCP, STARTTLS with a full handshake, and
// STARTTLS resuming an earlier TLS session. Rounds alternate the servers
// and modes so that a change in the machine's load falls on all of them;
// each row is the median over the rounds. The table is logged and, with
// E2E_ARTIFACTS set, written there as compare-logins.json and .md.
//
// By default it runs small and checks behaviour only: every login on
// every server and mode succeeds, the CPU is read from the server process
// itself, every row is there, and Ambrosia resumes TLS sessions.
// AMBROSIA_COMPARE_LOGINS=N runs N logins per round over 10,000 accounts,
// three rounds (docs/logins.md); it refuses a -race build, whose Ambrosia
// would be several times slower than the real one.
func TestCompareLogins(t *testing.T) {
	size := compareSizeFromEnv(t)
	if size.full && raceEnabled {
		t.Fatal("AMBROSIA_COMPARE_LOGINS measures: run it without -race, which slows Ambrosia several times")
	}
	requireTools(t, "prosody", "prosodyctl", "lunbound", "unshare", "ejabberdctl", "erl")
	started := time.Now()

	var servers []compareServer
	s := startServer(t, ServerOptions{AllowPlain: true, ExtraArgs: []string{"--log-level", "info"}})
	out := ambrosia(t, "", "bench", "users", "--data", s.DataDir, "--domain", domain, "--prefix", benchPrefix,
		"--password", benchPassword, "--count", strconv.Itoa(size.accounts))
	t.Logf("ambrosia: %s", strings.TrimSpace(out))
	servers = append(servers, compareServer{name: "ambrosia", domain: domain, addr: s.Addr, caFile: s.CAFile,
		pid: s.cmd.Process.Pid, exe: func(e string) bool { return filepath.Base(e) == "ambrosia" }})

	o := peerOptions{loadAccounts: size.accounts, plain: true, quiet: true}
	ca := newFedCA(t)
	ambIP, ip := loopbackPair(t)
	t0 := time.Now()
	ej := startEjabberdWith(t, ca, ip, ambIP, false, o)
	t.Logf("ejabberd: started with %d accounts in %.1fs", size.accounts, time.Since(t0).Seconds())
	servers = append(servers, compareServer{name: "ejabberd", domain: "ejabberd.test", addr: net.JoinHostPort(ip, "5222"),
		caFile: ca.CAFile, pid: ej.pid, exe: func(e string) bool { return filepath.Base(e) == "beam.smp" }})

	ca = newFedCA(t)
	ambIP, ip = loopbackPair(t)
	t0 = time.Now()
	pr := startProsodyWith(t, ca, ip, ambIP, false, o)
	t.Logf("prosody: started with %d accounts in %.1fs", size.accounts, time.Since(t0).Seconds())
	servers = append(servers, compareServer{name: "prosody", domain: "prosody.test", addr: net.JoinHostPort(ip, "5222"),
		caFile: ca.CAFile, pid: pr.pid, exe: func(e string) bool { return strings.HasPrefix(filepath.Base(e), "lua") }})

	for _, sv := range servers {
		checkServerProcess(t, sv)
	}

	runs := map[[2]string][]compareRun{}
	for round := range size.rounds {
		for _, m := range compareModes {
			// Each round starts with another server, so that none
			// always runs right after the same neighbour.
			for k := range servers {
				sv := servers[(k+round)%len(servers)]
				r, ok := benchLoginsOnce(t, sv, m.args, size)
				if ok {
					key := [2]string{sv.name, m.name}
					runs[key] = append(runs[key], r)
				}
			}
		}
	}

	var rows []compareRow
	for _, sv := range servers {
		for _, m := range compareModes {
			rs := runs[[2]string{sv.name, m.name}]
			if len(rs) != size.rounds {
				t.Errorf("%s %s: %d of %d rounds ran", sv.name, m.name, len(rs), size.rounds)
				continue
			}
			row := summarize(sv.name, m.name, size.logins, rs)
			rows = append(rows, row)
			if row.Failed != 0 {
				t.Errorf("%s %s: %d logins failed (first: %s)", sv.name, m.name, row.Failed, firstErr(rs))
			}
			// The server worked for every login: a CPU time of 0
			// would mean the pid was not the server's.
			if row.ServerCPUms <= 0 {
				t.Errorf("%s %s: no server CPU measured for pid %d", sv.name, m.name, sv.pid)
			}
			if sv.name == "ambrosia" && m.name == "starttls-resume" && row.Resumed == 0 {
				t.Errorf("ambrosia resumed no TLS session")
			}
		}
	}
	for _, sv := range servers {
		logChildren(t, sv)
	}
	if len(rows) != len(servers)*len(compareModes) {
		t.Errorf("table has %d rows, want %d", len(rows), len(servers)*len(compareModes))
	}
	md := compareMarkdown(rows, size)
	t.Logf("logins compared in %.0fs:\n%s", time.Since(started).Seconds(), md)
	if dir := os.Getenv("E2E_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(struct {
			Accounts    int          `json:"accounts"`
			Concurrency int          `json:"concurrency"`
			Rounds      int          `json:"rounds"`
			Rows        []compareRow `json:"rows"`
		}{size.accounts, size.concurrency, size.rounds, rows}, "", "  ")
		for name, data := range map[string][]byte{"compare-logins.json": b, "compare-logins.md": []byte(md)} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// benchLoginsOnce runs one `ambrosia bench logins` against sv.
func benchLoginsOnce(t *testing.T, sv compareServer, modeArgs []string, size compareSize) (compareRun, bool) {
	t.Helper()
	jsonFile := filepath.Join(t.TempDir(), "logins.json")
	args := slices.Concat([]string{"bench", "logins", "--prefix", benchPrefix, "--password", benchPassword,
		"--domain", sv.domain, "--addr", sv.addr, "--ca", sv.caFile,
		"--count", strconv.Itoa(size.logins), "--users", strconv.Itoa(size.accounts),
		"--concurrency", strconv.Itoa(size.concurrency), "--server-pid", strconv.Itoa(sv.pid), "--json", jsonFile}, modeArgs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = oneShotEnv()
	out, err := cmd.CombinedOutput()
	if testing.Verbose() || err != nil {
		t.Logf("%s: ambrosia %s\n%s", sv.name, strings.Join(args, " "), out)
	}
	if err != nil {
		t.Errorf("%s %v: %v", sv.name, modeArgs, err)
		return compareRun{}, false
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Errorf("%s %v: %v", sv.name, modeArgs, err)
		return compareRun{}, false
	}
	var r compareRun
	if err := json.Unmarshal(b, &r); err != nil || r.Error != "" || r.Logins.OK+r.Logins.Failed != size.logins {
		t.Errorf("%s %v: --json: %v\n%s", sv.name, modeArgs, err, b)
		return compareRun{}, false
	}
	return r, true
}

// summarize takes the median of each figure over the rounds; failures and
// resumed sessions are summed.
func summarize(server, mode string, logins int, rs []compareRun) compareRow {
	row := compareRow{Server: server, Mode: mode, Rounds: len(rs), Logins: logins}
	var rate, cpu, p50, p99 []float64
	for _, r := range rs {
		rate = append(rate, r.Logins.PerSecond)
		cpu = append(cpu, r.Logins.ServerCPUms)
		p50 = append(p50, r.Logins.Latency.P50ms)
		p99 = append(p99, r.Logins.Latency.P99ms)
		row.Failed += r.Logins.Failed
		row.Resumed += r.Logins.Resumed
	}
	row.PerSecond, row.PerSecondRange = median(rate), [2]float64{slices.Min(rate), slices.Max(rate)}
	row.ServerCPUms, row.CPURange = median(cpu), [2]float64{slices.Min(cpu), slices.Max(cpu)}
	row.P50ms, row.P99ms = median(p50), median(p99)
	return row
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func firstErr(rs []compareRun) string {
	for _, r := range rs {
		if r.Logins.FirstErr != "" {
			return r.Logins.FirstErr
		}
	}
	return "none reported"
}

// compareMarkdown is the table of docs/logins.md.
func compareMarkdown(rows []compareRow, size compareSize) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d logins per round over %d accounts, %d in flight, median of %d round(s)\n\n",
		size.logins, size.accounts, size.concurrency, size.rounds)
	b.WriteString("| server | mode | logins/s | server CPU ms/login | p50 ms | p99 ms | failed | TLS resumed |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		resumed := "–"
		if r.Mode == "starttls-resume" {
			resumed = fmt.Sprintf("%d of %d", r.Resumed, r.Rounds*r.Logins)
		}
		rate := fmt.Sprintf("%.0f", r.PerSecond)
		cpu := fmt.Sprintf("%.3f", r.ServerCPUms)
		if r.Rounds > 1 {
			rate += fmt.Sprintf(" (%.0f–%.0f)", r.PerSecondRange[0], r.PerSecondRange[1])
			cpu += fmt.Sprintf(" (%.3f–%.3f)", r.CPURange[0], r.CPURange[1])
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f | %.1f | %d | %s |\n",
			r.Server, r.Mode, rate, cpu, r.P50ms, r.P99ms, r.Failed, resumed)
	}
	return b.String()
}

// checkServerProcess checks that sv.pid is the server program itself:
// /proc/PID/stat counts the CPU time of all its threads (the Erlang VM's
// schedulers, Go's), but not that of a child it forked or of a process it
// is a wrapper for.
func checkServerProcess(t *testing.T, sv compareServer) {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", sv.pid))
	if err != nil {
		t.Fatalf("%s: pid %d: %v", sv.name, sv.pid, err)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", sv.pid))
	var threads string
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			threads = strings.TrimSpace(v)
		}
	}
	t.Logf("%s: pid %d runs %s, %s threads", sv.name, sv.pid, exe, threads)
	if !sv.exe(exe) {
		t.Fatalf("%s: pid %d runs %s, not the server", sv.name, sv.pid, exe)
	}
}

// logChildren logs the processes the server started and their CPU time,
// which `--server-pid` does not count (the Erlang VM's port helpers).
func logChildren(t *testing.T, sv compareServer) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 || f[1] != strconv.Itoa(sv.pid) {
			continue
		}
		ut, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		t.Logf("%s: child %d %s: %d ms of CPU (not counted)", sv.name, pid, strings.TrimPrefix(string(b[:i]), strconv.Itoa(pid)+" ("), (ut+st)*10)
	}
}

// writeProsodyAccounts writes count accounts PREFIXi@host with password,
// as Prosody's internal_hashed store keeps them (one Lua table per file,
// data_path/HOST/accounts/USER.dat, names %-encoded), all with one salt.
func writeProsodyAccounts(t testing.TB, dataDir, host, prefix, password string, count int) {
	t.Helper()
	const iterations = 4096 // as Ambrosia's and ejabberd's
	salt := rand.Text()
	salted, err := pbkdf2.Key(sha1.New, password, []byte(salt), iterations, sha1.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(msg string) []byte {
		h := hmac.New(sha1.New, salted)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha1.Sum(mac("Client Key"))
	account := fmt.Sprintf("return {\n\t[\"stored_key\"] = %q;\n\t[\"server_key\"] = %q;\n\t[\"iteration_count\"] = %d;\n\t[\"salt\"] = %q;\n};\n",
		hex.EncodeToString(stored[:]), hex.EncodeToString(mac("Server Key")), iterations, salt)
	dir := filepath.Join(dataDir, prosodyEncode(host), "accounts")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range count {
		if err := os.WriteFile(filepath.Join(dir, prosodyEncode(fmt.Sprintf("%s%d", prefix, i))+".dat"), []byte(account), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// prosodyEncode is Prosody's datamanager encoding of a file name: every
// byte but ASCII letters and digits as %xx.
func prosodyEncode(s string) string {
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}
