package oauth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/testclock"
)

// fakeClock is a clock the tests advance; the server's goroutines read it.
// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// tokenEnv is a token endpoint on a real server, with a real Provider on
// SQLite. It remembers every response and every credential it saw, and at the
// end of the test checks that no credential leaked into a log line or an
// error body, and no client secret into any body.
type tokenEnv struct {
	t      testing.TB
	db     *sqlite.DB
	p      *oauth.Provider
	h      *oauth.TokenHandler
	srv    *httptest.Server
	clock  *testclock.Clock
	hasher *berth.SecretHasher
	rand   *rand.ChaCha8
	logs   *lockedBuffer

	mu        sync.Mutex
	responses []tokenResp
	secrets   []string // client secrets and their hashes: never in any body or log
	refresh   []string // refresh tokens and their hashes, access tokens: never in a log or an error body
}

type tokenEnvOptions struct {
	clientLimit, addrLimit int
}

func newTokenEnv(t testing.TB) *tokenEnv {
	return newTokenEnvWith(t, tokenEnvOptions{clientLimit: 5, addrLimit: 50})
}

func newTokenEnvWith(t testing.TB, o tokenEnvOptions) *tokenEnv {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kr, err := oauth.LoadKeyring(t.TempDir(), t0, seeded(7))
	if err != nil {
		t.Fatal(err)
	}
	kr.Issuer, kr.Audience = issuer, audience
	hasher, err := berth.NewSecretHasher(bytes.Repeat([]byte{0x5a}, berth.SecretPepperSize))
	if err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(t0)
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := &oauth.Provider{
		Store:   db,
		Hasher:  hasher,
		Keys:    kr,
		Refresh: &oauth.RefreshTokens{Store: db, Rand: seeded(8)},
		Clients: oauth.NewLimiter(o.clientLimit, time.Minute, 0, clk.Now),
		Addrs:   oauth.NewLimiter(o.addrLimit, time.Minute, 0, clk.Now),
		Now:     clk.Now,
		Service: audience,
		Logger:  logger,
	}
	e := &tokenEnv{t: t, db: db, p: p, h: &oauth.TokenHandler{Provider: p, Logger: logger},
		clock: clk, hasher: hasher, rand: seeded(9), logs: logs}
	var ids atomic.Int64
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := fmt.Sprintf("req-%d", ids.Add(1))
		ctx := berth.WithRequestID(r.Context(), id)
		if a := r.Header.Get(testSourceHeader); a != "" { // the server's middleware records the source
			ctx = berth.WithSourceAddress(ctx, a)
		}
		e.h.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(e.srv.Close)
	if tt, ok := t.(*testing.T); ok {
		t.Cleanup(func() { e.checkNoLeaks(tt) })
	}
	return e
}

// testSourceHeader names the source address a test request stands for.
const testSourceHeader = "X-Test-Source"

// testClient is a principal with one secret.
type testClient struct {
	berth.Principal
	Secret berth.Secret
	Value  string
}

// client creates a principal holding the given roles ("pull team/app") and a
// secret living lifetime.
func (e *tokenEnv) client(name string, lifetime time.Duration, roles ...string) testClient {
	e.t.Helper()
	ctx := context.Background()
	p, err := berth.NewPrincipal(e.rand, name, berth.PrincipalService, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.CreatePrincipal(ctx, p); err != nil {
		e.t.Fatal(err)
	}
	for _, rs := range roles {
		e.assign(p, rs)
	}
	s, v := e.addSecret(p, lifetime)
	return testClient{Principal: p, Secret: s, Value: v}
}

// assign gives p a role, written "ROLE SCOPE".
func (e *tokenEnv) assign(p berth.Principal, roleScope string) {
	e.t.Helper()
	role, scope, _ := strings.Cut(roleScope, " ")
	sc, err := berth.ParseScope(scope)
	if err != nil {
		e.t.Fatal(err)
	}
	a := berth.RoleAssignment{PrincipalID: p.ID, PrincipalName: p.Name, Role: berth.Role(role), Scope: sc, Created: e.clock.Now()}
	if err := e.db.CreateRoleAssignment(context.Background(), a); err != nil {
		e.t.Fatal(err)
	}
	e.p.Invalidate()
}

func (e *tokenEnv) addSecret(p berth.Principal, lifetime time.Duration) (berth.Secret, string) {
	e.t.Helper()
	s, v, err := berth.NewSecret(e.rand, e.hasher, p.ID, e.clock.Now(), lifetime, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.CreateSecret(context.Background(), s); err != nil {
		e.t.Fatal(err)
	}
	e.p.Invalidate()
	e.mu.Lock()
	e.secrets = append(e.secrets, v.Reveal(), hex.EncodeToString(s.Hash),
		base64.StdEncoding.EncodeToString(s.Hash), base64.RawURLEncoding.EncodeToString(s.Hash))
	e.mu.Unlock()
	return s, v.Reveal()
}

// disable disables p in the store, as the management API would.
func (e *tokenEnv) disable(p berth.Principal) {
	e.t.Helper()
	yes := true
	if _, err := e.db.UpdatePrincipal(context.Background(), p.ID, berth.PrincipalUpdate{Disabled: &yes}); err != nil {
		e.t.Fatal(err)
	}
	e.p.Invalidate()
}

// revokeSecret removes a secret as the management API would; withTokens also
// revokes the refresh tokens it produced.
func (e *tokenEnv) revokeSecret(s berth.Secret, withTokens bool) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.db.RevokeSecret(ctx, s.ID, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
	if withTokens {
		if _, err := e.db.RevokeRefreshTokensByCredential(ctx, s.ID, e.clock.Now()); err != nil {
			e.t.Fatal(err)
		}
	}
	e.p.Invalidate()
}

// noteSent remembers a credential the test sends.
func (e *tokenEnv) noteSent(values ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range values {
		switch {
		case strings.HasPrefix(v, berth.SecretPrefix):
			e.secrets = append(e.secrets, v)
		case strings.HasPrefix(v, berth.RefreshTokenPrefix):
			e.refresh = append(e.refresh, v)
		}
	}
}

// tokenResp is a response of the token endpoint.
type tokenResp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r tokenResp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("status %d, body %s: %v", r.Status, r.Body, err)
	}
}

