package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/berth-dev/berth"
)

// FetchTimeout bounds one call to an identity provider.
const FetchTimeout = 15 * time.Second

// Identity is what one sign-in or refresh at a provider proved: who the
// person is there, the name and groups its claims give, and the provider's
// refresh token when it returned one.
type Identity struct {
	Issuer   string
	Subject  string
	Username string
	Groups   []string
	// RefreshToken is the provider's; "" when it returned none.
	RefreshToken string
}

// DiscoveryTTL is how long an issuer's discovery document is kept before
// it is fetched again.
const DiscoveryTTL = time.Hour

// RelyingParty is berth as an OpenID Connect client of the identity
// providers (github.com/coreos/go-oidc for discovery and ID token
// verification, golang.org/x/oauth2 for the code and refresh grants). It
// keeps each issuer's discovery document for DiscoveryTTL and calls only
// where the outbound policy allows.
type RelyingParty struct {
	// Client makes every call to a provider; one with the outbound policy's
	// transport when nil.
	Client   *http.Client
	Outbound berth.OutboundPolicy
	Now      func() time.Time

	mu        sync.Mutex
	providers map[string]discovered
}

type discovered struct {
	op      *oidc.Provider
	fetched time.Time
}

func (rp *RelyingParty) client() *http.Client {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.Client == nil {
		rp.Client = &http.Client{Timeout: FetchTimeout, Transport: rp.Outbound.Transport("identity provider")}
	}
	return rp.Client
}

func (rp *RelyingParty) now() time.Time {
	if rp.Now != nil {
		return rp.Now()
	}
	return time.Now()
}

// ctx returns ctx carrying the HTTP client for go-oidc and x/oauth2, and
// trusted for the outbound policy: an owner registered the provider.
func (rp *RelyingParty) ctx(ctx context.Context) context.Context {
	c := rp.client()
	ctx = berth.WithOutboundTrusted(ctx)
	return context.WithValue(oidc.ClientContext(ctx, c), oauth2.HTTPClient, c)
}

// provider returns the discovered provider of p, or idp_unreachable.
func (rp *RelyingParty) provider(ctx context.Context, p berth.IdentityProvider) (*oidc.Provider, error) {
	rp.mu.Lock()
	d, ok := rp.providers[p.Issuer]
	rp.mu.Unlock()
	if ok && rp.now().Sub(d.fetched) < DiscoveryTTL {
		return d.op, nil
	}
	if err := rp.Outbound.CheckURL("issuer of identity provider "+p.Name, p.Issuer); err != nil {
		return nil, err
	}
	op, err := oidc.NewProvider(rp.ctx(ctx), p.Issuer)
	if err != nil {
		return nil, unreachable(p, "its discovery document", err)
	}
	rp.mu.Lock()
	if rp.providers == nil || len(rp.providers) > 1000 {
		rp.providers = map[string]discovered{}
	}
	rp.providers[p.Issuer] = discovered{op: op, fetched: rp.now()}
	rp.mu.Unlock()
	return op, nil
}

// unreachable refuses a sign-in whose provider did not answer. The cause
// (go-oidc's or net/http's text: addresses, DNS, TLS) is for the audit log,
// which owners read, not for whoever opened the sign-in page.
func unreachable(p berth.IdentityProvider, what string, err error) *berth.Error {
	e := berth.Errorf(berth.CodeIdPUnreachable, "identity provider %s (%s) did not answer for %s", p.Name, p.Issuer, what).
		WithHint("check the issuer with berth idp show %s, and that the server reaches %s/.well-known/openid-configuration; the audit log has the cause (berth audit --code idp_unreachable)", p.Name, p.Issuer).
		WithDetail("idp", p.Name)
	e.Private = map[string]string{"cause": berth.RedactCredentials(err.Error())}
	return e
}

func refused(p berth.IdentityProvider, format string, args ...any) *berth.Error {
	return berth.Errorf(berth.CodeSignInRefused, "identity provider %s: %s", p.Name, fmt.Sprintf(format, args...)).
		WithHint("sign in again from /login; if it repeats, check berth idp show %s against the application registered at the provider", p.Name).
		WithDetail("idp", p.Name)
}

func (rp *RelyingParty) config(op *oidc.Provider, p berth.IdentityProvider, secret, redirectURL string) *oauth2.Config {
	return &oauth2.Config{ClientID: p.ClientID, ClientSecret: secret, Endpoint: op.Endpoint(), RedirectURL: redirectURL, Scopes: p.Scopes}
}

