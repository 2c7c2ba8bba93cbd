package oauth

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
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
	"github.com/berth-dev/berth/internal/atomicfile"
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

	store KeyStore
	rand  io.Reader

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
	Key     json.RawMessage `json:"key"`
}

// StoredKey is one key as a KeyStore keeps it.
type StoredKey struct {
	// ID is the key id, the RFC 7638 thumbprint of the key.
	ID      string
	Created time.Time
	// Retired is nil for a key that was never retired.
	Retired *time.Time
	// Private is the private JWK, as JSON. A store that leaves the machine
	// (a database) keeps it sealed: see SealedKeyStore.
	Private []byte
}

// KeyStore persists the keys of a Keyring. Implementations only persist: the
// rules (which key signs, when one is retired or pruned) are the Keyring's.
type KeyStore interface {
	// LoadKeys returns every key kept, in any order.
	LoadKeys(ctx context.Context) ([]StoredKey, error)
	// SaveKey creates the key or replaces the one with its ID.
	SaveKey(ctx context.Context, k StoredKey) error
	// DeleteKey removes the key with id; a key already gone is no error.
	DeleteKey(ctx context.Context, id string) error
}

// storeTimeout bounds one call of the KeyStore: the Keyring's methods take no
// context.
const storeTimeout = 30 * time.Second

func storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

// LoadKeyring reads the keys in dir, creating dir (mode 0700) and a first
// ES256 key when there is none. rand supplies the private keys' bits and the
// tokens' ids: crypto/rand.Reader in production, a seeded source in tests.
//
// It refuses a key file that others than its owner may read (chmod 600 fixes
// it), a file that is not a key, and a key of another type than ES256 or
// EdDSA. It prunes nothing: Prune does, once MaxTokenLifetime is set.
func LoadKeyring(dir string, now time.Time, rand io.Reader) (*Keyring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	return OpenKeyring(DirKeyStore(dir), now, rand)
}

// OpenKeyring is LoadKeyring on any KeyStore: it reads the keys kept there
// and adds a first ES256 key when none signs.
func OpenKeyring(store KeyStore, now time.Time, rand io.Reader) (*Keyring, error) {
	kr := &Keyring{store: store, rand: berth.LockedReader(rand), cache: newVerifiedCache(verifiedCacheSize)}
	keys, err := kr.readKeys()
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

// readKeys loads every key of the store, oldest first. When several keys are
// not retired (a rotation that stopped between writing the new key and
// retiring the old one, or replicas that each created a first key), the
// newest signs and the others count as retired when it was created.
func (kr *Keyring) readKeys() ([]*signingKey, error) {
	ctx, cancel := storeCtx()
	defer cancel()
	stored, err := kr.store.LoadKeys(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]*signingKey, 0, len(stored))
	for _, sk := range stored {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(sk.Private); err != nil {
			return nil, fmt.Errorf("signing key %s: not a JWK: %w", sk.ID, err)
		}
		k, err := newSigningKey(jwk, sk.Created)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", sk.ID, err)
		}
		if k.kid != sk.ID {
			return nil, fmt.Errorf("signing key %s: the store holds key %s under that id; a key is kept under its key id", sk.ID, k.kid)
		}
		if sk.Retired != nil {
			k.retired = *sk.Retired
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

// DirKeyStore keeps keys as files of the folder dir (DATA/keys), one
// KID.json per key, mode 0600: the store of a single node. The folder must
// exist.
func DirKeyStore(dir string) KeyStore { return dirKeyStore(dir) }

type dirKeyStore string

// LoadKeys refuses a key file that others than its owner may read, and a
// file that is not a key or is not named after its key.
func (dir dirKeyStore) LoadKeys(context.Context) ([]StoredKey, error) {
	entries, err := os.ReadDir(string(dir))
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	var keys []StoredKey
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, keyFileExt) {
			continue // temporary files of an interrupted write, and anything else
		}
		path := filepath.Join(string(dir), name)
		k, err := readKeyFile(path)
		if err != nil {
			return nil, err
		}
		k.ID = strings.TrimSuffix(name, keyFileExt)
		keys = append(keys, k)
	}
	return keys, nil
}

func readKeyFile(path string) (StoredKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return StoredKey{}, fmt.Errorf("signing key %s: %w", path, err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return StoredKey{}, fmt.Errorf("signing key %s has mode %v: others than its owner may read it; run chmod 600 %s", path, info.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return StoredKey{}, fmt.Errorf("signing key %s: %w", path, err)
	}
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return StoredKey{}, fmt.Errorf("signing key %s: not a key file: %w", path, err)
	}
	if len(f.Key) == 0 {
		return StoredKey{}, fmt.Errorf("signing key %s: not a key file: it holds no key", path)
	}
	return StoredKey{Created: f.Created, Retired: f.Retired, Private: f.Key}, nil
}

