package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	_ "crypto/sha256" // crypto.SHA256, for key thumbprints
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
)

var (
	_ berth.TokenSigner   = (*Keyring)(nil)
	_ berth.TokenVerifier = (*Keyring)(nil)
)

// DefaultMaxTokenLifetime bounds the lifetime of the access tokens a Keyring
// signs unless its MaxTokenLifetime says otherwise. It is also how long a
// retired key stays trusted and published after a rotation.
const DefaultMaxTokenLifetime = time.Hour

// keyFileExt ends the name of every key file: KID.json.
const keyFileExt = ".json"

// Keyring holds the registry's signing keys, persisted one file per key in a
// folder (DATA/keys): a JSON document holding the private JWK, when it was
// created and, once a newer key replaced it, when it was retired. The newest
// key signs; retired keys only verify, and are published in the JWKS, until
// every token they signed has expired (retirement + MaxTokenLifetime), after
// which Prune deletes them. Key ids are RFC 7638 thumbprints.
//
// New keys are ES256 (ECDSA P-256). Ed25519 (EdDSA) keys found in the folder
// are used too. A Keyring is safe for concurrent use once its exported fields
// are set.
type Keyring struct {
	// Issuer and Audience are what Verify requires of a token's iss and aud
	// claims, and what Sign puts there when the claims leave them empty. Set
	// them before the keyring is shared.
	Issuer   string
	Audience string
	// MaxTokenLifetime bounds Expires − IssuedAt of the tokens Sign accepts,
	// and is how long a retired key is kept; DefaultMaxTokenLifetime when zero.
	// Set it to at least the configured access token lifetime.
	MaxTokenLifetime time.Duration

	dir  string
	rand io.Reader

	mu   sync.RWMutex
	keys []*signingKey // oldest first; the last one signs
	jwks []byte

	cache *verifiedCache
}

type signingKey struct {
	kid     string
	alg     jose.SignatureAlgorithm
	private jose.JSONWebKey
	public  jose.JSONWebKey
	signer  jose.Signer
	created time.Time
	retired time.Time // zero for the signing key
}

// keyFile is the on-disk form of one key.
type keyFile struct {
	Created time.Time       `json:"created"`
	Retired *time.Time      `json:"retired,omitempty"`
	Key     jose.JSONWebKey `json:"key"`
}

// LoadKeyring reads the keys in dir, creating dir (mode 0700) and a first
// ES256 key when there is none. rand supplies the private keys' bits and the
// tokens' ids: crypto/rand.Reader in production, a seeded source in tests.
//
// It refuses a key file that others than its owner may read (chmod 600 fixes
// it), a file that is not a key, and a key of another type than ES256 or
// EdDSA. It prunes nothing: Prune does, once MaxTokenLifetime is set.
func LoadKeyring(dir string, now time.Time, rand io.Reader) (*Keyring, error) {
	kr := &Keyring{dir: dir, rand: berth.LockedReader(rand), cache: newVerifiedCache(verifiedCacheSize)}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	keys, err := readKeys(dir)
	if err != nil {
		return nil, err
	}
	kr.keys = keys
	if len(keys) == 0 || !keys[len(keys)-1].retired.IsZero() {
		if _, err := kr.addKey(now); err != nil {
			return nil, err
		}
	}
	kr.publish()
	return kr, nil
}

// readKeys loads every key file of dir, oldest first. When several keys are
// not retired (a rotation that stopped between writing the new key and
// retiring the old one), the newest signs and the others count as retired when
// it was created.
func readKeys(dir string) ([]*signingKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	var keys []*signingKey
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, keyFileExt) {
			continue // temporary files of an interrupted write, and anything else
		}
		k, err := readKey(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if want := strings.TrimSuffix(name, keyFileExt); k.kid != want {
			return nil, fmt.Errorf("signing key %s: the file holds key %s; a key file is named after its key id", filepath.Join(dir, name), k.kid)
		}
		keys = append(keys, k)
	}
	// Retired keys first, then by creation: the last key is the newest of
	// those not retired, even when two were created at the same instant.
	slices.SortFunc(keys, func(a, b *signingKey) int {
		if ar, br := a.retired.IsZero(), b.retired.IsZero(); ar != br {
			if ar {
				return 1
			}
			return -1
		}
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.kid, b.kid)
	})
	for i, k := range keys {
		if k.retired.IsZero() && i < len(keys)-1 {
			k.retired = keys[len(keys)-1].created
		}
	}
	return keys, nil
}

