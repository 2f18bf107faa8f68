package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

// configFlags are the flags every command that reads the configuration
// shares. Flags win over the environment, which wins over the file.
type configFlags struct {
	fs          *flag.FlagSet // where they were registered
	file        string
	domains     string
	data        string
	c2sAddr     string
	c2sTLSAddr  string
	httpAddr    string
	allowPlain  optBool
	allowReg    optBool
	logFormat   string
	logLevel    string
	debugAddr   string
	metricsAddr string
	idle        string
	resume      string
	compAddr    string
	components  componentFlags
	privileges  privilegeFlags
	// unknownEnv are the AMBROSIA_* variables nothing reads, found by load.
	unknownEnv []string
}

// otherEnv are the AMBROSIA_* variables read besides the configuration's
// keys.
var otherEnv = []string{
	"AMBROSIA_CONFIG",
	"AMBROSIA_SERVICE_SECRET",
	"AMBROSIA_BRIDGE_SECRET",
	// The test suite's: they reach the servers it starts, and a warning
	// would break the tests that read a command's output.
	"AMBROSIA_E2E", "AMBROSIA_EXACTLY_RUNS", "AMBROSIA_COMPARE_LOGINS", "AMBROSIA_BOSH_IDLE", "AMBROSIA_BOSH_HEAP",
}

// unknownEnv returns, for each AMBROSIA_* variable of environ that nothing
// reads, a warning naming it and the closest known variable: a typo in the
// environment would otherwise be ignored where the same typo in the file
// stops the start.
func unknownEnv(environ []string) []string {
	known := append(config.EnvNames(), otherEnv...)
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "AMBROSIA_") || slices.Contains(known, name) {
			continue
		}
		if strings.HasPrefix(name, config.AppServiceEnvPrefix) && (strings.HasSuffix(name, "_TOKEN")) {
			continue // an application service's token, named after the service
		}
		msg := "unknown environment variable " + name
		if s := closest(name, known); s != "" {
			msg += " (did you mean " + s + "?)"
		}
		out = append(out, msg+"; it is ignored")
	}
	slices.Sort(out)
	return out
}

// warnEnv logs the warnings of load.
func (f *configFlags) warnEnv(log *slog.Logger) {
	for _, w := range f.unknownEnv {
		log.Warn(w)
	}
}

// printEnvWarnings prints the warnings of load, for commands without a
// log.
func (f *configFlags) printEnvWarnings(w io.Writer) {
	for _, m := range f.unknownEnv {
		fmt.Fprintln(w, "ambrosia: warning:", m)
	}
}

// flagGroup selects the configuration flags a command reads, so that its
// help lists those and no others.
type flagGroup uint

const (
	// groupStore: --config, --domain and --data, where the accounts are.
	groupStore flagGroup = 1 << iota
	// groupLog: --log-format and --log-level.
	groupLog
	// groupMonitor: --debug-addr and --metrics-addr.
	groupMonitor
	// groupClients: the client listeners and their sessions.
	groupClients
	// groupRegistration: --allow-registration, which needs the accounts.
	groupRegistration
	// groupComponents: the external component listener.
	groupComponents
)

