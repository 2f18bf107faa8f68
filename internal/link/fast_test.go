package link

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// TestFastTokensAcrossGateways: a token stored through one gateway is
// found through another, and its count is checked by the service's store
// for both: a count used through one gateway is a replay through the
// other.
func TestFastTokensAcrossGateways(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	alice := "alice@" + testDomain
	if err := store.CreateAccount(ctx, alice, nil); err != nil {
		t.Fatal(err)
	}
	a, b := startGateway(t, nil), startGateway(t, nil)
	startServiceWith(t, "sm-1", []*testGateway{a, b}, nil, func(d *ServiceDeps) { d.Tokens = store })
	a.members(t, 1)
	b.members(t, 1)
	ta, tb := a.g.FastTokens(), b.g.FastTokens()

	sum := sha256.Sum256([]byte("token"))
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	tok := storage.FastToken{User: alice, Agent: "agent-1", Mechanism: "HT-SHA-256-NONE", Hash: sum[:], Expiry: exp}
	if err := ta.AddFastToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	ts, err := tb.FastTokens(ctx, alice, "agent-1")
	if err != nil || len(ts) != 1 {
		t.Fatalf("through gateway b: %v %v", ts, err)
	}
	if got := ts[0]; got.User != alice || got.Agent != "agent-1" || got.Mechanism != tok.Mechanism || !bytes.Equal(got.Hash, sum[:]) || !got.Expiry.Equal(exp) || got.Count != 0 {
		t.Fatalf("got %+v, want %+v", got, tok)
	}
	if ts, err := tb.FastTokens(ctx, alice, "agent-2"); err != nil || len(ts) != 0 {
		t.Fatalf("another agent: %v %v", ts, err)
	}

	uses := []struct {
		via   storage.FastTokens
		count uint64
		want  error
	}{
		{ta, 5, nil},
		{tb, 5, storage.ErrReplay},
		{ta, 4, storage.ErrReplay},
		{tb, 6, nil},
		{ta, 6, storage.ErrReplay},
	}
	for i, u := range uses {
		if err := u.via.UseFastToken(ctx, alice, "agent-1", sum[:], u.count); !errors.Is(err, u.want) {
			t.Fatalf("use %d (count %d): got %v, want %v", i, u.count, err, u.want)
		}
	}
	if ts, _ := ta.FastTokens(ctx, alice, "agent-1"); len(ts) != 1 || ts[0].Count != 6 {
		t.Fatalf("after the uses: %+v", ts)
	}
	other := sha256.Sum256([]byte("other"))
	if err := tb.UseFastToken(ctx, alice, "agent-1", other[:], 7); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}

	if err := tb.DeleteFastTokens(ctx, alice, "agent-1"); err != nil {
		t.Fatal(err)
	}
	if ts, err := ta.FastTokens(ctx, alice, "agent-1"); err != nil || len(ts) != 0 {
		t.Fatalf("after delete: %v %v", ts, err)
	}

	// Users the service does not have, or of domains nobody serves.
	for _, u := range []string{"nobody@" + testDomain, "alice@elsewhere.example"} {
		tok := tok
		tok.User = u
		if err := ta.AddFastToken(ctx, tok); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("add for %s: %v, want not found", u, err)
		}
	}
}

// TestFastTokensWithoutStore: a service that keeps no tokens refuses the
// requests, and the gateway reports an error that is not a storage
// answer, so that the client edge fails the login temporarily.
func TestFastTokensWithoutStore(t *testing.T) {
	gw := startGateway(t, nil)
	startService(t, "sm-1", []*testGateway{gw}, nil)
	gw.members(t, 1)
	_, err := gw.g.FastTokens().FastTokens(context.Background(), "alice@"+testDomain, "agent")
	if err == nil || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrReplay) {
		t.Fatalf("got %v, want a service error", err)
	}
}

