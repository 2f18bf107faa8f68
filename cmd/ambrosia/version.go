package main

import "runtime/debug"

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
