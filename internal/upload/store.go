package upload

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// secretFile holds the key of the slot tokens, made at first start; keeping
// it lets slots granted before a restart still be used after it.
const secretFile = "secret"

// meta is what the store keeps beside each file, in id + metaExt. The
// files on disk are the only record: the index and the quota accounting
// are rebuilt from them at start.
type meta struct {
	Name        string `json:"name"`
	ContentType string `json:"type"`
	Size        int64  `json:"size"`
	Owner       string `json:"owner"`
	Created     int64  `json:"created"` // Unix seconds
	Expires     int64  `json:"expires"` // Unix seconds; 0 never
}

const (
	metaExt = ".json"
	partExt = ".part" // an upload in progress
	tmpExt  = ".tmp"  // meta being written
)

// file is one entry of the index: a stored file, or one being uploaded.
type file struct {
	meta
	done bool // false while the upload is in progress
}

// reservation is the size of a slot granted and not yet uploaded,
// counted against the owner's quota until the slot expires.
type reservation struct {
	owner string
	size  int64
	until time.Time
}

// store keeps the uploaded files in one directory, with the index and the
// per-user usage in memory.
type store struct {
	dir    string
	secret []byte

	mu       sync.Mutex
	files    map[string]*file       // by id
	reserved map[string]reservation // by id
	used     map[string]int64       // bytes by owner: files, uploads and reservations
}

// openStore opens or creates the store in dir, loads the secret (making
// one the first time) and rebuilds the index from the files, removing the
// leftovers of uploads a crash interrupted.
func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	secret, err := loadSecret(filepath.Join(dir, secretFile))
	if err != nil {
		return nil, err
	}
	s := &store{
		dir:      dir,
		secret:   secret,
		files:    make(map[string]*file),
		reserved: make(map[string]reservation),
		used:     make(map[string]int64),
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("upload: %s: secret shorter than 32 bytes; remove the file to make a new one", path)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("upload: %w", err)
	}
	b = make([]byte, 32)
	_, _ = rand.Read(b)
	// O_EXCL: two processes starting on one directory agree on one secret.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadSecret(path)
		}
		return nil, fmt.Errorf("upload: %w", err)
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	if err := errors.Join(werr, serr, f.Close()); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("upload: write secret: %w", err)
	}
	return b, nil
}

// load fills the index from the directory. A file without a valid meta,
// a meta without its file, or a file whose size differs from its meta is
// the trace of an interrupted upload or removal and is deleted.
func (s *store) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	metas := map[string]bool{}
	datas := map[string]bool{}
	for _, e := range ents {
		n := e.Name()
		switch {
		case n == secretFile || e.IsDir():
		case strings.HasSuffix(n, metaExt) && validID(strings.TrimSuffix(n, metaExt)):
			metas[strings.TrimSuffix(n, metaExt)] = true
		case validID(n):
			datas[n] = true
		case strings.HasSuffix(n, partExt) || strings.HasSuffix(n, tmpExt):
			os.Remove(filepath.Join(s.dir, n))
		}
	}
	for id := range metas {
		m, err := s.readMeta(id)
		if err == nil && datas[id] {
			var st os.FileInfo
			if st, err = os.Stat(filepath.Join(s.dir, id)); err == nil && st.Size() != m.Size {
				err = errors.New("size differs from its record")
			}
		} else if err == nil {
			err = errors.New("no data")
		}
		if err != nil {
			s.remove(id)
			delete(datas, id)
			continue
		}
		s.files[id] = &file{meta: m, done: true}
		s.used[m.Owner] += m.Size
		delete(datas, id)
	}
	for id := range datas {
		os.Remove(filepath.Join(s.dir, id))
	}
	return nil
}

func (s *store) readMeta(id string) (meta, error) {
	var m meta
	b, err := os.ReadFile(filepath.Join(s.dir, id+metaExt))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, err
	}
	if m.Size <= 0 || m.Owner == "" || !validName(m.Name) {
		return m, errors.New("invalid record")
	}
	return m, nil
}

// remove deletes the data and meta of id from disk.
func (s *store) remove(id string) {
	os.Remove(filepath.Join(s.dir, id))
	os.Remove(filepath.Join(s.dir, id+metaExt))
}

// newID returns a fresh random file id.
func newID() string {
	var b [idLen * 3 / 4]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// errQuota is returned by reserve and begin when the owner's quota would
// be exceeded.
var errQuota = errors.New("quota exceeded")

// retryAt returns when enough of owner's files and slots will have
// expired for size more bytes to fit in quota; zero if that never happens
// by expiry alone.
func (s *store) retryAt(owner string, size, quota int64) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	type freed struct {
		at   time.Time
		size int64
	}
	var fs []freed
	for _, f := range s.files {
		if f.Owner == owner && f.done && f.Expires != 0 {
			fs = append(fs, freed{time.Unix(f.Expires, 0), f.Size})
		}
	}
	for _, r := range s.reserved {
		if r.owner == owner {
			fs = append(fs, freed{r.until, r.size})
		}
	}
	slices.SortFunc(fs, func(a, b freed) int { return a.at.Compare(b.at) })
	used := s.used[owner]
	for _, f := range fs {
		if used -= f.size; used+size <= quota {
			return f.at
		}
	}
	return time.Time{}
}