// AuthCodeURL returns the URL of p's authorization endpoint that starts a
// sign-in: the code flow with state, nonce and the PKCE challenge (S256) of
// verifier, answered at redirectURL.
func (rp *RelyingParty) AuthCodeURL(ctx context.Context, p berth.IdentityProvider, redirectURL, state, nonce, verifier string) (string, error) {
	op, err := rp.provider(ctx, p)
	if err != nil {
		return "", err
	}
	return rp.config(op, p, "", redirectURL).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// Exchange redeems an authorization code with p's client secret and the PKCE
// verifier, and verifies the ID token (issuer, audience, signature, expiry)
// and its nonce. It returns idp_unreachable when the provider does not
// answer and signin_refused when it refuses or its ID token does not verify.
func (rp *RelyingParty) Exchange(ctx context.Context, p berth.IdentityProvider, secret, redirectURL, code, verifier, nonce string) (Identity, error) {
	op, err := rp.provider(ctx, p)
	if err != nil {
		return Identity{}, err
	}
	tok, err := rp.config(op, p, secret, redirectURL).Exchange(rp.ctx(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Identity{}, tokenError(p, "redeeming the sign-in's code", err)
	}
	id, err := rp.verify(ctx, op, p, tok)
	if err != nil {
		return Identity{}, err
	}
	if id.nonce != nonce {
		return Identity{}, refused(p, "the ID token's nonce is not the one this sign-in sent")
	}
	return id.Identity, nil
}

// Refresh redeems the provider's refresh token: the person's current
// identity and groups, and the provider's next refresh token (the same one
// when it does not rotate them). signin_refused when the provider refuses
// (the person was removed or disabled upstream).
func (rp *RelyingParty) Refresh(ctx context.Context, p berth.IdentityProvider, secret, refreshToken string) (Identity, error) {
	op, err := rp.provider(ctx, p)
	if err != nil {
		return Identity{}, err
	}
	tok, err := rp.config(op, p, secret, "").TokenSource(rp.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return Identity{}, tokenError(p, "refreshing the sign-in", err)
	}
	id, err := rp.verify(ctx, op, p, tok)
	if err != nil {
		return Identity{}, err
	}
	if id.RefreshToken == "" {
		id.RefreshToken = refreshToken
	}
	return id.Identity, nil
}

func tokenError(p berth.IdentityProvider, what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response != nil && re.Response.StatusCode >= 500 {
			return unreachable(p, what, fmt.Errorf("its token endpoint answered %s", re.Response.Status))
		}
		code := re.ErrorCode
		if code == "" {
			code = "an error without an OAuth 2.0 error code"
		}
		e := refused(p, "%s was refused: %s", what, code)
		if code == "invalid_client" {
			e.WithHint("the provider refused berth's client id or client secret: renew the secret upstream, then berth idp remove %s and berth idp add %s … --client-secret-stdin", p.Name, p.Name)
		}
		return e.WithDetail("idp_error", code)
	}
	return unreachable(p, what, err)
}

// emailVerified reports whether the claims say the email claim was
// verified by the provider (email_verified true; some send it as a string).
func emailVerified(claims map[string]any) bool {
	switch v := claims["email_verified"].(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

type verified struct {
	Identity
	nonce string
}

func (rp *RelyingParty) verify(ctx context.Context, op *oidc.Provider, p berth.IdentityProvider, tok *oauth2.Token) (verified, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return verified{}, refused(p, "the token response holds no ID token; the scopes must include openid")
	}
	idt, err := op.VerifierContext(rp.ctx(ctx), &oidc.Config{ClientID: p.ClientID, Now: rp.now}).Verify(rp.ctx(ctx), raw)
	if err != nil {
		e := refused(p, "its ID token does not verify")
		e.Private = map[string]string{"cause": berth.RedactCredentials(err.Error())}
		return verified{}, e
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return verified{}, refused(p, "its ID token's claims are not a JSON object")
	}
	if idt.Subject == "" {
		return verified{}, refused(p, "its ID token names no subject")
	}
	v := verified{Identity: Identity{Issuer: idt.Issuer, Subject: idt.Subject, RefreshToken: tok.RefreshToken}, nonce: idt.Nonce}
	v.Username, _ = claims[p.UsernameClaim].(string)
	if v.Username == "" && emailVerified(claims) {
		// Only a verified address: anyone may type any address into an
		// account's profile at many providers, and the name it gives is
		// taken first come, first served.
		v.Username, _ = claims["email"].(string)
	}
	if v.Username == "" {
		v.Username = idt.Subject
	}
	switch g := claims[p.GroupsClaim].(type) {
	case string:
		v.Groups = []string{g}
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok {
				v.Groups = append(v.Groups, s)
			}
		}
	}
	return v, nil
}