// TestParseFastRequest: the service checks what a gateway asks before it
// reaches the store, and answers bad input with the right condition.
func TestParseFastRequest(t *testing.T) {
	hash := "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=" // SHA-256 of "test"
	tests := []struct {
		name string
		xml  string
		want string
	}{
		{"get", "<fast id='1' op='get' user='alice@example.org' agent='a'/>", ""},
		{"delete all agents", "<fast id='1' op='delete' user='alice@example.org'/>", ""},
		{"add", "<fast id='1' op='add' user='alice@example.org' agent='a' mechanism='HT-SHA-256-NONE' hash='" + hash + "' expiry='2030-01-02T03:04:05Z'/>", ""},
		{"use", "<fast id='1' op='use' user='alice@example.org' agent='a' hash='" + hash + "' count='9223372036854775807'/>", ""},
		{"full JID", "<fast id='1' op='get' user='alice@example.org/r' agent='a'/>", stanza.ItemNotFound},
		{"domain only", "<fast id='1' op='get' user='example.org' agent='a'/>", stanza.ItemNotFound},
		{"bad JID", "<fast id='1' op='get' user='a@b@c' agent='a'/>", stanza.ItemNotFound},
		{"no agent", "<fast id='1' op='get' user='alice@example.org'/>", stanza.BadRequest},
		{"unknown op", "<fast id='1' op='drop' user='alice@example.org' agent='a'/>", stanza.BadRequest},
		{"count too large", "<fast id='1' op='use' user='alice@example.org' agent='a' hash='" + hash + "' count='9223372036854775808'/>", stanza.BadRequest},
		{"negative count", "<fast id='1' op='use' user='alice@example.org' agent='a' hash='" + hash + "' count='-1'/>", stanza.BadRequest},
		{"short hash", "<fast id='1' op='use' user='alice@example.org' agent='a' hash='dGVzdA==' count='1'/>", stanza.BadRequest},
		{"hash not base64", "<fast id='1' op='use' user='alice@example.org' agent='a' hash='***' count='1'/>", stanza.BadRequest},
		{"bad expiry", "<fast id='1' op='add' user='alice@example.org' agent='a' mechanism='HT-SHA-256-NONE' hash='" + hash + "' expiry='tomorrow'/>", stanza.BadRequest},
		{"not an HT mechanism", "<fast id='1' op='add' user='alice@example.org' agent='a' mechanism='PLAIN' hash='" + hash + "' expiry='2030-01-02T03:04:05Z'/>", stanza.BadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := parseFastRequest(mustParse(t, []byte(tt.xml)))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseTokens: a <fast-result/> that does not hold well-formed tokens
// is an error, not a token with zero values.
func TestParseTokens(t *testing.T) {
	good := tokenElement(storage.FastToken{Mechanism: "HT-SHA-256-NONE", Hash: []byte{1, 2, 3}, Expiry: time.Unix(1e9, 5).UTC(), Count: 7})
	res := xmlstream.NewElement(NS, "fast-result")
	res.AddChild(good)
	ts, err := parseTokens(mustParse(t, res.AppendXML(nil, NS)), "a@b", "x")
	if err != nil || len(ts) != 1 || ts[0].Count != 7 || !ts[0].Expiry.Equal(time.Unix(1e9, 5)) || ts[0].User != "a@b" {
		t.Fatalf("round trip: %+v %v", ts, err)
	}
	for _, bad := range []string{
		"<fast-result id='1'><token mechanism='HT-SHA-256-NONE' hash='AQID' expiry='soon' count='0'/></fast-result>",
		"<fast-result id='1'><token mechanism='HT-SHA-256-NONE' hash='' expiry='2030-01-02T03:04:05Z' count='0'/></fast-result>",
		"<fast-result id='1'><token mechanism='HT-SHA-256-NONE' hash='AQID' expiry='2030-01-02T03:04:05Z' count='x'/></fast-result>",
		"<fast-result id='1'><token hash='AQID' expiry='2030-01-02T03:04:05Z' count='0'/></fast-result>",
	} {
		if ts, err := parseTokens(mustParse(t, []byte(bad)), "a@b", "x"); err == nil {
			t.Errorf("%s: got %+v, want an error", bad, ts)
		}
	}
}