// get sends a Docker token GET with query q and, when creds holds a user and a
// password, Basic credentials.
func (e *tokenEnv) get(q url.Values, creds ...string) tokenResp {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+oauth.TokenPath+"?"+q.Encode(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(creds) == 2 {
		req.SetBasicAuth(creds[0], creds[1])
		e.noteSent(creds[1])
	}
	for _, vs := range q {
		e.noteSent(vs...)
	}
	return e.do(req)
}

// post sends an OAuth 2.0 form POST and, when creds holds a user and a
// password, Basic credentials.
func (e *tokenEnv) post(form url.Values, creds ...string) tokenResp {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+oauth.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(creds) == 2 {
		req.SetBasicAuth(creds[0], creds[1])
		e.noteSent(creds[1])
	}
	for _, vs := range form {
		e.noteSent(vs...)
	}
	return e.do(req)
}

func (e *tokenEnv) do(req *http.Request) tokenResp {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := tokenResp{Status: resp.StatusCode, Header: resp.Header, Body: body}
	e.mu.Lock()
	e.responses = append(e.responses, r)
	if r.Status == http.StatusOK {
		var tr struct {
			Token        string `json:"token"`
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if json.Unmarshal(body, &tr) == nil {
			for _, v := range []string{tr.Token, tr.AccessToken, tr.RefreshToken} {
				if v != "" {
					e.refresh = append(e.refresh, v)
				}
			}
			if v, err := berth.ParseRefreshTokenValue(tr.RefreshToken); err == nil {
				e.refresh = append(e.refresh, v.Hash())
			}
		}
	}
	e.mu.Unlock()
	return r
}

// checkNoLeaks searches every log line and response for the credentials the
// test created, sent and received.
func (e *tokenEnv) checkNoLeaks(t *testing.T) {
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := e.logs.String()
	for _, s := range append(slices.Clone(e.secrets), e.refresh...) {
		for line := range strings.Lines(logs) {
			if strings.Contains(line, s) {
				t.Errorf("the log holds a credential or hash %.12s…: %s", s, line)
				break
			}
		}
	}
	for _, r := range e.responses {
		for _, s := range e.secrets {
			if bytes.Contains(r.Body, []byte(s)) {
				t.Errorf("a response (status %d) holds a client secret or its hash %.12s…: %s", r.Status, s, r.Body)
			}
		}
		if r.Status == http.StatusOK {
			continue
		}
		for _, s := range e.refresh {
			if bytes.Contains(r.Body, []byte(s)) {
				t.Errorf("an error response (status %d) holds a token or its hash %.12s…: %s", r.Status, s, r.Body)
			}
		}
	}
}

// errorBody is the token endpoint's error response.
type errorBody struct {
	Error       string   `json:"error"`
	Description string   `json:"error_description"`
	Reason      string   `json:"reason"`
	ErrorCodes  []string `json:"error_codes"`
	Hint        string   `json:"hint"`
	RequestID   string   `json:"request_id"`
	ErrorURI    string   `json:"error_uri"`
	Errors      []struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Detail  map[string]any `json:"detail"`
	} `json:"errors"`
}

// wantRefusal checks that r refuses with the status, OAuth error and reason,
// in every part of the error body, and returns the body.
func wantRefusal(t *testing.T, r tokenResp, status int, oauthError string, reason berth.Code) errorBody {
	t.Helper()
	var b errorBody
	r.decode(t, &b)
	if r.Status != status || b.Error != oauthError || b.Reason != string(reason) {
		t.Fatalf("got status %d, error %q, reason %q; want %d, %q, %q\nbody: %s", r.Status, b.Error, b.Reason, status, oauthError, reason, r.Body)
	}
	if !slices.Equal(b.ErrorCodes, []string{string(reason)}) {
		t.Errorf("error_codes %v, want [%s]", b.ErrorCodes, reason)
	}
	if b.Description == "" || b.RequestID == "" {
		t.Errorf("error_description %q, request_id %q: want both", b.Description, b.RequestID)
	}
	if len(b.Errors) != 1 {
		t.Fatalf("errors %+v, want one entry", b.Errors)
	}
	entry := b.Errors[0]
	if entry.Code != berth.LookupCode(reason).OCI || entry.Detail["reason"] != string(reason) ||
		!strings.Contains(entry.Message, b.Description) || !strings.Contains(entry.Message, string(reason)) {
		t.Errorf("errors[0] = %+v; want code %s, detail.reason %s and a message holding the reason and the description",
			entry, berth.LookupCode(reason).OCI, reason)
	}
	if b.Hint != "" && (entry.Detail["hint"] != b.Hint || !strings.Contains(entry.Message, b.Hint)) {
		t.Errorf("errors[0] = %+v; want the hint %q in detail and message", entry, b.Hint)
	}
	if got := r.Header.Get("WWW-Authenticate"); (status == http.StatusUnauthorized) != (got == `Basic realm="berth"`) {
		t.Errorf("status %d with WWW-Authenticate %q", status, got)
	}
	wantNoStore(t, r)
	return b
}

func wantNoStore(t *testing.T, r tokenResp) {
	t.Helper()
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
		t.Errorf("Cache-Control %q, Pragma %q; want no-store, no-cache", r.Header.Get("Cache-Control"), r.Header.Get("Pragma"))
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

// dockerToken is the Docker GET response.
type dockerToken struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token"`
	// RefreshTokenExpiresIn is the refresh token's lifetime in seconds.
	RefreshTokenExpiresIn int `json:"refresh_token_expires_in"`
}

// oauthToken is the OAuth 2.0 POST response.
type oauthToken struct {
	AccessToken  string  `json:"access_token"`
	TokenType    string  `json:"token_type"`
	ExpiresIn    int     `json:"expires_in"`
	Scope        *string `json:"scope"`
	IssuedAt     string  `json:"issued_at"`
	RefreshToken string  `json:"refresh_token"`
}

func (e *tokenEnv) dockerToken(t *testing.T, r tokenResp) dockerToken {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	wantNoStore(t, r)
	var tok dockerToken
	r.decode(t, &tok)
	if tok.Token == "" || tok.Token != tok.AccessToken {
		t.Errorf("token %q and access_token %q: want the same token", tok.Token, tok.AccessToken)
	}
	if tok.ExpiresIn != int(berth.DefaultAccessTokenLifetime/time.Second) {
		t.Errorf("expires_in %d", tok.ExpiresIn)
	}
	if at, err := time.Parse(time.RFC3339, tok.IssuedAt); err != nil || !at.Equal(e.clock.Now()) {
		t.Errorf("issued_at %q, want %s in RFC 3339", tok.IssuedAt, e.clock.Now().Format(time.RFC3339))
	}
	return tok
}

func (e *tokenEnv) oauthToken(t *testing.T, r tokenResp) oauthToken {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	wantNoStore(t, r)
	var tok oauthToken
	r.decode(t, &tok)
	if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.Scope == nil ||
		tok.ExpiresIn != int(berth.DefaultAccessTokenLifetime/time.Second) {
		t.Errorf("token response %s", r.Body)
	}
	if at, err := time.Parse(time.RFC3339, tok.IssuedAt); err != nil || !at.Equal(e.clock.Now()) {
		t.Errorf("issued_at %q, want %s in RFC 3339", tok.IssuedAt, e.clock.Now().Format(time.RFC3339))
	}
	return tok
}

// verify checks token with the Provider's keys and returns its claims.
func (e *tokenEnv) verify(t *testing.T, token string) berth.AccessClaims {
	t.Helper()
	c, err := e.p.Keys.Verify(token, e.clock.Now())
	if err != nil {
		t.Fatalf("verify the issued token: %v", err)
	}
	return c
}

func wantAccess(t *testing.T, c berth.AccessClaims, want ...string) {
	t.Helper()
	var got []string
	for _, ra := range c.Access {
		got = append(got, ra.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("access claim %v, want %v", got, want)
	}
}

func scopeQuery(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	return q
}

const day = 24 * time.Hour

func TestTokenDockerGET(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day, "push team/*", "pull base/*")
	q := scopeQuery("service", audience, "account", "ci-web", "client_id", "docker",
		"scope", "repository:team/app:pull,push repository:base/alpine:pull",
		"scope", "repository:other/x:pull")
	for _, user := range []string{c.ClientID, c.Name} {
		tok := e.dockerToken(t, e.get(q, user, c.Value))
		if tok.RefreshToken != "" {
			t.Errorf("a refresh token without offline_token=true")
		}
		claims := e.verify(t, tok.Token)
		// other/x is asked for and not granted: left out, not an error.
		wantAccess(t, claims, "repository:team/app:pull,push", "repository:base/alpine:pull")
		if claims.Subject != c.ID || claims.CredentialID != c.Secret.ID || claims.ClientID != c.ClientID ||
			claims.Audience != audience || claims.Issuer != issuer {
			t.Errorf("claims %+v", claims)
		}
	}
}

// TestTokenRefusalLinksExplanation: with the public URL set, a refusal names
// the page explaining its reason as RFC 6749's error_uri and in the errors
// entry's detail (which berth login shows); without it, no link.
func TestTokenRefusalLinksExplanation(t *testing.T) {
	for _, base := range []string{"https://reg.example", ""} {
		e := newTokenEnv(t)
		e.p.URL = base
		c := e.client("ci-web", 90*day, "pull team/*")
		b := wantRefusal(t, e.get(scopeQuery("service", audience, "scope", "repository:team/app:pull"), c.ClientID, "brt_wrong"),
			http.StatusUnauthorized, "invalid_client", berth.CodeSecretInvalid)
		want := ""
		if base != "" {
			want = base + "/errors/secret_invalid"
		}
		if got, _ := b.Errors[0].Detail[berth.DetailExplain].(string); b.ErrorURI != want || got != want {
			t.Errorf("url %q: error_uri %q, detail.explain %q; want %q", base, b.ErrorURI, got, want)
		}
	}
}

func TestTokenGrantsTheIntersection(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("reader", 90*day, "pull team/app")
	tok := e.dockerToken(t, e.get(scopeQuery("scope", "repository:team/app:pull,push,delete"), c.ClientID, c.Value))
	wantAccess(t, e.verify(t, tok.Token), "repository:team/app:pull")

	o := e.oauthToken(t, e.post(url.Values{"grant_type": {"client_credentials"}, "scope": {"repository:team/app:pull,push"}}, c.ClientID, c.Value))
	if *o.Scope != "repository:team/app:pull" {
		t.Errorf("scope %q, want the granted pull only", *o.Scope)
	}
	wantAccess(t, e.verify(t, o.AccessToken), "repository:team/app:pull")

	// Nothing granted is refused here, where clients print why: a token
	// granting nothing would meet a bare 403 on a HEAD, which has no body.
	audit := &memAudit{}
	e.h.Audit = audit
	r := e.post(url.Values{"grant_type": {"client_credentials"}, "scope": {"repository:secret/x:pull,push"}}, c.ClientID, c.Value)
	b := wantRefusal(t, r, http.StatusForbidden, "invalid_scope", berth.CodeRoleMissing)
	// The refusal is the principal's, found by berth audit --principal NAME;
	// the client id it was asked with stays in the detail.
	if ev, _ := audit.last(berth.AuditAuthToken); ev.Actor != "reader" || ev.Detail["client_id"] != c.ClientID || ev.Reason != berth.CodeRoleMissing {
		t.Errorf("the refusal's audit event: actor %q, detail %v", ev.Actor, ev.Detail)
	}
	if !strings.Contains(b.Hint, "--role push --scope secret/x") {
		t.Errorf("the hint names not the push role on the repository: %q", b.Hint)
	}
	// Without a scope, a token is issued (docker login asks for none).
	o = e.oauthToken(t, e.post(url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.Value))
	wantAccess(t, e.verify(t, o.AccessToken))
}

func TestTokenAnonymous(t *testing.T) {
	e := newTokenEnv(t)
	q := scopeQuery("service", audience, "scope", "repository:public/web:pull,push")
	// Nothing is public yet: the client is told to log in.
	wantRefusal(t, e.get(q), http.StatusUnauthorized, "invalid_client", berth.CodeCredentialsMissing)
	tok := e.dockerToken(t, e.get(scopeQuery("service", audience)))
	if claims := e.verify(t, tok.Token); claims.Subject != berth.AnonymousName {
		t.Errorf("subject %q", claims.Subject)
	}

	anon, err := berth.NewPrincipal(e.rand, berth.AnonymousName, berth.PrincipalService, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.CreatePrincipal(context.Background(), anon); err != nil {
		t.Fatal(err)
	}
	e.assign(anon, "pull public/*")
	tok = e.dockerToken(t, e.get(q))
	wantAccess(t, e.verify(t, tok.Token), "repository:public/web:pull")
}

func TestTokenServiceMismatch(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day, "pull team/*")
	for _, r := range []tokenResp{
		e.get(scopeQuery("service", "other.example"), c.ClientID, c.Value),
		e.post(url.Values{"grant_type": {"client_credentials"}, "service": {"other.example"}}, c.ClientID, c.Value),
	} {
		b := wantRefusal(t, r, http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
		if !strings.Contains(b.Description, "other.example") || !strings.Contains(b.Description, audience) {
			t.Errorf("the message names not both services: %s", b.Description)
		}
	}
}

func TestTokenBadScope(t *testing.T) {
	e := newTokenEnv(t)
	r := e.get(scopeQuery("scope", "repository:localhost:5000/team/app:pull"))
	wantRefusal(t, r, http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
}

func TestTokenOfflineWithoutCredentials(t *testing.T) {
	e := newTokenEnv(t)
	r := e.get(scopeQuery("service", audience, "offline_token", "true", "scope", "repository:team/app:pull"))
	wantRefusal(t, r, http.StatusUnauthorized, "invalid_client", berth.CodeCredentialsMissing)
}

func TestTokenDockerOfflineThenRefresh(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day, "push team/app")
	tok := e.dockerToken(t, e.get(scopeQuery("service", audience, "offline_token", "true", "client_id", "docker"), c.ClientID, c.Value))
	if !strings.HasPrefix(tok.RefreshToken, berth.RefreshTokenPrefix) {
		t.Fatalf("refresh_token %q", tok.RefreshToken)
	}
	// The refresh token lives its default 30 days, within the secret's 90.
	if want := int(berth.DefaultRefreshTokenLifetime / time.Second); tok.RefreshTokenExpiresIn != want {
		t.Errorf("refresh_token_expires_in %d, want %d", tok.RefreshTokenExpiresIn, want)
	}
	short := e.client("short", 2*day, "pull team/app")
	if st := e.dockerToken(t, e.get(scopeQuery("offline_token", "true"), short.ClientID, short.Value)); st.RefreshTokenExpiresIn != int(2*day/time.Second) {
		t.Errorf("a refresh token from a secret expiring in 2 days lives %d s", st.RefreshTokenExpiresIn)
	}
	e.clock.Advance(time.Hour)
	// What docker sends with the identity token that docker login stored.
	o := e.oauthToken(t, e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
		"client_id": {"docker"}, "service": {audience}, "scope": {"repository:team/app:pull,push"}}))
	if *o.Scope != "repository:team/app:pull,push" || o.RefreshToken != "" {
		t.Errorf("scope %q, refresh_token %q: want the scope and no new refresh token", *o.Scope, o.RefreshToken)
	}
	claims := e.verify(t, o.AccessToken)
	if claims.Subject != c.ID || claims.CredentialID != c.Secret.ID {
		t.Errorf("claims %+v", claims)
	}
}

