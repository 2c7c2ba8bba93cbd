package oci_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/disk"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/oci"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/testclock"
)

// clock is a settable time source.
// guarded is a registry with authentication on, and principals to act as.
type guarded struct {
	*registry
	h     *oci.Handler
	p     *oauth.Provider
	clock *testclock.Clock
	rand  *rand.ChaCha8
	meta  *sqlite.DB
	creds map[string][2]string // principal name → client id, secret
}

// newGuarded serves a guarded registry; edits, when given, change the
// handler and its provider before it serves (a public URL, say).
func newGuarded(t *testing.T, edits ...func(*oci.Handler, *oauth.Provider)) *guarded {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	meta, err := sqlite.Open(ctx, dir+"/metadata.db")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := disk.New(dir + "/storage")
	if err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	rnd := rand.NewChaCha8([32]byte{7})
	keys, err := oauth.LoadKeyring(dir+"/keys", clk.Now(), rnd)
	if err != nil {
		t.Fatal(err)
	}
	keys.Issuer, keys.Audience = "http://berth.test", "berth"
	hasher, err := berth.NewSecretHasher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(server.LogHandler(slog.NewTextHandler(io.Discard, nil)))
	p := &oauth.Provider{
		Store: meta, Hasher: hasher, Keys: keys,
		Refresh: &oauth.RefreshTokens{Store: meta, Rand: rnd},
		Clients: oauth.NewLimiter(0, 0, 0, clk.Now), Addrs: oauth.NewLimiter(0, 0, 0, clk.Now), Bearers: oauth.NewLimiter(0, 0, 0, clk.Now),
		Now: clk.Now, Service: "berth", Logger: logger,
	}
	var n int
	var mu sync.Mutex
	newID := func() string { mu.Lock(); defer mu.Unlock(); n++; return fmt.Sprintf("id-%d", n) }
	h := &oci.Handler{Meta: meta, Blobs: blobs, Uploads: blobs, Logger: logger, Now: clk.Now, NewID: newID,
		CommitLock: &sync.RWMutex{}, MaxManifestSize: 4 << 20, Guard: p}
	for _, edit := range edits {
		edit(h, p)
	}
	srv := server.New(server.Config{Addr: "127.0.0.1:0", Handlers: map[string]http.Handler{"/v2/": h}, Logger: logger, NewID: newID})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done; meta.Close() })
	g := &guarded{registry: &registry{t: t, host: srv.Addr(), meta: meta, blob: blobs}, h: h, p: p, clock: clk, rand: rnd, meta: meta, creds: map[string][2]string{}}
	if err := berth.EnsureAnonymous(ctx, meta, rnd, clk.Now()); err != nil {
		t.Fatal(err)
	}
	return g
}

// principal creates a principal with a secret and the given role@scope
// assignments ("push@team/web").
func (g *guarded) principal(name string, roles ...string) berth.Principal {
	g.t.Helper()
	ctx := context.Background()
	pr, err := berth.NewPrincipal(g.rand, name, berth.PrincipalService, g.clock.Now())
	if err != nil {
		g.t.Fatal(err)
	}
	if err := g.meta.CreatePrincipal(ctx, pr); err != nil {
		g.t.Fatal(err)
	}
	s, v, err := berth.NewSecret(g.rand, g.p.Hasher, pr.ID, g.clock.Now(), 90*24*time.Hour, "")
	if err != nil {
		g.t.Fatal(err)
	}
	if err := g.meta.CreateSecret(ctx, s); err != nil {
		g.t.Fatal(err)
	}
	g.creds[name] = [2]string{pr.ClientID, v.Reveal()}
	for _, rs := range roles {
		g.assign(pr, rs)
	}
	return pr
}

func (g *guarded) assign(pr berth.Principal, roleAtScope string) {
	g.t.Helper()
	role, scope, _ := strings.Cut(roleAtScope, "@")
	sc, err := berth.ParseScope(scope)
	if err != nil {
		g.t.Fatal(err)
	}
	a := berth.RoleAssignment{PrincipalID: pr.ID, PrincipalName: pr.Name, Role: berth.Role(role), Scope: sc, Created: g.clock.Now()}
	if err := g.meta.CreateRoleAssignment(context.Background(), a); err != nil {
		g.t.Fatal(err)
	}
	g.p.Invalidate()
}

