package migrate

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
)

var testNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func readTestdata(t *testing.T, name string) *Data {
	t.Helper()
	d, err := ReadPath(filepath.Join("testdata", name), testNow)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func importData(t *testing.T, st Store, d *Data, o Options) *Report {
	t.Helper()
	rep, err := Import(context.Background(), st, d, o)
	if err != nil {
		var b bytes.Buffer
		if rep != nil {
			rep.Print(&b, false)
		}
		t.Fatalf("import: %v\n%s", err, b.String())
	}
	return rep
}

func checkLogin(t *testing.T, st Store, user, password, hash string) {
	t.Helper()
	c, err := st.Credential(context.Background(), user, hash)
	if err != nil {
		t.Fatalf("%s %s: %v", user, hash, err)
	}
	if !auth.CheckPassword(c, password) {
		t.Errorf("%s: the old password does not match the imported %s keys", user, hash)
	}
}

func TestImportXEP0227(t *testing.T) {
	ctx := context.Background()
	d := readTestdata(t, "ejabberd.xml")
	st := memory.New()
	rep := importData(t, st, d, Options{Domains: []string{"example.com"}, Iterations: 1000})
	var out bytes.Buffer
	rep.Print(&out, false)
	for _, want := range []string{"accounts:        2 new, 1 skipped", "roster items:    4 new", "vCards:          1 new", "offline messages: 1 new",
		"private XML:     1 new", "PEP items:       1 new", "skipped: privacy lists", "skipped: users of other.example"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	checkLogin(t, st, "alice@example.com", "alice-pw", "SHA-256")
	checkLogin(t, st, "alice@example.com", "alice-pw", "SHA-1")
	checkLogin(t, st, "bob@example.com", "bob-pw", "SHA-1")

	items, _, err := st.RosterItems(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.RosterItem{
		{Contact: "bob@example.com", Name: "Bob", Subscription: "both", Groups: []string{"Friends", "Work"}},
		{Contact: "carol@example.org", Subscription: "none", Ask: true},
		{Contact: "dave@example.net", Subscription: "none", PendingIn: true},
	}
	if len(items) != len(want) {
		t.Fatalf("roster %+v, want %+v", items, want)
	}
	for i := range want {
		if !rosterEqual(items[i], want[i]) {
			t.Errorf("roster item %d: %+v, want %+v", i, items[i], want[i])
		}
	}
	vc, err := st.PrivateXML(ctx, "alice@example.com", "vcard-temp")
	if err != nil || !bytes.Contains(vc, []byte("<FN>Alice Example</FN>")) {
		t.Errorf("vCard %s, %v", vc, err)
	}
	bm, err := st.PrivateXML(ctx, "alice@example.com", "storage:bookmarks")
	if err != nil || !bytes.Contains(bm, []byte("room@conference.example.com")) {
		t.Errorf("bookmarks %s, %v", bm, err)
	}
	msgs, err := st.OfflineMessages(ctx, "alice@example.com")
	if err != nil || len(msgs) != 1 || !bytes.Contains(msgs[0].Stanza, []byte("Are you there?")) || !msgs[0].Stored.Equal(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("offline %+v, %v", msgs, err)
	}
	its, err := st.PEPItems(ctx, "bob@example.com", "http://jabber.org/protocol/nick", nil, 0)
	if err != nil || len(its) != 1 || !bytes.Contains(its[0].Payload, []byte("Bobby")) {
		t.Errorf("PEP %+v, %v", its, err)
	}

	// Again: nothing changes, and the report says so.
	rep = importData(t, st, readTestdata(t, "ejabberd.xml"), Options{Domains: []string{"example.com"}})
	out.Reset()
	rep.Print(&out, false)
	if rep.Changed() || !strings.Contains(out.String(), "nothing changed") {
		t.Errorf("second import changed something:\n%s", out.String())
	}
	if msgs, _ := st.OfflineMessages(ctx, "alice@example.com"); len(msgs) != 1 {
		t.Errorf("second import: %d offline messages", len(msgs))
	}
}

func TestImportProsodyDir(t *testing.T) {
	ctx := context.Background()
	d := readTestdata(t, "prosody")
	st := memory.New()
	rep := importData(t, st, d, Options{Iterations: 1000})
	var out bytes.Buffer
	rep.Print(&out, false)
	t.Log(out.String())
	for _, want := range []string{"accounts:        2 new", "rooms:           1 new", "affiliations:    3 new", "archived messages: 3 new", `skipped: Prosody store "cloud_notify" (1 files)`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	checkLogin(t, st, "alice@localhost", "alice-pw", "SHA-1")
	checkLogin(t, st, "bob@localhost", "bob-pw", "SHA-256")
	items, _, _ := st.RosterItems(ctx, "alice@localhost")
	if len(items) != 3 || items[0].Contact != "bob@localhost" || items[0].Subscription != "both" || !slices.Equal(items[0].Groups, []string{"Friends"}) ||
		!items[1].Ask || !items[2].PendingIn {
		t.Errorf("roster %+v", items)
	}
	vc, _ := st.PrivateXML(ctx, "alice@localhost", "vcard-temp")
	if !bytes.Contains(vc, []byte(`<FN>Alice &quot;A&quot; Example</FN>`)) && !bytes.Contains(vc, []byte(`<FN>Alice "A" Example</FN>`)) {
		t.Errorf("vCard %s", vc)
	}
	msgs, _ := st.OfflineMessages(ctx, "alice@localhost")
	if len(msgs) != 1 || !bytes.Contains(msgs[0].Stanza, []byte("Hello from Prosody\n☃")) || !bytes.Contains(msgs[0].Stanza, []byte("stamp='2024-05-01T10:00:00Z'")) ||
		bytes.Contains(msgs[0].Stanza, []byte("stamp='2024-05-01T10:00:00Z' from")) {
		t.Errorf("offline %+v", msgs)
	}
	n, err := st.PEPNode(ctx, "alice@localhost", "urn:xmpp:avatar:metadata")
	if err != nil || n.AccessModel != "open" || n.MaxItems != 1 {
		t.Errorf("PEP node %+v %v", n, err)
	}
	its, _ := st.PEPItems(ctx, "alice@localhost", "urn:xmpp:avatar:metadata", nil, 0)
	if len(its) != 1 || its[0].ID != "0123abcd" || !bytes.HasPrefix(its[0].Payload, []byte("<metadata xmlns='urn:xmpp:avatar:metadata'><info")) {
		t.Errorf("PEP items %+v", its)
	}
	r, err := st.MUCRoom(ctx, "lounge@conference.localhost")
	if err != nil || !bytes.Contains(r.Config, []byte(`"name":"The Lounge"`)) || !bytes.Contains(r.Config, []byte(`"members_only":true`)) || !bytes.Contains(r.Config, []byte(`"text":"Welcome"`)) {
		t.Errorf("room %s %v", r.Config, err)
	}
	affs, _ := st.MUCAffiliations(ctx, "lounge@conference.localhost")
	if len(affs) != 3 || affs[0].Affiliation != "owner" || affs[1].Nick != "bobby" || affs[2].Affiliation != "outcast" {
		t.Errorf("affiliations %+v", affs)
	}
	page, err := st.QueryArchive(ctx, "alice@localhost", storage.ArchiveQuery{Max: 10})
	if err != nil || len(page.Items) != 3 {
		t.Fatalf("archive %+v %v", page, err)
	}
	for i, want := range []string{"First", "Second, the same second", "Third"} {
		it := page.Items[i]
		if !bytes.Contains(it.Stanza, []byte(want)) || bytes.Contains(it.Stanza, []byte("stamp=")) {
			t.Errorf("archived message %d: %s", i, it.Stanza)
		}
	}
	if page.Items[0].ID >= page.Items[1].ID || page.Items[1].With != "bob@localhost" || page.Items[2].With != "carol@example.org" ||
		!page.Items[2].Stamp.Equal(time.Date(2024, 5, 1, 9, 1, 0, 250000000, time.UTC)) {
		t.Errorf("archive %+v", page.Items)
	}
	rep = importData(t, st, readTestdata(t, "prosody"), Options{})
	out.Reset()
	rep.Print(&out, false)
	if rep.Changed() {
		t.Errorf("second import changed something:\n%s", out.String())
	}
}

// TestRoundTrip exports what an import brought and reads the export
// back: the same data.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, src := range []string{"ejabberd.xml", "prosody"} {
		t.Run(src, func(t *testing.T) {
			st := memory.New()
			importData(t, st, readTestdata(t, src), Options{Iterations: 1000})
			d1, err := Export(ctx, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := WriteXEP0227(&b, d1); err != nil {
				t.Fatal(err)
			}
			d2 := &Data{}
			if err := ReadXEP0227(d2, bytes.NewReader(b.Bytes()), "export.xml", nil, testNow); err != nil {
				t.Fatalf("%v\n%s", err, b.String())
			}
			if len(d2.Skipped) > 0 {
				t.Errorf("the export holds what the import skips: %+v", d2.Skipped)
			}
			// Into a new store, and out again: the same file.
			st2 := memory.New()
			importData(t, st2, d2, Options{})
			d3, err := Export(ctx, st2, nil)
			if err != nil {
				t.Fatal(err)
			}
			var b2 bytes.Buffer
			if err := WriteXEP0227(&b2, d3); err != nil {
				t.Fatal(err)
			}
			if b.String() != b2.String() {
				t.Errorf("round trip differs:\n%s\n---\n%s", b.String(), b2.String())
			}
			// And into the first store: nothing to do.
			rep := importData(t, st, d2, Options{})
			if rep.Changed() {
				var out bytes.Buffer
				rep.Print(&out, false)
				t.Errorf("importing the export changed the store:\n%s", out.String())
			}
		})
	}
}

func TestMalformedXEP0227(t *testing.T) {
	const head = "<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'>"
	const tail = "</host></server-data>"
	good := "<user name='ok' password='x'/>"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"not xml", "hello", "text outside the root element"},
		{"empty", "", "no root element"},
		{"unclosed", head + "<user name='a'>" + tail, "<user>: not well-formed"},
		{"wrong root", "<foo/>", "<foo>: not an XEP-0227 file"},
		{"dtd", "<!DOCTYPE x [<!ENTITY a 'b'>]>" + head + tail, "DTDs"},
		{"entity", head + "<user name='&a;'/>" + tail, "not well-formed"},
		{"bad host", "<server-data xmlns='urn:xmpp:pie:0'><host jid='a@b'/></server-data>", "<host>: jid \"a@b\" is not a domain"},
		{"no name", head + good + "<user password='x'/>" + tail, "t.xml:1: <user>: no name"},
		{"bad name", head + "<user name='a b'/>" + tail, "<user>: name \"a b\""},
		{"bad iter", head + "<user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>x</iter-count></scram-credentials></user>" + tail, "<iter-count>: \"x\" is not a positive iteration count"},
		{"bad salt", head + "<user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>1</iter-count><salt>%%</salt><server-key>AA==</server-key><stored-key>AA==</stored-key></scram-credentials></user>" + tail, "<salt>: not base64"},
		{"bad mech", head + "<user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='MD5'/></user>" + tail, "<scram-credentials>: mechanism \"MD5\""},
		{"bad item", head + "<user name='a'><query xmlns='jabber:iq:roster'><item jid='b@c/d'/></query></user>" + tail, "<item>: jid \"b@c/d\" is not a bare JID"},
		{"bad sub", head + "<user name='a'><query xmlns='jabber:iq:roster'><item jid='b@c' subscription='maybe'/></query></user>" + tail, "<item>: subscription \"maybe\""},
		{"bad offline", head + "<user name='a'><offline-messages><presence xmlns='jabber:client'/></offline-messages></user>" + tail, "<presence>: an offline message must be"},
		{"bad stamp", head + "<user name='a'><offline-messages><message xmlns='jabber:client'><delay xmlns='urn:xmpp:delay' stamp='yesterday'/></message></offline-messages></user>" + tail, "<message>: delay stamp"},
		{"two payloads", head + "<user name='a'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><item id='1'><a xmlns='x'/><b xmlns='x'/></item></items></pubsub></user>" + tail, "<item>: an item has one payload element, this has 2"},
		{"archive without forwarded", head + "<user name='a'><archive xmlns='urn:xmpp:pie:0#mam'><result xmlns='urn:xmpp:mam:2' id='1'/></archive></user>" + tail, "<result>: no <forwarded/>"},
		{"archive bad stamp", head + "<user name='a'><archive xmlns='urn:xmpp:pie:0#mam'><result xmlns='urn:xmpp:mam:2' id='1'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='soon'/><message xmlns='jabber:client'/></forwarded></result></archive></user>" + tail, "<delay>: stamp \"soon\""},
		{"include", "<server-data xmlns='urn:xmpp:pie:0'><include xmlns='http://www.w3.org/2001/XInclude' href='x.xml'/></server-data>", "includes are not allowed"},
		{"line", head + "\n" + good + "\n\n<user name='b'><query xmlns='jabber:iq:roster'>\n<item jid=''/></query></user>" + tail, "t.xml:5: <item>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Data{}
			err := ReadXEP0227(d, strings.NewReader(tc.in), "t.xml", nil, testNow)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("%T is not a *FormatError", err)
			}
		})
	}
}

