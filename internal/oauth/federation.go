package oauth

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/berth-dev/berth"
)

// KeyRefetchInterval is the least time between two fetches of an issuer's
// key set prompted by an unknown kid: a rotated-in key is found at once, and
// a stream of tokens with made-up kids costs the issuer at most one request
// per interval.
const KeyRefetchInterval = 10 * time.Second

// KeySetMaxAge is how long a fetched key set is used before it is fetched
// again, so that a key the issuer withdrew stops verifying. When the new
// fetch fails, the old set keeps serving (and a warning is logged).
const KeySetMaxAge = time.Hour

// FetchTimeout bounds a discovery or JWKS request of the default client.
const FetchTimeout = 10 * time.Second

const (
	// maxAssertionSize bounds the ID tokens Verify parses; CI tokens are
	// 1 to 3 KiB.
	maxAssertionSize = 16 << 10
	// maxFetchSize bounds a discovery document or key set.
	maxFetchSize = 1 << 20
)

// assertionAlgorithms are the signature algorithms accepted on ID tokens:
// the asymmetric ones of RFC 7518. Never none, never an HMAC, whose key would
// be the issuer's public key.
var assertionAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// Federation verifies the OIDC ID tokens of CI jobs (GitHub Actions,
// GitLab CI, Azure Pipelines, Kubernetes service accounts) against the keys
// of their issuer, with github.com/coreos/go-oidc. Keys come from the
// issuer's discovery document (ISSUER/.well-known/openid-configuration) and
// its jwks_uri, cached per issuer and fetched again when a token names a kid
// the cache lacks (the rotation rule of OpenID Connect Core section 10.1), or
// from the JWKS a pipeline carries, for an issuer berth cannot reach.
//
// Only issuers of registered pipelines are ever contacted, and only at URLs
// that pass berth.ValidateOutboundURL (https, or http on loopback); redirects
// are held to the same rule. Its refusals are assertion_invalid,
// assertion_expired and pipeline_unknown; a transport failure is reported by
// a short cause ("connection refused", "status 404"), never by the
// transport's error text, and never with the token.
type Federation struct {
	// Client fetches discovery documents and key sets; when nil, a client
	// with a FetchTimeout timeout.
	Client *http.Client
	// Now is the clock of expiry checks and key set ages; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// Outbound decides where a discovered jwks_uri on another host than its
	// issuer may point (the default client's dialer asks it too). The issuer
	// itself, registered by an owner, may be on the internal network.
	Outbound berth.OutboundPolicy

	mu      sync.Mutex
	client  *http.Client
	issuers map[string]*issuerKeys
}

var _ berth.IssuerChecker = (*Federation)(nil)

// PipelinesOf returns the registered pipelines whose issuer is issuer, or
// all of them when issuer is "".
type PipelinesOf func(ctx context.Context, issuer string) ([]berth.Pipeline, error)

// Verify checks a CI job's ID token and returns what it asserts, with the
// pipelines that may judge it: those whose key source verified its
// signature. It reads the token's iss unverified, and refuses with
// pipeline_unknown (naming the registered issuers) when no pipeline that
// pipelinesOf returns for it has that issuer. Each pipeline of the issuer
// has one key source: the key set it pinned (berth pipeline create
// --jwks-file), or else the issuer's published keys. A token is verified
// against each source, and only the pipelines of the sources that verified
// it are returned: a key pinned for one pipeline never vouches for another. Then the issuer and the time window are checked with
// berth.AssertionLeeway (assertion_expired). Whether a pipeline accepts the
// token's subject, audience and claims is berth.MatchPipeline's to decide.
//
// It returns assertion_invalid when the token is not a JWT, uses an
// algorithm other than an asymmetric one, names a kid no key source holds
// (after fetching the published keys again), has a signature that does not
// verify, or when the issuer's discovery document or keys cannot be fetched
// or read.
func (f *Federation) Verify(ctx context.Context, token string, pipelinesOf PipelinesOf) (berth.Assertion, []berth.Pipeline, error) {
	jws, iss, err := parseAssertion(token)
	if err != nil {
		return berth.Assertion{}, nil, err
	}
	pipelines, err := pipelinesOf(ctx, iss)
	if err != nil {
		return berth.Assertion{}, nil, err
	}
	if len(pipelines) == 0 {
		return berth.Assertion{}, nil, f.unknownIssuer(ctx, jws, iss, pipelinesOf)
	}
	// Of the refusals, the first of the most telling kind is returned: one
	// past the signature (expired, a signature that does not verify), then
	// keys that could not be fetched, then a kid no loaded key set holds.
	var refused, unfetched, missed error
	var verified []berth.Pipeline
	var a berth.Assertion
	for _, src := range keySources(iss, pipelines) {
		keys, err := f.keysFor(ctx, iss, src.jwks)
		if err != nil {
			unfetched = cmp.Or(unfetched, err)
			continue
		}
		got, err := keys.verify(ctx, token)
		switch {
		case err == nil:
			a, verified = got, append(verified, src.pipelines...)
		case isKeyMiss(err):
			missed = cmp.Or(missed, err)
		default:
			refused = cmp.Or(refused, err)
		}
	}
	if verified == nil {
		return berth.Assertion{}, nil, cmp.Or(refused, unfetched, missed)
	}
	return a, verified, nil
}