func TestTokenClientCredentials(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day, "push team/app")
	scope := "repository:team/app:push"
	t.Run("client_secret_basic", func(t *testing.T) {
		o := e.oauthToken(t, e.post(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, c.ClientID, c.Value))
		wantAccess(t, e.verify(t, o.AccessToken), scope)
		if o.RefreshToken != "" {
			t.Errorf("a refresh token without access_type=offline")
		}
	})
	t.Run("client_secret_post", func(t *testing.T) {
		o := e.oauthToken(t, e.post(url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
			"client_id": {c.ClientID}, "client_secret": {c.Value}}))
		wantAccess(t, e.verify(t, o.AccessToken), scope)
	})
	t.Run("offline", func(t *testing.T) {
		o := e.oauthToken(t, e.post(url.Values{"grant_type": {"client_credentials"}, "access_type": {"offline"}}, c.Name, c.Value))
		if !strings.HasPrefix(o.RefreshToken, berth.RefreshTokenPrefix) {
			t.Errorf("refresh_token %q", o.RefreshToken)
		}
	})
	t.Run("both methods", func(t *testing.T) {
		r := e.post(url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.Value}}, c.ClientID, c.Value)
		wantRefusal(t, r, http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
	})
	t.Run("none", func(t *testing.T) {
		r := e.post(url.Values{"grant_type": {"client_credentials"}})
		wantRefusal(t, r, http.StatusUnauthorized, "invalid_client", berth.CodeCredentialsMissing)
		r = e.post(url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}})
		b := wantRefusal(t, r, http.StatusUnauthorized, "invalid_client", berth.CodeCredentialsMissing)
		if !strings.Contains(b.Description, "client_secret missing") {
			t.Errorf("the message does not say what is missing: %s", b.Description)
		}
	})
	t.Run("bearer", func(t *testing.T) {
		o := e.oauthToken(t, e.post(url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.Value))
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+oauth.TokenPath, nil)
		req.Header.Set("Authorization", "Bearer "+o.AccessToken)
		wantRefusal(t, e.do(req), http.StatusUnauthorized, "invalid_client", berth.CodeCredentialsMissing)
	})
}

