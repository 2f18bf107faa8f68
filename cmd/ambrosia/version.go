package main

import (
	"context"
	"io"
	"runtime/debug"
)

// baseVersion is the release this tree is working towards.
const baseVersion = "0.1.0-dev"

// version reports the release and, when built from a checkout, the commit.
func version() string {
	v := baseVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

// versionCmd prints the version.
func versionCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("version", "", "Prints the version of this program and the commit it was built from.", stdout, stderr)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return c.wrongArgs("no arguments expected")
	}
	_, err = io.WriteString(stdout, "ambrosia "+version()+"\n")
	return err
}