// keySource is the key set some pipelines of an issuer verify with: the one
// they pinned (jwks), or the issuer's published keys (jwks nil).
type keySource struct {
	jwks      []byte
	pipelines []berth.Pipeline
}

// keySources groups the pipelines of iss by key source: each pinned key set
// (pipelines pinning the same bytes share it), then the published keys for
// the pipelines that pin none.
func keySources(iss string, pipelines []berth.Pipeline) []keySource {
	var out []keySource
	var published []berth.Pipeline
	for _, p := range pipelines {
		if p.Issuer != iss {
			continue
		}
		if len(p.JWKS) == 0 {
			published = append(published, p)
			continue
		}
		i := slices.IndexFunc(out, func(s keySource) bool { return bytes.Equal(s.jwks, p.JWKS) })
		if i < 0 {
			out = append(out, keySource{jwks: p.JWKS})
			i = len(out) - 1
		}
		out[i].pipelines = append(out[i].pipelines, p)
	}
	if len(published) > 0 {
		out = append(out, keySource{pipelines: published})
	}
	return out
}

// keyMiss is a key source's refusal of a token it has no key for, rather
// than a refusal of the token itself.
type keyMiss struct{ err *berth.Error }

func (k keyMiss) Error() string { return k.err.Error() }
func (k keyMiss) Unwrap() error { return k.err }

func isKeyMiss(err error) bool {
	_, ok := errors.AsType[keyMiss](err)
	return ok
}

