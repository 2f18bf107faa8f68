package migrate

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/muc/room"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// maxDataFile bounds one Prosody data file or XEP-0227 file read into
// memory.
const maxDataFile = 1 << 30

func openFile(path string) (io.ReadCloser, error) { return os.Open(path) }

// ReadPath reads the input of an import: an XEP-0227 file, a directory of
// XEP-0227 files (prosody-migrator's output, ejabberd's export_piefxis
// directory), a Prosody data directory, or one host directory in it.
func ReadPath(path string, now time.Time) (*Data, error) {
	d := &Data{}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return d, readPIEFile(d, path, now)
	}
	hosts, err := prosodyHosts(path)
	if err != nil {
		return nil, err
	}
	if len(hosts) > 0 {
		for _, h := range hosts {
			if err := readProsodyHost(d, h.dir, h.name, now); err != nil {
				return nil, err
			}
		}
		return d, nil
	}
	files, err := filepath.Glob(filepath.Join(path, "*.xml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds neither XEP-0227 files (*.xml) nor Prosody data (host directories with accounts/)", path)
	}
	sort.Strings(files)
	// Files that another file includes (ejabberd writes a main file that
	// includes one per host) are read through it, once.
	for _, f := range files {
		if err := readPIEFile(d, f, now); err != nil {
			var fe *FormatError
			if errors.As(err, &fe) && strings.Contains(fe.Msg, "not an XEP-0227 file") && fe.File == f {
				d.skip("files that are not XEP-0227 data")
				continue
			}
			return nil, err
		}
	}
	return dedupeIncluded(d), nil
}