func readKey(path string) (*signingKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("signing key %s has mode %v: others than its owner may read it; run chmod 600 %s", path, info.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("signing key %s: not a key file: %w", path, err)
	}
	k, err := newSigningKey(f.Key, f.Created)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	if f.Retired != nil {
		k.retired = *f.Retired
	}
	return k, nil
}

// newSigningKey checks a private JWK and prepares its signer.
func newSigningKey(private jose.JSONWebKey, created time.Time) (*signingKey, error) {
	k := &signingKey{private: private, created: created}
	switch key := private.Key.(type) {
	case *ecdsa.PrivateKey:
		if key.Curve != elliptic.P256() {
			return nil, fmt.Errorf("an ECDSA key must be on P-256 (ES256), not %s", key.Curve.Params().Name)
		}
		k.alg = jose.ES256
	case ed25519.PrivateKey:
		k.alg = jose.EdDSA
	default:
		return nil, fmt.Errorf("the key is a %T, not an ES256 or EdDSA private key", private.Key)
	}
	if private.Algorithm != "" && private.Algorithm != string(k.alg) {
		return nil, fmt.Errorf("the key says alg %q, but it is an %s key", private.Algorithm, k.alg)
	}
	if !private.Valid() {
		return nil, errors.New("the key is not valid")
	}
	thumb, err := private.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("thumbprint: %w", err)
	}
	k.kid = base64.RawURLEncoding.EncodeToString(thumb)
	if private.KeyID != "" && private.KeyID != k.kid {
		return nil, fmt.Errorf("the key's kid %q is not its thumbprint %s", private.KeyID, k.kid)
	}
	k.private.KeyID, k.private.Algorithm, k.private.Use = k.kid, string(k.alg), "sig"
	k.public = k.private.Public()
	k.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.private},
		(&jose.SignerOptions{}).WithType(accessTokenType))
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return k, nil
}

// generateES256 draws a P-256 private key from rand by rejection sampling:
// 32 bytes at a time until they form a scalar in [1, n-1]. crypto/ecdsa's
// GenerateKey ignores its reader since Go 1.26; this keeps keys reproducible
// with a seeded reader in tests.
func generateES256(rand io.Reader) (*ecdsa.PrivateKey, error) {
	var d [32]byte
	for range 64 {
		if _, err := io.ReadFull(rand, d[:]); err != nil {
			return nil, fmt.Errorf("read random bytes: %w", err)
		}
		if key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:]); err == nil {
			return key, nil
		}
	}
	return nil, errors.New("the random source gave no usable P-256 scalar in 64 tries")
}

// addKey creates a new signing key, writes it, and makes it the one that signs.
// The caller holds mu (or owns kr alone). The previous signing key, if any, is
// retired by the caller.
func (kr *Keyring) addKey(now time.Time) (*signingKey, error) {
	priv, err := generateES256(kr.rand)
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	k, err := newSigningKey(jose.JSONWebKey{Key: priv}, now.UTC())
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	if err := kr.writeKey(k); err != nil {
		return nil, err
	}
	kr.keys = append(kr.keys, k)
	return k, nil
}

// writeKey writes k's file atomically, mode 0600: a crash leaves the old file
// or the new one, never a part.
func (kr *Keyring) writeKey(k *signingKey) error {
	f := keyFile{Created: k.created, Key: k.private}
	if !k.retired.IsZero() {
		f.Retired = &k.retired
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("write signing key %s: %w", k.kid, err)
	}
	path := filepath.Join(kr.dir, k.kid+keyFileExt)
	if err := disk.WriteFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	return nil
}

