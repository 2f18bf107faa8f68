package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// BenchmarkArchiveBatch archives chat among 2,000 users the way the session
// manager does under load: each message twice (the sender's and the
// recipient's archive), in batches; it reports the cost per message.
func BenchmarkArchiveBatch(b *testing.B) {
	for _, perBatch := range []int{64, 512} {
		b.Run(fmt.Sprint(perBatch), func(b *testing.B) {
			s, _ := openTemp(b)
			ctx := b.Context()
			const users = 2000
			stanza := []byte("<message xmlns='jabber:client' from='load0@localhost/load' to='load1@localhost' type='chat' id='abcdefgh'><body>a load test message of a usual size, some forty characters</body><stanza-id xmlns='urn:xmpp:sid:0' by='load1@localhost' id='0000000000000000'/></message>")
			start := time.Now()
			seq := 0
			for b.Loop() {
				batch := make([]storage.ArchiveEntry, 0, 2*perBatch)
				for range perBatch {
					from := (seq * 7919) % users
					to := (from + users/2) % users
					seq++
					stamp := start.Add(time.Duration(seq) * time.Microsecond)
					for k, pair := range [][2]int{{from, to}, {to, from}} {
						batch = append(batch, storage.ArchiveEntry{
							User: fmt.Sprintf("load%d@localhost", pair[0]),
							Message: storage.ArchivedMessage{
								ID: fmt.Sprintf("%016x", seq*2+k), Stamp: stamp,
								With: fmt.Sprintf("load%d@localhost", pair[1]), Stanza: stanza,
							},
						})
					}
				}
				if err := s.AppendArchiveBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBatch), "ns/msg")
		})
	}
}