func TestTokenPasswordGrantThenRefresh(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day, "pull team/*")
	// docker's OAuth flow: client_id names the program, not the principal.
	o := e.oauthToken(t, e.post(url.Values{"grant_type": {"password"}, "username": {c.Name}, "password": {c.Value},
		"client_id": {"docker"}, "access_type": {"offline"}, "service": {audience}, "scope": {"repository:team/app:pull"}}))
	wantAccess(t, e.verify(t, o.AccessToken), "repository:team/app:pull")
	if o.RefreshToken == "" {
		t.Fatal("no refresh token with access_type=offline")
	}
	e.clock.Advance(20 * time.Minute) // the access token has expired
	r := e.oauthToken(t, e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {o.RefreshToken},
		"scope": {"repository:team/web:pull repository:team/api:push"}}))
	wantAccess(t, e.verify(t, r.AccessToken), "repository:team/web:pull")

	// The client that the token was issued to may authenticate too; another
	// may not use it.
	e.oauthToken(t, e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {o.RefreshToken}}, c.ClientID, c.Value))
	other := e.client("other", 90*day)
	wantRefusal(t, e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {o.RefreshToken}}, other.ClientID, other.Value),
		http.StatusBadRequest, "invalid_grant", berth.CodeRefreshTokenInvalid)

	t.Run("missing credentials", func(t *testing.T) {
		wantRefusal(t, e.post(url.Values{"grant_type": {"password"}, "username": {c.Name}}),
			http.StatusUnauthorized, "invalid_client", berth.CodeCredentialsMissing)
	})
}

