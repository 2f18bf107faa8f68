package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
)

// baseVersion is the release this tree is working towards.
const baseVersion = "0.1.0-dev"

// commit is the commit this binary was built from, for builds that cannot
// record it themselves (from a tarball, or with -buildvcs=false):
// go build -ldflags "-X main.commit=$(git rev-parse HEAD)". The build
// information's vcs.revision wins.
var commit string

// buildCommit returns the commit the binary was built from, its time and
// whether the tree had changes, from the build information Go records
// when it builds in a git checkout, else from commit.
func buildCommit(settings []debug.BuildSetting, fallback string) (rev, at string, modified bool) {
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		rev = fallback
	}
	return rev, at, modified
}

func buildSettings() []debug.BuildSetting {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Settings
	}
	return nil
}

// version reports the release and, when known, the commit.
func version() string {
	v := baseVersion
	if rev, _, modified := buildCommit(buildSettings(), commit); len(rev) >= 12 {
		v += "+" + rev[:12]
		if modified {
			v += ".modified"
		}
	}
	return v
}

// writeVersion prints what `ambrosia version` says.
func writeVersion(w io.Writer, settings []debug.BuildSetting, fallback string) {
	fmt.Fprintf(w, "ambrosia %s\n", baseVersion)
	rev, at, modified := buildCommit(settings, fallback)
	switch {
	case rev == "":
		fmt.Fprintln(w, "commit unknown: built without version control information (build in a git clone without GOFLAGS=-buildvcs=false, or pass -ldflags \"-X main.commit=COMMIT\")")
	default:
		fmt.Fprintf(w, "commit %s", rev)
		if at != "" {
			fmt.Fprintf(w, " (%s)", at)
		}
		if modified {
			fmt.Fprint(w, " with uncommitted changes")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "built with %s for %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// versionCmd prints the version.
func versionCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("version", "[--data DIR | --config FILE]", `Prints the version of this program and the commit it was built from;
with --data or --config, also the schema version of the database and
whether this program can use it.`, stdout, stderr)
	var cf configFlags
	cf.register(c.FlagSet, groupStore)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return c.wrongArgs("no arguments expected")
	}
	writeVersion(stdout, buildSettings(), commit)
	given := false
	c.Visit(func(f *flag.Flag) { given = given || f.Name == "data" || f.Name == "config" })
	if !given {
		return nil
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	var current, known int
	where := ""
	if cfg.Storage.Backend == "postgres" {
		where = "PostgreSQL database"
		current, known, err = postgres.Schema(ctx, cfg.Storage.PostgresDSN)
	} else {
		if err := databaseExists(cfg); err != nil {
			return err
		}
		where = dbPath(cfg)
		current, known, err = sqlite.Schema(ctx, where)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database %s: schema version %d; this program knows up to %d: ", where, current, known)
	switch {
	case current == known:
		fmt.Fprintln(stdout, "current")
	case current < known:
		fmt.Fprintf(stdout, "this program migrates it to %d when it opens it\n", known)
	default:
		fmt.Fprintln(stdout, "newer than this program, which refuses it: run the ambrosia that migrated it, or a newer one")
		return fmt.Errorf("database schema version %d is newer than this program's %d", current, known)
	}
	return nil
}
