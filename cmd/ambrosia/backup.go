package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ambrosia-xmpp/ambrosia/internal/datadir"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
)

// dataFiles are what a backup copies from the data directory besides the
// database: the generated certificates and keys, the dialback secret and
// the shared files.
var dataFiles = []string{"tls", "s2s.secret", "upload"}

// backupCmd copies the data directory, the SQLite database through a
// consistent online copy, into a new directory.
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("backup", "DIR [flags]", `Copies the data directory into DIR, a directory that does not exist or
is empty, while the server runs: the SQLite database through a consistent
online copy (VACUUM INTO: what was committed when the copy began), the
generated certificates and keys, the dialback secret and the uploaded
files. With storage.backend = "postgres", the database is not copied:
back it up with pg_dump (see the README). Restore with ambrosia restore.`, stdout, stderr)
	var cf configFlags
	cf.register(c.FlagSet, groupStore)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.wrongArgs("want the directory to write the backup to")
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	cf.printEnvWarnings(stderr)
	dst := pos[0]
	if err := emptyDir(dst); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if cfg.Storage.Backend == "sqlite" {
		if err := databaseExists(cfg); err != nil {
			return err
		}
		store, err := sqlite.Open(ctx, dbPath(cfg))
		if err != nil {
			return err
		}
		err = store.BackupTo(ctx, filepath.Join(dst, "ambrosia.db"))
		store.Close()
		if err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(dst, "ambrosia.db"), 0o600); err != nil {
			return err
		}
	}
	for _, name := range dataFiles {
		if err := copyTree(filepath.Join(cfg.DataDir, name), filepath.Join(dst, name)); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", cfg.DataDir, dst)
	if cfg.Storage.Backend == "postgres" {
		fmt.Fprintln(stdout, "the PostgreSQL database is not in it: back it up with pg_dump")
	}
	return nil
}

// restoreCmd puts a backup in place of the data directory of a server
// that is not running.
func restoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("restore", "DIR [flags]", `Restores the backup in DIR (made by ambrosia backup) into the data
directory. It refuses while a server runs on the data directory, and
refuses to replace a database already there unless --force is given.
With storage.backend = "postgres", restore the database with pg_restore
or psql (see the README); the files are restored here.`, stdout, stderr)
	var cf configFlags
	cf.register(c.FlagSet, groupStore)
	force := c.Bool("force", false, "replace the database and files already in the data directory")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.wrongArgs("want the directory of the backup")
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	cf.printEnvWarnings(stderr)
	src := pos[0]
	srcDB := filepath.Join(src, "ambrosia.db")
	if cfg.Storage.Backend == "sqlite" {
		if _, err := os.Stat(srcDB); err != nil {
			return fmt.Errorf("restore: %s is not a backup: %w", src, err)
		}
	}
	// Hold the data directory for the time of the restore: no server may
	// start on it meanwhile, and none may run on it now.
	lock, err := datadir.Acquire(cfg.DataDir)
	var inUse *datadir.InUseError
	if errors.As(err, &inUse) {
		who := "a server"
		if inUse.PID > 0 {
			who += " (process " + strconv.Itoa(inUse.PID) + ")"
		}
		return fmt.Errorf("restore: %s runs on the data directory %s: stop it first", who, inUse.Dir)
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer lock.Release()
	if cfg.Storage.Backend == "sqlite" {
		dst := dbPath(cfg)
		if _, err := os.Stat(dst); err == nil && !*force {
			return fmt.Errorf("restore: %s already has a database; pass --force to replace it", cfg.DataDir)
		}
		// Check that the backup opens (and is of a schema this program
		// knows) before anything is replaced.
		if err := checkBackup(ctx, srcDB); err != nil {
			return err
		}
		for _, suffix := range []string{"-wal", "-shm", "-journal"} {
			if err := os.Remove(dst + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("restore: %w", err)
			}
		}
		tmp := dst + ".restoring"
		if err := copyFile(srcDB, tmp, 0o600); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	for _, name := range dataFiles {
		from, to := filepath.Join(src, name), filepath.Join(cfg.DataDir, name)
		if _, err := os.Stat(from); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if _, err := os.Stat(to); err == nil {
			if !*force && cfg.Storage.Backend != "sqlite" {
				return fmt.Errorf("restore: %s exists; pass --force to replace it", to)
			}
			if err := os.RemoveAll(to); err != nil {
				return fmt.Errorf("restore: %w", err)
			}
		}
		if err := copyTree(from, to); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	fmt.Fprintf(stdout, "restored %s into %s\n", src, cfg.DataDir)
	return nil
}

// checkBackup opens a copy of the backed-up database, so that a damaged
// one, or one newer than this program, is refused before the data
// directory is touched.
func checkBackup(ctx context.Context, path string) error {
	dir, err := os.MkdirTemp("", "ambrosia-restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "ambrosia.db")
	if err := copyFile(path, tmp, 0o600); err != nil {
		return err
	}
	s, err := sqlite.Open(ctx, tmp)
	if err != nil {
		return fmt.Errorf("restore: %s: %w", path, err)
	}
	return s.Close()
}

// emptyDir accepts a directory that does not exist or is empty.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	return nil
}

// copyTree copies a file or a directory tree; a missing src is no error.
func copyTree(src, dst string) error {
	fi, err := os.Stat(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return copyFile(src, dst, fi.Mode().Perm())
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, info.Mode().Perm()|0o700)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		return copyFile(p, to, info.Mode().Perm())
	})
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