func (g *guarded) basic(name string) http.Header {
	c := g.creds[name]
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(c[0], c[1])
	return http.Header{"Authorization": req.Header["Authorization"]}
}

// token issues an access token for name carrying exactly the given scopes.
func (g *guarded) token(name string, scopes string) http.Header {
	g.t.Helper()
	c := g.creds[name]
	caller, err := g.p.AuthenticateClient(context.Background(), c[0], c[1], "127.0.0.1")
	if err != nil {
		g.t.Fatal(err)
	}
	ras, err := berth.ParseDockerScope(scopes)
	if err != nil {
		g.t.Fatal(err)
	}
	tok, _, err := g.p.IssueAccessToken(caller, ras)
	if err != nil {
		g.t.Fatal(err)
	}
	return http.Header{"Authorization": {"Bearer " + tok}}
}

func (g *guarded) pushBlob(h http.Header, repo string, b []byte) (*http.Response, []byte) {
	d := berth.DigestOf("sha256", b)
	return g.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), h, b)
}

func TestUnauthenticatedGetsChallenge(t *testing.T) {
	g := newGuarded(t)
	resp, body := g.do("GET", "/v2/", nil, nil)
	expectError(t, resp, body, 401, berth.CodeCredentialsMissing)
	want := fmt.Sprintf(`Bearer realm="http://%s/oauth2/token",service="berth"`, g.host)
	if got := resp.Header.Get("WWW-Authenticate"); got != want {
		t.Fatalf("challenge %q, want %q", got, want)
	}
	resp, body = g.do("GET", "/v2/team/web/manifests/v1", nil, nil)
	expectError(t, resp, body, 401, berth.CodeCredentialsMissing)
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasSuffix(got, `,scope="repository:team/web:pull"`) {
		t.Fatalf("challenge without the scope: %q", got)
	}
	resp, _ = g.do("POST", "/v2/team/web/blobs/uploads/", nil, nil)
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasSuffix(got, `,scope="repository:team/web:pull,push"`) {
		t.Fatalf("push challenge: %q", got)
	}
}

func TestRolesDecidePushAndPull(t *testing.T) {
	g := newGuarded(t)
	g.principal("ci-web", "push@team/web")
	g.principal("reader", "pull@team/*")
	if resp, body := g.pushBlob(g.basic("ci-web"), "team/web", []byte("layer")); resp.StatusCode != 201 {
		t.Fatalf("push with push role: %d %s", resp.StatusCode, body)
	}
	resp, body := g.pushBlob(g.basic("ci-web"), "team/api", []byte("layer"))
	expectError(t, resp, body, 403, berth.CodeRoleMissing)
	if !strings.Contains(string(body), "berth role assign --principal ci-web --role push --scope team/api") {
		t.Fatalf("refusal without the fixing command: %s", body)
	}
	resp, body = g.pushBlob(g.basic("reader"), "team/web", []byte("x"))
	expectError(t, resp, body, 403, berth.CodeRoleMissing)

	// A reader learns that a tag is missing where it may read, and nothing
	// about repositories it may not read, whether they exist or not.
	resp, body = g.do("GET", "/v2/team/web/manifests/nope", g.basic("reader"), nil)
	expectError(t, resp, body, 404, berth.CodeManifestUnknown)
	g.principal("other", "push@private/app")
	if resp, body := g.pushBlob(g.basic("other"), "private/app", []byte("secret layer")); resp.StatusCode != 201 {
		t.Fatalf("push private: %d %s", resp.StatusCode, body)
	}
	existing, b1 := g.do("GET", "/v2/private/app/tags/list", g.basic("reader"), nil)
	missing, b2 := g.do("GET", "/v2/private/nothing/tags/list", g.basic("reader"), nil)
	expectError(t, existing, b1, 403, berth.CodeRoleMissing)
	expectError(t, missing, b2, 403, berth.CodeRoleMissing)
}

