package loadtest

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// KeyCache is the client side of SCRAM-SHA-1 (RFC 5802) without channel
// binding, with the salted-password derivation cached per password, salt
// and iteration count. github.com/xdg-go/scram caches per Client, and a
// Client is tied to one username, so with thousands of load accounts that
// share a password and salt it would still run PBKDF2 once per account and
// the client would measure its own hashing instead of the server.
type KeyCache struct {
	mu   sync.Mutex
	keys map[string]*scramKeys
}

type scramKeys struct {
	once      sync.Once
	err       error
	clientKey []byte
	storedKey []byte
	serverKey []byte
}

// NewKeyCache returns an empty cache.
func NewKeyCache() *KeyCache { return &KeyCache{keys: make(map[string]*scramKeys)} }

// minIterations refuses weak parameters, as real clients do.
const minIterations = 4096

func (kc *KeyCache) get(password, salt string, iters int) (*scramKeys, error) {
	key := password + "\x00" + salt + "\x00" + strconv.Itoa(iters)
	kc.mu.Lock()
	k := kc.keys[key]
	if k == nil {
		k = &scramKeys{}
		kc.keys[key] = k
	}
	kc.mu.Unlock()
	// Concurrent first logins wait for one derivation instead of each
	// running their own.
	k.once.Do(func() {
		salted, err := pbkdf2.Key(sha1.New, password, []byte(salt), iters, sha1.Size)
		if err != nil {
			k.err = err
			return
		}
		k.clientKey = hmacSHA1(salted, "Client Key")
		sk := sha1.Sum(k.clientKey)
		k.storedKey = sk[:]
		k.serverKey = hmacSHA1(salted, "Server Key")
	})
	return k, k.err
}

func hmacSHA1(key []byte, msg string) []byte {
	m := hmac.New(sha1.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// scramExchange is one client conversation.
type scramExchange struct {
	cache      *KeyCache
	password   string
	nonce      string
	firstBare  string
	authMsg    string
	serverKey  []byte
	serverDone bool
}

// saslName escapes a username for SCRAM (RFC 5802 §5.1).
func saslName(s string) string {
	s = strings.ReplaceAll(s, "=", "=3D")
	return strings.ReplaceAll(s, ",", "=2C")
}

func newScramExchange(cache *KeyCache, username, password string) *scramExchange {
	var b [18]byte
	_, _ = rand.Read(b[:])
	x := &scramExchange{cache: cache, password: password, nonce: base64.RawStdEncoding.EncodeToString(b[:])}
	x.firstBare = "n=" + saslName(username) + ",r=" + x.nonce
	return x
}

// first returns the client-first-message (gs2 header "n,,": no channel
// binding, no authorization identity).
func (x *scramExchange) first() string { return "n,," + x.firstBare }

// final answers the server-first-message with the client-final-message.
func (x *scramExchange) final(serverFirst string) (string, error) {
	var nonce, salt string
	iters := 0
	for _, f := range strings.Split(serverFirst, ",") {
		if len(f) < 2 || f[1] != '=' {
			continue
		}
		switch f[0] {
		case 'r':
			nonce = f[2:]
		case 's':
			s, err := base64.StdEncoding.DecodeString(f[2:])
			if err != nil {
				return "", fmt.Errorf("scram: bad salt: %v", err)
			}
			salt = string(s)
		case 'i':
			n, err := strconv.Atoi(f[2:])
			if err != nil {
				return "", fmt.Errorf("scram: bad iteration count: %v", err)
			}
			iters = n
		case 'm':
			return "", errors.New("scram: unsupported mandatory extension")
		}
	}
	if !strings.HasPrefix(nonce, x.nonce) || len(nonce) == len(x.nonce) {
		return "", errors.New("scram: server nonce does not extend ours")
	}
	if salt == "" || iters < minIterations {
		return "", fmt.Errorf("scram: weak or missing parameters (i=%d)", iters)
	}
	k, err := x.cache.get(x.password, salt, iters)
	if err != nil {
		return "", err
	}
	noProof := "c=" + base64.StdEncoding.EncodeToString([]byte("n,,")) + ",r=" + nonce
	x.authMsg = x.firstBare + "," + serverFirst + "," + noProof
	sig := hmacSHA1(k.storedKey, x.authMsg)
	proof := make([]byte, len(sig))
	subtle.XORBytes(proof, k.clientKey, sig)
	x.serverKey = k.serverKey
	return noProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// verify checks the server-final-message, which proves the server knew
// the password's keys too.
func (x *scramExchange) verify(serverFinal string) error {
	if strings.HasPrefix(serverFinal, "e=") {
		return fmt.Errorf("scram: server error %s", serverFinal[2:])
	}
	v, ok := strings.CutPrefix(serverFinal, "v=")
	if !ok {
		return errors.New("scram: no server signature")
	}
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	got, err := base64.StdEncoding.DecodeString(v)
	if err != nil || x.serverKey == nil || !hmac.Equal(got, hmacSHA1(x.serverKey, x.authMsg)) {
		return errors.New("scram: wrong server signature")
	}
	x.serverDone = true
	return nil
}