// Rotate adds a new signing key and retires the one that signed until now.
// Tokens the old key signed keep verifying until they expire; its public key
// stays in the JWKS until Prune removes it. Rotate also prunes. It returns the
// new key's id.
func (kr *Keyring) Rotate(now time.Time) (string, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	i := len(kr.keys) - 1
	// The new key is written first: a crash in between leaves two unretired
	// keys, and LoadKeyring then retires the older one.
	k, err := kr.addKey(now)
	if err != nil {
		return "", err
	}
	// Keys are immutable once shared (Verify reads them unlocked): the
	// retired key is a copy.
	old := *kr.keys[i]
	old.retired = k.created
	kr.keys[i] = &old
	if err := kr.writeKey(&old); err != nil {
		return "", err
	}
	if _, err := kr.pruneLocked(now); err != nil {
		return "", err
	}
	kr.cache.clear()
	kr.publishLocked()
	return k.kid, nil
}

// Prune deletes the retired keys whose tokens have all expired: those retired
// more than MaxTokenLifetime (plus Leeway) before now. It returns their ids.
func (kr *Keyring) Prune(now time.Time) ([]string, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	pruned, err := kr.pruneLocked(now)
	if len(pruned) > 0 {
		kr.cache.clear()
		kr.publishLocked()
	}
	return pruned, err
}

func (kr *Keyring) pruneLocked(now time.Time) ([]string, error) {
	var pruned []string
	var errs []error
	kept := kr.keys[:0]
	for _, k := range kr.keys {
		if k.retired.IsZero() || !now.After(kr.trustedUntil(k)) {
			kept = append(kept, k)
			continue
		}
		err := os.Remove(filepath.Join(kr.dir, k.kid+keyFileExt))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("prune signing key %s: %w", k.kid, err))
			kept = append(kept, k)
			continue
		}
		pruned = append(pruned, k.kid)
	}
	clear(kr.keys[len(kept):])
	kr.keys = kept
	return pruned, errors.Join(errs...)
}

// trustedUntil returns when a retired key stops verifying: once every token it
// can have signed has expired.
func (kr *Keyring) trustedUntil(k *signingKey) time.Time {
	return k.retired.Add(kr.maxTokenLifetime() + Leeway)
}

func (kr *Keyring) maxTokenLifetime() time.Duration {
	if kr.MaxTokenLifetime > 0 {
		return kr.MaxTokenLifetime
	}
	return DefaultMaxTokenLifetime
}

// Reload reads the folder again, so that a key that another process (berth
// keys rotate) added or pruned takes effect without a restart.
func (kr *Keyring) Reload(now time.Time) error {
	keys, err := readKeys(kr.dir)
	if err != nil {
		return err
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if len(keys) == 0 || !keys[len(keys)-1].retired.IsZero() {
		// Everything was removed or retired behind our back: keep signing
		// with a new key rather than fail every token request.
		kr.keys = keys
		if _, err := kr.addKey(now); err != nil {
			return err
		}
	} else {
		kr.keys = keys
	}
	kr.cache.clear()
	kr.publishLocked()
	return nil
}

// KeyInfo describes one key of the ring, for berth keys list.
type KeyInfo struct {
	ID        string
	Algorithm string
	Created   time.Time
	// Retired is zero for the key that signs.
	Retired time.Time
}

// Keys describes the keys of the ring, oldest first; the last one signs.
func (kr *Keyring) Keys() []KeyInfo {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	out := make([]KeyInfo, len(kr.keys))
	for i, k := range kr.keys {
		out[i] = KeyInfo{ID: k.kid, Algorithm: string(k.alg), Created: k.created, Retired: k.retired}
	}
	return out
}

// JWKS returns the JSON Web Key Set (RFC 7517) of the public keys that verify
// tokens: each with kid, alg and use "sig", and no private part.
func (kr *Keyring) JWKS() []byte {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.jwks
}

func (kr *Keyring) publish() {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	kr.publishLocked()
}

func (kr *Keyring) publishLocked() {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(kr.keys))}
	// Newest first: a client that takes the first key takes the one that signs.
	for i := len(kr.keys) - 1; i >= 0; i-- {
		set.Keys = append(set.Keys, kr.keys[i].public)
	}
	b, err := json.Marshal(set)
	if err != nil {
		// Marshalling a public EC or Ed25519 key cannot fail.
		panic(fmt.Sprintf("marshal JWKS: %v", err))
	}
	kr.jwks = b
}

// key returns the key with this id, or nil.
func (kr *Keyring) key(kid string) *signingKey {
	for _, k := range kr.keys {
		if k.kid == kid {
			return k
		}
	}
	return nil
}