// register adds the flags of groups to fs. --config comes with any group.
func (f *configFlags) register(fs *flag.FlagSet, groups flagGroup) {
	f.fs = fs
	fs.StringVar(&f.file, "config", "", "read the TOML configuration `FILE` (or AMBROSIA_CONFIG; optional)")
	if groups&groupStore != 0 {
		fs.StringVar(&f.domains, "domain", "", "`DOMAINS` served, comma-separated (default localhost)")
		fs.StringVar(&f.data, "data", "", "data directory `DIR`: the SQLite database, certificates, uploads (default ./data)")
	}
	if groups&groupClients != 0 {
		fs.StringVar(&f.c2sAddr, "c2s-addr", "", "client listener with STARTTLS, `HOST:PORT` (default :5222; '' disables)")
		fs.StringVar(&f.c2sTLSAddr, "c2s-tls-addr", "", "client listener with direct TLS, `HOST:PORT` (default :5223; '' disables)")
		fs.StringVar(&f.httpAddr, "http-addr", "", "web listener: XMPP over WebSocket, discovery, health checks, `HOST:PORT` such as :5281 (default off)")
		fs.Var(&f.allowPlain, "allow-plain", "allow unencrypted client connections")
		fs.StringVar(&f.idle, "idle-timeout", "", "silence before a session is pinged, a `DURATION` such as 5m (0 disables)")
		fs.StringVar(&f.resume, "resume-timeout", "", "how long a dropped session waits for a stream-management resumption, a `DURATION` such as 5m (0 disables)")
	}
	if groups&groupRegistration != 0 {
		fs.Var(&f.allowReg, "allow-registration", "let anyone create an account in-band (XEP-0077)")
	}
	if groups&groupLog != 0 {
		fs.StringVar(&f.logFormat, "log-format", "", "text or json (default text)")
		fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (default info)")
	}
	if groups&groupMonitor != 0 {
		fs.StringVar(&f.debugAddr, "debug-addr", "", "serve the profiler, runtime statistics and metrics on `HOST:PORT` (loopback!)")
		fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on `HOST:PORT`")
	}
	if groups&groupComponents != 0 {
		fs.StringVar(&f.compAddr, "component-addr", "", "external component listener (XEP-0114), `HOST:PORT` (default 127.0.0.1:5347; opened only when a component is configured)")
		fs.Var(&f.components, "component", "allow an external component: `DOMAIN=SECRET`; repeatable, added to the file's [[component.external]] list")
		fs.Var(&f.privileges, "component-privileges", "grant an external component Privileged Entity (XEP-0356) access: `DOMAIN=KEY:VALUE,...` with keys roster, roster_push, message, presence, namespace and iq:NAMESPACE (as in [component.external.privileges]); repeatable, replaces the file's privileges of that component")
	}
}

