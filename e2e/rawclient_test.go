package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"time"
)

// rawClient speaks XMPP by hand over a socket, for tests that must send
// what no client library would send and see the server's exact bytes.
// Its methods return errors instead of failing the test so that they can
// be used from many goroutines at once.
type rawClient struct {
	conn net.Conn
	buf  []byte // received and not yet consumed by expect
}

const (
	nsStreams = "http://etherx.jabber.org/streams"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	// rawTimeout bounds each wait for the server in raw tests.
	rawTimeout = 20 * time.Second
)

var (
	reFeatures   = regexp.MustCompile(`(?s)<(?:stream:)?features[\s>].*?</(?:stream:)?features>|<(?:stream:)?features[^>]*/>`)
	reProceed    = regexp.MustCompile(`<proceed[^>]*?/>|<proceed[^>]*>\s*</proceed>`)
	reSASLResult = regexp.MustCompile(`(?s)<success[^>]*?/>|<success[^>]*>.*?</success>|<failure[^>]*>.*?</failure>`)
	reNotAuth    = regexp.MustCompile(`(?s)^<failure[^>]*>\s*<not-authorized\s*(/>|>\s*</not-authorized>)`)
)

func dialRaw(addr string) (*rawClient, error) {
	c, err := net.DialTimeout("tcp", addr, rawTimeout)
	if err != nil {
		return nil, err
	}
	return &rawClient{conn: c}, nil
}

func (c *rawClient) Close() error { return c.conn.Close() }

func (c *rawClient) send(s string) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(rawTimeout)); err != nil {
		return err
	}
	_, err := io.WriteString(c.conn, s)
	return err
}

// expect reads until re matches the unconsumed input, consumes the input up
// to the end of the match and returns the match. On failure the error
// carries everything received, so the test log shows what the server said.
func (c *rawClient) expect(re *regexp.Regexp) (string, error) {
	deadline := time.Now().Add(rawTimeout)
	if err := c.conn.SetReadDeadline(deadline); err != nil {
		return "", err
	}
	chunk := make([]byte, 32*1024)
	for {
		if loc := re.FindIndex(c.buf); loc != nil {
			m := string(c.buf[loc[0]:loc[1]])
			c.buf = c.buf[loc[1]:]
			return m, nil
		}
		n, err := c.conn.Read(chunk)
		c.buf = append(c.buf, chunk[:n]...)
		if err != nil && n == 0 {
			return "", fmt.Errorf("waiting for %s: %w; received: %q", re, err, c.buf)
		}
	}
}

// expectClosed reads until the server closes the connection. What arrives
// meanwhile is kept for the error message only.
func (c *rawClient) expectClosed() error {
	if err := c.conn.SetReadDeadline(time.Now().Add(rawTimeout)); err != nil {
		return err
	}
	chunk := make([]byte, 32*1024)
	for {
		n, err := c.conn.Read(chunk)
		c.buf = append(c.buf, chunk[:n]...)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			return fmt.Errorf("connection still open %v later; received: %q", rawTimeout, c.buf)
		default:
			// EOF or a reset: either way the server hung up.
			return nil
		}
	}
}

// openStream sends a client stream header and waits for the server's
// features, which it returns.
func (c *rawClient) openStream() (string, error) {
	hdr := fmt.Sprintf(`<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='%s'>`, domain, nsStreams)
	if err := c.send(hdr); err != nil {
		return "", err
	}
	return c.expect(reFeatures)
}

// startTLS negotiates STARTTLS, verifying the server against caFile only,
// and opens the new stream.
func (c *rawClient) startTLS(caFile string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in %s", caFile)
	}
	if err := c.send(fmt.Sprintf(`<starttls xmlns='%s'/>`, nsTLS)); err != nil {
		return err
	}
	if _, err := c.expect(reProceed); err != nil {
		return err
	}
	if len(c.buf) != 0 {
		return fmt.Errorf("data after <proceed/> before TLS: %q", c.buf)
	}
	tc := tls.Client(c.conn, &tls.Config{ServerName: domain, RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err := tc.SetDeadline(time.Now().Add(rawTimeout)); err != nil {
		return err
	}
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.conn = tc
	_, err = c.openStream()
	return err
}

// authPlain sends SASL PLAIN and returns the server's <success> or
// <failure> element.
func (c *rawClient) authPlain(user, password string) (string, error) {
	cred := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	if err := c.send(fmt.Sprintf(`<auth xmlns='%s' mechanism='PLAIN'>%s</auth>`, nsSASL, cred)); err != nil {
		return "", err
	}
	return c.expect(reSASLResult)
}

// dialTLSAuth goes through stream, STARTTLS, stream and SASL PLAIN and
// returns the SASL result element.
func dialTLSAuth(s *Server, user, password string) (*rawClient, string, error) {
	c, err := dialRaw(s.Addr)
	if err != nil {
		return nil, "", err
	}
	if _, err := c.openStream(); err != nil {
		c.Close()
		return nil, "", err
	}
	if err := c.startTLS(s.CAFile); err != nil {
		c.Close()
		return nil, "", err
	}
	res, err := c.authPlain(user, password)
	if err != nil {
		c.Close()
		return nil, "", err
	}
	return c, res, nil
}

// login authenticates with PLAIN, restarts the stream and binds a resource,
// returning the full JID the server assigned.
func (c *rawClient) login(s *Server, user, password, resource string) (string, error) {
	if _, err := c.openStream(); err != nil {
		return "", err
	}
	if err := c.startTLS(s.CAFile); err != nil {
		return "", err
	}
	res, err := c.authPlain(user, password)
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix([]byte(res), []byte("<success")) {
		return "", fmt.Errorf("authentication refused: %s", res)
	}
	if _, err := c.openStream(); err != nil {
		return "", err
	}
	bind := fmt.Sprintf(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>`, resource)
	if err := c.send(bind); err != nil {
		return "", err
	}
	m, err := c.expect(regexp.MustCompile(`(?s)<iq[^>]*\bid=["']bind1["'][^>]*>.*?</iq>`))
	if err != nil {
		return "", err
	}
	jm := regexp.MustCompile(`<jid>([^<]+)</jid>`).FindStringSubmatch(m)
	if jm == nil {
		return "", fmt.Errorf("bind failed: %s", m)
	}
	return jm[1], nil
}
