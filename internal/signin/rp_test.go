package signin

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oidctest"
)

// codeFrom follows the provider's authorization endpoint once, as a
// browser would, and returns the query of the redirect back to berth.
func codeFrom(t *testing.T, authURL string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorization endpoint: %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

func TestRelyingPartyCodeFlow(t *testing.T) {
	company := oidctest.NewCompany(t, "berth-app", "upstream-secret")
	company.SetPerson(oidctest.Person{Subject: "00u-ada", Username: "Ada", Email: "ada@corp.example", Groups: []string{"devs", "ops"}})
	idp := berth.IdentityProvider{Name: "corp", Issuer: company.URL, ClientID: "berth-app", GroupsClaim: "groups", UsernameClaim: "preferred_username", Scopes: berth.DefaultIdPScopes}
	rp := &RelyingParty{}
	ctx := context.Background()
	const redirect = "http://127.0.0.1:1/login/callback"

	start := func() url.Values {
		u, err := rp.AuthCodeURL(ctx, idp, redirect, "state-1", "nonce-1", "verifier-0123456789012345678901234567890123")
		if err != nil {
			t.Fatal(err)
		}
		q := codeFrom(t, u)
		if q.Get("state") != "state-1" || q.Get("code") == "" {
			t.Fatalf("redirect back: %v", q)
		}
		return q
	}

	q := start()
	id, err := rp.Exchange(ctx, idp, "upstream-secret", redirect, q.Get("code"), "verifier-0123456789012345678901234567890123", "nonce-1")
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "00u-ada" || id.Issuer != company.URL || id.Username != "Ada" || !slices.Equal(id.Groups, []string{"devs", "ops"}) || id.RefreshToken == "" {
		t.Fatalf("identity: %+v", id)
	}

	// A code is redeemed with its own PKCE verifier only.
	q = start()
	_, err = rp.Exchange(ctx, idp, "upstream-secret", redirect, q.Get("code"), "another-verifier-0123456789012345678901234567", "nonce-1")
	if !berth.IsCode(err, berth.CodeSignInRefused) || berth.AsError(err).Detail["idp_error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %v", err)
	}
	// The ID token must carry this sign-in's nonce.
	q = start()
	if _, err = rp.Exchange(ctx, idp, "upstream-secret", redirect, q.Get("code"), "verifier-0123456789012345678901234567890123", "nonce-2"); !berth.IsCode(err, berth.CodeSignInRefused) {
		t.Fatalf("wrong nonce: %v", err)
	}
	// A wrong client secret is the provider's invalid_client.
	q = start()
	_, err = rp.Exchange(ctx, idp, "stale-secret", redirect, q.Get("code"), "verifier-0123456789012345678901234567890123", "nonce-1")
	if !berth.IsCode(err, berth.CodeSignInRefused) || berth.AsError(err).Detail["idp_error"] != "invalid_client" {
		t.Fatalf("wrong secret: %v", err)
	}

	// Refresh re-reads the groups; a refused refresh is signin_refused.
	company.SetPerson(oidctest.Person{Subject: "00u-ada", Username: "Ada", Groups: []string{"devs"}})
	id2, err := rp.Refresh(ctx, idp, "upstream-secret", id.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(id2.Groups, []string{"devs"}) || id2.RefreshToken == "" || id2.RefreshToken == id.RefreshToken {
		t.Fatalf("refreshed: %+v", id2)
	}
	company.RefuseRefresh(true)
	if _, err := rp.Refresh(ctx, idp, "upstream-secret", id2.RefreshToken); !berth.IsCode(err, berth.CodeSignInRefused) {
		t.Fatalf("refused refresh: %v", err)
	}
}

// Without the username claim, the email claim names the person only when
// the provider says it verified the address: an unverified one is whatever
// someone typed into a profile, and the name it gives is first come, first
// served. Otherwise the subject names them.
func TestUsernameFromVerifiedEmailOnly(t *testing.T) {
	company := oidctest.NewCompany(t, "berth-app", "upstream-secret")
	idp := berth.IdentityProvider{Name: "corp", Issuer: company.URL, ClientID: "berth-app", GroupsClaim: "groups", UsernameClaim: "preferred_username", Scopes: berth.DefaultIdPScopes}
	rp := &RelyingParty{}
	const redirect, verifier = "http://127.0.0.1:1/login/callback", "verifier-0123456789012345678901234567890123"
	for _, c := range []struct {
		verified bool
		want     string
	}{{false, "00u-mallory"}, {true, "ada.lovelace@corp.example"}} {
		company.SetPerson(oidctest.Person{Subject: "00u-mallory", Email: "ada.lovelace@corp.example", EmailVerified: c.verified})
		u, err := rp.AuthCodeURL(t.Context(), idp, redirect, "s", "n", verifier)
		if err != nil {
			t.Fatal(err)
		}
		id, err := rp.Exchange(t.Context(), idp, "upstream-secret", redirect, codeFrom(t, u).Get("code"), verifier, "n")
		if err != nil {
			t.Fatal(err)
		}
		if id.Username != c.want {
			t.Errorf("email_verified %v: username %q, want %q", c.verified, id.Username, c.want)
		}
	}
}

func TestRelyingPartyUnreachable(t *testing.T) {
	company := oidctest.NewCompany(t, "berth-app", "s")
	company.Close()
	idp := berth.IdentityProvider{Name: "corp", Issuer: company.URL, ClientID: "berth-app", Scopes: berth.DefaultIdPScopes}
	_, err := (&RelyingParty{}).AuthCodeURL(context.Background(), idp, "http://127.0.0.1:1/cb", "s", "n", "v")
	if !berth.IsCode(err, berth.CodeIdPUnreachable) {
		t.Fatalf("closed provider: %v", err)
	}
	idp.Issuer = "http://idp.example.com"
	if _, err := (&RelyingParty{}).AuthCodeURL(context.Background(), idp, "http://127.0.0.1:1/cb", "s", "n", "v"); !berth.IsCode(err, berth.CodeInvalid) {
		t.Fatalf("plain http off loopback: %v", err)
	}
}

func TestLocalNext(t *testing.T) {
	for in, want := range map[string]string{
		"/device?user_code=BCDF-GHJK": "/device?user_code=BCDF-GHJK",
		"/":                           "/",
		"":                            "",
		"https://evil.example":        "",
		"//evil.example":              "",
		"/\\evil.example":             "",
		"/\t/evil.example":            "",
		"/\n/evil.example":            "",
		"device":                      "",
	} {
		if got := LocalNext(in); got != want {
			t.Errorf("LocalNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// The discovery document is kept for DiscoveryTTL, then fetched again: a
// provider that went away is idp_unreachable within the hour.
func TestRelyingPartyDiscoveryTTL(t *testing.T) {
	company := oidctest.NewCompany(t, "berth-app", "s")
	idp := berth.IdentityProvider{Name: "corp", Issuer: company.URL, ClientID: "berth-app", Scopes: berth.DefaultIdPScopes}
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	rp := &RelyingParty{Now: func() time.Time { return now }}
	ctx := context.Background()
	if _, err := rp.AuthCodeURL(ctx, idp, "http://127.0.0.1:1/cb", "s", "n", "v"); err != nil {
		t.Fatal(err)
	}
	fetches := company.DiscoveryFetches()
	now = now.Add(DiscoveryTTL - time.Second)
	if _, err := rp.AuthCodeURL(ctx, idp, "http://127.0.0.1:1/cb", "s", "n", "v"); err != nil || company.DiscoveryFetches() != fetches {
		t.Fatalf("within the TTL: %v, %d fetches (was %d)", err, company.DiscoveryFetches(), fetches)
	}
	company.Close()
	now = now.Add(time.Second)
	if _, err := rp.AuthCodeURL(ctx, idp, "http://127.0.0.1:1/cb", "s", "n", "v"); !berth.IsCode(err, berth.CodeIdPUnreachable) {
		t.Fatalf("after the TTL, the provider gone: %v", err)
	}
}