// reserve counts a slot of size bytes for owner until the slot expires,
// failing if the owner's files, uploads and other slots would then exceed
// quota (0: no quota). It returns the new slot's id.
func (s *store) reserve(owner string, size, quota int64, until time.Time) (id string, used int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	used = s.used[owner]
	if quota > 0 && used+size > quota {
		return "", used, errQuota
	}
	id = newID()
	s.reserved[id] = reservation{owner: owner, size: size, until: until}
	s.used[owner] = used + size
	return id, used, nil
}

// errExists is returned by begin for a file stored or being uploaded.
var errExists = errors.New("file exists")

// begin starts the upload of the file the claims c grant, id being its
// id, and returns the temporary file to write it to. Its reservation, if
// the slot was granted by this process, becomes the upload's share of the
// quota; otherwise (the server restarted since) the quota is checked
// again.
func (s *store) begin(id string, c claims, quota int64) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.files[id]; ok {
		return nil, errExists
	}
	r, reserved := s.reserved[id]
	if !reserved && quota > 0 && s.used[c.Owner]+c.Size > quota {
		return nil, errQuota
	}
	f, err := os.OpenFile(filepath.Join(s.dir, id+partExt), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	if reserved {
		delete(s.reserved, id)
		s.release(r.owner, r.size)
	}
	s.used[c.Owner] += c.Size
	s.files[id] = &file{meta: meta{Owner: c.Owner, Size: c.Size}}
	return f, nil
}

// release takes size bytes off owner's usage; s.mu is held.
func (s *store) release(owner string, size int64) {
	if s.used[owner] -= size; s.used[owner] <= 0 {
		delete(s.used, owner)
	}
}

// abort discards an upload begun with begin. The slot stays usable until
// it expires, so its size goes back to being a reservation.
func (s *store) abort(id string, f *os.File, c claims) {
	f.Close()
	os.Remove(f.Name())
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, id)
	s.reserved[id] = reservation{owner: c.Owner, size: c.Size, until: time.Unix(c.Expires, 0)}
}

// commit makes an upload written to f, begun with begin, a stored file:
// its meta is written first and the data renamed last, so that a crash
// at any point leaves either a complete file or traces load removes.
func (s *store) commit(id string, f *os.File, m meta) error {
	err := errors.Join(f.Sync(), f.Close())
	if err == nil {
		err = s.writeMeta(id, m)
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(s.dir, id))
	}
	if err != nil {
		os.Remove(f.Name())
		os.Remove(filepath.Join(s.dir, id+metaExt))
		s.mu.Lock()
		delete(s.files, id)
		s.release(m.Owner, m.Size)
		s.mu.Unlock()
		return fmt.Errorf("upload: store %s: %w", id, err)
	}
	s.mu.Lock()
	s.files[id] = &file{meta: m, done: true}
	s.mu.Unlock()
	return nil
}

func (s *store) writeMeta(id string, m meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, id+metaExt+tmpExt)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, id+metaExt))
}

// lookup returns the stored file id if it is complete and not expired at
// now.
func (s *store) lookup(id string, now time.Time) (meta, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[id]
	if !ok || !f.done || f.Expires != 0 && now.Unix() >= f.Expires {
		return meta{}, false
	}
	return f.meta, true
}

// open opens the data of a stored file.
func (s *store) open(id string) (*os.File, error) {
	return os.Open(filepath.Join(s.dir, id))
}

// usage returns the bytes counted against owner.
func (s *store) usage(owner string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[owner]
}

// sweep removes the files expired at now and drops the reservations of
// slots expired at now, returning how many files it removed.
func (s *store) sweep(now time.Time) int {
	s.mu.Lock()
	var gone []string
	for id, f := range s.files {
		if f.done && f.Expires != 0 && now.Unix() >= f.Expires {
			gone = append(gone, id)
			delete(s.files, id)
			s.release(f.Owner, f.Size)
		}
	}
	for id, r := range s.reserved {
		if !now.Before(r.until) {
			delete(s.reserved, id)
			s.release(r.owner, r.size)
		}
	}
	s.mu.Unlock()
	// A GET that opened a file before keeps reading it: removing an open
	// file on Unix only unlinks it.
	for _, id := range gone {
		s.remove(id)
	}
	return len(gone)
}

// copyExactly copies exactly n bytes from r to w. It reads one byte more
// to tell a body that is too long (errTooLarge) from one that is too
// short (errTooShort).
func copyExactly(w io.Writer, r io.Reader, n int64) error {
	got, err := io.Copy(w, io.LimitReader(r, n+1))
	switch {
	case got > n:
		return errTooLarge
	case err != nil:
		return err
	case got < n:
		return errTooShort
	}
	return nil
}

// Body errors of copyExactly.
var (
	errTooLarge = errors.New("body larger than the slot")
	errTooShort = errors.New("body shorter than the slot")
)