// TestMalformedNothingImported: a file with a good user before a bad one
// imports neither, since the whole file is read before anything is
// written.
func TestMalformedNothingImported(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.xml")
	in := "<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'><user name='good' password='x'/>\n<user name='bad'><query xmlns='jabber:iq:roster'><item jid='@@'/></query></user></host></server-data>"
	if err := os.WriteFile(p, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadPath(p, testNow)
	if err == nil || !strings.Contains(err.Error(), "bad.xml:2: <item>") {
		t.Fatalf("error %v", err)
	}
}

func TestValidateDuplicates(t *testing.T) {
	d := &Data{Users: []*User{{JID: "a@b", Source: "one"}, {JID: "a@b", Source: "two"}}}
	if err := Validate(d); err == nil || !strings.Contains(err.Error(), "already defined at one") {
		t.Fatalf("error %v", err)
	}
}

// failingStore fails the nth write of a roster item.
type failingStore struct {
	*memory.Store
	n int
}

func (f *failingStore) PutRosterItem(ctx context.Context, user string, it storage.RosterItem) (int64, error) {
	f.n--
	if f.n == 0 {
		return 0, errors.New("disk full")
	}
	return f.Store.PutRosterItem(ctx, user, it)
}

// TestImportUndoesFailedUser: a write that fails takes back what was
// written for that user; the other users are imported.
func TestImportUndoesFailedUser(t *testing.T) {
	ctx := context.Background()
	st := &failingStore{Store: memory.New(), n: 2}
	rep, err := Import(ctx, st, readTestdata(t, "ejabberd.xml"), Options{Domains: []string{"example.com"}, Iterations: 1000})
	if !errors.Is(err, ErrFailed) || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0], "alice@example.com") || !strings.Contains(rep.Failed[0], "disk full") {
		t.Fatalf("err %v, failed %v", err, rep.Failed)
	}
	users, _ := st.ListAccounts(ctx, "")
	if !slices.Equal(users, []string{"bob@example.com"}) {
		t.Errorf("accounts %v", users)
	}
	if items, _, _ := st.RosterItems(ctx, "alice@example.com"); len(items) != 0 {
		t.Errorf("alice's roster half imported: %+v", items)
	}
	var out bytes.Buffer
	rep.Print(&out, false)
	if !strings.Contains(out.String(), "failed: user alice@example.com") || strings.Contains(out.String(), "roster items:    2") {
		t.Errorf("report:\n%s", out.String())
	}
}