func TestAnonymousPullOnPublicScope(t *testing.T) {
	g := newGuarded(t)
	g.principal("publisher", "push@public/*")
	anon, err := g.meta.FindPrincipalByName(context.Background(), berth.AnonymousName)
	if err != nil {
		t.Fatal(err)
	}
	g.assign(anon, "pull@public/*")
	d := berth.DigestOf("sha256", []byte("public layer"))
	if resp, body := g.pushBlob(g.basic("publisher"), "public/tool", []byte("public layer")); resp.StatusCode != 201 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	if resp, body := g.do("GET", "/v2/public/tool/blobs/"+d.String(), nil, nil); resp.StatusCode != 200 || string(body) != "public layer" {
		t.Fatalf("anonymous pull of a public blob: %d %s", resp.StatusCode, body)
	}
	resp, body := g.pushBlob(nil, "public/tool", []byte("vandal"))
	expectError(t, resp, body, 401, berth.CodeCredentialsMissing)
}

func TestTokenScopeAndCurrentState(t *testing.T) {
	g := newGuarded(t)
	ci := g.principal("ci-web", "push@team/web")
	pullOnly := g.token("ci-web", "repository:team/web:pull")
	resp, body := g.pushBlob(pullOnly, "team/web", []byte("x"))
	expectError(t, resp, body, 401, berth.CodeScopeNotGranted)
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("scope_not_granted without insufficient_scope: %q", resp.Header.Get("WWW-Authenticate"))
	}

	full := g.token("ci-web", "repository:team/web:pull,push")
	if resp, body := g.pushBlob(full, "team/web", []byte("y")); resp.StatusCode != 201 {
		t.Fatalf("push with token: %d %s", resp.StatusCode, body)
	}
	// Revoking the role stops a token that is still valid, at once.
	sc, _ := berth.ParseScope("team/web")
	if err := g.meta.DeleteRoleAssignment(context.Background(), ci.ID, berth.RolePush, sc); err != nil {
		t.Fatal(err)
	}
	g.p.Invalidate()
	resp, body = g.pushBlob(full, "team/web", []byte("z"))
	expectError(t, resp, body, 403, berth.CodeRoleMissing)

	// So does disabling the principal.
	g.assign(ci, "push@team/web")
	disabled := true
	if _, err := g.meta.UpdatePrincipal(context.Background(), ci.ID, berth.PrincipalUpdate{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	g.p.Invalidate()
	resp, body = g.do("GET", "/v2/team/web/tags/list", full, nil)
	expectError(t, resp, body, 401, berth.CodePrincipalDisabled)
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("no invalid_token: %q", resp.Header.Get("WWW-Authenticate"))
	}
}

