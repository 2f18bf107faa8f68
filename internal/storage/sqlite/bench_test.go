package sqlite

import (
	"fmt"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

func BenchmarkCredential(b *testing.B) {
	s, _ := openTemp(b)
	ctx := b.Context()
	c := storage.Credential{Hash: "SHA-256", Salt: make([]byte, 16), Iterations: 4096, StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)}
	for i := range 1000 {
		if err := s.CreateAccount(ctx, fmt.Sprintf("user%d@example.com", i), []storage.Credential{c}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := s.Credential(ctx, fmt.Sprintf("user%d@example.com", i%1000), "SHA-256"); err != nil {
			b.Fatal(err)
		}
		i++
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