func TestDryRun(t *testing.T) {
	st := memory.New()
	rep := importData(t, st, readTestdata(t, "ejabberd.xml"), Options{DryRun: true})
	if !rep.Changed() {
		t.Error("a dry run reports nothing to do")
	}
	if users, _ := st.ListAccounts(context.Background(), ""); len(users) != 0 {
		t.Errorf("a dry run wrote %v", users)
	}
}

// TestEjabberdExportDir reads what ejabberd 23.01's export_piefxis wrote
// (testdata/ejabberd-2301): a main file that includes one file per host,
// keys and salts encoded in base64 twice. The host file is read once, and
// the old passwords match the keys.
func TestEjabberdExportDir(t *testing.T) {
	d := readTestdata(t, "ejabberd-2301")
	if len(d.Users) != 3 {
		t.Fatalf("%d users", len(d.Users))
	}
	st := memory.New()
	importData(t, st, d, Options{})
	for _, u := range []string{"alice", "bob", "carol"} {
		checkLogin(t, st, u+"@localhost", u+"-pw", "SHA-1")
	}
	msgs, _ := st.OfflineMessages(context.Background(), "carol@localhost")
	if len(msgs) != 1 || !bytes.Contains(msgs[0].Stanza, []byte("Hello from the old server")) {
		t.Errorf("offline %+v", msgs)
	}
}