// load builds the configuration: defaults, file, environment, flags.
func (f *configFlags) load() (config.Config, error) {
	if f.file == "" {
		f.file = os.Getenv("AMBROSIA_CONFIG")
	}
	c, err := config.Load(f.file)
	if err != nil {
		return c, err
	}
	f.unknownEnv = unknownEnv(os.Environ())
	if err := c.ApplyEnv(os.LookupEnv); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	// A flag given overrides, even empty: --c2s-tls-addr '' disables the
	// listener as c2s.tls_addr = "" in the file does.
	given := map[string]bool{}
	if f.fs != nil {
		f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	}
	if given["domain"] {
		c.Domains = nil
		for _, d := range strings.Split(f.domains, ",") {
			if d = strings.TrimSpace(d); d != "" {
				c.Domains = append(c.Domains, d)
			}
		}
	}
	set := func(dst *string, name, v string) {
		if given[name] {
			*dst = v
		}
	}
	set(&c.DataDir, "data", f.data)
	set(&c.C2S.Addr, "c2s-addr", f.c2sAddr)
	set(&c.C2S.TLSAddr, "c2s-tls-addr", f.c2sTLSAddr)
	set(&c.HTTP.Addr, "http-addr", f.httpAddr)
	set(&c.Log.Format, "log-format", f.logFormat)
	set(&c.Log.Level, "log-level", f.logLevel)
	set(&c.DebugAddr, "debug-addr", f.debugAddr)
	set(&c.MetricsAddr, "metrics-addr", f.metricsAddr)
	set(&c.Component.Addr, "component-addr", f.compAddr)
	c.Component.External = append(c.Component.External, f.components...)
	if err := f.privileges.apply(c.Component.External); err != nil {
		return c, err
	}
	if f.allowPlain.set {
		c.C2S.AllowPlain = f.allowPlain.v
	}
	if f.allowReg.set {
		c.C2S.AllowRegistration = f.allowReg.v
	}
	if given["idle-timeout"] {
		d, err := time.ParseDuration(f.idle)
		if err != nil {
			return c, fmt.Errorf("--idle-timeout: %w", err)
		}
		c.C2S.IdleTimeout = config.Duration(d)
	}
	if given["resume-timeout"] {
		d, err := time.ParseDuration(f.resume)
		if err != nil {
			return c, fmt.Errorf("--resume-timeout: %w", err)
		}
		c.C2S.ResumeTimeout = config.Duration(d)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// optBool is a boolean flag that remembers whether it was given, so that
// an absent flag leaves the file's or environment's value alone.
type optBool struct{ set, v bool }

func (b *optBool) String() string {
	if b == nil || !b.set {
		return ""
	}
	return strconv.FormatBool(b.v)
}

func (b *optBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.set, b.v = true, v
	return nil
}

func (b *optBool) IsBoolFlag() bool { return true }

// componentFlags collects repeated --component DOMAIN=SECRET flags.
type componentFlags []config.ExternalComponent

func (c *componentFlags) String() string {
	if c == nil {
		return ""
	}
	var ds []string
	for _, e := range *c {
		// The secret stays out of usage and error messages.
		ds = append(ds, e.Domain+"=...")
	}
	return strings.Join(ds, ",")
}

func (c *componentFlags) Set(s string) error {
	domain, secret, ok := strings.Cut(s, "=")
	if !ok || domain == "" || secret == "" {
		return errors.New("want DOMAIN=SECRET")
	}
	*c = append(*c, config.ExternalComponent{Domain: domain, Secret: secret})
	return nil
}

// privilegeFlags collects repeated --component-privileges
// DOMAIN=KEY:VALUE,... flags.
type privilegeFlags []privilegeFlag

type privilegeFlag struct {
	domain string
	p      config.Privileges
}

func (f *privilegeFlags) String() string {
	if f == nil {
		return ""
	}
	var ds []string
	for _, e := range *f {
		ds = append(ds, e.domain)
	}
	return strings.Join(ds, ",")
}

// Set reads DOMAIN=KEY:VALUE,...: roster:both, roster_push:false,
// message:outgoing, presence:roster, namespace:urn:xmpp:privilege:1, and
// iq:NAMESPACE:TYPE, whose namespace may hold colons (the type, last, does
// not).
func (f *privilegeFlags) Set(s string) error {
	domain, list, ok := strings.Cut(s, "=")
	if !ok || domain == "" || list == "" {
		return errors.New("want DOMAIN=KEY:VALUE[,KEY:VALUE]")
	}
	var p config.Privileges
	for _, kv := range strings.Split(list, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), ":")
		if !ok || v == "" {
			return fmt.Errorf("%q: want KEY:VALUE", kv)
		}
		switch k {
		case "roster":
			p.Roster = v
		case "roster_push":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("roster_push: %q is not true or false", v)
			}
			p.RosterPush = &b
		case "message":
			p.Message = v
		case "presence":
			p.Presence = v
		case "namespace":
			p.Namespace = v
		case "iq":
			i := strings.LastIndexByte(v, ':')
			if i <= 0 {
				return fmt.Errorf("%q: want iq:NAMESPACE:TYPE", kv)
			}
			if p.IQ == nil {
				p.IQ = map[string]string{}
			}
			p.IQ[v[:i]] = v[i+1:]
		default:
			return fmt.Errorf("unknown key %q (known: roster, roster_push, message, presence, namespace, iq)", k)
		}
	}
	*f = append(*f, privilegeFlag{domain: domain, p: p})
	return nil
}

// apply gives the components their privileges from the flags; a flag
// for a component configured nowhere is an error.
func (f privilegeFlags) apply(comps []config.ExternalComponent) error {
	for _, e := range f {
		i := slices.IndexFunc(comps, func(c config.ExternalComponent) bool { return strings.EqualFold(c.Domain, e.domain) })
		if i < 0 {
			return fmt.Errorf("--component-privileges: no external component %s (add it with --component or [[component.external]])", e.domain)
		}
		comps[i].Privileges = e.p
	}
	return nil
}
