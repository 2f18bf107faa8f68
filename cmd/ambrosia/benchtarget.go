package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

// ownServerFlag is the flag an operator gives to load a server that is
// not on this machine.
const ownServerFlag = "--yes-i-own-this-server"

// benchTarget is where a run connects: the address given, or else the
// one the domain publishes (RFC 6120 §3.2.1, XEP-0368 for direct TLS), as
// a client would find it.
func benchTarget(ctx context.Context, addr, domain string, directTLS bool) (string, error) {
	if addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("--addr: %w", err)
		}
		return addr, nil
	}
	port, service := "5222", "xmpp-client"
	if directTLS {
		port, service = "5223", "xmpps-client"
	}
	if domain == "localhost" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	if _, srvs, err := net.DefaultResolver.LookupSRV(ctx, service, "tcp", domain); err == nil && len(srvs) > 0 && srvs[0].Target != "." {
		return net.JoinHostPort(strings.TrimSuffix(srvs[0].Target, "."), strconv.Itoa(int(srvs[0].Port))), nil
	}
	return net.JoinHostPort(domain, port), nil
}

// guardTarget refuses a target that is not on this machine unless the
// operator said the server is theirs: a load test can slow down or stop a
// server and disturb its users, so nobody should point one at a server by
// a slip of the keyboard. It reports whether the target is on loopback.
func guardTarget(ctx context.Context, flagName, addr string, owned bool, notes io.Writer) (loopback bool, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("%s: %w", flagName, err)
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		as, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return false, fmt.Errorf("%s: %w", flagName, err)
		}
		for _, a := range as {
			ips = append(ips, a.IP)
		}
	}
	var far []string
	for _, ip := range ips {
		if !ip.IsLoopback() {
			far = append(far, ip.String())
		}
	}
	if len(far) == 0 && len(ips) > 0 {
		return true, nil
	}
	if !owned {
		return false, fmt.Errorf("refusing to load %s (%s), which is not on this machine: a load test can slow down or stop a server "+
			"and disturb its users. Run it only against a server you operate, with load accounts made for it, and say so with %s",
			addr, strings.Join(far, ", "), ownServerFlag)
	}
	fmt.Fprintf(notes, "bench: loading %s (%s), not on this machine (%s)\n", addr, strings.Join(far, ", "), ownServerFlag)
	return false, nil
}

// benchTLS returns the client TLS configuration of a run and says how the
// server's certificate is checked: against caFile when given; not at all
// on loopback (a server's self-signed certificate) or with insecure;
// against the system's roots otherwise.
func benchTLS(domain, caFile string, insecure, loopback, directTLS bool) (*tls.Config, string, error) {
	tc := &tls.Config{ServerName: domain, MinVersion: tls.VersionTLS12}
	if directTLS {
		tc.NextProtos = []string{"xmpp-client"} // XEP-0368
	}
	switch {
	case caFile != "":
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, "", err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("%s: no PEM certificate", caFile)
		}
		tc.RootCAs = pool
		return tc, "verified against " + caFile, nil
	case insecure || loopback:
		tc.InsecureSkipVerify = true
		return tc, "not verified", nil
	}
	return tc, "verified against the system's roots", nil
}

// errBothTLS is the error of a run asked for both kinds of TLS.
var errBothTLS = errors.New("--tls (STARTTLS) and --direct-tls exclude each other")
