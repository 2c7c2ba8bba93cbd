package oidctest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Person is who a Company signs in: its authorization endpoint signs this
// person in at once, with no page, as if they had typed their password.
type Person struct {
	Subject  string // sub; "00u-ada" by default
	Username string // preferred_username; "ada" by default
	Email    string // email; "ada@corp.example" by default
	// EmailVerified sends email_verified: true (no such claim otherwise).
	EmailVerified bool
	Groups        []string // the groups claim
}

// Company is a company's identity provider, as Entra ID, Keycloak, Dex or
// Okta are to berth: an Issuer with an authorization endpoint (the
// authorization code flow with PKCE, S256 only, as OAuth 2.1 asks) and a
// token endpoint (authorization_code and refresh_token grants, client
// authentication by client_secret_basic or client_secret_post). Its ID
// tokens carry nonce, preferred_username, email and the groups claim.
//
// Tests change the person, their groups, or make the provider refuse, while
// it runs: a person removed from a group upstream is SetPerson with fewer
// groups, then a refresh.
type Company struct {
	*Issuer
	ClientID     string
	ClientSecret string
	// GroupsClaim names the claim the groups go in ("groups").
	GroupsClaim string

	mu        sync.Mutex
	person    Person
	refuse    string // the error of the next authorizations, "" to sign in
	noRefresh bool   // refuse refresh_token grants with invalid_grant
	noRT      bool   // return no refresh token
	codes     map[string]grant
	refreshes map[string]string // refresh token → subject
	tokenReqs int
}

type grant struct {
	clientID, redirectURI, challenge, nonce string
	person                                  Person
	expires                                 time.Time
}

// NewCompany starts a company provider on 127.0.0.1 for the application
// clientID with secret, signing in the default Person.
func NewCompany(t testing.TB, clientID, secret string) *Company {
	t.Helper()
	c := &Company{Issuer: New(t), ClientID: clientID, ClientSecret: secret, GroupsClaim: "groups",
		codes: map[string]grant{}, refreshes: map[string]string{}}
	c.person = Person{Subject: "00u-ada", Username: "ada", Email: "ada@corp.example", Groups: []string{"registry-users"}}
	c.Issuer.mu.Lock()
	c.Issuer.routes = map[string]http.HandlerFunc{"/authorize": c.authorize, "/token": c.token}
	c.Issuer.discoveryExtra = map[string]any{
		"authorization_endpoint":                c.URL + "/authorize",
		"token_endpoint":                        c.URL + "/token",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      []string{"openid", "profile", "email", "groups", "offline_access"},
		"claims_supported":                      []string{"sub", "aud", "exp", "iat", "iss", "nonce", "preferred_username", "email", "groups"},
	}
	c.Issuer.mu.Unlock()
	return c
}

// SetPerson makes p the person signed in from now on, and the one refreshes
// answer for (by subject): changing Groups is a change upstream.
func (c *Company) SetPerson(p Person) {
	c.mu.Lock()
	c.person = p
	c.mu.Unlock()
}

// Refuse makes the authorization endpoint answer the next sign-ins with the
// OAuth 2.0 error (access_denied, …); "" signs in again.
func (c *Company) Refuse(oauthError string) {
	c.mu.Lock()
	c.refuse = oauthError
	c.mu.Unlock()
}

// RefuseRefresh makes refresh_token grants fail with invalid_grant, as when
// the person was disabled upstream.
func (c *Company) RefuseRefresh(refuse bool) {
	c.mu.Lock()
	c.noRefresh = refuse
	c.mu.Unlock()
}

// NoRefreshTokens stops the token endpoint from returning refresh tokens.
func (c *Company) NoRefreshTokens() {
	c.mu.Lock()
	c.noRT = true
	c.mu.Unlock()
}

// TokenRequests returns how many requests the token endpoint answered.
func (c *Company) TokenRequests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokenReqs
}

// authorize is the authorization endpoint (RFC 6749 section 4.1.1, RFC 7636
// section 4.3). A request it cannot redirect (unknown client, no
// redirect_uri) is answered 400; everything else is redirected.
func (c *Company) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if q.Get("client_id") != c.ClientID || err != nil || !redirect.IsAbs() {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	answer := redirect.Query()
	answer.Set("state", q.Get("state"))
	fail := func(code, desc string) {
		answer.Set("error", code)
		answer.Set("error_description", desc)
		redirect.RawQuery = answer.Encode()
		http.Redirect(w, r, redirect.String(), http.StatusFound)
	}
	c.mu.Lock()
	refuse, person := c.refuse, c.person
	c.mu.Unlock()
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only code")
		return
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		fail("invalid_scope", "openid is required")
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		fail("invalid_request", "PKCE with S256 is required")
		return
	case refuse != "":
		fail(refuse, "the test provider refuses")
		return
	}
	code := rand.Text()
	c.mu.Lock()
	c.codes[code] = grant{clientID: c.ClientID, redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"),
		nonce: q.Get("nonce"), person: person, expires: c.now().Add(time.Minute)}
	c.mu.Unlock()
	answer.Set("code", code)
	redirect.RawQuery = answer.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// token is the token endpoint (RFC 6749 sections 4.1.3 and 6).
func (c *Company) token(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.tokenReqs++
	c.mu.Unlock()
	fail := func(status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		fail(http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != c.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(c.ClientSecret)) != 1 {
		fail(http.StatusUnauthorized, "invalid_client")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var person Person
	nonce := ""
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g, ok := c.codes[r.PostForm.Get("code")]
		delete(c.codes, r.PostForm.Get("code")) // one use
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case !ok || c.now().After(g.expires) || g.redirectURI != r.PostForm.Get("redirect_uri"):
			fail(http.StatusBadRequest, "invalid_grant")
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			fail(http.StatusBadRequest, "invalid_grant") // PKCE: RFC 7636 section 4.6
			return
		}
		person, nonce = g.person, g.nonce
	case "refresh_token":
		sub, ok := c.refreshes[r.PostForm.Get("refresh_token")]
		if !ok || c.noRefresh || sub != c.person.Subject {
			fail(http.StatusBadRequest, "invalid_grant")
			return
		}
		delete(c.refreshes, r.PostForm.Get("refresh_token")) // rotated
		person = c.person
	default:
		fail(http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	claims := map[string]any{"sub": person.Subject, "aud": c.ClientID, "preferred_username": person.Username, "email": person.Email}
	if person.EmailVerified {
		claims["email_verified"] = true
	}
	if person.Groups != nil {
		claims[c.GroupsClaim] = person.Groups
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	resp := map[string]any{
		"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 3600,
		"id_token": c.Mint(claims, Lifetime(time.Hour)),
	}
	if !c.noRT {
		rt := rand.Text()
		c.refreshes[rt] = person.Subject
		resp["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}
