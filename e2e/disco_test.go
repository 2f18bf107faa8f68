package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/xeps"
)

// TestDiscoMatchesCatalogue: what the running server announces through
// disco#info, on its domain, on an account and on its services, is exactly
// what the catalogue of implemented specifications lists (whose every entry
// names the tests that prove it, see internal/xeps): nothing is announced
// that is not implemented and tested, nothing implemented goes unannounced.
func TestDiscoMatchesCatalogue(t *testing.T) {
	s := startWithUsers(t)
	out := mustPython(t, "disco_features", append(s.clientArgs(false), "--jid", alice, "--password", alicePass)...)
	_, js, ok := strings.Cut(out, "FEATURES ")
	if !ok {
		t.Fatalf("no features in output:\n%s", out)
	}
	var got struct {
		Server, Account []string
		Items           map[string][]string
	}
	js, _, _ = strings.Cut(js, "\n")
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatalf("%v in %q", err, js)
	}
	same := func(what string, have, want []string) {
		t.Helper()
		have, want = slices.Sorted(slices.Values(have)), slices.Sorted(slices.Values(want))
		for _, f := range have {
			if !slices.Contains(want, f) {
				t.Errorf("%s announces %s, which the catalogue does not list", what, f)
			}
		}
		for _, f := range want {
			if !slices.Contains(have, f) {
				t.Errorf("%s does not announce %s, which the catalogue lists", what, f)
			}
		}
	}
	same("the server", got.Server, xeps.ServerFeatures())
	same("an account", got.Account, xeps.AccountFeatures())
	muc := false
	for item, fs := range got.Items {
		switch {
		case strings.HasPrefix(item, "upload."):
			same(item, fs, xeps.UploadFeatures())
		case strings.HasPrefix(item, "conference."):
			muc = true
			same(item, fs, xeps.MUCFeatures())
		default:
			t.Errorf("the server lists %s, a service the test does not know", item)
		}
	}
	if !muc {
		t.Errorf("the server lists no conference service: %v", got.Items)
	}
}
