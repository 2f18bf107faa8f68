package postgres

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres/pgtest"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
)

// archiver is the part of a backend the archive benchmarks drive.
type archiver interface {
	storage.Archive
	Close() error
}

// benchBackends opens each backend on a fresh database: SQLite beside
// PostgreSQL, so that one run compares them on the same machine. The
// PostgreSQL test cluster runs without fsync, SQLite with
// synchronous(NORMAL): neither waits for the disk on commit.
func benchBackends(b *testing.B) []struct {
	name string
	open func(b *testing.B) archiver
} {
	return []struct {
		name string
		open func(b *testing.B) archiver
	}{
		{"sqlite", func(b *testing.B) archiver {
			s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"postgres", func(b *testing.B) archiver {
			s, err := Open(b.Context(), pg.Database(b, pgtest.DatabaseOptions{}))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
}

func benchMessage(i int) storage.ArchivedMessage {
	return storage.ArchivedMessage{
		ID:     fmt.Sprintf("%016x", i),
		Stamp:  time.Unix(1_800_000_000, 0).Add(time.Duration(i) * time.Millisecond),
		With:   fmt.Sprintf("contact%d@example.net", i%50),
		Stanza: fmt.Appendf(nil, "<message xmlns='jabber:client' type='chat' id='m%d'><body>hello number %d</body></message>", i, i),
	}
}

// BenchmarkAppendArchive appends one message per commit, as a server
// without batching would for every chat message.
func BenchmarkAppendArchive(b *testing.B) {
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := s.AppendArchive(ctx, fmt.Sprintf("user%d@example.com", i%100), benchMessage(i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAppendArchiveBatch appends batches of 100 messages, one commit
// each, and reports the cost per message.
func BenchmarkAppendArchiveBatch(b *testing.B) {
	const batch = 100
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			ctx := b.Context()
			entries := make([]storage.ArchiveEntry, batch)
			b.ReportAllocs()
			i, n := 0, 0
			for b.Loop() {
				for j := range entries {
					entries[j] = storage.ArchiveEntry{User: fmt.Sprintf("user%d@example.com", i%100), Message: benchMessage(i)}
					i++
				}
				if err := s.AppendArchiveBatch(ctx, entries); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*batch), "ns/msg")
		})
	}
}
