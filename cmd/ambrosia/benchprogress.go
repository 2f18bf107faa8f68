package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/ambrosia-xmpp/ambrosia/internal/loadtest"
)

// Progress intervals: a terminal's line is redrawn often; a log or a pipe
// gets a line now and then, and one at each change of phase.
const (
	progressRedraw = 250 * time.Millisecond
	progressLine   = 5 * time.Second
)

// progress shows a run's meter on w while it goes: on a terminal one line
// redrawn in place, elsewhere plain lines.
type progress struct {
	w    io.Writer
	tty  bool
	m    *loadtest.Meter
	mode string
	once sync.Once
	stop chan struct{}
	done chan struct{}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// startProgress shows m on w until Stop.
func startProgress(w io.Writer, m *loadtest.Meter, mode string) *progress {
	p := &progress{w: w, tty: isTerminal(w), m: m, mode: mode, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// Stop ends the display: a terminal's line is cleared, a log gets a last
// line.
func (p *progress) Stop() {
	p.once.Do(func() {
		p.m.SetPhase("done")
		close(p.stop)
		<-p.done
	})
}

func (p *progress) run() {
	defer close(p.done)
	t := time.NewTicker(progressRedraw)
	defer t.Stop()
	var (
		prev     loadtest.MeterReading
		lastLine time.Time
		phase    string
	)
	for {
		select {
		case <-p.stop:
			if p.tty {
				fmt.Fprint(p.w, "\r\033[K")
			} else {
				// The last line's rates are the run's averages.
				fmt.Fprintln(p.w, progressText(p.mode, p.m.Read(), loadtest.MeterReading{}))
			}
			return
		case <-t.C:
		}
		r := p.m.Read()
		switch {
		case p.tty:
			line := progressText(p.mode, r, prev)
			// A line wider than the terminal would wrap, and the
			// carriage return would redraw only its last part.
			if w, _, err := term.GetSize(int(p.w.(*os.File).Fd())); err == nil && w > 1 && len(line) >= w {
				line = line[:w-1]
			}
			fmt.Fprint(p.w, "\r\033[K"+line)
		case r.Phase != phase || time.Since(lastLine) >= progressLine:
			fmt.Fprintln(p.w, progressText(p.mode, r, prev))
			lastLine, phase = time.Now(), r.Phase
		default:
			continue
		}
		prev = r
	}
}

// progressText is one line of progress: what the run is doing and its
// counts so far, with the rates since the previous reading.
func progressText(mode string, r, prev loadtest.MeterReading) string {
	var b strings.Builder
	fmt.Fprintf(&b, "bench %s %6.1fs %s: logged in %d", mode, r.Elapsed.Seconds(), r.Phase, r.LoggedIn)
	if r.Failed > 0 {
		fmt.Fprintf(&b, " (%d failed)", r.Failed)
	}
	dt := (r.Elapsed - prev.Elapsed).Seconds()
	perSec := func(now, before int64) string {
		if dt <= 0 {
			return ""
		}
		return fmt.Sprintf(" (%.0f/s)", float64(now-before)/dt)
	}
	if r.Seated > 0 {
		fmt.Fprintf(&b, ", seated %d", r.Seated)
	}
	if r.Sent > 0 || r.Delivered > 0 {
		fmt.Fprintf(&b, ", sent %d%s, delivered %d%s", r.Sent, perSec(r.Sent, prev.Sent), r.Delivered, perSec(r.Delivered, prev.Delivered))
	}
	if r.Errors > 0 {
		fmt.Fprintf(&b, ", errors %d", r.Errors)
	}
	return b.String()
}
