package invite

import (
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
)

func TestParseTTL(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"7d", 7 * 24 * time.Hour, false},
		{"2w", 14 * 24 * time.Hour, false},
		{"36h", 36 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"0d", 0, true},
		{"-1h", 0, true},
		{"d", 0, true},
		{"x", 0, true},
		{"99999999d", 0, true},
		{"3650d", MaxTTL, false},
		{"3651d", 0, true},
		{"65535w", 0, true},
		{"100000h", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseTTL(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestURI(t *testing.T) {
	tests := []struct {
		inv  storage.Invite
		want string
	}{
		{storage.Invite{Token: "abc", Domain: "example.com"}, "xmpp:example.com?register;preauth=abc"},
		{storage.Invite{Token: "a-b_c", Domain: "example.com", Inviter: "alice@example.com"}, "xmpp:alice@example.com?roster;preauth=a-b_c;ibr=y"},
	}
	for _, tt := range tests {
		if got := URI(tt.inv, tt.inv.Token); got != tt.want {
			t.Errorf("URI(%+v) = %q, want %q", tt.inv, got, tt.want)
		}
	}
}

func TestCreate(t *testing.T) {
	s := memory.New()
	now := time.Now()
	a, atok, err := Create(t.Context(), s, "example.com", "alice@example.com", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	_, btok, err := Create(t.Context(), s, "example.com", "", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if atok == btok || len(atok) != 24 || strings.ContainsAny(atok, "+/=") {
		t.Fatalf("tokens %q, %q: want two different URL-safe 24-character tokens", atok, btok)
	}
	if a.Token != Key(atok) || a.Token == atok {
		t.Fatalf("stored under %q, want the key of %q", a.Token, atok)
	}
	if _, err := s.UseInvite(t.Context(), atok, now); err == nil {
		t.Fatal("the store knows the token itself")
	}
	got, err := s.UseInvite(t.Context(), Key(atok), now)
	if err != nil || got.Inviter != "alice@example.com" || !got.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("stored %+v, %v", got, err)
	}
	if _, _, err := Create(t.Context(), s, "example.com", "", 0, now); err == nil {
		t.Fatal("Create with a zero expiry succeeded")
	}
}

// FuzzParseTTL: any input gives a positive duration or an error, and a
// duration in days or weeks is a whole number of them.
func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{"7d", "2w", "36h", "1h30m", "0d", "-5d", "65535d", "1e3d", "d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseTTL(s)
		if err != nil {
			return
		}
		if d <= 0 || d > MaxTTL {
			t.Fatalf("ParseTTL(%q) = %v without error", s, d)
		}
		if strings.HasSuffix(s, "d") && d%(24*time.Hour) != 0 {
			t.Fatalf("ParseTTL(%q) = %v: not whole days", s, d)
		}
	})
}
