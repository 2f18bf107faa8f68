//go:build unix

package postgres

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// BenchmarkArchiveChat archives chat among 2,000 users as the session
// manager's writer does under load: each message twice (the sender's and
// the recipient's archive), 1,024 messages a batch; SQLite beside
// PostgreSQL. Besides the time it reports CPU per message: this
// process's (the client side, and all of SQLite's work), and for
// PostgreSQL the database server's, which hold when other work shares
// the machine.
func BenchmarkArchiveChat(b *testing.B) {
	const users, perBatch = 2000, 1024
	names := make([]string, users)
	for i := range names {
		names[i] = fmt.Sprintf("load%d@localhost", i)
	}
	stanza := []byte("<message xmlns='jabber:client' from='load0@localhost/load' to='load1@localhost' type='chat' id='abcdefgh'><body>a load test message of a usual size, some forty characters</body><stanza-id xmlns='urn:xmpp:sid:0' by='load1@localhost' id='0000000000000000'/></message>")
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			defer s.Close()
			server := func() time.Duration { return 0 }
			if be.name == "postgres" {
				c := pg.Cluster(b)
				server = func() time.Duration { d, _ := c.CPUTime(); return d }
			}
			ctx := b.Context()
			start := time.Now()
			seq := 0
			batch := make([]storage.ArchiveEntry, 0, 2*perBatch)
			var cpu, scpu time.Duration
			for b.Loop() {
				batch = batch[:0]
				for range perBatch {
					from := (seq * 7919) % users
					to := (from + users/2) % users
					seq++
					stamp := start.Add(time.Duration(seq) * time.Microsecond)
					for k, pair := range [][2]int{{from, to}, {to, from}} {
						batch = append(batch, storage.ArchiveEntry{User: names[pair[0]], Message: storage.ArchivedMessage{
							ID: fmt.Sprintf("%016x", seq*2+k), Stamp: stamp, With: names[pair[1]], Stanza: stanza}})
					}
				}
				c0, s0 := processCPU(), server()
				if err := s.AppendArchiveBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU() - c0
				scpu += server() - s0
			}
			n := float64(b.N * perBatch)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/msg")
			b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/msg")
			if be.name == "postgres" {
				b.ReportMetric(float64(scpu.Nanoseconds())/n, "db-cpu-ns/msg")
			}
		})
	}
}

// processCPU returns the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
