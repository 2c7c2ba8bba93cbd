package oauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/berth-dev/berth"
)

// Leeway is the clock skew Verify tolerates on exp, nbf and iat: a token
// expired less than 30 seconds ago still passes, and one from a clock up to
// 30 seconds ahead is not refused as "not yet valid". It is small against a
// 15-minute lifetime and spares clients a refusal at the edge.
const Leeway = 30 * time.Second

// accessTokenType is the JOSE typ of berth access tokens (RFC 9068). Verify
// requires it, so that no other JWT signed with the same keys (an ID token,
// one day) passes for an access token.
const accessTokenType = "at+jwt"

// allowedAlgorithms is the allow-list Verify hands to the JOSE parser: never
// "none", never an HMAC (a public key used as an HMAC secret is the classic
// forgery), only the algorithms of keys a Keyring holds.
var allowedAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// maxTokenSize bounds what Verify parses; berth's tokens are under 2 KiB.
const maxTokenSize = 16 << 10

// wireClaims is the JSON payload of an access token: the registered claims of
// RFC 7519, "access" in the Docker token shape, client_id as RFC 9068 names it,
// and berth's own name and credential_id, and for a token issued through
// federation connection, pipeline, pipeline_id and ci_run.
type wireClaims struct {
	Issuer       string                  `json:"iss"`
	Subject      string                  `json:"sub"`
	Audience     audience                `json:"aud"`
	Expires      int64                   `json:"exp"`
	NotBefore    int64                   `json:"nbf,omitempty"`
	IssuedAt     int64                   `json:"iat"`
	ID           string                  `json:"jti"`
	Name         string                  `json:"name,omitempty"`
	ClientID     string                  `json:"client_id,omitempty"`
	CredentialID string                  `json:"credential_id,omitempty"`
	Connection   string                  `json:"connection,omitempty"`
	Pipeline     string                  `json:"pipeline,omitempty"`
	PipelineID   string                  `json:"pipeline_id,omitempty"`
	Run          string                  `json:"ci_run,omitempty"`
	Access       []berth.ResourceActions `json:"access"`
}

// audience reads aud as a string or an array of strings (RFC 7519 4.1.3) and
// writes one audience as a string, as Docker clients expect.
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// Sign returns a compact JWS of c, signed by the current key, with header
// {alg, kid, typ: at+jwt}. Empty Issuer and Audience become the keyring's;
// an empty ID becomes a random one; a zero NotBefore becomes IssuedAt. It
// fails (an internal error) when IssuedAt or Expires is missing or the
// lifetime exceeds MaxTokenLifetime: that is a misconfiguration, not a
// client's mistake.
func (kr *Keyring) Sign(c berth.AccessClaims) (string, error) {
	if c.Issuer == "" {
		c.Issuer = kr.Issuer
	}
	if c.Audience == "" {
		c.Audience = kr.Audience
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = c.IssuedAt
	}
	switch {
	case c.Issuer == "" || c.Audience == "" || c.Subject == "":
		return "", errors.New("sign access token: issuer, audience and subject are required")
	case c.IssuedAt.IsZero() || c.Expires.IsZero():
		return "", errors.New("sign access token: issued-at and expiry times are required")
	case !c.Expires.After(c.IssuedAt):
		return "", fmt.Errorf("sign access token: it expires at %v, not after it is issued at %v", c.Expires, c.IssuedAt)
	case c.Expires.Sub(c.IssuedAt) > kr.maxTokenLifetime():
		return "", fmt.Errorf("sign access token: its lifetime %v exceeds the keyring's MaxTokenLifetime %v; raise MaxTokenLifetime to the configured token lifetime",
			c.Expires.Sub(c.IssuedAt), kr.maxTokenLifetime())
	}
	if c.ID == "" {
		id, err := randomID(kr.rand)
		if err != nil {
			return "", fmt.Errorf("sign access token: %w", err)
		}
		c.ID = id
	}
	access := c.Access
	if access == nil {
		access = []berth.ResourceActions{} // the Docker shape has the array, even empty
	}
	wire := wireClaims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: audience{c.Audience},
		Expires: c.Expires.Unix(), NotBefore: c.NotBefore.Unix(), IssuedAt: c.IssuedAt.Unix(),
		ID: c.ID, Name: c.Name, ClientID: c.ClientID, CredentialID: c.CredentialID,
		Connection: c.Connection, Pipeline: c.Pipeline, PipelineID: c.PipelineID, Run: c.Run, Access: access,
	}
	payload, err := json.Marshal(wire)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	gen := kr.cache.generation()
	kr.mu.RLock()
	k := kr.keys[len(kr.keys)-1]
	kr.mu.RUnlock()
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign access token with key %s: %w", k.kid, err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("sign access token with key %s: %w", k.kid, err)
	}
	// Remembered as one that verified: its first use costs no verification,
	// and the limit on tokens that fail theirs (Provider.Bearers) never
	// holds it up, whatever forged tokens its client's address sent.
	if c.Audience == kr.Audience {
		kr.cache.put(token, verified{claims: wire.claims(kr.Audience), kid: k.kid}, gen)
	}
	return token, nil
}