func readPIEFile(d *Data, path string, now time.Time) error {
	if slices.Contains(d.included, path) {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return ReadXEP0227(d, io.LimitReader(f, maxDataFile), path, DirOpener(filepath.Dir(path)), now)
}

// dedupeIncluded drops users read twice, once from a host file directly
// and once through the main file that includes it: the first reading is
// kept.
func dedupeIncluded(d *Data) *Data {
	seen := map[string]bool{}
	out := d.Users[:0]
	for _, u := range d.Users {
		if seen[u.JID] {
			continue
		}
		seen[u.JID] = true
		out = append(out, u)
	}
	d.Users = out
	return d
}

type prosodyHost struct{ name, dir string }

// prosodyHosts finds the host directories of a Prosody data directory,
// or dir itself when it is one: directories holding Prosody stores.
func prosodyHosts(dir string) ([]prosodyHost, error) {
	isHost := func(p string) bool {
		for _, s := range []string{"accounts", "config", "roster"} {
			if fi, err := os.Stat(filepath.Join(p, s)); err == nil && fi.IsDir() {
				return true
			}
		}
		return false
	}
	name := func(p string) string {
		n, err := url.PathUnescape(filepath.Base(p))
		if err != nil {
			return filepath.Base(p)
		}
		return n
	}
	if isHost(dir) {
		return []prosodyHost{{name(dir), dir}}, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []prosodyHost
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() && isHost(p) {
			out = append(out, prosodyHost{name(p), p})
		}
	}
	return out, nil
}

// prosodyDecode undoes datamanager's encoding of host, user and store
// names (%xx for every other byte than letters and digits).
func prosodyDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// prosodyStores are the stores a host directory may hold that the
// importer reads; the others are reported as skipped.
var prosodyStores = []string{"accounts", "roster", "vcard", "private", "offline", "pep", "config", "archive"}

func readProsodyHost(d *Data, dir, host string, now time.Time) error {
	hj, err := jid.Parse(host)
	if err != nil || hj.Local() != "" || hj.Resource() != "" {
		return fmt.Errorf("%s: %q is not a domain", dir, host)
	}
	host = hj.String()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		store := prosodyDecode(e.Name())
		if !e.IsDir() {
			if store == "persistent.dat" || store == "persistent.list" {
				continue
			}
			d.skip("Prosody file " + store)
			continue
		}
		// Bookkeeping of Prosody's own that means nothing here.
		if store == "archive_cleanup" {
			continue
		}
		if !slices.Contains(prosodyStores, store) && !strings.HasPrefix(store, "pep_") {
			if n, _ := os.ReadDir(filepath.Join(dir, e.Name())); len(n) > 0 {
				d.skip(fmt.Sprintf("Prosody store %q (%d files)", store, len(n)))
			}
		}
	}
	users := map[string]*User{}
	var order []string
	user := func(name, file string) (*User, error) {
		if u := users[name]; u != nil {
			return u, nil
		}
		j, err := jid.New(name, host, "")
		if err != nil {
			return nil, fmt.Errorf("%s: user %q: %v", file, name, err)
		}
		u := &User{JID: j.String(), Source: file}
		users[name] = u
		order = append(order, name)
		return u, nil
	}
	// each calls f for every file of a store with the given suffix, with
	// the decoded user name and the parsed contents.
	each := func(store, suffix string, f func(name, file string, v any) error) error {
		sdir := filepath.Join(dir, prosodyStoreDir(store))
		files, err := os.ReadDir(sdir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, fe := range files {
			if fe.IsDir() || !strings.HasSuffix(fe.Name(), suffix) {
				continue
			}
			file := filepath.Join(sdir, fe.Name())
			b, err := readLimited(file)
			if err != nil {
				return err
			}
			var v any
			if suffix == ".list" {
				var l []any
				l, err = ParseLuaList(b)
				v = l
			} else {
				v, err = ParseLuaData(b)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if err := f(prosodyDecode(strings.TrimSuffix(fe.Name(), suffix)), file, v); err != nil {
				return err
			}
		}
		return nil
	}
	err = each("accounts", ".dat", func(name, file string, v any) error {
		t, ok := v.(*LuaTable)
		if !ok {
			return fmt.Errorf("%s: an account is a table", file)
		}
		u, err := user(name, file)
		if err != nil {
			return err
		}
		if pw := t.String("password"); pw != "" {
			u.Password = pw
		}
		if t.Get("stored_key") != nil {
			c, err := prosodyCredential(t)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			u.Credentials = []storage.Credential{c}
		}
		if u.Password == "" && len(u.Credentials) == 0 {
			return fmt.Errorf("%s: an account without password or SCRAM keys", file)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// eachUser is each for the stores of accounts read above; another
	// user's data is skipped and reported.
	eachUser := func(store, suffix string, f func(u *User, file string, v any) error) error {
		return each(store, suffix, func(name, file string, v any) error {
			u := users[name]
			if u == nil {
				d.skip("Prosody data of users without an account")
				return nil
			}
			return f(u, file, v)
		})
	}
	err = eachUser("roster", ".dat", func(u *User, file string, v any) error {
		t, ok := v.(*LuaTable)
		if !ok {
			return fmt.Errorf("%s: a roster is a table", file)
		}
		items, err := prosodyRoster(t, u.JID)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		u.Roster = items
		return nil
	})
	if err != nil {
		return err
	}
	err = eachUser("vcard", ".dat", func(u *User, file string, v any) error {
		el, err := luaStanza(v, "")
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if el.Space != nsVCard || el.Local != "vCard" {
			return fmt.Errorf("%s: the vCard is <%s xmlns='%s'/>", file, el.Local, el.Space)
		}
		if u.VCard, err = checkedXML(el, ""); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = eachUser("private", ".dat", func(u *User, file string, v any) error {
		t, ok := v.(*LuaTable)
		if !ok {
			return fmt.Errorf("%s: private storage is a table", file)
		}
		for i, k := range t.Keys {
			el, err := luaStanza(t.Values[i], "")
			if err != nil {
				return fmt.Errorf("%s: %v: %w", file, k, err)
			}
			if el.Space == "" {
				return fmt.Errorf("%s: %v: private XML without a namespace", file, k)
			}
			b, err := checkedXML(el, "")
			if err != nil {
				return fmt.Errorf("%s: %v: %w", file, k, err)
			}
			u.Private = append(u.Private, PrivateItem{Key: el.Space, XML: b})
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = eachUser("offline", ".list", func(u *User, file string, v any) error {
		for _, it := range v.([]any) {
			m, err := prosodyOffline(it, host, now)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			u.Offline = append(u.Offline, m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = eachUser("archive", ".list", func(u *User, file string, v any) error {
		for _, it := range v.([]any) {
			m, err := prosodyArchived(it, u.JID)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			u.Archive = append(u.Archive, m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = eachUser("pep", ".dat", func(u *User, file string, v any) error {
		t, ok := v.(*LuaTable)
		if !ok {
			return fmt.Errorf("%s: PEP nodes are a table", file)
		}
		for i, k := range t.Keys {
			node, ok := k.(string)
			if !ok {
				continue
			}
			n := pepNode(u, node)
			if nt, ok := t.Values[i].(*LuaTable); ok {
				if cfg := nt.Table("config"); cfg != nil {
					for j, ck := range cfg.Keys {
						cs, _ := ck.(string)
						if note := applyPEPOption(&n.Config, "pubsub#"+cs, luaScalar(cfg.Values[j])); note != "" && isPEPOption(cs) {
							d.skip("PEP option " + cs + ": " + note)
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	ents, _ = os.ReadDir(dir)
	for _, e := range ents {
		store := prosodyDecode(e.Name())
		node, ok := strings.CutPrefix(store, "pep_")
		if !ok || !e.IsDir() {
			continue
		}
		err = eachUser(store, ".list", func(u *User, file string, v any) error {
			n := pepNode(u, node)
			for _, it := range v.([]any) {
				item, err := prosodyPEPItem(it, u.JID)
				if err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				n.Items = slices.DeleteFunc(n.Items, func(x storage.PEPItem) bool { return x.ID == item.ID })
				n.Items = append(n.Items, item)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	err = each("config", ".dat", func(name, file string, v any) error {
		t, ok := v.(*LuaTable)
		if !ok {
			return fmt.Errorf("%s: a room is a table", file)
		}
		r, err := prosodyRoom(t, name, host, file)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		d.Rooms = append(d.Rooms, r)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(order)
	for _, n := range order {
		d.Users = append(d.Users, users[n])
	}
	return nil
}

// prosodyStoreDir is the directory name of a store: datamanager encodes
// every byte but letters, digits and '_'.
func prosodyStoreDir(store string) string {
	var b strings.Builder
	for i := 0; i < len(store); i++ {
		c := store[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

func isPEPOption(k string) bool {
	return slices.Contains([]string{"access_model", "max_items", "persist_items", "notify_retract", "send_last_published_item"}, k)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDataFile+1))
	if err == nil && len(b) > maxDataFile {
		err = fmt.Errorf("%s: larger than %d bytes", path, maxDataFile)
	}
	return b, err
}

// luaScalar renders a Lua scalar as a form value.
func luaScalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return ""
}

// prosodyCredential reads mod_auth_internal_hashed's SCRAM-SHA-1 keys:
// hex keys, a raw salt and the iteration count.
func prosodyCredential(t *LuaTable) (storage.Credential, error) {
	c := storage.Credential{Hash: "SHA-1", Salt: []byte(t.String("salt"))}
	it, ok := t.Number("iteration_count")
	if !ok || it <= 0 || it > math.MaxInt32 || it != math.Trunc(it) {
		return c, fmt.Errorf("iteration_count %v is not a positive integer", t.Get("iteration_count"))
	}
	c.Iterations = int(it)
	var err error
	if c.StoredKey, err = hex.DecodeString(t.String("stored_key")); err != nil || len(c.StoredKey) == 0 {
		return c, errors.New("stored_key is not hexadecimal")
	}
	if c.ServerKey, err = hex.DecodeString(t.String("server_key")); err != nil || len(c.ServerKey) == 0 {
		return c, errors.New("server_key is not hexadecimal")
	}
	if len(c.Salt) == 0 {
		return c, errors.New("no salt")
	}
	return c, nil
}

// prosodyRoster reads a roster: contacts keyed by JID, and under the key
// false the version and the pending incoming requests.
func prosodyRoster(t *LuaTable, user string) ([]storage.RosterItem, error) {
	var items []storage.RosterItem
	pending := map[string]bool{}
	for i, k := range t.Keys {
		switch key := k.(type) {
		case bool:
			meta, _ := t.Values[i].(*LuaTable)
			if p := meta.Table("pending"); p != nil {
				for _, pk := range p.Keys {
					if s, ok := pk.(string); ok {
						j, err := jid.Parse(s)
						if err != nil {
							return nil, fmt.Errorf("pending request from %q: %v", s, err)
						}
						pending[j.BareString()] = true
					}
				}
			}
		case string:
			c, err := jid.Parse(key)
			if err != nil || c.Resource() != "" {
				return nil, fmt.Errorf("roster item %q is not a bare JID", key)
			}
			if c.String() == user {
				continue
			}
			it, _ := t.Values[i].(*LuaTable)
			if it == nil {
				return nil, fmt.Errorf("roster item %s is not a table", key)
			}
			item := storage.RosterItem{Contact: c.String(), Name: it.String("name"), Subscription: it.String("subscription")}
			switch item.Subscription {
			case "":
				item.Subscription = storage.SubscriptionNone
			case storage.SubscriptionNone, storage.SubscriptionTo, storage.SubscriptionFrom, storage.SubscriptionBoth:
			default:
				return nil, fmt.Errorf("roster item %s: subscription %q", key, item.Subscription)
			}
			item.Ask = it.String("ask") == "subscribe"
			if g := it.Table("groups"); g != nil {
				for _, gk := range g.Keys {
					if s, ok := gk.(string); ok && s != "" {
						item.Groups = append(item.Groups, s)
					}
				}
			}
			items = append(items, item)
		}
	}
	slices.SortFunc(items, func(a, b storage.RosterItem) int { return strings.Compare(a.Contact, b.Contact) })
	return addPending(items, pending), nil
}

// luaStanza converts a stanza as util.stanza's preserialize leaves it
// ({name=..., attr={...}, children in the array part}) into an element;
// parentNS is the namespace it inherits.
func luaStanza(v any, parentNS string) (*xmlstream.Element, error) {
	return luaStanzaDepth(v, parentNS, 0)
}

func luaStanzaDepth(v any, parentNS string, depth int) (*xmlstream.Element, error) {
	t, ok := v.(*LuaTable)
	if !ok || t.String("name") == "" {
		return nil, errors.New("not a serialised XML element")
	}
	if depth > xmlMaxDepth {
		return nil, errors.New("XML nested too deeply")
	}
	attrs := t.Table("attr")
	ns := parentNS
	if x := attrs.String("xmlns"); x != "" {
		ns = x
	}
	el := xmlstream.NewElement(ns, t.String("name"))
	if attrs != nil {
		for i, k := range attrs.Keys {
			name, ok := k.(string)
			val, vok := attrs.Values[i].(string)
			if !ok || !vok || name == "xmlns" {
				continue
			}
			switch {
			case strings.HasPrefix(name, "xml:"):
				el.SetAttrNS(xmlstream.NSXML, name[4:], val)
			case strings.Contains(name, "\x01"):
				space, local, _ := strings.Cut(name, "\x01")
				el.SetAttrNS(space, local, val)
			case strings.Contains(name, ":"):
				// A prefixed name Prosody could not resolve: keep the
				// local part.
				_, local, _ := strings.Cut(name, ":")
				el.SetAttr(local, val)
			default:
				el.SetAttr(name, val)
			}
		}
	}
	for _, c := range t.Array {
		switch x := c.(type) {
		case string:
			el.AddText(x)
		case *LuaTable:
			ce, err := luaStanzaDepth(x, ns, depth+1)
			if err != nil {
				return nil, err
			}
			el.AddChild(ce)
		}
	}
	return el, nil
}

// prosodyOffline reads one offline message of mod_offline's archive
// store: the stanza with the store's key, when and with beside it.
func prosodyOffline(v any, host string, now time.Time) (OfflineMessage, error) {
	el, err := luaStanza(v, xmlstream.NSClient)
	if err != nil {
		return OfflineMessage{}, err
	}
	if el.Local != "message" {
		return OfflineMessage{}, fmt.Errorf("offline item <%s/> is not a message", el.Local)
	}
	t := v.(*LuaTable)
	stored := now
	if w, ok := t.Number("when"); ok && w > 0 && w < 1e11 {
		sec, frac := math.Modf(w)
		stored = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	} else if s := t.Table("attr").String("stamp"); s != "" {
		if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
			stored = ts.UTC()
		}
	}
	el.Space = xmlstream.NSClient
	el.RemoveAttr("stamp")
	el.RemoveAttr("stamp_legacy")
	if el.Child(nsDelay, "delay") == nil {
		dl := xmlstream.NewElement(nsDelay, "delay")
		dl.SetAttr("from", host)
		dl.SetAttr("stamp", stored.Format("2006-01-02T15:04:05Z"))
		dl.AddText("Offline Storage")
		el.AddChild(dl)
	}
	b, err := checkedXML(el, xmlstream.NSClient)
	if err != nil {
		return OfflineMessage{}, err
	}
	return OfflineMessage{Stanza: b, Stored: stored}, nil
}

// prosodyArchived reads one message of mod_mam's archive store.
func prosodyArchived(v any, user string) (ArchivedMessage, error) {
	el, err := luaStanza(v, xmlstream.NSClient)
	if err != nil {
		return ArchivedMessage{}, err
	}
	if el.Local != "message" {
		return ArchivedMessage{}, fmt.Errorf("archived <%s/> is not a message", el.Local)
	}
	t := v.(*LuaTable)
	w, ok := t.Number("when")
	if !ok || w <= 0 || w >= 1e11 {
		return ArchivedMessage{}, fmt.Errorf("archived message %q without a time", t.String("key"))
	}
	sec, frac := math.Modf(w)
	stamp := time.Unix(int64(sec), int64(frac*1e9)).UTC().Truncate(time.Microsecond)
	el.Space = xmlstream.NSClient
	el.RemoveAttr("stamp")
	el.RemoveAttr("stamp_legacy")
	b, err := checkedXML(el, xmlstream.NSClient)
	if err != nil {
		return ArchivedMessage{}, err
	}
	with := t.String("with")
	if j, err := jid.Parse(with); err == nil {
		with = j.BareString()
	} else {
		with = otherParty(user, el.Attr("from"), el.Attr("to"))
	}
	return ArchivedMessage{Stanza: b, Stamp: stamp, With: with}, nil
}

// prosodyPEPItem reads one item of a pep_NODE archive store: an <item/>
// with its payload, its id under key.
func prosodyPEPItem(v any, owner string) (storage.PEPItem, error) {
	el, err := luaStanza(v, nsPubSub)
	if err != nil {
		return storage.PEPItem{}, err
	}
	t := v.(*LuaTable)
	id := t.String("key")
	payload := el
	if el.Local == "item" {
		if id == "" {
			id = el.Attr("id")
		}
		kids := el.Children()
		if len(kids) != 1 {
			return storage.PEPItem{}, fmt.Errorf("PEP item %q has %d payload elements", id, len(kids))
		}
		payload = kids[0]
	}
	if id == "" {
		return storage.PEPItem{}, errors.New("PEP item without an id")
	}
	// The archive store stamps what it keeps; Prosody takes the stamp
	// off when it reads the item back.
	payload.RemoveAttr("stamp")
	payload.RemoveAttr("stamp_legacy")
	pub := owner
	if w := t.String("with"); w != "" {
		pub = w
	}
	published := time.Now().UTC()
	if w, ok := t.Number("when"); ok && w > 0 && w < 1e11 {
		published = time.Unix(int64(w), 0).UTC()
	}
	b, err := checkedXML(payload, "")
	if err != nil {
		return storage.PEPItem{}, err
	}
	return storage.PEPItem{ID: id, Publisher: pub, Payload: b, Published: published}, nil
}

// prosodyRoom reads a room of mod_muc's config store, in the format of
// Prosody 0.11 (jid, _affiliations) or 0.12 (_jid, affiliations as
// top-level JID keys).
func prosodyRoom(t *LuaTable, name, host, file string) (*Room, error) {
	rj := t.String("_jid")
	if rj == "" {
		rj = t.String("jid")
	}
	if rj == "" {
		rj = name + "@" + host
	}
	j, err := jid.Parse(rj)
	if err != nil || j.Local() == "" || j.Resource() != "" {
		return nil, fmt.Errorf("room JID %q", rj)
	}
	data := t.Table("_data")
	cfg := room.DefaultConfig()
	cfg.Persistent = true
	cfg.Name = data.String("name")
	cfg.Description = data.String("description")
	cfg.Lang = data.String("language")
	cfg.Public = !data.Bool("hidden")
	cfg.MembersOnly = data.Bool("members_only")
	cfg.Moderated = data.Bool("moderated")
	cfg.Password = data.String("password")
	if data.String("whois") == room.WhoisAnyone {
		cfg.Whois = room.WhoisAnyone
	}
	cfg.ChangeSubject = data.Bool("changesubject")
	cfg.AllowInvites = data.Bool("allow_member_invites")
	if n, ok := data.Number("history_length"); ok && n >= 0 && n < 1e6 {
		cfg.HistoryLength = int(n)
	}
	if data.Get("archiving") != nil {
		cfg.Logging = data.Bool("archiving")
	}
	switch data.String("allow_pm") {
	case "everyone":
		cfg.AllowPM = room.PMAnyone
	case "participants":
		cfg.AllowPM = room.PMParticipants
	case "moderators":
		cfg.AllowPM = room.PMModerators
	case "none":
		cfg.AllowPM = room.PMNone
	}
	if b := data.Table("presence_broadcast"); b != nil {
		var roles []string
		for i, k := range b.Keys {
			if s, ok := k.(string); ok && b.Values[i] == true {
				roles = append(roles, s)
			}
		}
		sort.Strings(roles)
		cfg.Broadcast = roles
	}
	r := &Room{JID: j.String(), Source: file, State: room.State{Config: cfg}}
	if s := data.String("subject"); s != "" {
		r.State.Subject = room.Subject{Text: s, By: data.String("subject_from")}
	}
	affs := map[string]string{}
	if old := t.Table("_affiliations"); old != nil {
		for i, k := range old.Keys {
			if s, ok := k.(string); ok {
				if a, ok := old.Values[i].(string); ok {
					affs[s] = a
				}
			}
		}
	}
	for i, k := range t.Keys {
		s, ok := k.(string)
		a, aok := t.Values[i].(string)
		if !ok || !aok || strings.HasPrefix(s, "_") || s == "jid" {
			continue
		}
		affs[s] = a
	}
	nicks := map[string]string{}
	if adata := t.Table("_affiliation_data"); adata != nil {
		for i, k := range adata.Keys {
			if s, ok := k.(string); ok {
				if ad, ok := adata.Values[i].(*LuaTable); ok {
					nicks[s] = ad.String("reserved_nickname")
				}
			}
		}
	}
	keys := make([]string, 0, len(affs))
	for k := range affs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a := storage.MUCAffiliation{JID: k, Affiliation: affs[k]}
		if err := storage.CheckMUCAffiliation(a); err != nil || a.Affiliation == storage.AffiliationNone {
			return nil, fmt.Errorf("affiliation %q of %s", a.Affiliation, k)
		}
		a.Nick = nicks[k]
		r.Affiliations = append(r.Affiliations, a)
	}
	return r, nil
}