// TestTokenIdentityTokenAsPassword: a refresh token sent as the password of
// the user "<token>" (what the kubelet's credential provider hands
// containerd, which sends it through the password grant, or as Basic
// credentials of a GET) is redeemed as the refresh_token grant would: the
// scope asked for, no new refresh token, and its refusals explained alike.
// On /v2/ it authenticates Basic credentials too.
func TestTokenIdentityTokenAsPassword(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day, "pull team/*")
	token := e.offlineToken(t, c)
	scope := "repository:team/app:pull"

	o := e.oauthToken(t, e.post(url.Values{"grant_type": {"password"}, "username": {berth.IdentityTokenUser}, "password": {token},
		"client_id": {"containerd-client"}, "service": {audience}, "scope": {scope}, "access_type": {"offline"}}))
	wantAccess(t, e.verify(t, o.AccessToken), scope)
	if o.RefreshToken != "" {
		t.Errorf("the password grant with a refresh token issued another refresh token")
	}
	d := e.dockerToken(t, e.get(scopeQuery("service", audience, "scope", scope, "offline_token", "true"), berth.IdentityTokenUser, token))
	if claims := e.verify(t, d.Token); claims.Subject != c.ID || claims.CredentialID != c.Secret.ID {
		t.Errorf("GET with <token>: claims %+v", claims)
	}
	if d.RefreshToken != "" {
		t.Errorf("GET offline_token=true with a refresh token issued another refresh token")
	}

	req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	req.SetBasicAuth(berth.IdentityTokenUser, token)
	if caller, err := e.p.AuthenticateRequest(req); err != nil || caller.Actor.ID != c.ID {
		t.Errorf("/v2/ Basic <token>: %v, %v", caller, err)
	}

	wantRefusal(t, e.post(url.Values{"grant_type": {"password"}, "username": {berth.IdentityTokenUser}, "password": {unknownRefreshToken(t)}}),
		http.StatusBadRequest, "invalid_grant", berth.CodeRefreshTokenInvalid)
	// A client secret is not a refresh token.
	wantRefusal(t, e.get(scopeQuery("scope", scope), berth.IdentityTokenUser, c.Value),
		http.StatusBadRequest, "invalid_grant", berth.CodeRefreshTokenInvalid)
	e.revokeSecret(c.Secret, false)
	b := wantRefusal(t, e.post(url.Values{"grant_type": {"password"}, "username": {berth.IdentityTokenUser}, "password": {token}}),
		http.StatusUnauthorized, "invalid_client", berth.CodeSecretRevoked)
	if !strings.Contains(b.Description, c.Secret.Hint) {
		t.Errorf("the refusal does not name the removed secret: %s", b.Description)
	}
}

// TestTokenClientAuthReasons triggers each reason a client authentication
// fails for, through both dialects.
func TestTokenClientAuthReasons(t *testing.T) {
	cases := []struct {
		reason berth.Code
		// setup returns the user and password to send.
		setup func(e *tokenEnv) (string, string)
	}{
		{berth.CodeClientUnknown, func(e *tokenEnv) (string, string) {
			c := e.client("ci-web", 90*day)
			return "0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70", c.Value
		}},
		// An unknown name is refused as a wrong secret is: names are guessable.
		{berth.CodeSecretInvalid, func(e *tokenEnv) (string, string) {
			c := e.client("ci-web", 90*day)
			return "ci-wbe", c.Value
		}},
		{berth.CodeSecretInvalid, func(e *tokenEnv) (string, string) {
			c := e.client("ci-web", 90*day)
			other := e.client("other", 90*day)
			return c.ClientID, other.Value
		}},
		{berth.CodeSecretInvalid, func(e *tokenEnv) (string, string) {
			c := e.client("ci-web", 90*day)
			return c.ClientID, c.Value[:len(c.Value)-1] + "x" // a typo: the checksum fails
		}},
		{berth.CodeSecretIDSent, func(e *tokenEnv) (string, string) {
			c := e.client("ci-web", 90*day)
			return c.ClientID, c.Secret.ID
		}},
		{berth.CodeSecretExpired, func(e *tokenEnv) (string, string) {
			c := e.client("ci-web", time.Hour)
			e.clock.Advance(time.Hour + time.Minute)
			return c.ClientID, c.Value
		}},
		{berth.CodeSecretRevoked, func(e *tokenEnv) (string, string) {
			c := e.client("ci-web", 90*day)
			e.revokeSecret(c.Secret, false)
			return c.ClientID, c.Value
		}},
		{berth.CodePrincipalDisabled, func(e *tokenEnv) (string, string) {
			c := e.client("ci-web", 90*day)
			e.disable(c.Principal)
			return c.Name, c.Value
		}},
	}
	for _, tc := range cases {
		for _, dialect := range []string{"GET", "client_secret_basic", "client_secret_post", "password"} {
			t.Run(string(tc.reason)+"/"+dialect, func(t *testing.T) {
				e := newTokenEnv(t)
				user, pass := tc.setup(e)
				var r tokenResp
				switch dialect {
				case "GET":
					r = e.get(scopeQuery("service", audience, "scope", "repository:team/app:pull"), user, pass)
				case "client_secret_basic":
					r = e.post(url.Values{"grant_type": {"client_credentials"}}, user, pass)
				case "client_secret_post":
					r = e.post(url.Values{"grant_type": {"client_credentials"}, "client_id": {user}, "client_secret": {pass}})
				case "password":
					r = e.post(url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}})
				}
				b := wantRefusal(t, r, http.StatusUnauthorized, "invalid_client", tc.reason)
				if b.Hint == "" {
					t.Errorf("no hint: %s", r.Body)
				}
				if tc.reason == berth.CodeSecretExpired && !strings.Contains(b.Description, "'"+pass[:berth.SecretHintLength]+"…'") {
					t.Errorf("the message does not name the expired secret by its hint: %s", b.Description)
				}
			})
		}
	}
}

