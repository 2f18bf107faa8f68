package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// BenchmarkCredential reads the credentials of 1,000 users in turn, from
// the database and from the cache that serve turns on.
func BenchmarkCredential(b *testing.B) {
	for _, cached := range []bool{false, true} {
		b.Run(map[bool]string{false: "query", true: "cached"}[cached], func(b *testing.B) {
			s, _ := openTemp(b)
			if cached {
				s.CacheCredentials(4096, time.Hour)
			}
			ctx := b.Context()
			c := storage.Credential{Hash: "SHA-256", Salt: make([]byte, 16), Iterations: 4096, StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)}
			users := make([]string, 1000)
			for i := range users {
				users[i] = fmt.Sprintf("user%d@example.com", i)
				if err := s.CreateAccount(ctx, users[i], []storage.Credential{c}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Credential(ctx, users[i%len(users)], "SHA-256"); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkPutRosterItem(b *testing.B) {
	s, _ := openTemp(b)
	ctx := b.Context()
	item := storage.RosterItem{Subscription: "both", Name: "Contact", Groups: []string{"Friends", "Work"}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		item.Contact = fmt.Sprintf("contact%d@example.net", i%200)
		if _, err := s.PutRosterItem(ctx, "juliet@example.com", item); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