func TestTokenOfRemovedSecretAndExpiry(t *testing.T) {
	g := newGuarded(t)
	ci := g.principal("ci-web", "pull@team/web")
	tok := g.token("ci-web", "repository:team/web:pull")
	if resp, body := g.do("GET", "/v2/team/web/manifests/none", tok, nil); resp.StatusCode != 404 {
		t.Fatalf("token works: %d %s", resp.StatusCode, body)
	}
	g.clock.Advance(16 * time.Minute)
	resp, body := g.do("GET", "/v2/team/web/manifests/none", tok, nil)
	expectError(t, resp, body, 401, berth.CodeTokenExpired)

	tok = g.token("ci-web", "repository:team/web:pull")
	secrets, err := g.meta.FindSecrets(context.Background(), ci.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.meta.RevokeSecret(context.Background(), secrets[0].ID, g.clock.Now()); err != nil {
		t.Fatal(err)
	}
	g.p.Invalidate()
	resp, body = g.do("GET", "/v2/team/web/manifests/none", tok, nil)
	expectError(t, resp, body, 401, berth.CodeSecretRevoked)
	resp, body = g.do("GET", "/v2/team/web/manifests/none", g.basic("ci-web"), nil)
	expectError(t, resp, body, 401, berth.CodeSecretRevoked)
	resp, body = g.do("GET", "/v2/team/web/manifests/none", http.Header{"Authorization": {"Bearer not.a.token"}}, nil)
	expectError(t, resp, body, 401, berth.CodeTokenInvalid)
}

func TestBasicRefusalsAndAttemptLimit(t *testing.T) {
	g := newGuarded(t)
	g.principal("ci-web", "pull@team/web")
	g.principal("bystander", "pull@team/web")
	c := g.creds["ci-web"]
	bad := func(user, pass string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(user, pass)
		return g.do("GET", "/v2/team/web/tags/list", http.Header{"Authorization": req.Header["Authorization"]}, nil)
	}
	resp, body := bad("00000000-0000-4000-8000-000000000000", c[1])
	expectError(t, resp, body, 401, berth.CodeClientUnknown)
	// A wrong secret from another address range would not count here; from one
	// address the limit applies to it and to the client id.
	for i := 0; i < 9; i++ {
		resp, body = bad(c[0], "brt_wrong")
		expectError(t, resp, body, 401, berth.CodeSecretInvalid)
	}
	resp, body = bad(c[0], "brt_wrong")
	expectError(t, resp, body, 429, berth.CodeTooManyAttempts)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	if strings.Contains(string(body), c[1]) {
		t.Fatal("a refusal echoed the secret")
	}
}

// Forged bearer tokens each cost a signature verification: past the
// failure limit of their address they are refused before it, while a token
// that verified before goes on working from that address.
func TestInvalidBearerTokensLimited(t *testing.T) {
	g := newGuarded(t)
	g.principal("ci-web", "pull@team/web")
	valid := g.token("ci-web", "repository:team/web:pull")
	if resp, body := g.do("GET", "/v2/team/web/manifests/none", valid, nil); resp.StatusCode != 404 {
		t.Fatalf("a valid token: %d %s", resp.StatusCode, body)
	}
	// The same claims, the signature of another token: it does not verify.
	other := g.token("ci-web", "repository:team/web:pull,push")
	v, o := strings.Split(strings.TrimPrefix(valid.Get("Authorization"), "Bearer "), "."), strings.Split(strings.TrimPrefix(other.Get("Authorization"), "Bearer "), ".")
	forged := http.Header{"Authorization": {"Bearer " + v[0] + "." + v[1] + "." + o[2]}}
	for i := 0; i < oauth.DefaultFailureLimit; i++ {
		resp, body := g.do("GET", "/v2/team/web/manifests/none", forged, nil)
		expectError(t, resp, body, 401, berth.CodeTokenInvalid)
	}
	resp, body := g.do("GET", "/v2/team/web/manifests/none", forged, nil)
	expectError(t, resp, body, 429, berth.CodeTooManyAttempts)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if resp, body := g.do("GET", "/v2/team/web/manifests/none", valid, nil); resp.StatusCode != 404 {
		t.Errorf("the token that verified before, from the limited address: %d %s", resp.StatusCode, body)
	}
	// Nor is a token this registry issued since, used for the first time:
	// clients behind the address of a forger keep working.
	if resp, body := g.do("GET", "/v2/team/web/manifests/none", g.token("ci-web", "repository:team/web:pull"), nil); resp.StatusCode != 404 {
		t.Errorf("a token issued after the limit was reached, from the limited address: %d %s", resp.StatusCode, body)
	}
	// The address's sign-in is not limited by them: its Basic credentials
	// still work.
	if resp, body := g.do("GET", "/v2/team/web/manifests/none", g.basic("ci-web"), nil); resp.StatusCode != 404 {
		t.Errorf("Basic credentials from the address that sent forged tokens: %d %s", resp.StatusCode, body)
	}
	g.clock.Advance(time.Minute)
	resp, body = g.do("GET", "/v2/team/web/manifests/none", forged, nil)
	expectError(t, resp, body, 401, berth.CodeTokenInvalid)
}

func TestCatalogListsWhatCallerMaySee(t *testing.T) {
	g := newGuarded(t)
	g.principal("admin", "owner@registry")
	g.principal("reader", "pull@team/*")
	for _, repo := range []string{"team/a", "team/b", "ops/c"} {
		if resp, body := g.pushBlob(g.basic("admin"), repo, []byte(repo)); resp.StatusCode != 201 {
			t.Fatalf("push %s: %d %s", repo, resp.StatusCode, body)
		}
	}
	_, body := g.do("GET", "/v2/_catalog", g.basic("admin"), nil)
	if string(body) != `{"repositories":["ops/c","team/a","team/b"]}` {
		t.Fatalf("admin catalog: %s", body)
	}
	_, body = g.do("GET", "/v2/_catalog?n=1", g.basic("reader"), nil)
	if string(body) != `{"repositories":["team/a"]}` {
		t.Fatalf("reader catalog page: %s", body)
	}
	_, body = g.do("GET", "/v2/_catalog", g.basic("reader"), nil)
	if string(body) != `{"repositories":["team/a","team/b"]}` {
		t.Fatalf("reader catalog: %s", body)
	}
	// A mount from a repository the caller may not read opens an upload instead.
	d := berth.DigestOf("sha256", []byte("ops/c"))
	g.principal("writer", "push@team/*")
	resp, _ := g.do("POST", "/v2/team/a/blobs/uploads/?mount="+d.String()+"&from=ops/c", g.basic("writer"), nil)
	if resp.StatusCode != 202 {
		t.Fatalf("mount from an unreadable repository: %d", resp.StatusCode)
	}
	resp, _ = g.do("POST", "/v2/team/a/blobs/uploads/?mount="+d.String(), g.basic("writer"), nil)
	if resp.StatusCode != 202 {
		t.Fatalf("automatic mount from an unreadable repository: %d", resp.StatusCode)
	}
}

// An automatic mount (no from) takes a blob only from a repository the
// request may read by its roles and its token: a token narrowed to
// team/scratch mounts nothing that only secret/db holds, though its owner
// could read secret/db with another token; the push then goes on as an
// ordinary upload (202). A token that names the source mounts it.
func TestAutomaticMountNeedsTheTokensGrant(t *testing.T) {
	g := newGuarded(t)
	g.principal("admin", "owner@registry")
	secret := []byte("the database password")
	if resp, body := g.pushBlob(g.basic("admin"), "secret/db", secret); resp.StatusCode != 201 {
		t.Fatalf("push secret/db: %d %s", resp.StatusCode, body)
	}
	d := berth.DigestOf("sha256", secret)
	narrow := g.token("admin", "repository:team/scratch:pull,push")
	resp, body := g.do("POST", "/v2/team/scratch/blobs/uploads/?mount="+d.String(), narrow, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("automatic mount with a token for team/scratch only: %d %s, want 202", resp.StatusCode, body)
	}
	if resp, _ := g.do("GET", "/v2/team/scratch/blobs/"+d.String(), narrow, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the blob of secret/db is readable through team/scratch: %d", resp.StatusCode)
	}
	wide := g.token("admin", "repository:team/scratch:pull,push repository:secret/db:pull")
	if resp, body := g.do("POST", "/v2/team/scratch/blobs/uploads/?mount="+d.String(), wide, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("automatic mount with a token naming secret/db: %d %s, want 201", resp.StatusCode, body)
	}
}

// TestErrorsNeverEchoASecret: a client secret pasted where a repository
// name, a tag, a digest or an upload id belongs is refused without being
// repeated, in the body or the challenge.
func TestErrorsNeverEchoASecret(t *testing.T) {
	g := newGuarded(t)
	g.principal("admin", "owner@registry")
	secret := g.creds["admin"][1]
	for _, path := range []string{
		"/v2/" + secret + "/manifests/latest",
		"/v2/team/app/manifests/" + secret,
		"/v2/team/app/blobs/" + secret,
		"/v2/team/app/blobs/uploads/" + secret,
		"/v2/team/app/tags/list?last=" + secret,
		"/v2/team/app/referrers/sha256:" + secret,
	} {
		resp, body := g.do("GET", path, g.basic("admin"), nil)
		if resp.StatusCode < 400 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		if strings.Contains(string(body)+resp.Header.Get("WWW-Authenticate"), secret[:12]) {
			t.Errorf("GET …%s echoes the secret: %s", path[len(path)-10:], body)
		}
	}
}

// TestRefusalsLinkTheirExplanation: with the public URL set, every OCI error
// links to the page explaining its reason (detail.explain), and a 401's
// challenge carries it as RFC 6750's error_uri unless the request sent no
// credentials; without the URL no link appears, whatever Host was sent.
func TestRefusalsLinkTheirExplanation(t *testing.T) {
	explain := func(t *testing.T, body []byte) any {
		t.Helper()
		var env struct {
			Errors []struct {
				Detail map[string]any `json:"detail"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(body, &env); err != nil || len(env.Errors) != 1 {
			t.Fatalf("not an OCI error body: %s", body)
		}
		return env.Errors[0].Detail[berth.DetailExplain]
	}
	linked := newGuarded(t, func(h *oci.Handler, p *oauth.Provider) { h.URL, p.URL = "https://reg.example/", "https://reg.example/" })
	bare := newGuarded(t)
	for _, g := range []*guarded{linked, bare} {
		g.principal("reader", "pull@team/*")
	}
	wrong := func(g *guarded) http.Header {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(g.creds["reader"][0], "brt_wrong")
		return http.Header{"Authorization": req.Header["Authorization"], "Host": {"evil.example"}}
	}
	cases := []struct {
		name   string
		do     func(g *guarded) (*http.Response, []byte)
		status int
		code   berth.Code
		// challenge: the 401's challenge names the error's page
		challenge bool
	}{
		{"role missing", func(g *guarded) (*http.Response, []byte) {
			return g.pushBlob(g.basic("reader"), "team/web", []byte("x"))
		}, 403, berth.CodeRoleMissing, false},
		{"manifest unknown", func(g *guarded) (*http.Response, []byte) {
			return g.do("GET", "/v2/team/web/manifests/nope", g.basic("reader"), nil)
		}, 404, berth.CodeManifestUnknown, false},
		{"wrong secret", func(g *guarded) (*http.Response, []byte) { return g.do("GET", "/v2/team/web/tags/list", wrong(g), nil) }, 401, berth.CodeSecretInvalid, true},
		{"no credentials", func(g *guarded) (*http.Response, []byte) { return g.do("GET", "/v2/team/web/tags/list", nil, nil) }, 401, berth.CodeCredentialsMissing, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := c.do(linked)
			expectError(t, resp, body, c.status, c.code)
			want := "https://reg.example/errors/" + string(c.code)
			if got := explain(t, body); got != want {
				t.Errorf("detail.explain %v, want %s: %s", got, want, body)
			}
			ch := resp.Header.Get("WWW-Authenticate")
			if got := strings.Contains(ch, `,error_uri="`+want+`"`); got != c.challenge || (!c.challenge && strings.Contains(ch, "error_uri")) {
				t.Errorf("challenge %q: error_uri %v, want %v", ch, got, c.challenge)
			}

			resp, body = c.do(bare)
			expectError(t, resp, body, c.status, c.code)
			if got := explain(t, body); got != nil {
				t.Errorf("without url: detail.explain %v: %s", got, body)
			}
			if ch := resp.Header.Get("WWW-Authenticate"); strings.Contains(ch, "error_uri") || strings.Contains(string(body), "/errors/") {
				t.Errorf("without url: a link in %q or %s", ch, body)
			}
		})
	}
}

// TestServeAsDecidesForTheGivenCaller: a request an adapter makes in process
// for a caller it authenticated is decided for that caller alone (whatever
// Authorization header it carries), and its refusal is returned, not written.
func TestServeAsDecidesForTheGivenCaller(t *testing.T) {
	g := newGuarded(t)
	h := g.h
	g.principal("reader", "pull@team/*")
	g.principal("cleaner", "delete@team/*")
	as := func(name string) *berth.Caller {
		c, err := g.p.AuthenticateClient(context.Background(), g.creds[name][0], g.creds[name][1], "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	del := func(caller *berth.Caller, header http.Header) (*httptest.ResponseRecorder, error) {
		req := httptest.NewRequest(http.MethodDelete, "/v2/team/web/manifests/v1", nil)
		for k, v := range header {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		return rec, h.ServeAs(rec, req, caller)
	}
	rec, err := del(as("reader"), g.basic("cleaner"))
	if !berth.IsCode(err, berth.CodeRoleMissing) || rec.Body.Len() != 0 {
		t.Errorf("reader, with cleaner's header: %v, body %q; want role_missing, returned", err, rec.Body)
	}
	if _, err := del(as("cleaner"), nil); !berth.IsCode(err, berth.CodeManifestUnknown) {
		t.Errorf("cleaner: %v, want manifest_unknown (allowed to delete, no such tag)", err)
	}
	if _, err := del(nil, g.basic("cleaner")); err == nil || berth.AsError(err) != nil {
		t.Errorf("no caller: %v, want an internal error", err)
	}
}
