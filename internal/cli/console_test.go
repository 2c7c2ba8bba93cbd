package cli

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlite"
)

// consoleSignIn signs b in through the console's break-glass form with a
// client id and secret, and returns the page it lands on.
func consoleSignIn(t *testing.T, s *running, b *browser, id, secret string) (*http.Response, string) {
	t.Helper()
	_, page := b.get(s.url + "/signin?next=/")
	return b.post(s.url+"/signin", url.Values{"csrf": {csrfOf(t, page)}, "client_id": {id}, "client_secret": {secret}, "next": {"/"}})
}

// wantConsoleHeaders checks the security headers every console answer has.
func wantConsoleHeaders(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	if csp == "" || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
		t.Fatalf("%s: security headers %v", what, h)
	}
}

func TestConsoleSkeleton(t *testing.T) {
	s, _ := peopleServer(t)
	id, secret := s.admin(t)

	// Without a session every page sends the browser to sign in.
	nobody := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := nobody.Get(s.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?next=%2F" {
		t.Fatalf("GET / without a session: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	wantConsoleHeaders(t, "redirect", resp)

	// The sign-in page offers the identity provider and the break-glass form.
	admin := newBrowser(t)
	resp, page := admin.get(s.url + "/signin")
	wantConsoleHeaders(t, "/signin", resp)
	for _, want := range []string{`href="/login/corp?next=`, `<label for="client_id">Client ID</label>`, `<label for="client_secret">Client secret</label>`, `<main id="main">`} {
		if !strings.Contains(page, want) {
			t.Fatalf("/signin lacks %s:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "style=") {
		t.Fatalf("inline script or style:\n%s", page)
	}

	// A wrong secret is refused with its reason code, linking to its page;
	// a form without the page's csrf value is refused too.
	resp, page = consoleSignIn(t, s, admin, id, "brs_wrong")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, `href="/errors/`) {
		t.Fatalf("wrong secret: %s\n%s", resp.Status, page)
	}
	resp, page = admin.post(s.url+"/signin", url.Values{"csrf": {"forged"}, "client_id": {id}, "client_secret": {secret}})
	wantReason(t, "sign-in without the page's csrf", resp, page, http.StatusForbidden, berth.CodeSignInStateInvalid)

	// Client id and secret start a session: the same kind the identity
	// provider's sign-in starts, which the sign-in pages recognise.
	resp, page = consoleSignIn(t, s, admin, id, secret)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<title>Attention · berth</title>") || !strings.Contains(page, "Signed in as <strong>admin</strong>") {
		t.Fatalf("after break-glass sign-in: %s\n%s", resp.Status, page)
	}
	wantConsoleHeaders(t, "/", resp)
	if !strings.Contains(page, `href="/principals"`) || !strings.Contains(page, `href="/connections"`) {
		t.Fatalf("the owner sees no administration links:\n%s", page)
	}
	if _, page := admin.get(s.url + "/login"); !strings.Contains(page, "Signed in as <strong>admin</strong>") {
		t.Fatalf("/login does not know the console's session:\n%s", page)
	}

	// A state-changing form without the session's csrf field is refused.
	resp, page = admin.post(s.url+"/connections/ci/permit", url.Values{"csrf": {strings.Repeat("0", 32)}, "pipeline": {"x"}})
	wantReason(t, "forged permit", resp, page, http.StatusForbidden, berth.CodeSignInStateInvalid)

	// Reason codes have pages, as berth explain shows them.
	resp, page = admin.get(s.url + "/errors/secret_expired")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Reason code secret_expired") || !strings.Contains(page, berth.LookupCode(berth.CodeSecretExpired).Summary) {
		t.Fatalf("/errors/secret_expired: %s\n%s", resp.Status, page)
	}
	resp, page = admin.get(s.url + "/errors/no_such_code")
	wantReason(t, "unknown code", resp, page, http.StatusNotFound, berth.CodeNotFound)
	if resp, _ := admin.get(s.url + "/assets/console.css"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("console.css: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}

	// A person signed in through the identity provider without the owner
	// role sees the refusal instead of the lists, and no administration.
	ada := newBrowser(t)
	resp, page = ada.get(s.url + "/login/corp?next=/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Signed in as <strong>ada.lovelace</strong>") || !strings.Contains(page, "<code>role_missing</code>") {
		t.Fatalf("ada's Attention: %s\n%s", resp.Status, page)
	}
	if strings.Contains(page, `href="/principals"`) || strings.Contains(page, "Permit") {
		t.Fatalf("a person without owner sees administration:\n%s", page)
	}
	_, page = ada.get(s.url + "/why-not")
	resp, page = ada.post(s.url+"/connections/ci/permit", url.Values{"csrf": {csrfOf(t, page)}, "pipeline": {"x"}})
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("ada's permit with her own csrf: %s\n%s", resp.Status, page)
	}

	// Signing out (signin's form in the layout) ends the console session.
	_, page = admin.get(s.url + "/")
	if resp, _ = admin.post(s.url+"/logout", url.Values{"csrf": {csrfOf(t, page)}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-out: %s", resp.Status)
	}
	if _, page = admin.get(s.url + "/"); !strings.Contains(page, "Client secret") {
		t.Fatalf("after sign-out / is not the sign-in page:\n%s", page)
	}
}

// TestConsoleAttention: the home page lists a secret that expires within 30
// days, an expired secret a connection still uses, a pipeline's pending
// request with Permit (which permits it through the API), and the last
// day's refusals grouped by reason code and principal.
func TestConsoleAttention(t *testing.T) {
	offset := moveServeClock(t)
	dir := t.TempDir()
	s := startServe(t, dir)
	s.apiJSON(t, http.MethodPost, "/api/v1/principals", map[string]string{"name": "ci-web"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/principals/ci-web/secrets", map[string]string{"expires_in": "10d"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/principals", map[string]string{"name": "legacy-ci"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/connections", map[string]string{"name": "legacy", "principal": "legacy-ci", "auth": "secret", "expires_in": "1h"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/pipelines", map[string]string{"name": "web-pr", "preset": berth.PresetGitHub, "spec": "org/web"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/connections", map[string]string{"name": "web", "principal": "ci-web"}, http.StatusCreated)
	// A refusal for the log: a wrong secret at the token endpoint.
	resp, _ := s.do(t, http.MethodGet, "/v2/", map[string]string{"Authorization": "Basic " + basicCredentials("ci-web", "brs_not-it")}, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %s", resp.Status)
	}
	// The pending request a refused pipeline leaves (as the token
	// endpoint records it).
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, metadataFile))
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := db.FindConnectionByName(ctx, "web")
	pl, _ := db.FindPipelineByName(ctx, "web-pr")
	if err := db.RecordPermissionRequest(ctx, berth.PermissionRequest{ConnectionID: conn.ID, PipelineID: pl.ID, Last: time.Now(), Run: "4242"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Restarting flushes the audit log; the session lives on.
	admin := newBrowser(t)
	id, secret := s.admin(t)
	consoleSignIn(t, s, admin, id, secret)
	s.stop(t)
	s = startServe(t, dir)
	offset.Store(int64(2 * time.Hour)) // legacy's secret has expired

	resp, page := admin.get(s.url + "/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Attention</h1>") {
		t.Fatalf("Attention: %s\n%s", resp.Status, page)
	}
	secrets := section(t, page, "secrets", "pending")
	if !strings.Contains(secrets, `<a href="/principals/ci-web">ci-web</a>`) || !strings.Contains(secrets, `<a href="/connections/legacy">legacy</a>`) {
		t.Fatalf("secrets needing attention:\n%s", secrets)
	}
	if strings.Contains(secrets, "/principals/admin") {
		t.Fatalf("admin's secret (a year) is listed as expiring within 30 days:\n%s", secrets)
	}
	pending := section(t, page, "pending", "refusals")
	if !strings.Contains(pending, "web-pr") || !strings.Contains(pending, "4242") || !strings.Contains(pending, ">Permit</button>") {
		t.Fatalf("pending requests:\n%s", pending)
	}
	refusals := section(t, page, "refusals", "</main>")
	if !strings.Contains(refusals, `<a href="/errors/secret_invalid"><code>secret_invalid</code></a></td><td>ci-web</td><td>1</td>`) {
		t.Fatalf("refusals:\n%s", refusals)
	}

	// Permit, through the form: the API permits it and the request is gone.
	resp, page = admin.post(s.url+"/connections/web/permit", url.Values{"csrf": {csrfOf(t, page)}, "pipeline": {"web-pr"}, "next": {"/"}})
	if resp.StatusCode != http.StatusOK || strings.Contains(section(t, page, "pending", "refusals"), "web-pr") {
		t.Fatalf("after Permit: %s\n%s", resp.Status, page)
	}
	c := s.apiJSON(t, http.MethodGet, "/api/v1/connections/web", nil, http.StatusOK)
	if ps, _ := c["pipelines"].([]any); len(ps) != 1 || ps[0] != "web-pr" {
		t.Fatalf("web after Permit: %v", c)
	}

	// Why not? names the missing role and the assignment that fixes it.
	resp, page = admin.get(s.url + "/why-not?principal=ci-web&action=push&repository=team%2Fweb")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<a href="/errors/role_missing"><code>role_missing</code></a>`) ||
		!strings.Contains(page, "Missing role: <strong>push</strong>") || !strings.Contains(page, "berth role assign") {
		t.Fatalf("Why not?: %s\n%s", resp.Status, page)
	}
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"principal": "ci-web", "role": "push", "scope": "team/*"}, http.StatusCreated)
	if _, page = admin.get(s.url + "/why-not?principal=ci-web&action=push&repository=team%2Fweb"); !strings.Contains(page, "Allowed: ci-web may push team/web") {
		t.Fatalf("Why not? after the assignment:\n%s", page)
	}
}

// section returns the part of page from the element with id from to the
// next one with id to (or the literal to).
func section(t *testing.T, page, from, to string) string {
	t.Helper()
	i := strings.Index(page, `id="`+from+`"`)
	if i < 0 {
		t.Fatalf("no section %s in:\n%s", from, page)
	}
	rest := page[i:]
	if j := strings.Index(rest, `id="`+to+`"`); j >= 0 {
		return rest[:j]
	}
	if j := strings.Index(rest, to); j >= 0 {
		return rest[:j]
	}
	return rest
}