func TestTokenTooManyAttempts(t *testing.T) {
	e := newTokenEnv(t) // 5 failures per minute per client id, 50 per address
	a := e.client("ci-a", 90*day, "pull team/*")
	b := e.client("ci-b", 90*day, "pull team/*")
	wrong := e.client("wrong", 90*day).Value
	for range 5 {
		wantRefusal(t, e.post(url.Values{"grant_type": {"client_credentials"}}, a.ClientID, wrong),
			http.StatusUnauthorized, "invalid_client", berth.CodeSecretInvalid)
	}
	// Past the limit even the right secret is refused, without being looked at.
	r := e.post(url.Values{"grant_type": {"client_credentials"}}, a.ClientID, a.Value)
	body := wantRefusal(t, r, http.StatusTooManyRequests, "temporarily_unavailable", berth.CodeTooManyAttempts)
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 60 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if body.Errors[0].Detail["retry_after"] != float64(retry) {
		t.Errorf("detail.retry_after %v, Retry-After %d", body.Errors[0].Detail["retry_after"], retry)
	}
	wantRefusal(t, e.get(url.Values{}, a.ClientID, a.Value), http.StatusTooManyRequests, "temporarily_unavailable", berth.CodeTooManyAttempts)

	// Another client from the same address is unaffected.
	e.oauthToken(t, e.post(url.Values{"grant_type": {"client_credentials"}}, b.ClientID, b.Value))
	e.dockerToken(t, e.get(url.Values{}, b.ClientID, b.Value))

	// Once Retry-After has passed, the right secret works again.
	e.clock.Advance(time.Duration(retry) * time.Second)
	e.oauthToken(t, e.post(url.Values{"grant_type": {"client_credentials"}}, a.ClientID, a.Value))
}

func TestTokenTooManyAttemptsPerAddress(t *testing.T) {
	e := newTokenEnvWith(t, tokenEnvOptions{clientLimit: 5, addrLimit: 3})
	c := e.client("ci-web", 90*day)
	for _, name := range []string{"x1", "x2", "x3"} {
		wantRefusal(t, e.post(url.Values{"grant_type": {"client_credentials"}}, name, c.Value),
			http.StatusUnauthorized, "invalid_client", berth.CodeSecretInvalid)
	}
	r := e.post(url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.Value)
	b := wantRefusal(t, r, http.StatusTooManyRequests, "temporarily_unavailable", berth.CodeTooManyAttempts)
	if !strings.Contains(b.Description, "address") || r.Header.Get("Retry-After") == "" {
		t.Errorf("description %q, Retry-After %q", b.Description, r.Header.Get("Retry-After"))
	}
	// Unknown refresh tokens count against the address too.
	wantRefusal(t, e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {unknownRefreshToken(t)}}),
		http.StatusTooManyRequests, "temporarily_unavailable", berth.CodeTooManyAttempts)
}

// unknownRefreshToken returns a well-formed refresh token that nobody issued.
func unknownRefreshToken(t *testing.T) string {
	t.Helper()
	v, err := berth.NewRefreshTokenValue(seeded(99))
	if err != nil {
		t.Fatal(err)
	}
	return v.Reveal()
}

// offlineToken returns a refresh token of c, from the password grant.
func (e *tokenEnv) offlineToken(t *testing.T, c testClient) string {
	t.Helper()
	o := e.oauthToken(t, e.post(url.Values{"grant_type": {"password"}, "username": {c.ClientID}, "password": {c.Value}, "access_type": {"offline"}}))
	if o.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	return o.RefreshToken
}

func (e *tokenEnv) refreshWith(token string) tokenResp {
	return e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}, "scope": {"repository:team/app:pull"}})
}

