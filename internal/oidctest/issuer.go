package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer is a running test OIDC issuer. Its URL is the iss of every token it
// mints and the base of its discovery document
// (URL/.well-known/openid-configuration) and JWKS (URL/jwks).
type Issuer struct {
	URL string
	// Now is the clock tokens are minted by (iat, nbf, exp); time.Now when
	// nil. Set it to the clock of the server under test.
	Now func() time.Time
	// JWKSURI, when set, is the jwks_uri the discovery document names
	// instead of URL/jwks.
	JWKSURI string

	srv          *httptest.Server
	jwksFetches  atomic.Int64
	discoFetches atomic.Int64

	mu sync.Mutex
	// routes are the extra endpoints of a Company (/authorize, /token),
	// and discoveryExtra the fields they add to the discovery document.
	routes         map[string]http.HandlerFunc
	discoveryExtra map[string]any
	published      []*signingKey // in the JWKS, oldest first
	current        *signingKey   // signs; the last of published
	status         int           // when non-zero, every route answers it
	serial         int
}

type signingKey struct {
	kid     string
	private *rsa.PrivateKey
}

// New starts an issuer on 127.0.0.1 with one signing key; it stops at the
// end of the test.
func New(t testing.TB) *Issuer {
	t.Helper()
	i := &Issuer{}
	i.srv = httptest.NewServer(http.HandlerFunc(i.serve))
	t.Cleanup(i.srv.Close)
	i.URL = i.srv.URL
	i.RotateKey(false)
	return i
}

// Close stops the server: later discovery and JWKS requests are refused, as
// for an issuer that cannot be reached.
func (i *Issuer) Close() { i.srv.Close() }

// SetStatus makes every route answer status (404, 503, …) with no body;
// 0 serves normally again.
func (i *Issuer) SetStatus(status int) {
	i.mu.Lock()
	i.status = status
	i.mu.Unlock()
}

// JWKSFetches returns how many times the JWKS was fetched.
func (i *Issuer) JWKSFetches() int { return int(i.jwksFetches.Load()) }

// DiscoveryFetches returns how many times the discovery document was fetched.
func (i *Issuer) DiscoveryFetches() int { return int(i.discoFetches.Load()) }

// RotateKey generates a new signing key with a new kid, which signs from now
// on, and returns the kid. With keepOld the previous keys stay in the JWKS
// (tokens they signed keep verifying); otherwise only the new key is
// published.
func (i *Issuer) RotateKey(keepOld bool) string {
	k := newKey(i.nextKid())
	i.mu.Lock()
	defer i.mu.Unlock()
	if !keepOld {
		i.published = nil
	}
	i.published = append(i.published, k)
	i.current = k
	return k.kid
}

// Kid returns the kid of the current signing key.
func (i *Issuer) Kid() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.current.kid
}

func (i *Issuer) nextKid() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.serial++
	return fmt.Sprintf("test-key-%d", i.serial)
}

func newKey(kid string) *signingKey {
	// 2048 bits, as GitHub's and GitLab's keys; generation takes tens of
	// milliseconds, once per key.
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("oidctest: generate RSA key: %v", err))
	}
	return &signingKey{kid: kid, private: k}
}

