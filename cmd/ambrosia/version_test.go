package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionCommit: ambrosia version prints the commit from the build
// information, the one given with -ldflags when the build recorded none,
// and says so when it knows none.
func TestVersionCommit(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		settings []debug.BuildSetting
		fallback string
		want     string
	}{
		{vcs, "", "commit " + rev + " (2026-12-01T10:00:00Z) with uncommitted changes\n"},
		{vcs, "feedface", "commit " + rev + " ("},
		{nil, "feedfacefeedface", "commit feedfacefeedface\n"},
		{nil, "", "commit unknown: built without version control information"},
	} {
		var b strings.Builder
		writeVersion(&b, tc.settings, tc.fallback)
		if !strings.HasPrefix(b.String(), "ambrosia "+baseVersion+"\n") || !strings.Contains(b.String(), tc.want) {
			t.Errorf("%v %q: printed %q, want %q", tc.settings, tc.fallback, b.String(), tc.want)
		}
	}
	if code, out, _ := runCmd(t, "", "version"); code != 0 || !strings.Contains(out, "\ncommit ") {
		t.Fatalf("version: %d %q", code, out)
	}
}