// TestTokenRefreshRefusals: a refused refresh token is invalid_grant, with
// the reason that ended it. When its secret was removed or expired, or its
// principal disabled, that is the reason, whether or not the token itself was
// revoked with it; a token revoked on its own, or unknown, is
// refresh_token_invalid.
func TestTokenRefreshRefusals(t *testing.T) {
	cases := []struct {
		name   string
		reason berth.Code
		// end ends the token of c, or returns another to send.
		end func(t *testing.T, e *tokenEnv, c testClient, token string) string
	}{
		{"unknown", berth.CodeRefreshTokenInvalid, func(t *testing.T, e *tokenEnv, c testClient, token string) string {
			return unknownRefreshToken(t)
		}},
		{"malformed", berth.CodeRefreshTokenInvalid, func(t *testing.T, e *tokenEnv, c testClient, token string) string {
			return token[:len(token)-2]
		}},
		{"access token sent", berth.CodeRefreshTokenInvalid, func(t *testing.T, e *tokenEnv, c testClient, token string) string {
			return e.oauthToken(t, e.post(url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.Value)).AccessToken
		}},
		{"revoked alone", berth.CodeRefreshTokenInvalid, func(t *testing.T, e *tokenEnv, c testClient, token string) string {
			v, err := berth.ParseRefreshTokenValue(token)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := e.db.FindRefreshTokenByHash(context.Background(), v.Hash())
			if err != nil {
				t.Fatal(err)
			}
			if err := e.db.RevokeRefreshToken(context.Background(), rec.ID, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return token
		}},
		{"expired", berth.CodeRefreshTokenInvalid, func(t *testing.T, e *tokenEnv, c testClient, token string) string {
			// The secret lives 90 days, the refresh token 30.
			e.clock.Advance(berth.DefaultRefreshTokenLifetime + time.Hour)
			return token
		}},
		{"secret removed", berth.CodeSecretRevoked, func(t *testing.T, e *tokenEnv, c testClient, token string) string {
			e.revokeSecret(c.Secret, false)
			return token
		}},
		{"secret removed with its tokens", berth.CodeSecretRevoked, func(t *testing.T, e *tokenEnv, c testClient, token string) string {
			e.revokeSecret(c.Secret, true)
			return token
		}},
		{"principal disabled", berth.CodePrincipalDisabled, func(t *testing.T, e *tokenEnv, c testClient, token string) string {
			e.disable(c.Principal)
			return token
		}},
		{"principal deleted", berth.CodeRefreshTokenInvalid, func(t *testing.T, e *tokenEnv, c testClient, token string) string {
			if err := e.db.DeletePrincipal(context.Background(), c.ID); err != nil {
				t.Fatal(err)
			}
			e.p.Invalidate()
			return token
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTokenEnv(t)
			c := e.client("ci-web", 90*day, "pull team/*")
			token := e.offlineToken(t, c)
			e.oauthToken(t, e.refreshWith(token)) // it works until it is ended
			b := wantRefusal(t, e.refreshWith(tc.end(t, e, c, token)), http.StatusBadRequest, "invalid_grant", tc.reason)
			if b.Hint == "" {
				t.Errorf("no hint: %+v", b)
			}
		})
	}

	t.Run("secret expired", func(t *testing.T) {
		e := newTokenEnv(t)
		c := e.client("ci-web", 2*day, "pull team/*")
		token := e.offlineToken(t, c)
		e.clock.Advance(2*day + time.Minute) // the token expires with its secret
		b := wantRefusal(t, e.refreshWith(token), http.StatusBadRequest, "invalid_grant", berth.CodeSecretExpired)
		if !strings.Contains(b.Description, c.Secret.Hint) {
			t.Errorf("the message does not name the secret: %s", b.Description)
		}
	})
	t.Run("missing", func(t *testing.T) {
		e := newTokenEnv(t)
		wantRefusal(t, e.post(url.Values{"grant_type": {"refresh_token"}}), http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
	})
}

// TestTokenDisableStopsRefreshAtOnce: disabling a principal stops its refresh
// token on the next request, not when the cache would have expired.
func TestTokenDisableStopsRefreshAtOnce(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day, "pull team/*")
	token := e.offlineToken(t, c)
	e.oauthToken(t, e.refreshWith(token))
	e.disable(c.Principal)
	wantRefusal(t, e.refreshWith(token), http.StatusBadRequest, "invalid_grant", berth.CodePrincipalDisabled)
	wantRefusal(t, e.get(url.Values{}, c.ClientID, c.Value), http.StatusUnauthorized, "invalid_client", berth.CodePrincipalDisabled)
}

func TestTokenRefusesCredentialsInURL(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day)
	// A refresh token the client may leak.
	token := e.offlineToken(t, c)
	cases := []struct {
		method string
		query  url.Values
	}{
		{"GET", url.Values{"client_id": {c.ClientID}, "client_secret": {c.Value}}},
		{"GET", url.Values{"account": {c.Value}}},
		{"GET", url.Values{c.Value: {""}}},
		{"POST", url.Values{"password": {c.Value}}},
		{"POST", url.Values{"refresh_token": {token}}},
		{"POST", url.Values{"scope": {token}}},
	}
	for _, tc := range cases {
		var body io.Reader
		if tc.method == http.MethodPost {
			body = strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode())
		}
		req, err := http.NewRequest(tc.method, e.srv.URL+oauth.TokenPath+"?"+tc.query.Encode(), body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		b := wantRefusal(t, e.do(req), http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
		if !strings.Contains(b.Description, "logs") {
			t.Errorf("the message does not say why: %s", b.Description)
		}
	}
	// checkNoLeaks asserts that no value was echoed.
}

func TestTokenRequestErrors(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day)
	post := func(contentType, body string) tokenResp {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+oauth.TokenPath, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return e.do(req)
	}
	t.Run("unsupported grant", func(t *testing.T) {
		wantRefusal(t, e.post(url.Values{"grant_type": {"authorization_code"}}), http.StatusBadRequest, "unsupported_grant_type", berth.CodeUnsupported)
	})
	t.Run("no grant", func(t *testing.T) {
		wantRefusal(t, e.post(url.Values{}), http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
	})
	t.Run("JSON body", func(t *testing.T) {
		wantRefusal(t, post("application/json", `{"grant_type":"client_credentials"}`), http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
	})
	t.Run("repeated parameter", func(t *testing.T) {
		wantRefusal(t, e.post(url.Values{"grant_type": {"client_credentials", "password"}}, c.ClientID, c.Value),
			http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
	})
	t.Run("too large", func(t *testing.T) {
		wantRefusal(t, post("application/x-www-form-urlencoded", "scope="+strings.Repeat("a", 70<<10)),
			http.StatusRequestEntityTooLarge, "invalid_request", berth.CodeTooLarge)
	})
	t.Run("bad access_type", func(t *testing.T) {
		wantRefusal(t, e.post(url.Values{"grant_type": {"client_credentials"}, "access_type": {"forever"}}, c.ClientID, c.Value),
			http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
	})
	t.Run("method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, e.srv.URL+oauth.TokenPath, nil)
		r := e.do(req)
		wantRefusal(t, r, http.StatusMethodNotAllowed, "invalid_request", berth.CodeUnsupported)
		if r.Header.Get("Allow") != "GET, POST" {
			t.Errorf("Allow %q", r.Header.Get("Allow"))
		}
	})
}

// TestTokenInternalError: a store failure is a 500 that shows only the request
// id; the log has the error under the same id.
func TestTokenInternalError(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day)
	e.db.Close()

	r := e.post(url.Values{"grant_type": {"client_credentials"}}, c.ClientID, c.Value)
	b := wantRefusal(t, r, http.StatusInternalServerError, "server_error", berth.CodeInternal)
	if b.Description != "internal error (request id "+b.RequestID+")" || b.Hint != "" {
		t.Errorf("the body says more than the request id: %s", r.Body)
	}
	if !strings.Contains(e.logs.String(), "database is closed") {
		t.Errorf("the log lacks the error:\n%s", e.logs.String())
	}

	// Without the server's middleware the handler makes the id itself, and
	// the log line carries it.
	req := httptest.NewRequest(http.MethodGet, oauth.TokenPath, nil)
	req.SetBasicAuth(c.Name, c.Value)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var body errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusInternalServerError || body.RequestID == "" {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	if !strings.Contains(e.logs.String(), `"request_id":"`+body.RequestID+`"`) {
		t.Errorf("the log does not carry request id %s:\n%s", body.RequestID, e.logs.String())
	}
	e.mu.Lock()
	e.responses = append(e.responses, tokenResp{Status: rec.Code, Body: rec.Body.Bytes()})
	e.mu.Unlock()
}

// TestTokenNoCredentialInLogsOrErrors runs the flows, successful and refused,
// with Debug logging; checkNoLeaks then searches every log line and response
// for every secret, refresh token, access token and hash the test saw.
func TestTokenNoCredentialInLogsOrErrors(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", time.Hour, "push team/*")
	other := e.client("other", 90*day)
	scope := url.Values{"grant_type": {"client_credentials"}, "scope": {"repository:team/app:pull,push"}}

	e.dockerToken(t, e.get(scopeQuery("offline_token", "true", "scope", "repository:team/app:pull"), c.ClientID, c.Value))
	e.oauthToken(t, e.post(scope, c.ClientID, c.Value))
	token := e.offlineToken(t, c)
	e.oauthToken(t, e.refreshWith(token))
	// Refusals: secrets in the wrong places, wrong and dead credentials.
	e.post(scope, c.Value, c.Value)                                                                            // the secret as the client id
	e.post(url.Values{"grant_type": {"password"}, "username": {c.Value}, "password": {c.ClientID}})            // swapped
	e.post(url.Values{"grant_type": {c.Value}})                                                                // in grant_type
	e.get(scopeQuery("service", c.Value), c.ClientID, c.Value)                                                 // in service
	e.post(url.Values{"grant_type": {"client_credentials"}, "access_type": {token}}, c.ClientID, c.Value)      // in access_type
	e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.Value}})                            // a secret as refresh token
	e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}, other.ClientID, other.Value) // another's token
	e.post(scope, c.ClientID, other.Value)
	e.get(scopeQuery("client_secret", c.Value))
	e.clock.Advance(2 * time.Hour)
	e.post(scope, c.ClientID, c.Value)
	e.refreshWith(token)
	e.revokeSecret(other.Secret, true)
	e.post(scope, other.ClientID, other.Value)

	for _, r := range e.responses {
		if r.Status == http.StatusOK {
			continue
		}
		var b errorBody
		r.decode(t, &b)
		if b.Reason == "" {
			t.Errorf("a refusal without reason: %s", r.Body)
		}
	}
	// The log holds the refusals, by reason and status, and the tokens
	// issued, by grant and principal.
	logs := e.logs.String()
	for _, want := range []string{`"reason":"secret_invalid","status":401`, `"grant":"client_credentials","principal":"ci-web"`, `"grant":"refresh_token","principal":"ci-web"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s:\n%s", want, logs)
		}
	}
}

// BenchmarkClientCredentials measures client_credentials token issuance
// through the handler: Basic authentication, the grant and an ES256
// signature.
func BenchmarkClientCredentials(b *testing.B) {
	e := newTokenEnv(b)
	c := e.client("ci-web", 90*day, "push team/*")
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"repository:team/app:pull,push"}}.Encode()
	benchTokens(b, e, func() *http.Request {
		req := httptest.NewRequest(http.MethodPost, oauth.TokenPath, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ClientID, c.Value)
		return req
	})
}

// BenchmarkDockerGET measures the Docker GET flow, as docker pull asks.
func BenchmarkDockerGET(b *testing.B) {
	e := newTokenEnv(b)
	c := e.client("ci-web", 90*day, "push team/*")
	target := oauth.TokenPath + "?" + scopeQuery("service", audience, "scope", "repository:team/app:pull,push").Encode()
	benchTokens(b, e, func() *http.Request {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.SetBasicAuth(c.ClientID, c.Value)
		return req
	})
}

func benchTokens(b *testing.B, e *tokenEnv, newRequest func() *http.Request) {
	e.h.Logger = slog.New(slog.DiscardHandler)
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, newRequest())
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// TestChallengeErrorURI: a 401's challenge names the reason's page as
// error_uri under the public URL, except for a request without credentials
// and for a URL a comma-splitting client would cut.
func TestChallengeErrorURI(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/v2/team/app/tags/list", nil)
	for _, tc := range []struct {
		url  string
		code berth.Code
		want string
	}{
		{"https://reg.example", berth.CodeSecretInvalid, `,error_uri="https://reg.example/errors/secret_invalid"`},
		{"https://reg.example", berth.CodeCredentialsMissing, ""},
		{"https://reg.example/a,b", berth.CodeSecretInvalid, ""},
		{"", berth.CodeSecretInvalid, ""},
	} {
		p := &oauth.Provider{URL: tc.url, Service: audience}
		got := p.Challenge(r, "repository:team/app:pull", berth.Errorf(tc.code, "refused"))
		if tc.want != "" && !strings.HasSuffix(got, tc.want) || tc.want == "" && strings.Contains(got, "error_uri") {
			t.Errorf("url %q, %s: challenge %q, want error_uri %q", tc.url, tc.code, got, tc.want)
		}
	}
}

// TestTokenCacheNamespace: a token never carries push in a pull-through
// cache's namespace, whatever the roles; when the registry cannot tell
// whether a repository is in one, a token that would carry push there is
// not issued (a pull-only one is), rather than carrying push on a guess.
func TestTokenCacheNamespace(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day, "push hub/*", "push team/*")
	unreadable := false
	e.p.CacheNamespace = func(_ context.Context, repo string) (bool, error) {
		if unreadable {
			return false, errors.New("upstreams unreadable")
		}
		return strings.HasPrefix(repo, "hub/"), nil
	}
	tok := e.dockerToken(t, e.get(scopeQuery("scope", "repository:hub/library/alpine:pull,push repository:team/app:pull,push"), c.ClientID, c.Value))
	wantAccess(t, e.verify(t, tok.Token), "repository:hub/library/alpine:pull", "repository:team/app:pull,push")

	unreadable = true
	if r := e.get(scopeQuery("scope", "repository:team/app:pull,push"), c.ClientID, c.Value); r.Status != http.StatusInternalServerError {
		t.Errorf("a push token while the cache namespaces are unreadable: status %d %s, want 500", r.Status, r.Body)
	}
	tok = e.dockerToken(t, e.get(scopeQuery("scope", "repository:team/app:pull"), c.ClientID, c.Value))
	wantAccess(t, e.verify(t, tok.Token), "repository:team/app:pull")
}
