//go:build unix

package sqlite

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// BenchmarkArchiveBatch archives chat among 2,000 users the way the session
// manager does under load: each message twice (the sender's and the
// recipient's archive), in batches of 64 to 4,096 messages (the writer's
// batches grow with the load: what arrives while one is written is the
// next); it reports the cost per message, in time and in CPU (the latter
// holds when other work shares the machine).
func BenchmarkArchiveBatch(b *testing.B) {
	for _, perBatch := range []int{64, 512, 4096} {
		b.Run(fmt.Sprint(perBatch), func(b *testing.B) {
			s, _ := openTemp(b)
			ctx := b.Context()
			const users = 2000
			names := make([]string, users)
			for i := range names {
				names[i] = fmt.Sprintf("load%d@localhost", i)
			}
			stanza := []byte("<message xmlns='jabber:client' from='load0@localhost/load' to='load1@localhost' type='chat' id='abcdefgh'><body>a load test message of a usual size, some forty characters</body><stanza-id xmlns='urn:xmpp:sid:0' by='load1@localhost' id='0000000000000000'/></message>")
			start := time.Now()
			seq := 0
			batch := make([]storage.ArchiveEntry, 0, 2*perBatch)
			var cpu time.Duration
			for b.Loop() {
				batch = batch[:0]
				for range perBatch {
					from := (seq * 7919) % users
					to := (from + users/2) % users
					seq++
					stamp := start.Add(time.Duration(seq) * time.Microsecond)
					for k, pair := range [][2]int{{from, to}, {to, from}} {
						batch = append(batch, storage.ArchiveEntry{
							User: names[pair[0]],
							Message: storage.ArchivedMessage{
								ID: fmt.Sprintf("%016x", seq*2+k), Stamp: stamp,
								With: names[pair[1]], Stanza: stanza,
							},
						})
					}
				}
				c0 := processCPU()
				if err := s.AppendArchiveBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU() - c0
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBatch), "ns/msg")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*perBatch), "cpu-ns/msg")
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
