package migrate

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres/pgtest"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
)

// TestBackends imports the Prosody directory and the ejabberd file into
// each backend, again (nothing changes), and exports: the same file from
// every backend.
func TestBackends(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL in -short mode")
	}
	ctx := context.Background()
	backends := []struct {
		name string
		open func(t *testing.T) Store
	}{
		{"memory", func(*testing.T) Store { return memory.New() }},
		{"sqlite", func(t *testing.T) Store {
			s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ambrosia.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", func(t *testing.T) Store {
			dsn := pgtest.New(t).Database(t, pgtest.DatabaseOptions{})
			s, err := postgres.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
	}
	var want string
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			for _, src := range []string{"prosody", "ejabberd.xml"} {
				importData(t, st, readTestdata(t, src), Options{Iterations: 1000})
				if rep := importData(t, st, readTestdata(t, src), Options{}); rep.Changed() {
					var out bytes.Buffer
					rep.Print(&out, false)
					t.Errorf("%s imported twice changed something:\n%s", src, out.String())
				}
			}
			affs, err := st.MUCAffiliations(ctx, "lounge@conference.localhost")
			if err != nil || len(affs) != 3 {
				t.Errorf("affiliations %+v %v", affs, err)
			}
			d, err := Export(ctx, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := WriteXEP0227(&out, d); err != nil {
				t.Fatal(err)
			}
			// Keys derived from passwords have random salts: compare
			// what does not depend on them.
			got := stripCredentials(out.String())
			if want == "" {
				want = got
			} else if got != want {
				t.Errorf("export differs from the memory backend's:\n%s\n---\n%s", got, want)
			}
		})
	}
}

// stripCredentials removes the scram-credentials elements of an export.
func stripCredentials(s string) string {
	for {
		i := strings.Index(s, "<scram-credentials")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], "</scram-credentials>")
		s = s[:i] + s[i+j+len("</scram-credentials>"):]
	}
}