// Verify implements berth.TokenVerifier. It checks, in order: the token's form;
// that its alg is ES256 or EdDSA and the one of the key its kid names, a key of
// this ring; its typ; its signature; iss equal to Issuer and aud holding
// Audience; for a retired key, that the token was issued before the key was
// retired and that the key is still trusted; and its times, with Leeway. Every
// refusal is token_invalid, except a genuine token past its expiry, which is
// token_expired.
//
// A token that verified is remembered (in a bounded cache cleared whenever the
// keys change), so that the next requests carrying it cost a map lookup,
// under a microsecond, instead of an ECDSA verification, 60 to 200 µs. A cached
// token is still checked against now, and its key's trust window, on every
// call. The trade-off: up to 10 MB of memory, and tokens held in it (see
// verifiedCache); a token string is trusted again only when it is byte for
// byte one that verified.
func (kr *Keyring) Verify(token string, now time.Time) (berth.AccessClaims, error) {
	if kr.Issuer == "" || kr.Audience == "" {
		return berth.AccessClaims{}, errors.New("verify access token: the keyring has no Issuer or Audience set")
	}
	if len(token) > maxTokenSize {
		return berth.AccessClaims{}, tokenInvalid("the access token is %d bytes long, more than any token this registry issues", len(token))
	}
	if e, ok := kr.cache.get(token); ok {
		if !e.keyTrustedUntil.IsZero() && now.After(e.keyTrustedUntil) {
			return berth.AccessClaims{}, retiredKeyUntrusted(e.kid, e.keyRetired)
		}
		if err := e.claims.CheckTime(now, Leeway); err != nil {
			return berth.AccessClaims{}, err
		}
		return copyClaims(e.claims), nil
	}
	e, gen, err := kr.verify(token, now)
	if err != nil {
		return berth.AccessClaims{}, err
	}
	kr.cache.put(token, e, gen)
	return copyClaims(e.claims), nil
}

// Remembers reports whether token verified before and is still remembered:
// Verify then costs a map lookup, not a signature verification.
func (kr *Keyring) Remembers(token string) bool {
	_, ok := kr.cache.get(token)
	return ok
}

func retiredKeyUntrusted(kid string, retired time.Time) *berth.Error {
	return tokenInvalid("the access token was signed with key %s, retired at %s, which this registry no longer trusts",
		kid, retired.UTC().Format(time.RFC3339))
}

func (kr *Keyring) verify(token string, now time.Time) (verified, uint64, error) {
	if strings.Count(token, ".") != 2 {
		return verified{}, 0, tokenInvalid("the access token is not a JWT (three dot-separated parts)")
	}
	jws, err := jose.ParseSignedCompact(token, allowedAlgorithms)
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return verified{}, 0, tokenInvalid("the access token is signed with algorithm %q; this registry signs with ES256 or EdDSA", berth.Truncate(string(alg.Got), 20))
		}
		return verified{}, 0, tokenInvalid("the access token is malformed")
	}
	if len(jws.Signatures) != 1 {
		return verified{}, 0, tokenInvalid("the access token is malformed")
	}
	h := jws.Signatures[0].Protected
	gen := kr.cache.generation()
	kr.mu.RLock()
	k := kr.key(h.KeyID)
	kr.mu.RUnlock()
	switch {
	case h.KeyID == "":
		return verified{}, 0, tokenInvalid("the access token names no signing key (kid)")
	case k == nil:
		return verified{}, 0, tokenInvalid("the access token was signed with key %q, which this registry does not hold: it was retired long ago, or the token comes from another registry", berth.Truncate(h.KeyID, 64))
	case jose.SignatureAlgorithm(h.Algorithm) != k.alg:
		return verified{}, 0, tokenInvalid("the access token says algorithm %s, but its key %s is an %s key", h.Algorithm, k.kid, k.alg)
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), accessTokenType) {
		return verified{}, 0, tokenInvalid("the token is not an access token (its typ is %q, not %q)", berth.Truncate(typ, 40), accessTokenType)
	}
	payload, err := jws.Verify(k.public)
	if err != nil {
		return verified{}, 0, tokenInvalid("the access token's signature does not verify: it was altered")
	}
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return verified{}, 0, tokenInvalid("the access token's claims are malformed")
	}
	// Past the signature, the token was signed with this registry's own
	// keys: another issuer or service is a replica configured otherwise,
	// or this server before its configuration changed, and a new token
	// from the same mismatched replica would meet the same refusal.
	switch {
	case w.Issuer != kr.Issuer:
		return verified{}, 0, tokenInvalid("the access token was issued by %q, not by this registry (%s), though with its signing key", berth.Truncate(w.Issuer, 80), kr.Issuer).
			WithHint("give every replica the same url: in its configuration (the public URL clients use), then request a new token (docker login, or berth login, does it for you)")
	case !slices.Contains(w.Audience, kr.Audience):
		return verified{}, 0, tokenInvalid("the access token is for service %q, not %q, though signed with this registry's key", berth.Truncate(strings.Join(w.Audience, ","), 80), kr.Audience).
			WithHint("give every replica the same auth.service in its configuration, then request a new token (docker login, or berth login, does it for you)")
	case w.Subject == "" || w.Expires == 0 || w.IssuedAt == 0:
		return verified{}, 0, tokenInvalid("the access token lacks sub, exp or iat")
	}
	c := w.claims(kr.Audience)
	if !k.retired.IsZero() {
		// A retired key signs nothing new: a token it "issued" later, or any
		// token once all it signed has expired, is a forgery with a leaked key.
		if c.IssuedAt.After(k.retired.Add(Leeway)) || now.After(kr.trustedUntil(k)) {
			return verified{}, 0, retiredKeyUntrusted(k.kid, k.retired)
		}
	}
	if c.IssuedAt.After(now.Add(Leeway)) {
		return verified{}, 0, tokenInvalid("the access token was issued in the future (%s); the clocks of the issuer and this server disagree", c.IssuedAt.Format(time.RFC3339))
	}
	if err := c.CheckTime(now, Leeway); err != nil {
		return verified{}, 0, err
	}
	e := verified{claims: c, kid: k.kid}
	if !k.retired.IsZero() {
		e.keyRetired, e.keyTrustedUntil = k.retired, kr.trustedUntil(k)
	}
	return e, gen, nil
}

