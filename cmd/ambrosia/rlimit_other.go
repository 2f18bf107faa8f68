//go:build !linux && !darwin

package main

import "log/slog"

// raiseFileLimit knows no file limit on this system.
func raiseFileLimit(*slog.Logger) uint64 { return 0 }

// fileLimit is the limit on open files: unknown here.
func fileLimit() uint64 { return 0 }
