package storage

import (
	"errors"
	"slices"
	"testing"
)

func TestUserDomain(t *testing.T) {
	tests := []struct {
		user    string
		want    string
		wantErr bool
	}{
		{user: "juliet@example.com", want: "example.com"},
		{user: "a@b", want: "b"},
		{user: "example.com", wantErr: true},
		{user: "@example.com", wantErr: true},
		{user: "juliet@", wantErr: true},
		{user: "juliet@example.com/balcony", wantErr: true},
		{user: "a@b@c", wantErr: true},
		{user: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, err := UserDomain(tt.user)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("UserDomain(%q) error = %v, want ErrInvalid", tt.user, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("UserDomain(%q) = %q, %v, want %q", tt.user, got, err, tt.want)
			}
		})
	}
}

func TestCheckCredentials(t *testing.T) {
	ok := Credential{Hash: "SHA-256", Salt: []byte("s"), Iterations: 4096, StoredKey: []byte("k"), ServerKey: []byte("v")}
	with := func(f func(*Credential)) Credential {
		c := ok
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		creds   []Credential
		wantErr bool
	}{
		{name: "none", creds: nil},
		{name: "one", creds: []Credential{ok}},
		{name: "two hashes", creds: []Credential{ok, with(func(c *Credential) { c.Hash = "SHA-1" })}},
		{name: "duplicate hash", creds: []Credential{ok, ok}, wantErr: true},
		{name: "no hash", creds: []Credential{with(func(c *Credential) { c.Hash = "" })}, wantErr: true},
		{name: "zero iterations", creds: []Credential{with(func(c *Credential) { c.Iterations = 0 })}, wantErr: true},
		{name: "no salt", creds: []Credential{with(func(c *Credential) { c.Salt = nil })}, wantErr: true},
		{name: "no stored key", creds: []Credential{with(func(c *Credential) { c.StoredKey = nil })}, wantErr: true},
		{name: "no server key", creds: []Credential{with(func(c *Credential) { c.ServerKey = nil })}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckCredentials(tt.creds)
			if tt.wantErr != (err != nil) {
				t.Fatalf("CheckCredentials() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("CheckCredentials() = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestCloneCredential(t *testing.T) {
	c := Credential{Hash: "SHA-1", Salt: []byte("s"), Iterations: 1, StoredKey: []byte("k"), ServerKey: []byte("v")}
	d := CloneCredential(c)
	d.Salt[0], d.StoredKey[0], d.ServerKey[0] = 'x', 'x', 'x'
	if string(c.Salt) != "s" || string(c.StoredKey) != "k" || string(c.ServerKey) != "v" {
		t.Fatalf("clone shares memory with original: %+v", c)
	}
}

func TestNormalizeRosterItem(t *testing.T) {
	tests := []struct {
		name    string
		in      RosterItem
		want    RosterItem
		wantErr bool
	}{
		{
			name: "empty subscription",
			in:   RosterItem{Contact: "romeo@example.net"},
			want: RosterItem{Contact: "romeo@example.net", Subscription: "none"},
		},
		{
			name: "groups sorted and unique",
			in:   RosterItem{Contact: "c@d", Subscription: "both", Groups: []string{"b", "a", "b", "c", "a"}},
			want: RosterItem{Contact: "c@d", Subscription: "both", Groups: []string{"a", "b", "c"}},
		},
		{
			name: "empty groups become nil",
			in:   RosterItem{Contact: "c@d", Subscription: "to", Groups: []string{}},
			want: RosterItem{Contact: "c@d", Subscription: "to"},
		},
		{name: "no contact", in: RosterItem{Subscription: "none"}, wantErr: true},
		{name: "bad subscription", in: RosterItem{Contact: "c@d", Subscription: "remove"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeRosterItem(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("NormalizeRosterItem() error = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Contact != tt.want.Contact || got.Subscription != tt.want.Subscription ||
				!slices.Equal(got.Groups, tt.want.Groups) || (got.Groups == nil) != (tt.want.Groups == nil) {
				t.Fatalf("NormalizeRosterItem() = %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("input groups untouched", func(t *testing.T) {
		in := []string{"z", "a"}
		if _, err := NormalizeRosterItem(RosterItem{Contact: "c@d", Groups: in}); err != nil {
			t.Fatal(err)
		}
		if in[0] != "z" {
			t.Fatalf("input groups reordered: %v", in)
		}
	})
}