// parseAssertion returns the token's JWS and its unverified iss.
func parseAssertion(token string) (*jose.JSONWebSignature, string, error) {
	if len(token) > maxAssertionSize {
		return nil, "", assertionInvalid("the ID token is %d bytes long; CI ID tokens are a few KiB, and berth reads at most %d KiB", len(token), maxAssertionSize>>10)
	}
	if strings.Count(token, ".") != 2 {
		return nil, "", assertionInvalid("the client assertion is not a JWT (three dot-separated parts)")
	}
	jws, err := jose.ParseSignedCompact(token, assertionAlgorithms)
	if err != nil {
		if alg, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, "", assertionInvalid("the ID token is signed with algorithm %q; berth accepts only asymmetric signatures (RS256, PS256, ES256, EdDSA and their larger variants)", berth.Truncate(string(alg.Got), 20))
		}
		return nil, "", assertionInvalid("the client assertion is not a well-formed JWT")
	}
	if len(jws.Signatures) != 1 {
		return nil, "", assertionInvalid("the client assertion is not a well-formed JWT")
	}
	var claims struct {
		Issuer any `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return nil, "", assertionInvalid("the ID token's claims are not a JSON object")
	}
	iss, _ := claims.Issuer.(string)
	if iss == "" {
		return nil, "", assertionInvalid("the ID token names no issuer (iss)")
	}
	return jws, iss, nil
}

// unknownIssuer is the refusal of a token whose issuer no pipeline has: its
// unverified issuer and subject. The issuers pipelines are registered for
// are for the audit log only (a self-hosted one names an internal host):
// anyone can mint a token naming any issuer.
func (f *Federation) unknownIssuer(ctx context.Context, jws *jose.JSONWebSignature, iss string, pipelinesOf PipelinesOf) error {
	var claims struct {
		Subject  any      `json:"sub"`
		Audience audience `json:"aud"`
	}
	_ = json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims)
	sub, _ := claims.Subject.(string)
	iss, sub = berth.Truncate(iss, 200), berth.Truncate(sub, 200)
	all, err := pipelinesOf(ctx, "")
	if err != nil {
		return err
	}
	var issuers []string
	for _, p := range all {
		if !slices.Contains(issuers, p.Issuer) {
			issuers = append(issuers, p.Issuer)
		}
	}
	slices.Sort(issuers)
	known := "no pipeline is registered at all"
	if len(issuers) > 0 {
		known = "pipelines are registered for " + strings.Join(issuers, ", ")
	}
	return berth.Errorf(berth.CodePipelineUnknown, "no registered pipeline trusts the issuer %q of this ID token (subject %q)", iss, sub).
		WithHint("ask an owner of the registry to register this job (berth pipeline create NAME --issuer %s --subject %s); berth audit --code pipeline_unknown shows them the registered issuers", berth.ShellQuote(iss), berth.ShellQuote(sub)).
		WithDetail("issuer", iss).WithDetail("subject", sub).
		WithPrivate("registered", known) // self-hosted issuers name internal hosts
}

// keysFor returns the verifier of iss with one key source: the pinned key
// set jwks, or the issuer's published keys (jwks nil), discovered once.
func (f *Federation) keysFor(ctx context.Context, iss string, jwks []byte) (*issuerKeys, error) {
	cacheKey := iss
	var static [][]byte
	if len(jwks) > 0 {
		sum := sha256.Sum256(jwks)
		cacheKey = iss + "\x00" + hex.EncodeToString(sum[:])
		static = [][]byte{jwks}
	}
	f.mu.Lock()
	if f.issuers == nil {
		f.issuers = map[string]*issuerKeys{}
	}
	k, ok := f.issuers[cacheKey]
	if !ok {
		k = &issuerKeys{f: f, issuer: iss}
		f.issuers[cacheKey] = k
	}
	f.mu.Unlock()
	if err := k.init(ctx, static); err != nil {
		return nil, err
	}
	return k, nil
}

// CheckIssuer implements berth.IssuerChecker: it loads p's keys afresh,
// bypassing the cache, from p.JWKS or through the issuer's discovery
// document, and returns how many usable keys there are.
func (f *Federation) CheckIssuer(ctx context.Context, p berth.Pipeline) (int, error) {
	if err := berth.ValidateOutboundURL("issuer", p.Issuer); err != nil {
		return 0, assertionInvalid("pipeline %s: %s", p.Name, berth.AsError(err).Message)
	}
	k := &issuerKeys{f: f, issuer: p.Issuer}
	var static [][]byte
	if len(p.JWKS) > 0 {
		static = [][]byte{p.JWKS}
	}
	if err := k.init(ctx, static); err != nil {
		return 0, err
	}
	if k.remote() {
		if _, err := k.fetch(ctx, time.Time{}); err != nil {
			return 0, err
		}
	}
	keys, _ := k.snapshot()
	return len(keys), nil
}

func (f *Federation) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Federation) logger() *slog.Logger {
	if f.Logger != nil {
		return f.Logger
	}
	return slog.Default()
}

// httpClient returns the client of outbound requests: Client, or a default,
// either way refusing redirects to URLs berth would not call.
func (f *Federation) httpClient() *http.Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.client != nil {
		return f.client
	}
	c := &http.Client{Timeout: FetchTimeout, Transport: f.Outbound.Transport("jwks_uri")}
	if f.Client != nil {
		cp := *f.Client
		c = &cp
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := berth.ValidateOutboundURL("redirect", req.URL.String()); err != nil {
			return errRedirect
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 5 {
			return errRedirect
		}
		return nil
	}
	f.client = c
	return c
}

var errRedirect = errors.New("redirect refused")

// issuerKeys is the verifier of one issuer and its cached key set. It is the
// go-oidc KeySet of its verifier.
type issuerKeys struct {
	f      *Federation
	issuer string

	initMu   sync.Mutex
	verifier *oidc.IDTokenVerifier
	jwksURL  string // "" for a static set

	fetchMu sync.Mutex // one fetch at a time
	mu      sync.RWMutex
	keys    []jose.JSONWebKey
	fetched time.Time
}

// init prepares the verifier once: from static key sets, or by fetching the
// discovery document. A failure is not remembered: the next call tries again.
func (k *issuerKeys) init(ctx context.Context, static [][]byte) error {
	k.initMu.Lock()
	defer k.initMu.Unlock()
	if k.verifier != nil {
		return nil
	}
	if len(static) > 0 {
		var keys []jose.JSONWebKey
		for _, s := range static {
			ks, err := parseKeySet(s)
			if err != nil {
				return assertionInvalid("the key set registered for issuer %s is not a JSON Web Key Set: %s", k.issuer, err.Error())
			}
			keys = append(keys, ks...)
		}
		if len(keys) == 0 {
			return assertionInvalid("the key set registered for issuer %s holds no usable public key", k.issuer)
		}
		k.keys, k.fetched = keys, k.f.now()
	} else {
		url, err := k.discover(ctx)
		if err != nil {
			return err
		}
		k.jwksURL = url
	}
	k.verifier = oidc.NewVerifier(k.issuer, k, &oidc.Config{
		SkipClientIDCheck:    true, // the pipeline's audience is MatchPipeline's to check
		SkipExpiryCheck:      true, // Assertion.CheckTime says when, with the window
		SupportedSigningAlgs: algorithmNames(assertionAlgorithms),
	})
	return nil
}

func (k *issuerKeys) remote() bool { return k.jwksURL != "" }

// discover fetches the issuer's discovery document and returns its jwks_uri.
func (k *issuerKeys) discover(ctx context.Context) (string, error) {
	if err := berth.ValidateOutboundURL("issuer", k.issuer); err != nil {
		return "", assertionInvalid("the issuer %s cannot be called: %s", berth.Truncate(k.issuer, 120), berth.AsError(err).Message)
	}
	where := strings.TrimSuffix(k.issuer, "/") + "/.well-known/openid-configuration"
	body, err := k.f.get(berth.WithOutboundTrusted(ctx), where) // the issuer an owner registered
	if err != nil {
		return "", issuerUnreachable(k.issuer, "its discovery document", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", assertionInvalid("the discovery document of issuer %s is not valid JSON", k.issuer).WithDetail("issuer", k.issuer)
	}
	switch {
	case doc.Issuer != k.issuer:
		// OpenID Connect Discovery section 4.3: they must be identical.
		return "", assertionInvalid("the discovery document at %s names the issuer %q, not %q", where, berth.Truncate(doc.Issuer, 120), k.issuer).
			WithHint("register the pipeline with --issuer set to exactly the iss of the ID tokens and of the discovery document").
			WithDetail("issuer", k.issuer)
	case doc.JWKSURI == "":
		return "", assertionInvalid("the discovery document of issuer %s has no jwks_uri", k.issuer).WithDetail("issuer", k.issuer)
	}
	check := berth.ValidateOutboundURL
	if !sameHost(k.issuer, doc.JWKSURI) {
		check = k.f.Outbound.CheckURL // another host: not the metadata service, not the internal network
	}
	if err := check("jwks_uri", doc.JWKSURI); err != nil {
		return "", assertionInvalid("the discovery document of issuer %s names a jwks_uri berth will not call: %s", k.issuer, berth.AsError(err).Message).
			WithDetail("issuer", k.issuer)
	}
	return doc.JWKSURI, nil
}

// sameHost reports whether URLs a and b name the same host.
func sameHost(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	return errA == nil && errB == nil && strings.EqualFold(ua.Hostname(), ub.Hostname())
}

// verify checks token with go-oidc and this key set and returns its
// assertion.
func (k *issuerKeys) verify(ctx context.Context, token string) (berth.Assertion, error) {
	out := &verifyOutcome{}
	tok, err := k.verifier.Verify(context.WithValue(ctx, verifyOutcomeKey{}, out), token)
	if err != nil {
		if out.err != nil {
			return berth.Assertion{}, out.err // the key set's own refusal, with its facts
		}
		k.f.logger().InfoContext(ctx, "ID token refused by the verifier", slog.String("issuer", k.issuer), slog.String("cause", err.Error()))
		return berth.Assertion{}, assertionInvalid("the ID token from %s does not verify: its claims are malformed", k.issuer).WithDetail("issuer", k.issuer)
	}
	var raw json.RawMessage
	if err := tok.Claims(&raw); err != nil {
		return berth.Assertion{}, assertionInvalid("the ID token's claims are malformed")
	}
	claims := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return berth.Assertion{}, assertionInvalid("the ID token's claims are malformed")
	}
	a := berth.Assertion{
		Issuer: tok.Issuer, Subject: tok.Subject, Audience: tok.Audience,
		IssuedAt: tok.IssuedAt, Expires: tok.Expiry, Claims: claims,
	}
	if n, ok := claims["nbf"].(json.Number); ok {
		if s, err := n.Float64(); err == nil {
			a.NotBefore = time.Unix(int64(s), 0).UTC()
		}
	}
	if a.Subject == "" {
		return berth.Assertion{}, assertionInvalid("the ID token from %s has no subject (sub)", k.issuer).WithDetail("issuer", k.issuer)
	}
	if err := a.CheckTime(k.f.now()); err != nil {
		return berth.Assertion{}, err
	}
	return a, nil
}

// verifyOutcome carries the key set's refusal out of go-oidc, which keeps
// only its text.
type verifyOutcome struct{ err error }

type verifyOutcomeKey struct{}

// VerifySignature implements oidc.KeySet: it finds the key the token's kid
// names, fetching the key set again when it is not cached (at most once per
// KeyRefetchInterval) or when the cache is older than KeySetMaxAge, and
// returns the verified payload.
func (k *issuerKeys) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	payload, err := k.verifySignature(ctx, token)
	if err != nil {
		if out, ok := ctx.Value(verifyOutcomeKey{}).(*verifyOutcome); ok {
			out.err = err
		}
	}
	return payload, err
}

func (k *issuerKeys) verifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, assertionAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, assertionInvalid("the client assertion is not a well-formed JWT")
	}
	kid := jws.Signatures[0].Header.KeyID
	now := k.f.now()
	keys, fetched := k.snapshot()
	if k.remote() && (len(keys) == 0 || now.Sub(fetched) > KeySetMaxAge) {
		fresh, err := k.fetch(ctx, fetched)
		switch {
		case err == nil:
			keys, fetched = fresh, now
		case len(keys) == 0:
			return nil, err
		default:
			k.f.logger().WarnContext(ctx, "issuer keys could not be refreshed; using the cached set",
				slog.String("issuer", k.issuer), slog.String("fetched_at", fetched.UTC().Format(time.RFC3339)), slog.String("cause", berth.AsError(err).Message))
		}
	}
	candidates := keysFor(keys, kid)
	if len(candidates) == 0 && k.remote() && now.Sub(fetched) >= KeyRefetchInterval {
		// An unknown kid: the issuer may have rotated its keys.
		fresh, err := k.fetch(ctx, fetched)
		if err != nil {
			return nil, err
		}
		keys, fetched = fresh, now
		candidates = keysFor(keys, kid)
	}
	if len(candidates) == 0 {
		kids := make([]string, 0, len(keys))
		for _, key := range keys {
			kids = append(kids, strconv.Quote(berth.Truncate(key.KeyID, 64)))
		}
		source := "its published key set, fetched at " + fetched.UTC().Format(time.RFC3339)
		if !k.remote() {
			source = "the key set registered with the pipeline"
		}
		e := assertionInvalid("the ID token was signed with key %q, which issuer %s does not have in %s (key ids: %s)",
			berth.Truncate(kid, 64), k.issuer, source, strings.Join(kids, ", ")).
			WithHint("if the issuer rotated its keys, retry in %s; for a pipeline registered with --jwks-file, register the issuer's current key set", KeyRefetchInterval).
			WithDetail("issuer", k.issuer).WithDetail("kid", berth.Truncate(kid, 64))
		return nil, keyMiss{e}
	}
	for i := range candidates {
		if payload, err := jws.Verify(&candidates[i]); err == nil {
			return payload, nil
		}
	}
	return nil, assertionInvalid("the ID token's signature does not verify with key %q of issuer %s: the token was altered, or signed by another key under that kid", berth.Truncate(kid, 64), k.issuer).
		WithHint("present the ID token exactly as the CI system issued it").
		WithDetail("issuer", k.issuer).WithDetail("kid", berth.Truncate(kid, 64))
}

// keysFor returns the keys that may have signed a token naming kid: those
// with that kid, or every key for a token without one, plus keys without a
// kid.
func keysFor(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, key := range keys {
		if kid == "" || key.KeyID == "" || key.KeyID == kid {
			out = append(out, key)
		}
	}
	return out
}

func (k *issuerKeys) snapshot() ([]jose.JSONWebKey, time.Time) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys, k.fetched
}

// fetch fetches the key set, unless another fetch completed after seen (the
// time of the set the caller saw), and returns the current set.
func (k *issuerKeys) fetch(ctx context.Context, seen time.Time) ([]jose.JSONWebKey, error) {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	if keys, fetched := k.snapshot(); !seen.IsZero() && fetched.After(seen) {
		return keys, nil
	}
	fetchCtx := ctx
	if sameHost(k.issuer, k.jwksURL) {
		fetchCtx = berth.WithOutboundTrusted(ctx)
	}
	body, err := k.f.get(fetchCtx, k.jwksURL)
	if err != nil {
		return nil, issuerUnreachable(k.issuer, "its key set (jwks_uri)", err)
	}
	keys, err := parseKeySet(body)
	if err != nil {
		return nil, assertionInvalid("the key set of issuer %s at %s is not a JSON Web Key Set: %s", k.issuer, k.jwksURL, err.Error()).
			WithDetail("issuer", k.issuer)
	}
	k.mu.Lock()
	k.keys, k.fetched = keys, k.f.now()
	k.mu.Unlock()
	return keys, nil
}

// parseKeySet returns the public signing keys of a JWKS document. Keys of a
// type go-jose does not know are skipped (RFC 7517 section 5), and so are
// symmetric keys and keys for encryption.
func parseKeySet(b []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, errors.New("the document is not a JSON object with a keys array")
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := json.Unmarshal(raw, &key); err != nil {
			if errors.Is(err, jose.ErrUnsupportedKeyType) {
				continue
			}
			return nil, errors.New("a key in it does not parse")
		}
		if key.Use == "enc" {
			continue
		}
		if !key.IsPublic() {
			key = key.Public() // a private key published by mistake; nothing for a symmetric one
		}
		if !key.Valid() || key.Key == nil {
			continue
		}
		if key.Algorithm != "" && !slices.Contains(assertionAlgorithms, jose.SignatureAlgorithm(key.Algorithm)) {
			continue
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// get fetches url and returns its body: at most maxFetchSize bytes, and only
// from a 200 answer.
func (f *Federation) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxFetchSize {
		return nil, errTooLarge
	}
	return body, nil
}

type statusError int

func (s statusError) Error() string { return fmt.Sprintf("status %d", int(s)) }

var errTooLarge = errors.New("response larger than 1 MiB")

// fetchCause names why a request failed in a few words, without the
// transport's own text, which may hold addresses and internals.
func fetchCause(err error) string {
	var dns *net.DNSError
	var status statusError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case berth.AsError(err) != nil: // the outbound policy refused the address
		return berth.AsError(err).Message
	case errors.As(err, &status):
		return status.Error()
	case errors.Is(err, errTooLarge):
		return errTooLarge.Error()
	case errors.Is(err, errRedirect):
		return "redirected to a URL berth does not call"
	case errors.Is(err, context.Canceled):
		return "request cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	case errors.As(err, &dns):
		return "host not found"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority), errors.As(err, &hostname):
		return "TLS certificate not trusted"
	}
	return "request failed"
}

// issuerUnreachable is the refusal when the issuer's discovery document or
// keys cannot be fetched.
func issuerUnreachable(issuer, what string, err error) *berth.Error {
	return assertionInvalid("berth could not fetch %s from issuer %s: %s", what, issuer, fetchCause(err)).
		WithHint("check that this server reaches %s (proxy, firewall, DNS); for an issuer it cannot reach, register the pipeline with --jwks-file", issuer).
		WithDetail("issuer", issuer)
}

func algorithmNames(algs []jose.SignatureAlgorithm) []string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return names
}

func assertionInvalid(format string, args ...any) *berth.Error {
	return berth.Errorf(berth.CodeAssertionInvalid, format, args...).
		WithHint("present the CI job's current ID token: berth login HOST --connection NAME fetches one")
}