// TestKeysBase64Twice: keys written for ejabberd (encoded twice) read
// back as the same keys.
func TestKeysBase64Twice(t *testing.T) {
	d := readTestdata(t, "ejabberd.xml")
	var b bytes.Buffer
	if err := WriteXEP0227With(&b, d, WriteOptions{KeysBase64Twice: true}); err != nil {
		t.Fatal(err)
	}
	d2 := &Data{}
	if err := ReadXEP0227(d2, &b, "twice.xml", nil, testNow); err != nil {
		t.Fatal(err)
	}
	c1, c2 := d.Users[1].Credentials[0], d2.Users[1].Credentials[0]
	if !bytes.Equal(c1.Salt, c2.Salt) || !bytes.Equal(c1.StoredKey, c2.StoredKey) || !bytes.Equal(c1.ServerKey, c2.ServerKey) {
		t.Errorf("keys changed: %+v, %+v", c1, c2)
	}
}

// TestOldEjabberdSCRAM: ejabberd before 21.x exported SCRAM keys in the
// password attribute.
func TestOldEjabberdSCRAM(t *testing.T) {
	creds, err := auth.DeriveCredentials("old-pw", 4096)
	if err != nil {
		t.Fatal(err)
	}
	var c storage.Credential
	for _, x := range creds {
		if x.Hash == "SHA-1" {
			c = x
		}
	}
	b64 := base64.StdEncoding.EncodeToString
	pw := "scram:" + b64(c.StoredKey) + "," + b64(c.ServerKey) + "," + b64(c.Salt) + ",4096"
	in := "<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'><user name='old' password='" + pw + "'/></host></server-data>"
	d := &Data{}
	if err := ReadXEP0227(d, strings.NewReader(in), "old.xml", nil, testNow); err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	importData(t, st, d, Options{})
	checkLogin(t, st, "old@example.com", "old-pw", "SHA-1")
	if _, err := st.Credential(context.Background(), "old@example.com", "SHA-256"); err == nil {
		t.Error("keys derived from the scram: string as a password")
	}
	bad := strings.Replace(in, ",4096", ",x", 1)
	if err := ReadXEP0227(&Data{}, strings.NewReader(bad), "old.xml", nil, testNow); err == nil || !strings.Contains(err.Error(), "<user>: password in ejabberd's scram: form") {
		t.Errorf("error %v", err)
	}
}
