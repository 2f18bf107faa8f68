package migrate

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
)

// benchFile is an XEP-0227 file of users with passwords, rosters of
// contacts each and a vCard.
func benchFile(users, contacts int) []byte {
	var b strings.Builder
	b.WriteString("<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'>\n")
	for i := range users {
		fmt.Fprintf(&b, "<user name='u%d' password='pw%d'><query xmlns='jabber:iq:roster'>", i, i)
		for k := range contacts {
			fmt.Fprintf(&b, "<item jid='u%d@example.com' name='User %d' subscription='both'><group>Friends</group></item>", (i+k+1)%users, k)
		}
		fmt.Fprintf(&b, "</query><vCard xmlns='vcard-temp'><FN>User %d</FN></vCard></user>\n", i)
	}
	b.WriteString("</host></server-data>\n")
	return []byte(b.String())
}

// BenchmarkReadXEP0227 reads a file of 1,000 users with 20 contacts each.
func BenchmarkReadXEP0227(b *testing.B) {
	in := benchFile(1000, 20)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ReadXEP0227(&Data{}, bytes.NewReader(in), "bench.xml", nil, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportSQLite imports 200 users with 20 contacts each into a
// new SQLite database, then the same again (nothing to write): the
// figures are per user. Iterations are low as the import would make
// them for an operator's real passwords.
func BenchmarkImportSQLite(b *testing.B) {
	const users = 200
	in := benchFile(users, 20)
	ctx := context.Background()
	for _, again := range []bool{false, true} {
		name := "new"
		if again {
			name = "again"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "ambrosia.db"))
				if err != nil {
					b.Fatal(err)
				}
				d := &Data{}
				if err := ReadXEP0227(d, bytes.NewReader(in), "bench.xml", nil, testNow); err != nil {
					b.Fatal(err)
				}
				if again {
					if _, err := Import(ctx, st, d, Options{Iterations: 1}); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				if _, err := Import(ctx, st, d, Options{Iterations: 1}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*users), "µs/user")
		})
	}
}
