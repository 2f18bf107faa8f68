package loadtest

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<22; us += 1 + us/97 {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d < %d: not monotonic", us, b, prev)
		}
		prev = b
		up := bucketUpper(b)
		if up < us {
			t.Fatalf("bucketUpper(%d) = %d < %d", b, up, us)
		}
		// The bucket's width is within 1/histSub of its values.
		if us >= histSub && float64(up-us) > float64(us)/histSub {
			t.Fatalf("value %d in bucket up to %d: too coarse", us, up)
		}
		if b > 0 && bucketUpper(b-1) >= us {
			t.Fatalf("value %d also fits bucket %d", us, b-1)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var h Histogram
	if h.Percentile(0.5) != 0 {
		t.Fatal("empty histogram has a percentile")
	}
	// 1 ms … 1000 ms, one each.
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	check := func(q float64, want time.Duration) {
		t.Helper()
		got := h.Percentile(q)
		if got < want || float64(got-want) > float64(want)/histSub {
			t.Errorf("p%v = %v, want about %v", q*100, got, want)
		}
	}
	check(0.5, 500*time.Millisecond)
	check(0.99, 990*time.Millisecond)
	check(1, 1000*time.Millisecond)
	if h.Count() != 1000 || h.Max() != time.Second {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
	h.Reset()
	if h.Count() != 0 || h.Percentile(0.99) != 0 {
		t.Error("reset left samples")
	}
}

func TestMsgID(t *testing.T) {
	s, ts, ok := parseMsgID("s3-123456789")
	if !ok || s != 3 || ts != 123456789 {
		t.Fatalf("got %d %d %v", s, ts, ok)
	}
	for _, bad := range []string{"", "s", "s1", "x1-2", "s1-", "s-1", "sa-1"} {
		if _, _, ok := parseMsgID(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestScram runs our client against the SCRAM server of xdg-go/scram and
// checks that a second exchange reuses the cached derivation.
func TestScram(t *testing.T) {
	const user, pw = "load7", "secret"
	kf := scram.KeyFactors{Salt: "0123456789abcdef", Iters: 4096}
	stored, err := scram.SHA1.NewClientUnprepped(user, pw, "")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := stored.GetStoredCredentialsWithError(kf)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := scram.SHA1.NewServer(func(string) (scram.StoredCredentials, error) { return creds, nil })
	if err != nil {
		t.Fatal(err)
	}
	cache := NewKeyCache()
	for round := range 2 {
		conv := srv.NewConversation()
		x := newScramExchange(cache, user, pw)
		sf, err := conv.Step(x.first())
		if err != nil {
			t.Fatal(err)
		}
		final, err := x.final(sf)
		if err != nil {
			t.Fatal(err)
		}
		sfin, err := conv.Step(final)
		if err != nil {
			t.Fatalf("round %d: server rejected proof: %v", round, err)
		}
		if !conv.Valid() {
			t.Fatal("server says invalid")
		}
		if err := x.verify(sfin); err != nil {
			t.Fatal(err)
		}
		if err := x.verify("v=" + base64.StdEncoding.EncodeToString([]byte("forged-signature-20b"))); err == nil {
			t.Fatal("forged server signature accepted")
		}
	}
	if len(cache.keys) != 1 {
		t.Errorf("cache holds %d derivations, want 1", len(cache.keys))
	}
	// A wrong password fails at the server.
	conv := srv.NewConversation()
	x := newScramExchange(cache, user, "wrong")
	sf, _ := conv.Step(x.first())
	final, _ := x.final(sf)
	if _, err := conv.Step(final); err == nil {
		t.Error("wrong password accepted")
	}
	if saslName("a=b,c") != "a=3Db=2Cc" {
		t.Error("saslName does not escape")
	}
}

// TestStanzas checks that the pre-built bytes are well-formed XMPP.
func TestStanzas(t *testing.T) {
	p := xmlstream.NewParser(xmlstream.DefaultLimits())
	p.Feed(StreamHeader("localhost"))
	p.Feed(Presence)
	p.Feed([]byte("<message type='chat' to='load1@localhost/bench' id='s0-42'><body>" + msgBody + "</body></message>"))
	p.Feed(StreamEnd)
	ev, err := p.Next()
	if err != nil || ev.Kind != xmlstream.EventStreamStart || ev.Elem.Attr("to") != "localhost" {
		t.Fatalf("header: %v %v", ev, err)
	}
	ev, err = p.Next()
	if err != nil || ev.Elem.Local != "presence" {
		t.Fatalf("presence: %v", err)
	}
	ev, err = p.Next()
	if err != nil || ev.Elem.Local != "message" || ev.Elem.Attr("id") != "s0-42" {
		t.Fatalf("message: %v", err)
	}
	if b := ev.Elem.Child(xmlstream.NSClient, "body"); b == nil || b.Text() != msgBody {
		t.Fatal("message body lost")
	}
	if ev, err = p.Next(); err != nil || ev.Kind != xmlstream.EventStreamEnd {
		t.Fatalf("end: %v", err)
	}
}

func TestProc(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("RSS = %d, %v", rss, err)
	}
	if _, err := CPUTime(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if _, err := RSS(-1); err == nil || !strings.Contains(err.Error(), "-1") {
		t.Errorf("RSS(-1) error = %v", err)
	}
}
