package main

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/acmecert"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

// listenerSetting is a listener and the setting that places it.
type listenerSetting struct {
	key  string // in the file: c2s.addr; a name with a space for a listener only a flag places
	flag string // "" when no flag sets it
	addr string
}

// serveListeners are the TCP listeners `serve` opens for cfg, besides
// upload's, whose failure is logged and not fatal.
func serveListeners(cfg config.Config) []listenerSetting {
	ls := []listenerSetting{
		{"c2s.addr", "c2s-addr", cfg.C2S.Addr},
		{"c2s.tls_addr", "c2s-tls-addr", cfg.C2S.TLSAddr},
	}
	if cfg.S2S.Enabled && len(federatedDomains(cfg)) > 0 {
		ls = append(ls, listenerSetting{"s2s.addr", "", cfg.S2S.Addr}, listenerSetting{"s2s.tls_addr", "", cfg.S2S.TLSAddr})
	}
	if len(cfg.Component.External) > 0 {
		ls = append(ls, listenerSetting{"component.addr", "component-addr", cfg.Component.Addr})
	}
	if cfg.APIEnabled() {
		ls = append(ls, listenerSetting{"api.addr", "", cfg.API.Addr})
	}
	if cfg.TLS.ACME && cfg.TLS.ACMEChallenge == acmecert.ChallengeHTTP {
		ls = append(ls, listenerSetting{"tls.acme_http_addr", "", cfg.TLS.ACMEHTTPAddr})
	}
	ls = append(ls, listenerSetting{"http.addr", "http-addr", cfg.HTTP.Addr})
	return append(ls, listenerSetting{"metrics_addr", "metrics-addr", cfg.MetricsAddr}, listenerSetting{"debug_addr", "debug-addr", cfg.DebugAddr})
}

// checkListeners tries each listener's address before anything starts,
// so that a port in use is reported once, naming the listener and the
// setting that moves it, and not after what the failed start brought
// down.
func checkListeners(ls []listenerSetting) error {
	for _, l := range ls {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return listenError(l, err)
		}
		ln.Close()
	}
	return nil
}

// listenError explains a listener that could not be opened.
func listenError(l listenerSetting, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var where []string
	if !strings.Contains(l.key, " ") { // a key of the file, not a flag's listener
		where = append(where, l.key+" in the configuration file", "AMBROSIA_"+strings.ToUpper(strings.ReplaceAll(l.key, ".", "_")))
	}
	if l.flag != "" {
		where = append(where, "--"+l.flag)
	}
	return fmt.Errorf("%s: cannot listen on %s: %v; move it with %s, or set it to \"\" to turn it off",
		l.key, l.addr, err, strings.Join(where, ", "))
}
