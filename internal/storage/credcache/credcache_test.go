package credcache

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

func testCred(password string) storage.Credential {
	return storage.Credential{Hash: "SHA-256", Salt: []byte("salt-" + password), Iterations: 4096,
		StoredKey: bytes.Repeat([]byte(password[:1]), 32), ServerKey: bytes.Repeat([]byte(password[1:2]), 32)}
}

func TestCache(t *testing.T) {
	now := time.Now()
	cred := testCred("pw")
	on := func(max int) *Cache {
		var c Cache
		c.Configure(max, time.Minute)
		return &c
	}
	t.Run("expires", func(t *testing.T) {
		c := on(10)
		_, gen, _ := c.get("a@x", "SHA-256", now)
		c.put(gen, "a@x", cred, now)
		if _, _, ok := c.get("a@x", "SHA-256", now.Add(59*time.Second)); !ok {
			t.Error("entry gone before its ttl")
		}
		if _, _, ok := c.get("a@x", "SHA-256", now.Add(61*time.Second)); ok {
			t.Error("entry served after its ttl")
		}
	})
	for _, tt := range []struct {
		name   string
		forget func(c *Cache)
	}{
		{"a read older than a change is not kept", func(c *Cache) { c.Forget("a@x") }},
		{"a read older than another user's change is not kept", func(c *Cache) { c.Forget("b@x") }},
		{"a read older than the cache's configuration is not kept", func(c *Cache) { c.Configure(10, time.Minute) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := on(10)
			_, gen, _ := c.get("a@x", "SHA-256", now)
			tt.forget(c) // the password changed while the database was read
			c.put(gen, "a@x", cred, now)
			if _, _, ok := c.get("a@x", "SHA-256", now); ok {
				t.Error("credentials read before a change were kept")
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		c := on(3)
		for _, u := range []string{"a@x", "b@x", "c@x", "d@x", "e@x"} {
			_, gen, _ := c.get(u, "SHA-256", now)
			c.put(gen, u, cred, now)
		}
		if c.Len() != 3 {
			t.Errorf("%d users cached, want at most 3", c.Len())
		}
		if _, _, ok := c.get("e@x", "SHA-256", now); !ok {
			t.Error("the last user read is not cached")
		}
	})
	t.Run("off", func(t *testing.T) {
		var c Cache
		_, gen, _ := c.get("a@x", "SHA-256", now)
		c.put(gen, "a@x", cred, now)
		if _, _, ok := c.get("a@x", "SHA-256", now); ok {
			t.Error("a cache never turned on kept credentials")
		}
	})
	t.Run("read", func(t *testing.T) {
		c := on(10)
		reads := 0
		read := func() (storage.Credential, error) { reads++; return cred, nil }
		for range 2 {
			if got, err := c.Read("a@x", "SHA-256", read); err != nil || !bytes.Equal(got.Salt, cred.Salt) {
				t.Fatalf("Read = %q, %v", got.Salt, err)
			}
		}
		if reads != 1 {
			t.Errorf("%d reads of the database for two lookups, want 1", reads)
		}
		failed := errors.New("database down")
		if _, err := c.Read("b@x", "SHA-256", func() (storage.Credential, error) { return storage.Credential{}, failed }); err != failed {
			t.Errorf("Read's error = %v, want read's", err)
		}
		if _, _, ok := c.get("b@x", "SHA-256", now); ok {
			t.Error("a failed read was kept")
		}
	})
	t.Run("a copy is returned", func(t *testing.T) {
		c := on(10)
		_, gen, _ := c.get("a@x", "SHA-256", now)
		c.put(gen, "a@x", cred, now)
		got, _, _ := c.get("a@x", "SHA-256", now)
		got.StoredKey[0] ^= 0xff
		again, _, _ := c.get("a@x", "SHA-256", now)
		if !bytes.Equal(again.StoredKey, cred.StoredKey) {
			t.Error("changing a returned credential changed the cached one")
		}
	})
}
