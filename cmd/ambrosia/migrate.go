package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/datadir"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/migrate"
)

// serviceMap is the repeatable --muc-service OLD=NEW flag.
type serviceMap map[string]string

func (m serviceMap) String() string { return "" }

func (m serviceMap) Set(v string) error {
	old, nw, ok := strings.Cut(v, "=")
	if !ok || old == "" || nw == "" {
		return fmt.Errorf("%q is not OLD=NEW", v)
	}
	for _, d := range []*string{&old, &nw} {
		j, err := jid.Parse(*d)
		if err != nil || j.Local() != "" || j.Resource() != "" {
			return fmt.Errorf("%q is not a domain", *d)
		}
		*d = j.String()
	}
	m[old] = nw
	return nil
}

// importCmd reads XEP-0227 files or a Prosody data directory into the
// database.
func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("import", "FILE|DIR [flags]", `Imports users with their passwords, rosters, vCards, private XML, offline
messages, PEP nodes and message archives, and conference rooms with their
affiliations, from:
  - an XEP-0227 file (ejabberdctl export_piefxis, prosody-migrator to the
    xep0227 store), or a directory of such files;
  - a Prosody data directory with internal storage (/var/lib/prosody), or
    one host directory in it.
Everything is read and checked first: a malformed file imports nothing
and the error names its file, line and element. Then each user and each
room is written as a whole, and what is already there is left alone, so
that importing again changes nothing. Existing accounts keep their
passwords. Users of domains this server does not serve are skipped, and
so are rooms outside its conference services (see --muc-service).
With SQLite, the server must be stopped (it keeps rooms and rosters in
memory); the database is created if there is none yet. With PostgreSQL,
stop the servers that use it.`, stdout, stderr)
	var cf configFlags
	cf.register(c.FlagSet, groupStore)
	dry := c.Bool("dry-run", false, "read, check and compare, and report what an import would do, without writing")
	services := serviceMap{}
	c.Var(services, "muc-service", "move the rooms of conference service `OLD=NEW` (e.g. muc.example.org=conference.example.org); repeatable")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.wrongArgs("want one file or directory to import")
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	cf.printEnvWarnings(stderr)
	if cfg.Storage.Backend == "sqlite" && !*dry {
		lock, err := datadir.Acquire(cfg.DataDir)
		var inUse *datadir.InUseError
		if errors.As(err, &inUse) {
			who := "a server"
			if inUse.PID > 0 {
				who += " (process " + strconv.Itoa(inUse.PID) + ")"
			}
			return fmt.Errorf("import: %s runs on the data directory %s: stop it first, since it keeps rooms and rosters in memory", who, inUse.Dir)
		}
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer lock.Release()
	}
	d, err := migrate.ReadPath(pos[0], time.Now())
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	for _, r := range d.Rooms {
		local, service, _ := strings.Cut(r.JID, "@")
		if nw, ok := services[service]; ok {
			r.JID = local + "@" + nw
		}
	}
	if err := migrate.Validate(d); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if cfg.Storage.Backend == "sqlite" {
		if _, err := os.Stat(dbPath(cfg)); errors.Is(err, os.ErrNotExist) {
			if *dry {
				return databaseExists(cfg)
			}
			abs, _ := filepath.Abs(dbPath(cfg))
			fmt.Fprintf(stdout, "creating the database %s\n", abs)
		}
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	o := migrate.Options{Domains: cfg.Domains, DryRun: *dry}
	if o.MUCDomains = mucServices(cfg); len(o.MUCDomains) == 0 {
		o.MUCDomains = []string{"-"} // no conference service: skip every room
	}
	rep, err := migrate.Import(ctx, store, d, o)
	if rep != nil {
		rep.Print(stdout, *dry)
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// exportCmd writes the accounts and their data as an XEP-0227 file.
func exportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("export", "FILE [flags]", `Writes the users of the served domains with their SCRAM keys, rosters,
vCards, private XML (the namespaces clients use: bookmarks, roster notes
and the like), offline messages, PEP nodes and message archives as an
XEP-0227 file, which
ambrosia import, ejabberdctl import_piefxis and prosody-migrator read.
Conference rooms are not part of XEP-0227 and are not written. FILE "-"
is standard output. The server may run meanwhile.`, stdout, stderr)
	var cf configFlags
	cf.register(c.FlagSet, groupStore)
	force := c.Bool("force", false, "replace FILE if it exists")
	ejabberd := c.Bool("ejabberd-keys", false, "encode the SCRAM keys in base64 twice, as ejabberdctl import_piefxis of ejabberd 23.01 reads them")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.wrongArgs("want the file to write")
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	cf.printEnvWarnings(stderr)
	if cfg.Storage.Backend == "sqlite" {
		if err := databaseExists(cfg); err != nil {
			return err
		}
	}
	out := pos[0]
	if out != "-" {
		if _, err := os.Stat(out); err == nil && !*force {
			return fmt.Errorf("export: %s exists; pass --force to replace it", out)
		}
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	d, err := migrate.Export(ctx, store, cfg.Domains)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	wo := migrate.WriteOptions{KeysBase64Twice: *ejabberd}
	if out == "-" {
		return migrate.WriteXEP0227With(stdout, d, wo)
	}
	if err := writeFileAtomic(out, func(w io.Writer) error { return migrate.WriteXEP0227With(w, d, wo) }); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stderr, "exported %d users of %s to %s\n", len(d.Users), strings.Join(cfg.Domains, ", "), out)
	return nil
}

// writeFileAtomic writes a file through a temporary one beside it, mode
// 0600 since it holds password keys.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// mucServices lists the conference services of cfg.
func mucServices(cfg config.Config) []string {
	var out []string
	if cfg.MUC.Enabled {
		for _, d := range cfg.Domains {
			out = append(out, cfg.MUC.Component+"."+d)
		}
	}
	return out
}
