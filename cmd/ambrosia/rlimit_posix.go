//go:build linux || darwin

package main

import (
	"log/slog"
	"syscall"
)

// raiseFileLimit raises the soft limit on open files to the hard one (the
// Go runtime does so too at start, but says nothing) and logs it: an
// operator whose server refuses connections wants to see the number. It
// returns the limit now in force, 0 if unknown.
func raiseFileLimit(log *slog.Logger) uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		log.Warn("file limit", "err", err)
		return 0
	}
	if r.Cur < r.Max {
		old := r.Cur
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			log.Warn("file limit: cannot raise the soft limit to the hard one", "soft", old, "hard", r.Max, "err", err)
			r.Cur = old
		}
	}
	log.Info("file limit", "open_files", r.Cur, "hard", r.Max)
	return r.Cur
}

// fileLimit is the hard limit on open files, which a process of this
// program raises its soft limit to; 0 if unknown.
func fileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return r.Max
}
