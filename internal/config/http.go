package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// HTTP configures the web listener: XMPP over WebSocket at
// /xmpp-websocket, BOSH at /http-bind, the XEP-0156 discovery documents
// at /.well-known/host-meta(.json), /healthz and /readyz, and, when asked,
// the HTTP API and the upload store, so that one port and one certificate
// serve browsers.
type HTTP struct {
	// Addr is the listener; empty (the default) turns it off. Prosody's
	// HTTPS port is 5281.
	Addr string `toml:"addr"`
	// TLS serves HTTPS with the domains' certificates (the default); off,
	// the listener speaks plain HTTP for a reverse proxy in front that
	// terminates TLS.
	TLS bool `toml:"tls"`
	// TrustedProxies are the CIDRs of reverse proxies whose
	// X-Forwarded-For names the client (in the logs) and whose plain
	// requests count as encrypted, since they terminated TLS (unless
	// X-Forwarded-Proto says http). Loopback by default. Plain WebSocket
	// sessions are accepted only from loopback and from these.
	TrustedProxies []string `toml:"trusted_proxies"`
	// CORSOrigins are the origins (https://chat.example.org) whose pages
	// may connect; "*" allows any. Pages of the listener's own origin
	// always may.
	CORSOrigins []string `toml:"cors_origins"`
	// PublicURL is the base URL clients reach the listener at, for the
	// discovery documents and the upload URLs behind a proxy; empty takes
	// each request's Host.
	PublicURL string `toml:"public_url"`
	// WebSocket serves XMPP over WebSocket (RFC 7395); on by default.
	WebSocket bool `toml:"websocket"`
	// API serves the HTTP API (under /api/) here too; set api.addr = ""
	// to serve it here only.
	API bool `toml:"api"`
	// Upload serves the upload store (under /upload/) here too, and makes
	// the upload URLs point here unless upload.public_url is set; set
	// upload.addr = "" to serve the files here only.
	Upload bool `toml:"upload"`
}

// validate checks the [http] section.
func (h *HTTP) validate(c *Config) error {
	if h.Addr == "" {
		if h.API || h.Upload {
			return errors.New("http.addr: empty, but http.api or http.upload asks to serve on it; set http.addr (e.g. \":5281\")")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(h.Addr); err != nil {
		return fmt.Errorf("http.addr: %q is not host:port", h.Addr)
	}
	for _, p := range h.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return fmt.Errorf("http.trusted_proxies: %q is neither a CIDR such as 10.0.0.0/8 nor an address", p)
			}
		}
	}
	for _, o := range h.CORSOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("http.cors_origins: %q is not an origin such as https://chat.example.org", o)
		}
	}
	if h.PublicURL != "" {
		u, err := url.Parse(h.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("http.public_url: %q is not an http(s) URL such as https://xmpp.example.org", h.PublicURL)
		}
	}
	if h.API && c.API.AdminToken == "" && len(c.API.Admins) == 0 && len(c.AppServices) == 0 {
		return errors.New("http.api: the API has nothing to serve: set api.admin_token or api.admins, or declare an [[appservice]]")
	}
	if h.Upload {
		if !c.Upload.Enabled {
			return errors.New("http.upload: upload.enabled is false")
		}
		if !h.TLS && h.PublicURL == "" && c.Upload.PublicURL == "" {
			return errors.New("http.upload: with http.tls = false the upload URLs need http.public_url or upload.public_url (the URL of the proxy in front)")
		}
	}
	return nil
}

// movedKeys names, for a key another server uses, where the setting is
// here; an unknown key error adds it.
var movedKeys = map[string]string{
	"websocket":          "http.addr (WebSocket is served by the [http] listener)",
	"http_ports":         "http.addr",
	"https_ports":        "http.addr",
	"http_port":          "http.addr",
	"https_port":         "http.addr",
	"c2s.websocket_addr": "http.addr",
	"api.websocket":      "http.websocket",
}

// movedHint returns " (did you mean X?)" for keys of movedKeys.
func movedHint(keys []string) string {
	var hints []string
	for _, k := range keys {
		if to, ok := movedKeys[k]; ok {
			hints = append(hints, k+" → "+to)
		} else if top, _, _ := strings.Cut(k, "."); movedKeys[top] != "" {
			hints = append(hints, k+" → "+movedKeys[top])
		}
	}
	if len(hints) == 0 {
		return ""
	}
	return "; the setting is " + strings.Join(hints, ", ")
}