// JWKS returns the published key set as a JSON document, {"keys":[…]}: what a
// pipeline's --jwks-file holds for an issuer berth cannot reach.
func (i *Issuer) JWKS() []byte {
	i.mu.Lock()
	set := jose.JSONWebKeySet{}
	for _, k := range i.published {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.private.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"})
	}
	i.mu.Unlock()
	b, err := json.Marshal(set)
	if err != nil {
		panic(fmt.Sprintf("oidctest: marshal JWKS: %v", err))
	}
	return b
}

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	status := i.status
	route := i.routes[r.URL.Path]
	extra := i.discoveryExtra
	i.mu.Unlock()
	if route != nil && status == 0 {
		route(w, r)
		return
	}
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		i.discoFetches.Add(1)
	case "/jwks":
		i.jwksFetches.Add(1)
	default:
		http.NotFound(w, r)
		return
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	var body []byte
	if r.URL.Path == "/jwks" {
		body = i.JWKS()
	} else {
		// The fields GitHub's document has
		// (https://token.actions.githubusercontent.com/.well-known/openid-configuration).
		jwks := i.URL + "/jwks"
		if i.JWKSURI != "" {
			jwks = i.JWKSURI
		}
		doc := map[string]any{
			"issuer":                                i.URL,
			"jwks_uri":                              jwks,
			"subject_types_supported":               []string{"public", "pairwise"},
			"response_types_supported":              []string{"id_token"},
			"claims_supported":                      []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "run_id"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"scopes_supported":                      []string{"openid"},
		}
		for k, v := range extra {
			doc[k] = v
		}
		body, _ = json.Marshal(doc)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

// Option changes how a token is minted.
type Option func(*mint)

type mint struct {
	key      *signingKey
	kid      string
	lifetime time.Duration
	issued   time.Time
	aud      []string
	claims   map[string]any
	drop     []string
}

// WithAudience sets aud (one value is written as a string, several as an
// array).
func WithAudience(aud ...string) Option { return func(m *mint) { m.aud = aud } }

// Expired mints a token that expired ago before now (its 5-minute window
// ending then).
func Expired(ago time.Duration) Option {
	return func(m *mint) { m.issued = m.issued.Add(-ago - m.lifetime) }
}

// IssuedAt mints a token issued at t, valid for its usual lifetime.
func IssuedAt(t time.Time) Option { return func(m *mint) { m.issued = t } }

// Lifetime sets exp - iat (GitHub's tokens live 5 minutes, the default).
func Lifetime(d time.Duration) Option { return func(m *mint) { m.lifetime = d } }

// WithOtherKey signs with a key the issuer does not publish, under the kid of
// its current key: a token whose signature does not verify.
func WithOtherKey() Option {
	return func(m *mint) { m.key = newKey(m.kid) }
}

// WithUnknownKid signs with a key the issuer does not publish, under a kid
// its JWKS does not hold, before or after a refetch.
func WithUnknownKid() Option {
	return func(m *mint) { m.kid = "unknown-kid"; m.key = newKey(m.kid) }
}

// WithClaims sets (or overrides) claims.
func WithClaims(claims map[string]any) Option {
	return func(m *mint) {
		for k, v := range claims {
			m.claims[k] = v
		}
	}
}

// Without removes claims (exp, to mint one that never expires).
func Without(names ...string) Option {
	return func(m *mint) { m.drop = append(m.drop, names...) }
}

// Mint signs claims with the current key, adding iss, iat, nbf, exp and a jti
// unless claims holds them; aud is set only when claims or WithAudience give
// it.
func (i *Issuer) Mint(claims map[string]any, opts ...Option) string {
	i.mu.Lock()
	key := i.current
	i.mu.Unlock()
	m := &mint{key: key, kid: key.kid, lifetime: 5 * time.Minute, issued: i.now(), claims: map[string]any{}}
	for k, v := range claims {
		m.claims[k] = v
	}
	for _, o := range opts {
		o(m)
	}
	c := map[string]any{
		"iss": i.URL,
		"jti": rand.Text(),
		"iat": m.issued.Unix(),
		"nbf": m.issued.Unix(),
		"exp": m.issued.Add(m.lifetime).Unix(),
	}
	switch len(m.aud) {
	case 0:
	case 1:
		c["aud"] = m.aud[0]
	default:
		c["aud"] = m.aud
	}
	for k, v := range m.claims {
		c[k] = v
	}
	for k := range c {
		if slices.Contains(m.drop, k) {
			delete(c, k)
		}
	}
	return sign(m.key.private, m.kid, c)
}

func sign(key *rsa.PrivateKey, kid string, claims map[string]any) string {
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts)
	if err != nil {
		panic(fmt.Sprintf("oidctest: signer: %v", err))
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(fmt.Sprintf("oidctest: claims: %v", err))
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(fmt.Sprintf("oidctest: sign: %v", err))
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		panic(fmt.Sprintf("oidctest: serialize: %v", err))
	}
	return s
}