// claims returns the access claims w carries, for audience.
func (w wireClaims) claims(audience string) berth.AccessClaims {
	c := berth.AccessClaims{
		Issuer: w.Issuer, Audience: audience, Subject: w.Subject, Name: w.Name,
		ClientID: w.ClientID, CredentialID: w.CredentialID, Access: w.Access,
		Connection: w.Connection, Pipeline: w.Pipeline, PipelineID: w.PipelineID, Run: w.Run,
		IssuedAt: time.Unix(w.IssuedAt, 0).UTC(), Expires: time.Unix(w.Expires, 0).UTC(), ID: w.ID,
	}
	if w.NotBefore != 0 {
		c.NotBefore = time.Unix(w.NotBefore, 0).UTC()
	}
	return c
}

// verified is a token that verified: its claims, and for a token of a retired
// key, until when that key is trusted.
type verified struct {
	claims          berth.AccessClaims
	kid             string
	keyRetired      time.Time
	keyTrustedUntil time.Time
}

func tokenInvalid(format string, args ...any) *berth.Error {
	return berth.Errorf(berth.CodeTokenInvalid, format, args...).
		WithHint("request a new token from /oauth2/token (docker login, or berth login, does it for you)")
}

// copyClaims returns c with its own Access, so that a caller changing what it
// got cannot change what the cache holds.
func copyClaims(c berth.AccessClaims) berth.AccessClaims {
	if c.Access == nil {
		return c
	}
	access := make([]berth.ResourceActions, len(c.Access))
	for i, ra := range c.Access {
		ra.Actions = slices.Clone(ra.Actions)
		access[i] = ra
	}
	c.Access = access
	return c
}

// randomID returns 128 random bits, base64url: a token's jti.
func randomID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// verifiedCacheSize bounds the tokens Verify remembers: at about 1.2 KB each
// (the token and its claims), 10 MB at most.
const verifiedCacheSize = 8192

// verifiedCache maps token strings that verified to their claims. It is keyed
// by the whole token, compared byte for byte by the map, so only a token
// identical to one that verified hits: never one that shares a signature or a
// prefix with it. (Keying by a SHA-256 of the token would keep no token in
// memory, but costs 1.2 µs per lookup on a machine without SHA instructions,
// more than the rest of the lookup; the process holds the signing keys anyway,
// which are worth more than any token.) The cache is bounded: once full, each
// new entry replaces the oldest (a ring of keys in insertion order). Entries
// are not removed at expiry; a lookup checks expiry itself, and the ring turns
// stale entries over.
type verifiedCache struct {
	mu      sync.RWMutex
	entries map[string]verified
	ring    []string
	next    int
	// gen counts clears: a verification that started before a clear (under
	// keys since changed) must not store its result after it.
	gen uint64
}

func newVerifiedCache(size int) *verifiedCache {
	return &verifiedCache{entries: make(map[string]verified, size), ring: make([]string, 0, size)}
}

func (c *verifiedCache) get(token string) (verified, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[token]
	return e, ok
}

func (c *verifiedCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

func (c *verifiedCache) put(token string, e verified, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, ok := c.entries[token]; ok {
		return
	}
	// The caller's string may share memory with a larger request buffer.
	token = strings.Clone(token)
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, token)
	} else {
		delete(c.entries, c.ring[c.next])
		c.ring[c.next] = token
		c.next = (c.next + 1) % len(c.ring)
	}
	c.entries[token] = e
}

func (c *verifiedCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	clear(c.ring)
	c.ring = c.ring[:0]
	c.next = 0
	c.gen++
}

func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