// SaveKey writes the key's file atomically, mode 0600: a crash leaves the
// old file or the new one, never a part.
func (dir dirKeyStore) SaveKey(_ context.Context, k StoredKey) error {
	b, err := json.MarshalIndent(keyFile{Created: k.Created, Retired: k.Retired, Key: k.Private}, "", "  ")
	if err != nil {
		return fmt.Errorf("write signing key %s: %w", k.ID, err)
	}
	if err := atomicfile.Write(filepath.Join(string(dir), k.ID+keyFileExt), append(b, '\n')); err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	return nil
}

func (dir dirKeyStore) DeleteKey(_ context.Context, id string) error {
	err := os.Remove(filepath.Join(string(dir), id+keyFileExt))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("prune signing key %s: %w", id, err)
	}
	return nil
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

// writeKey saves k in the store.
func (kr *Keyring) writeKey(k *signingKey) error {
	priv, err := k.private.MarshalJSON()
	if err != nil {
		return fmt.Errorf("write signing key %s: %w", k.kid, err)
	}
	sk := StoredKey{ID: k.kid, Created: k.created, Private: priv}
	if !k.retired.IsZero() {
		r := k.retired
		sk.Retired = &r
	}
	ctx, cancel := storeCtx()
	defer cancel()
	return kr.store.SaveKey(ctx, sk)
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
		ctx, cancel := storeCtx()
		err := kr.store.DeleteKey(ctx, k.kid)
		cancel()
		if err != nil {
			errs = append(errs, err)
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

// Reload reads the store again, so that a key that another process (berth
// keys rotate, another replica) added or pruned takes effect without a
// restart.
func (kr *Keyring) Reload(now time.Time) error {
	keys, err := kr.readKeys()
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

// Sealer encrypts small secrets (private keys, the secret-hashing pepper)
// with AES-256-GCM under a key encryption key, for stores that leave the
// machine. A sealed value is nonce ‖ ciphertext ‖ tag; the additional data
// binds it to what it is (a key id), so that a value moved to another row
// does not open.
type Sealer struct {
	aead cipher.AEAD
	rand io.Reader
}

// NewSealer returns a Sealer under key, 32 bytes, drawing nonces from rand.
func NewSealer(key []byte, rand io.Reader) (*Sealer, error) {
	if len(key) != 32 {
		return nil, berth.Errorf(berth.CodeInvalid, "the key encryption key is %d bytes, not 32", len(key)).
			WithHint("generate one with: openssl rand -base64 32")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("key encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key encryption key: %w", err)
	}
	return &Sealer{aead: aead, rand: berth.LockedReader(rand)}, nil
}

// Seal encrypts plain, bound to aad.
func (s *Sealer) Seal(plain, aad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, fmt.Errorf("seal: read random bytes: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plain, aad), nil
}

// Open decrypts what Seal returned for the same aad. It fails with a hint
// when the value was sealed under another key encryption key.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("open sealed %s: too short", aad)
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, berth.Errorf(berth.CodeInvalid, "cannot decrypt %s: it was encrypted with another key encryption key, or altered", aad).
			WithHint("set BERTH_KEY_ENCRYPTION_KEY (key_encryption_key) to the value the other replicas use")
	}
	return plain, nil
}

// SealedKeyStore keeps the private keys of Store sealed by Sealer: Store
// sees only ciphertext.
type SealedKeyStore struct {
	Store  KeyStore
	Sealer *Sealer
}

var _ KeyStore = SealedKeyStore{}

func keyAAD(id string) []byte { return []byte("berth signing key " + id) }

func (s SealedKeyStore) LoadKeys(ctx context.Context) ([]StoredKey, error) {
	keys, err := s.Store.LoadKeys(ctx)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		if keys[i].Private, err = s.Sealer.Open(k.Private, keyAAD(k.ID)); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func (s SealedKeyStore) SaveKey(ctx context.Context, k StoredKey) error {
	sealed, err := s.Sealer.Seal(k.Private, keyAAD(k.ID))
	if err != nil {
		return err
	}
	k.Private = sealed
	return s.Store.SaveKey(ctx, k)
}

func (s SealedKeyStore) DeleteKey(ctx context.Context, id string) error {
	return s.Store.DeleteKey(ctx, id)
}
