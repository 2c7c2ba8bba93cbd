package cli

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oidctest"
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
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:devs", "role": "pull", "scope": "team/*"}, http.StatusCreated)
	if _, page := admin.get(s.url + "/access"); !strings.Contains(page, "<code>pull</code>: group <code>corp:devs</code>") ||
		!strings.Contains(page, `<code>owner</code>: <a href="/principals/admin">admin</a>`) || !strings.Contains(page, `<h2 id="scope-team/*"><code>team/*</code></h2>`) {
		t.Fatalf("/access:\n%s", page)
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
	if resp, page := admin.get(s.url + "/assets/"); resp.StatusCode == http.StatusOK && strings.Contains(page, "console.js") {
		t.Fatalf("/assets/ lists the files:\n%s", page)
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
	s.apiJSON(t, http.MethodPost, "/api/v1/pipelines", map[string]string{"name": "web-fork", "preset": berth.PresetGitHub, "spec": "fork/web"}, http.StatusCreated)
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
	fork, _ := db.FindPipelineByName(ctx, "web-fork")
	if err := db.RecordPermissionRequest(ctx, berth.PermissionRequest{ConnectionID: conn.ID, PipelineID: fork.ID, Last: time.Now(), Run: "666"}); err != nil {
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
	if !strings.Contains(pending, "web-pr") || !strings.Contains(pending, "4242") || !strings.Contains(pending, ">Permit</button>") ||
		!strings.Contains(pending, "web-fork") || !strings.Contains(pending, ">Dismiss</button>") {
		t.Fatalf("pending requests:\n%s", pending)
	}
	// Before Verify: the connections that fail, each once with its fix,
	// by what berth knows without asking an issuer, or by what the
	// server's scheduled verification found if it has run since the clock
	// moved (the test cannot tell which comes first).
	failing := section(t, page, "failing", "pending")
	for _, c := range []struct{ name, quick, fix string }{
		{"legacy", `<span class="state-fail">secret expired</span>`, "berth connection save legacy"},
		{"web", `<span class="state-fail">no pipeline permitted</span>`, "berth connection authorize web"},
	} {
		entry := `<a href="/connections/` + c.name + `">` + c.name + `</a>: `
		if strings.Count(failing, entry) != 1 || !strings.Contains(failing, entry+c.quick) && !strings.Contains(failing, entry+"scheduled verification:") ||
			!strings.Contains(failing, "Fix: <code>"+c.fix) {
			t.Fatalf("connections failing before Verify, %s once with its fix:\n%s", c.name, failing)
		}
	}
	_, verified := admin.get(s.url + "/?verify=1")
	if failing := section(t, verified, "failing", "pending"); !strings.Contains(failing, `<a href="/connections/legacy">legacy</a>`) || !strings.Contains(failing, "<code>secret_expired</code>") {
		t.Fatalf("connections failing verification:\n%s", failing)
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
	// Dismiss: the request is gone, the pipeline still not permitted.
	resp, page = admin.post(s.url+"/connections/web/dismiss", url.Values{"csrf": {csrfOf(t, page)}, "pipeline": {"web-fork"}, "next": {"/"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(section(t, page, "pending", "refusals"), "None.") {
		t.Fatalf("after Dismiss: %s\n%s", resp.Status, page)
	}
	c = s.apiJSON(t, http.MethodGet, "/api/v1/connections/web", nil, http.StatusOK)
	if ps, _ := c["pipelines"].([]any); len(ps) != 1 || c["pending_requests"] != float64(0) {
		t.Fatalf("web after Dismiss: %v", c)
	}
	resp, page = admin.post(s.url+"/connections/web/dismiss", url.Values{"csrf": {csrfOf(t, page)}, "pipeline": {"web-fork"}})
	wantReason(t, "dismissing twice", resp, page, http.StatusNotFound, berth.CodeNotFound)

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

var secretValue = regexp.MustCompile(`<code id="secret-value"[^>]*>([^<]+)</code>`)

// TestConsolePrincipals: the list and a principal's page; Add secret shows
// the value once (not cached) with the login lines, and it works; Remove,
// disable and enable, and role assignments go through the API; a person
// without owner is refused.
func TestConsolePrincipals(t *testing.T) {
	s, _ := peopleServer(t)
	s.apiJSON(t, http.MethodPost, "/api/v1/principals", map[string]string{"name": "ci-web"}, http.StatusCreated)
	admin := newBrowser(t)
	id, secret := s.admin(t)
	consoleSignIn(t, s, admin, id, secret)

	resp, page := admin.get(s.url + "/principals")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<a href="/principals/ci-web">ci-web</a></td><td>service</td>`) ||
		!strings.Contains(page, "<code>owner</code> on <code>registry</code>") {
		t.Fatalf("/principals: %s\n%s", resp.Status, page)
	}
	_, page = admin.get(s.url + "/principals/ci-web")
	csrf := csrfOf(t, page)
	if !strings.Contains(page, "No secrets.") || !strings.Contains(page, `<label for="expires_in">Expires in</label>`) {
		t.Fatalf("ci-web's page:\n%s", page)
	}

	// Add secret: the value once, with the login lines, not cached.
	resp, page = admin.post(s.url+"/principals/ci-web/secrets", url.Values{"csrf": {csrf}, "expires_in": {"30d"}, "description": {"web CI"}})
	m := secretValue.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Add secret: %s %v\n%s", resp.Status, resp.Header, page)
	}
	value := m[1]
	// The expiry timeline: the new secret's time left, as text and meter.
	if !regexp.MustCompile(`<meter min="0" max="30" value="30" [^>]*aria-label="Time left of secret [^"]+"></meter> 30 days left`).MatchString(section(t, page, "secrets", "roles")) {
		t.Fatalf("the new secret's time left:\n%s", page)
	}
	// The login lines wait for the secret on stdin: none holds it, so
	// copying one puts nothing in the shell's history.
	if berth.CheckSecretFormat(value) != nil || !strings.Contains(page, ">docker login 127.0.0.1") || !strings.Contains(page, "--password-stdin") ||
		!strings.Contains(page, ">berth login "+s.url+" --client-id ") || strings.Count(page, value) != 1 {
		t.Fatalf("the new secret's section:\n%s", page)
	}
	wantConsoleHeaders(t, "Add secret", resp)
	if resp, _ := s.do(t, http.MethodGet, "/v2/", map[string]string{"Authorization": "Basic " + basicCredentials("ci-web", value)}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the new secret at /v2/: %s", resp.Status)
	}
	if _, page = admin.get(s.url + "/principals/ci-web"); strings.Contains(page, value) || !strings.Contains(page, "web CI") {
		t.Fatalf("the secret's value is shown again, or the secret is not listed:\n%s", page)
	}

	// Remove it: the API revokes it, and it stops working.
	removeAt := regexp.MustCompile(`action="(/principals/ci-web/secrets/[^"]+/remove)"`).FindStringSubmatch(page)
	if removeAt == nil {
		t.Fatalf("no Remove form:\n%s", page)
	}
	if resp, page = admin.post(s.url+removeAt[1], url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusOK || !strings.Contains(page, `class="state-revoked">revoked`) {
		t.Fatalf("Remove: %s\n%s", resp.Status, page)
	}
	if resp, _ := s.do(t, http.MethodGet, "/v2/", map[string]string{"Authorization": "Basic " + basicCredentials("ci-web", value)}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a removed secret at /v2/: %s", resp.Status)
	}

	// Roles, disable and enable.
	if _, page = admin.post(s.url+"/principals/ci-web/roles", url.Values{"csrf": {csrf}, "role": {"push"}, "scope": {"team/*"}}); !strings.Contains(page, "<code>push</code> on <code>team/*</code>") {
		t.Fatalf("Assign role:\n%s", page)
	}
	if _, page = admin.post(s.url+"/principals/ci-web/roles/revoke", url.Values{"csrf": {csrf}, "role": {"push"}, "scope": {"team/*"}}); !strings.Contains(page, "No roles.") {
		t.Fatalf("Revoke role:\n%s", page)
	}
	if _, page = admin.post(s.url+"/principals/ci-web/disable", url.Values{"csrf": {csrf}}); !strings.Contains(page, `class="state-disabled">disabled`) {
		t.Fatalf("Disable:\n%s", page)
	}
	if p := s.apiJSON(t, http.MethodGet, "/api/v1/principals/ci-web", nil, http.StatusOK); p["disabled"] != true {
		t.Fatalf("ci-web after Disable: %v", p)
	}
	if _, page = admin.post(s.url+"/principals/ci-web/enable", url.Values{"csrf": {csrf}}); !strings.Contains(page, `class="state-active">enabled`) {
		t.Fatalf("Enable:\n%s", page)
	}
	// A refused change is the API's refusal, as a page.
	resp, page = admin.post(s.url+"/principals/ci-web/roles", url.Values{"csrf": {csrf}, "role": {"push"}, "scope": {"../x"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `<a href="/errors/`) {
		t.Fatalf("invalid scope: %s\n%s", resp.Status, page)
	}

	// A break-glass session ends with the secret it was signed in with.
	ns := s.apiJSON(t, http.MethodPost, "/api/v1/principals/admin/secrets", map[string]string{"expires_in": "1d"}, http.StatusCreated)
	glass := newBrowser(t)
	if _, page := consoleSignIn(t, s, glass, id, ns["value"].(string)); !strings.Contains(page, "<h1>Attention</h1>") {
		t.Fatalf("sign-in with a second secret:\n%s", page)
	}
	s.apiJSON(t, http.MethodDelete, "/api/v1/principals/admin/secrets/"+ns["id"].(string), nil, http.StatusOK)
	if _, page := glass.get(s.url + "/"); !strings.Contains(page, "<h1>Sign in</h1>") {
		t.Fatalf("the session outlived its secret:\n%s", page)
	}
	if _, page := admin.get(s.url + "/"); !strings.Contains(page, "<h1>Attention</h1>") {
		t.Fatalf("removing another secret ended the session:\n%s", page)
	}

	// A person without owner: refused, and a forged POST with her own
	// session's csrf changes nothing.
	ada := newBrowser(t)
	ada.get(s.url + "/login/corp?next=/")
	resp, page = ada.get(s.url + "/principals/ci-web")
	wantReason(t, "ada's view of a principal", resp, page, http.StatusForbidden, berth.CodeRoleMissing)
	_, page = ada.get(s.url + "/why-not")
	resp, page = ada.post(s.url+"/principals/ci-web/secrets", url.Values{"csrf": {csrfOf(t, page)}, "expires_in": {"30d"}})
	wantReason(t, "ada's Add secret", resp, page, http.StatusForbidden, berth.CodeRoleMissing)
	if strings.Contains(page, "secret-value") {
		t.Fatalf("a refused Add secret shows a value:\n%s", page)
	}
}

// TestConsoleConnections: the list; a connection's Verify checklist names
// its expired secret; Save renews it, showing the new value once, and the
// new value works; pipelines are authorized and unauthorized through the
// API.
func TestConsoleConnections(t *testing.T) {
	offset := moveServeClock(t)
	s, _ := peopleServer(t)
	s.apiJSON(t, http.MethodPost, "/api/v1/principals", map[string]string{"name": "legacy-ci"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/connections", map[string]string{"name": "legacy", "principal": "legacy-ci", "auth": "secret", "expires_in": "1h"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/pipelines", map[string]string{"name": "web-main", "preset": berth.PresetGitHub, "spec": "org/web@main"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/connections", map[string]string{"name": "web", "principal": "legacy-ci"}, http.StatusCreated)
	admin := newBrowser(t)
	id, secret := s.admin(t)
	consoleSignIn(t, s, admin, id, secret)
	ada := newBrowser(t) // before the clock moves: the company's provider does not follow it
	ada.get(s.url + "/login/corp?next=/")
	// A person without owner is refused, Save included.
	resp, page := ada.get(s.url + "/connections")
	wantReason(t, "ada's connections", resp, page, http.StatusForbidden, berth.CodeRoleMissing)
	_, page = ada.get(s.url + "/why-not")
	resp, page = ada.post(s.url+"/connections/legacy/save", url.Values{"csrf": {csrfOf(t, page)}})
	wantReason(t, "ada's Save", resp, page, http.StatusForbidden, berth.CodeRoleMissing)
	offset.Store(int64(2 * time.Hour))

	resp, page = admin.get(s.url + "/connections")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<a href="/connections/legacy">legacy</a></td><td>secret</td>`) || !strings.Contains(page, `class="state-expired">expired`) {
		t.Fatalf("/connections: %s\n%s", resp.Status, page)
	}
	// Health: legacy's secret has expired; web permits no pipeline.
	rows := regexp.MustCompile(`(?s)<tr><td><a href="/connections/([a-z]+)">.*?</tr>`).FindAllStringSubmatch(page, -1)
	if len(rows) != 2 || !strings.Contains(rows[0][0], `<span class="state-fail">secret expired</span>`) ||
		!strings.Contains(rows[1][0], `<span class="state-fail">no pipeline permitted</span>`) || strings.Contains(rows[1][0], "state-ok") {
		t.Fatalf("/connections' health:\n%s", page)
	}
	resp, page = admin.get(s.url + "/connections/legacy?verify=1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(section(t, page, "verify", "pipelines"), `<code>secret_expired</code>`) {
		t.Fatalf("Verify: %s\n%s", resp.Status, page)
	}

	// Save: a new secret, once, not cached; it works at once.
	resp, page = admin.post(s.url+"/connections/legacy/save", url.Values{"csrf": {csrfOf(t, page)}})
	m := secretValue.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Save: %s %v\n%s\n%s", resp.Status, resp.Header, page, s.stderr.String())
	}
	if resp, _ := s.do(t, http.MethodGet, "/v2/", map[string]string{"Authorization": "Basic " + basicCredentials("legacy-ci", m[1])}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the saved secret at /v2/: %s", resp.Status)
	}
	if !strings.Contains(page, ">docker login 127.0.0.1:") || !strings.Contains(page, ">berth login "+s.url+" --client-id legacy-ci --client-secret-stdin") || strings.Count(page, m[1]) != 1 {
		t.Fatalf("Save shows no docker login and berth login lines:\n%s", page)
	}
	resp, page = admin.get(s.url + "/connections/legacy?verify=1")
	if strings.Contains(page, m[1]) || strings.Contains(section(t, page, "verify", "pipelines"), "secret_expired") {
		t.Fatalf("after Save: %s\n%s", resp.Status, page)
	}

	// Authorize and unauthorize a pipeline.
	_, page = admin.get(s.url + "/connections/web")
	csrf := csrfOf(t, page)
	if _, page = admin.post(s.url+"/connections/web/authorize", url.Values{"csrf": {csrf}, "pipeline": {"web-main"}}); !strings.Contains(section(t, page, "pipelines", "requests"), "<li>web-main") {
		t.Fatalf("Authorize:\n%s", page)
	}
	if _, page = admin.post(s.url+"/connections/web/unauthorize", url.Values{"csrf": {csrf}, "pipeline": {"web-main"}}); strings.Contains(section(t, page, "pipelines", "requests"), "<li>web-main") {
		t.Fatalf("Unauthorize:\n%s", page)
	}
	if c := s.apiJSON(t, http.MethodGet, "/api/v1/connections/web", nil, http.StatusOK); len(c["pipelines"].([]any)) != 0 {
		t.Fatalf("web after Unauthorize: %v", c)
	}
	admin.post(s.url+"/connections/web/authorize", url.Values{"csrf": {csrf}, "pipeline": {"web-main"}})
	if _, page = admin.get(s.url + "/connections"); !strings.Contains(page, `<span class="state-ok">ok</span>`) {
		t.Fatalf("/connections after web permits a pipeline and legacy is saved: no healthy connection:\n%s", page)
	}
	admin.post(s.url+"/connections/web/unauthorize", url.Values{"csrf": {csrf}, "pipeline": {"web-main"}})
	// Every pipeline, as --all-pipelines, and back; a federated connection
	// has no secret to Save.
	if strings.Contains(page, `action="/connections/web/save"`) {
		t.Fatalf("a federated connection offers Save:\n%s", page)
	}
	if _, page = admin.post(s.url+"/connections/web/authorize", url.Values{"csrf": {csrf}, "all": {"1"}}); !strings.Contains(section(t, page, "pipelines", "requests"), "Every registered pipeline") {
		t.Fatalf("Authorize every pipeline:\n%s", page)
	}
	if c := s.apiJSON(t, http.MethodGet, "/api/v1/connections/web", nil, http.StatusOK); c["all_pipelines"] != true {
		t.Fatalf("web after Authorize every pipeline: %v", c)
	}
	if _, page = admin.post(s.url+"/connections/web/unauthorize", url.Values{"csrf": {csrf}, "all": {"1"}}); strings.Contains(section(t, page, "pipelines", "requests"), "Every registered pipeline") {
		t.Fatalf("Unauthorize every pipeline:\n%s", page)
	}
	if c := s.apiJSON(t, http.MethodGet, "/api/v1/connections/web", nil, http.StatusOK); c["all_pipelines"] != false {
		t.Fatalf("web after Unauthorize every pipeline: %v", c)
	}
	// The history is the audit log's (restarting flushes it).
	s.stop(t)
	s = startServe(t, s.dir)
	if _, page = admin.get(s.url + "/connections/web"); !strings.Contains(section(t, page, "history", "</main>"), "connection.unauthorize") {
		t.Fatalf("history:\n%s", page)
	}

}

// TestConsoleAudit: the audit log filtered by result and code, each code
// linking to its page, and Verify chain.
func TestConsoleAudit(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	s.apiJSON(t, http.MethodPost, "/api/v1/principals", map[string]string{"name": "ci-web"}, http.StatusCreated)
	if resp, _ := s.do(t, http.MethodGet, "/v2/", map[string]string{"Authorization": "Basic " + basicCredentials("ci-web", "brs_not-it")}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %s", resp.Status)
	}
	admin := newBrowser(t)
	id, secret := s.admin(t)
	consoleSignIn(t, s, admin, id, secret)
	s.stop(t) // flushes the audit log
	s = startServe(t, dir)

	resp, page := admin.get(s.url + "/audit?result=denied")
	events := section(t, page, "events", "</main>")
	if resp.StatusCode != http.StatusOK || !strings.Contains(events, `<a href="/errors/secret_invalid"><code>secret_invalid</code></a>`) || strings.Contains(events, "principal.create") {
		t.Fatalf("/audit?result=denied: %s\n%s", resp.Status, page)
	}
	if _, page = admin.get(s.url + "/audit"); !strings.Contains(section(t, page, "events", "</main>"), "principal.create") {
		t.Fatalf("/audit:\n%s", page)
	}
	if _, page = admin.get(s.url + "/principals/ci-web"); !strings.Contains(section(t, page, "refusals", "</main>"), `<code>secret_invalid</code>`) {
		t.Fatalf("ci-web's recent refusals:\n%s", page)
	}
	// Each filter: time (since and until), principal, result, code,
	// action and repository reach the API's query.
	for q, want := range map[string][2]string{
		"until=2000-01-01T00:00:00Z":                            {"No events match.", ""},
		"since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z": {"No events match.", ""},
		"action=principal.create":                               {"principal.create", "auth.basic"},
		"code=secret_invalid":                                   {"secret_invalid", "principal.create"},
		"principal=nobody":                                      {"No events match.", ""},
		"repository=team%2Fapp":                                 {"No events match.", ""},
		"result=allowed":                                        {"principal.create", "secret_invalid"},
	} {
		resp, page := admin.get(s.url + "/audit?" + q)
		events := section(t, page, "events", "</main>")
		if resp.StatusCode != http.StatusOK || !strings.Contains(events, want[0]) || want[1] != "" && strings.Contains(events, want[1]) {
			t.Errorf("/audit?%s: %s, want %q without %q:\n%s", q, resp.Status, want[0], want[1], events)
		}
		if v, _ := url.ParseQuery(q); !strings.Contains(page, `value="`+v[strings.Split(q, "=")[0]][0]+`"`) && !strings.Contains(page, "selected>"+v.Get("result")) {
			t.Errorf("/audit?%s does not keep the filter in its form:\n%s", q, page)
		}
	}
	if _, page = admin.get(s.url + "/audit?verify=1"); !strings.Contains(page, "The chain verifies") {
		t.Fatalf("Verify chain:\n%s", page)
	}
	resp, page = admin.get(s.url + "/audit?code=nonsense")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `href="/errors/`) {
		t.Fatalf("a bad filter: %s\n%s", resp.Status, page)
	}
}

// TestConsolePipelines: the list, registering with a preset through the
// API (a refusal shown as its page), and the CI system's YAML.
func TestConsolePipelines(t *testing.T) {
	s := startServe(t, t.TempDir())
	admin := newBrowser(t)
	id, secret := s.admin(t)
	consoleSignIn(t, s, admin, id, secret)
	_, page := admin.get(s.url + "/pipelines")
	if !strings.Contains(page, "No pipelines.") || !strings.Contains(page, `<option value="gitlab">GitLab CI`) {
		t.Fatalf("/pipelines:\n%s", page)
	}
	csrf := csrfOf(t, page)
	resp, page := admin.post(s.url+"/pipelines", url.Values{"csrf": {csrf}, "name": {"api-main"}, "preset": {"gitlab"}, "spec": {"group/api@main"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Pipeline api-main</h1>") || !strings.Contains(page, "id_tokens:") ||
		!strings.Contains(page, "aud: berth") || !strings.Contains(page, "berth login 127.0.0.1:") {
		t.Fatalf("after Register: %s\n%s", resp.Status, page)
	}
	if p := s.apiJSON(t, http.MethodGet, "/api/v1/pipelines/api-main", nil, http.StatusOK); p["issuer"] != berth.GitLabIssuer {
		t.Fatalf("api-main: %v", p)
	}
	resp, page = admin.post(s.url+"/pipelines", url.Values{"csrf": {csrf}, "name": {"api-main"}, "preset": {"gitlab"}, "spec": {"group/api@main"}})
	wantReason(t, "registering twice", resp, page, http.StatusConflict, berth.CodeConflict)
	if _, page = admin.get(s.url + "/pipelines"); !strings.Contains(page, `<a href="/pipelines/api-main">api-main</a></td><td>gitlab</td>`) {
		t.Fatalf("/pipelines after Register:\n%s", page)
	}

	// The four presets, each with its CI system's YAML; Azure Pipelines and
	// Kubernetes need the issuer the form sends along.
	for _, p := range []struct {
		name, preset, spec, issuer, audience, subject, yaml string
	}{
		{"web-main", berth.PresetGitHub, "org/web@main", "", "", "repo:org/web:ref:refs/heads/main", "id-token: write"},
		{"api-gl", berth.PresetGitLab, "group/api", "", "", "project_path:group/api:*", "BERTH_ID_TOKEN:"},
		{"ado", berth.PresetAzureDevOps, "contoso/web/berth", "https://vstoken.dev.azure.com/0000-org", "api://AzureADTokenExchange", "sc://contoso/web/berth", "SYSTEM_ACCESSTOKEN: $(System.AccessToken)"},
		{"k8s", berth.PresetKubernetes, "ci/builder", "https://kubernetes.default.svc.cluster.local", "", "system:serviceaccount:ci:builder", "serviceAccountToken:"},
	} {
		resp, page := admin.post(s.url+"/pipelines", url.Values{"csrf": {csrf}, "name": {p.name}, "preset": {p.preset}, "spec": {p.spec}, "issuer": {p.issuer}, "audience": {p.audience}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Pipeline "+p.name+"</h1>") || !strings.Contains(page, "<code>"+p.subject+"</code>") ||
			!strings.Contains(section(t, page, "snippet", "</main>"), p.yaml) || !strings.Contains(page, "--connection CONNECTION") {
			t.Errorf("Register %s (%s): %s\n%s", p.name, p.preset, resp.Status, page)
		}
		if strings.Contains(page, "mints ID tokens for the audience") {
			t.Errorf("%s: a warning about Azure's audience:\n%s", p.name, page)
		}
	}
	// A connection that permits it fills in the snippet.
	s.apiJSON(t, http.MethodPost, "/api/v1/principals", map[string]string{"name": "ci-web"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/connections", map[string]string{"name": "web", "principal": "ci-web"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/connections/web/authorize", map[string]string{"pipeline": "web-main"}, http.StatusOK)
	if _, page = admin.get(s.url + "/pipelines/web-main"); !strings.Contains(page, "berth login 127.0.0.1:") || !strings.Contains(page, " --connection web\n") {
		t.Errorf("web-main's snippet does not name web:\n%s", page)
	}
	// Azure Pipelines' tokens are for one audience: a pipeline registered
	// for another is told so.
	s.apiJSON(t, http.MethodPost, "/api/v1/pipelines", map[string]string{"name": "ado-wrong", "preset": berth.PresetAzureDevOps, "spec": "contoso/web/berth", "issuer": "https://vstoken.dev.azure.com/0000-org"}, http.StatusCreated)
	if _, page = admin.get(s.url + "/pipelines/ado-wrong"); !strings.Contains(page, "mints ID tokens for the audience <code>api://AzureADTokenExchange</code> only") {
		t.Errorf("ado-wrong's page does not warn of its audience:\n%s", page)
	}
}

// TestConsoleRepositories: a person sees the repositories they may list,
// the tags with pull commands; Delete only where their delete role allows,
// and a delete without it is the API's refusal.
func TestConsoleRepositories(t *testing.T) {
	s, _ := peopleServer(t)
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:devs", "role": "pull", "scope": "team/*"}, http.StatusCreated)
	id, secret := s.admin(t)
	img, err := random.Image(1024, 1, random.WithSource(rand.NewSource(5)))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"team/app:v1", "team/app:v2", "other/x:v1"} {
		ref, _ := name.ParseReference(strings.TrimPrefix(s.url, "http://")+"/"+r, name.Insecure)
		if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: id, Password: secret})); err != nil {
			t.Fatal(err)
		}
	}
	ada := newBrowser(t)
	ada.get(s.url + "/login/corp?next=/")
	resp, page := ada.get(s.url + "/repositories")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<a href="/repositories/team/app">team/app</a>`) || strings.Contains(page, "other/x") {
		t.Fatalf("ada's repositories: %s\n%s", resp.Status, page)
	}
	resp, page = ada.get(s.url + "/repositories/team/app")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "docker pull 127.0.0.1:") || !strings.Contains(page, "/team/app:v2</code>") || strings.Contains(page, "/tags/delete") {
		t.Fatalf("team/app for ada (pull only): %s\n%s", resp.Status, page)
	}
	resp, page = ada.post(s.url+"/tags/delete", url.Values{"csrf": {csrfOf(t, page)}, "repository": {"team/app"}, "tag": {"v1"}})
	wantReason(t, "ada deletes a tag", resp, page, http.StatusForbidden, berth.CodeRoleMissing)
	if id := resp.Header.Get("X-Request-Id"); id == "" || !strings.Contains(page, "Request id "+id) {
		t.Errorf("the refusal page does not name its request id %q, which the log has:\n%s", id, page)
	}

	admin := newBrowser(t)
	consoleSignIn(t, s, admin, id, secret)
	_, page = admin.get(s.url + "/repositories/team/app")
	if !strings.Contains(page, `aria-label="Delete tag v1"`) {
		t.Fatalf("team/app for the owner:\n%s", page)
	}
	if resp, page = admin.post(s.url+"/tags/delete", url.Values{"csrf": {csrfOf(t, page)}, "repository": {"team/app"}, "tag": {"v1"}}); resp.StatusCode != http.StatusOK || strings.Contains(page, "/team/app:v1</code>") || !strings.Contains(page, "/team/app:v2</code>") {
		t.Fatalf("after Delete: %s\n%s", resp.Status, page)
	}
}

// TestConsoleWebhooks: the endpoints, a delivery with the endpoint's
// answer, Redeliver through the API, and an unknown delivery refused.
func TestConsoleWebhooks(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	w := s.apiJSON(t, http.MethodPost, "/api/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"image.pushed"}, "description": "ops"}, http.StatusCreated)
	id := w["id"].(string)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, metadataFile))
	if err != nil {
		t.Fatal(err)
	}
	// One delivered, one failed once and queued again, one failed for good.
	d, err := berth.NewDelivery(crand.Reader, id, berth.Event{ID: "ev-1", Type: berth.EventImagePushed}, []byte(`{}`), time.Now())
	queued, err2 := berth.NewDelivery(crand.Reader, id, berth.Event{ID: "ev-2", Type: berth.EventImagePushed}, []byte(`{}`), time.Now())
	failed, err3 := berth.NewDelivery(crand.Reader, id, berth.Event{ID: "ev-3", Type: berth.EventImagePushed}, []byte(`{}`), time.Now())
	err = errors.Join(err, err2, err3)
	if err == nil {
		_, err = db.EnqueueDeliveries(ctx, "", []berth.Delivery{d, queued, failed})
	}
	for i := 0; i < 100 && failed.Status != berth.DeliveryFailed; i++ {
		failed = failed.Attempted(time.Now(), 503, nil)
	}
	if err == nil {
		err = errors.Join(db.UpdateDelivery(ctx, d.Attempted(time.Now(), 200, nil)), db.UpdateDelivery(ctx, queued.Attempted(time.Now(), 500, nil)),
			db.UpdateDelivery(ctx, failed))
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	admin := newBrowser(t)
	cid, secret := s.admin(t)
	consoleSignIn(t, s, admin, cid, secret)
	_, page := admin.get(s.url + "/")
	if hooks := section(t, page, "hooks", "refusals"); !strings.Contains(hooks, `<a href="/webhooks/`+id+`">http://127.0.0.1:9/hook</a>: 1 failed`) || !strings.Contains(hooks, "HTTP 503") {
		t.Fatalf("Attention's failing webhooks:\n%s", hooks)
	}
	_, page = admin.get(s.url + "/webhooks")
	if !strings.Contains(page, `<a href="/webhooks/`+id+`">http://127.0.0.1:9/hook</a>`) || strings.Contains(page, berth.WebhookSecretPrefix) {
		t.Fatalf("/webhooks:\n%s", page)
	}
	_, page = admin.get(s.url + "/webhooks/" + id)
	if !strings.Contains(page, "HTTP 500") || !strings.Contains(page, "HTTP 200") || !strings.Contains(page, "/deliveries/"+d.ID+"/redeliver") ||
		!strings.Contains(page, `<th scope="col">Last attempt</th>`) || strings.Count(page, `<span class="muted">next `) != 1 {
		t.Fatalf("the webhook's page:\n%s", page)
	}
	resp, page := admin.post(s.url+"/webhooks/"+id+"/deliveries/"+d.ID+"/redeliver", url.Values{"csrf": {csrfOf(t, page)}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<code>image.pushed</code>") {
		t.Fatalf("Redeliver: %s\n%s", resp.Status, page)
	}
	resp, page = admin.post(s.url+"/webhooks/"+id+"/deliveries/"+queued.ID+"/redeliver", url.Values{"csrf": {csrfOf(t, page)}})
	wantReason(t, "a queued delivery", resp, page, http.StatusConflict, berth.CodeConflict)
	resp, page = admin.post(s.url+"/webhooks/"+id+"/deliveries/00000000-0000-0000-0000-000000000000/redeliver", url.Values{"csrf": {csrfOf(t, page)}})
	wantReason(t, "an unknown delivery", resp, page, http.StatusNotFound, berth.CodeNotFound)
}

// TestConsoleIndexAndManifestDelete: a tag on an image index lists the
// index's platforms with each child's digest; a manifest is deleted by
// digest where the delete role allows, through the registry's own DELETE:
// refused without delete (role_missing, as on /v2/), refused where an
// immutable tag holds it (tag_immutable, for a tag as for a manifest), and
// audited as registry.delete.
func TestConsoleIndexAndManifestDelete(t *testing.T) {
	s, _ := peopleServer(t)
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:devs", "role": "pull", "scope": "team/*"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/immutable", map[string]string{"scope": "team/*", "tags": "release-*"}, http.StatusCreated)
	id, secret := s.admin(t)
	auth := remote.WithAuth(&authn.Basic{Username: id, Password: secret})
	host := strings.TrimPrefix(s.url, "http://")
	ref := func(r string) name.Reference {
		t.Helper()
		n, err := name.ParseReference(host+"/"+r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	idx := v1.ImageIndex(empty.Index)
	var children []v1.Hash
	for i, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		img, err := random.Image(256, 1, random.WithSource(rand.NewSource(int64(10+i))))
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		children = append(children, d)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	if err := remote.WriteIndex(ref("team/app:multi"), idx, auth); err != nil {
		t.Fatal(err)
	}
	single, err := random.Image(512, 1, random.WithSource(rand.NewSource(20)))
	if err != nil {
		t.Fatal(err)
	}
	kept, err := random.Image(512, 1, random.WithSource(rand.NewSource(21)))
	if err != nil {
		t.Fatal(err)
	}
	for r, img := range map[string]v1.Image{"team/app:single": single, "team/app:release-1": kept} {
		if err := remote.Write(ref(r), img, auth); err != nil {
			t.Fatal(err)
		}
	}
	singleDigest, _ := single.Digest()
	keptDigest, _ := kept.Digest()

	ada := newBrowser(t)
	ada.get(s.url + "/login/corp?next=/")
	resp, page := ada.get(s.url + "/repositories/team/app")
	tags := section(t, page, "tags", "manifests")
	for i, p := range []string{"linux/amd64", "linux/arm64/v8"} {
		if !strings.Contains(tags, "<li><code>"+p+"</code> <code title=\""+children[i].String()+"\">"+berth.Digest(children[i].String()).Short()+"…</code></li>") {
			t.Fatalf("team/app's tags lack platform %s of the index (%s):\n%s", p, children[i], tags)
		}
	}
	if resp.StatusCode != http.StatusOK || strings.Contains(page, "/manifests/delete") {
		t.Fatalf("team/app for ada (pull only): %s\n%s", resp.Status, page)
	}
	// The index's tag counts what pulling every platform stores.
	var detail struct {
		Manifests []struct {
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
			Platforms []struct {
				Digest string `json:"digest"`
			} `json:"platforms"`
		} `json:"manifests"`
	}
	_, b := s.do(t, http.MethodGet, "/api/v1/repositories/team/app", nil, nil)
	if err := json.Unmarshal(b, &detail); err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, m := range detail.Manifests {
		sizes[m.Digest] = m.Size
	}
	indexDigest, _ := idx.Digest()
	total := sizes[indexDigest.String()] + sizes[children[0].String()] + sizes[children[1].String()]
	if sizes[children[0].String()] == 0 || !strings.Contains(tags, "<td>"+berth.FormatBytes(total)+"</td>") {
		t.Fatalf("the index's tag does not show %s, its size with its platforms':\n%s", berth.FormatBytes(total), tags)
	}
	resp, page = ada.post(s.url+"/manifests/delete", url.Values{"csrf": {csrfOf(t, page)}, "repository": {"team/app"}, "digest": {singleDigest.String()}})
	wantReason(t, "ada deletes a manifest", resp, page, http.StatusForbidden, berth.CodeRoleMissing)
	resp, page = ada.post(s.url+"/manifests/delete", url.Values{"repository": {"team/app"}, "digest": {singleDigest.String()}})
	wantReason(t, "a delete without csrf", resp, page, http.StatusForbidden, berth.CodeSignInStateInvalid)

	admin := newBrowser(t)
	consoleSignIn(t, s, admin, id, secret)
	_, page = admin.get(s.url + "/repositories/team/app")
	if !strings.Contains(page, `aria-label="Delete manifest `+singleDigest.String()+`"`) {
		t.Fatalf("team/app for the owner:\n%s", page)
	}
	csrf := csrfOf(t, page)
	resp, page = admin.post(s.url+"/manifests/delete", url.Values{"csrf": {csrf}, "repository": {"team/app"}, "digest": {singleDigest.String()}})
	if resp.StatusCode != http.StatusOK || strings.Contains(page, singleDigest.String()) || strings.Contains(page, "/team/app:single</code>") || !strings.Contains(page, "/team/app:multi</code>") {
		t.Fatalf("after deleting the manifest: %s\n%s", resp.Status, page)
	}
	if _, err := remote.Get(ref("team/app@"+singleDigest.String()), auth); !berth.IsCode(apiReason(err), berth.CodeManifestUnknown) {
		t.Fatalf("the deleted manifest on /v2/: %v, want manifest_unknown", err)
	}
	// The registry's lifecycle rules hold in the console too.
	resp, page = admin.post(s.url+"/manifests/delete", url.Values{"csrf": {csrf}, "repository": {"team/app"}, "digest": {keptDigest.String()}})
	wantReason(t, "deleting the manifest of an immutable tag", resp, page, http.StatusConflict, berth.CodeTagImmutable)
	resp, page = admin.post(s.url+"/tags/delete", url.Values{"csrf": {csrf}, "repository": {"team/app"}, "tag": {"release-1"}})
	wantReason(t, "deleting an immutable tag", resp, page, http.StatusConflict, berth.CodeTagImmutable)
	resp, page = admin.post(s.url+"/manifests/delete", url.Values{"csrf": {csrf}, "repository": {"team/app"}, "digest": {"sha256:nothex"}})
	wantReason(t, "a malformed digest", resp, page, http.StatusBadRequest, berth.CodeDigestInvalid)

	// Stopping serve flushes the audit writer.
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	code, stdout, stderr := runCLI(t, nil, "audit", "--data", s.dir, "--action", "registry.delete", "-o", "json")
	if code != 0 {
		t.Fatalf("audit: exit %d: %s", code, stderr)
	}
	var events []berth.AuditEvent
	if err := json.Unmarshal([]byte(stdout), &events); err != nil {
		t.Fatalf("audit -o json: %v: %s", err, stdout)
	}
	var allowed, denied bool
	for _, e := range events {
		allowed = allowed || (e.Actor == berth.AdminName && e.Target == "team/app" && e.Result == berth.AuditAllowed)
		denied = denied || (e.Actor != berth.AdminName && e.Target == "team/app" && e.Result == berth.AuditDenied && e.Reason == berth.CodeRoleMissing)
	}
	if !allowed || !denied {
		t.Errorf("registry.delete events: allowed by admin %v, denied to ada %v:\n%s", allowed, denied, stdout)
	}
}

var (
	formTag    = regexp.MustCompile(`(?s)<form([^>]*)>(.*?)</form>`)
	controlTag = regexp.MustCompile(`<(input|select|textarea)\b([^>]*)>`)
	idAttr     = regexp.MustCompile(`\sid="([^"]*)"`)
	inlineCode = regexp.MustCompile(`(?i)<script\b[^>]*>[^<]+</script>|<style\b|\sstyle=|\son[a-z]+=|javascript:`)
	scriptTag  = regexp.MustCompile(`(?i)<script\b[^>]*>`)
)

// wantWellFormedPage checks what every console page must be: no inline
// script or style (CSP without unsafe-inline), the csrf field in every POST
// form, a label for every control, unique ids, the landmarks and the skip
// link, and copy buttons that say what they copy.
func wantWellFormedPage(t *testing.T, what, page string) {
	t.Helper()
	if m := inlineCode.FindString(page); m != "" {
		t.Errorf("%s: inline script or style %q", what, m)
	}
	for _, sc := range scriptTag.FindAllString(page, -1) {
		if !strings.Contains(sc, ` src="/assets/`) {
			t.Errorf("%s: a script that is not one of the console's files: %s", what, sc)
		}
	}
	for _, f := range formTag.FindAllStringSubmatch(page, -1) {
		if strings.Contains(f[1], `method="post"`) && !regexp.MustCompile(`<input type="hidden" name="csrf" value="[0-9a-f]{16,}">`).MatchString(f[2]) {
			t.Errorf("%s: a POST form without its csrf field: %s", what, f[0])
		}
		if !strings.Contains(f[1], `method="post"`) && !strings.Contains(f[1], `method="get"`) {
			t.Errorf("%s: a form without an explicit method: %s", what, f[0])
		}
	}
	for _, c := range controlTag.FindAllStringSubmatch(page, -1) {
		if strings.Contains(c[2], `type="hidden"`) || strings.Contains(c[2], "aria-label=") || strings.Contains(c[2], "aria-labelledby=") {
			continue
		}
		id := idAttr.FindStringSubmatch(c[0])
		if id == nil || !strings.Contains(page, `<label for="`+id[1]+`"`) {
			t.Errorf("%s: a control without a label: %s", what, c[0])
		}
	}
	seen := map[string]bool{}
	for _, id := range idAttr.FindAllStringSubmatch(page, -1) {
		if seen[id[1]] {
			t.Errorf("%s: the id %q twice", what, id[1])
		}
		seen[id[1]] = true
	}
	for _, want := range []string{`<html lang="en">`, `<a class="skip" href="#main">`, "<header>", `<main id="main">`, "<h1>"} {
		if !strings.Contains(page, want) {
			t.Errorf("%s: no %s", what, want)
		}
	}
	for _, b := range regexp.MustCompile(`<button[^>]*data-copy[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(b, "aria-label=") {
			t.Errorf("%s: a copy button that does not say what it copies: %s", what, b)
		}
		// Without JavaScript a copy button does nothing: console.js shows it.
		if !strings.Contains(b, " hidden>") {
			t.Errorf("%s: a copy button shown without JavaScript: %s", what, b)
		}
	}
}

// TestConsoleEveryPage visits every page an owner reaches, and the answers
// that show a secret, with every security header and the structure every
// page needs (wantWellFormedPage); then forges every state-changing form
// without the session's csrf field: each is refused and changes nothing.
func TestConsoleEveryPage(t *testing.T) {
	s := startServe(t, t.TempDir())
	s.apiJSON(t, http.MethodPost, "/api/v1/principals", map[string]string{"name": "ci-web"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/principals/ci-web/secrets", map[string]string{"expires_in": "10d"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/principals", map[string]string{"name": "legacy-ci"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/connections", map[string]string{"name": "legacy", "principal": "legacy-ci", "auth": "secret"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/pipelines", map[string]string{"name": "web-main", "preset": berth.PresetGitHub, "spec": "org/web@main"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/connections", map[string]string{"name": "web", "principal": "ci-web"}, http.StatusCreated)
	w := s.apiJSON(t, http.MethodPost, "/api/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"image.pushed"}}, http.StatusCreated)
	id, secret := s.admin(t)
	img, err := random.Image(256, 1, random.WithSource(rand.NewSource(3)))
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(strings.TrimPrefix(s.url, "http://")+"/team/app:v1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: id, Password: secret})); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()

	anon := newBrowser(t)
	resp, page := anon.get(s.url + "/signin")
	wantConsoleHeaders(t, "/signin", resp)
	wantWellFormedPage(t, "/signin", page)
	admin := newBrowser(t)
	consoleSignIn(t, s, admin, id, secret)
	for _, p := range []string{"/", "/?verify=1", "/principals", "/principals/ci-web", "/connections", "/connections/legacy", "/connections/legacy?verify=1",
		"/connections/web", "/pipelines", "/pipelines/web-main", "/access", "/why-not", "/why-not?principal=ci-web&action=push&repository=team%2Fapp",
		"/repositories", "/repositories/team/app", "/audit", "/audit?verify=1", "/webhooks", "/webhooks/" + w["id"].(string), "/errors", "/errors/secret_expired"} {
		resp, page := admin.get(s.url + p)
		if resp.StatusCode != http.StatusOK || strings.Contains(page, `class="refusal"`) && p != "/why-not?principal=ci-web&action=push&repository=team%2Fapp" {
			t.Errorf("%s: %s\n%s", p, resp.Status, page)
		}
		wantConsoleHeaders(t, p, resp)
		wantWellFormedPage(t, p, page)
		if path, _, _ := strings.Cut(p, "?"); strings.Count(path, "/") == 1 && !strings.HasPrefix(path, "/errors") &&
			!regexp.MustCompile(`<a href="`+regexp.QuoteMeta(path)+`" aria-current="page">`).MatchString(page) {
			t.Errorf("%s: the navigation does not mark the page as current", p)
		}
		if resp.Header.Get("Cache-Control") == "no-store" || strings.Contains(page, "secret-value") {
			t.Errorf("%s shows no secret, yet: Cache-Control %q", p, resp.Header.Get("Cache-Control"))
		}
	}
	// /errors/CODE for every reason code, as berth explain shows it, to
	// anyone: no session needed.
	for _, info := range berth.Codes {
		resp, page := anon.get(s.url + "/errors/" + string(info.Code))
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Reason code "+string(info.Code)+"</h1>") {
			t.Errorf("/errors/%s: %s", info.Code, resp.Status)
		}
		wantConsoleHeaders(t, "/errors/"+string(info.Code), resp)
	}
	_, page = admin.get(s.url + "/")
	csrf := csrfOf(t, page)
	var shown []string
	for _, p := range []string{"/principals/ci-web/secrets", "/connections/legacy/save"} {
		resp, page := admin.post(s.url+p, url.Values{"csrf": {csrf}, "expires_in": {"30d"}})
		m := secretValue.FindStringSubmatch(page)
		if resp.StatusCode != http.StatusOK || m == nil || resp.Header.Get("Cache-Control") != "no-store" || resp.Request.URL.Path != p {
			t.Fatalf("POST %s: %s %q at %s\n%s", p, resp.Status, resp.Header.Get("Cache-Control"), resp.Request.URL, page)
		}
		shown = append(shown, m[1])
		wantConsoleHeaders(t, p, resp)
		wantWellFormedPage(t, "POST "+p, page)
	}
	// The values were in those answers only: not in the server's log, the
	// audit log, nor any page since.
	for _, v := range shown {
		for _, p := range []string{"/", "/principals/ci-web", "/connections/legacy", "/audit"} {
			if _, page := admin.get(s.url + p); strings.Contains(page, v) {
				t.Errorf("%s shows a secret again", p)
			}
		}
	}

	// Every state-changing form, forged: refused, and nothing changes.
	before := s.apiJSON(t, http.MethodGet, "/api/v1/principals/ci-web/secrets", nil, http.StatusOK)
	for _, f := range []struct {
		path string
		form url.Values
	}{
		{"/principals/ci-web/secrets", url.Values{"expires_in": {"30d"}}},
		{"/principals/ci-web/secrets/x/remove", nil},
		{"/principals/ci-web/disable", nil},
		{"/principals/admin/disable", nil},
		{"/principals/ci-web/enable", nil},
		{"/principals/ci-web/roles", url.Values{"role": {"owner"}, "scope": {"registry"}}},
		{"/principals/admin/roles/revoke", url.Values{"role": {"owner"}, "scope": {"registry"}}},
		{"/connections/legacy/save", nil},
		{"/connections/web/authorize", url.Values{"pipeline": {"web-main"}}},
		{"/connections/web/unauthorize", url.Values{"pipeline": {"web-main"}}},
		{"/connections/web/permit", url.Values{"pipeline": {"web-main"}}},
		{"/connections/web/dismiss", url.Values{"pipeline": {"web-main"}}},
		{"/pipelines", url.Values{"name": {"forged"}, "preset": {"github"}, "spec": {"evil/repo"}}},
		{"/tags/delete", url.Values{"repository": {"team/app"}, "tag": {"v1"}}},
		{"/manifests/delete", url.Values{"repository": {"team/app"}, "digest": {digest.String()}}},
		{"/webhooks/" + w["id"].(string) + "/deliveries/x/redeliver", nil},
	} {
		for _, forged := range []string{"", strings.Repeat("0", len(csrf))} {
			form := url.Values{"csrf": {forged}}
			for k, v := range f.form {
				form[k] = v
			}
			resp, page := admin.post(s.url+f.path, form)
			wantReason(t, "forged POST "+f.path, resp, page, http.StatusForbidden, berth.CodeSignInStateInvalid)
			wantConsoleHeaders(t, "forged POST "+f.path, resp)
		}
	}
	after := s.apiJSON(t, http.MethodGet, "/api/v1/principals/ci-web/secrets", nil, http.StatusOK)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("forged forms changed ci-web's secrets:\n%v\n%v", before, after)
	}
	if p := s.apiJSON(t, http.MethodGet, "/api/v1/principals/admin", nil, http.StatusOK); p["disabled"] != false {
		t.Errorf("a forged form disabled admin: %v", p)
	}
	if _, err := remote.Head(ref, remote.WithAuth(&authn.Basic{Username: id, Password: secret})); err != nil {
		t.Errorf("a forged form deleted team/app:v1: %v", err)
	}
	s.apiJSON(t, http.MethodGet, "/api/v1/pipelines/forged", nil, http.StatusNotFound)

	// Stopping serve flushes the audit log, which records the changes and
	// never the values; nor does the server's log.
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	code, audit, stderr := runCLI(t, nil, "audit", "--data", s.dir, "--since", "1h", "-o", "json")
	if code != 0 || !strings.Contains(audit, `"connection.save"`) || !strings.Contains(audit, `"secret.add"`) {
		t.Fatalf("audit: exit %d: %s\n%s", code, stderr, audit)
	}
	for _, v := range shown {
		if strings.Contains(s.stderr.String(), v) || strings.Contains(audit, v) {
			t.Errorf("a secret shown once is in the server's log or the audit log")
		}
	}
}

// TestConsoleHistoryLinksTheRun: a CI job's login through a connection
// appears in the connection's history with a link to the job's run, taken
// from its ID token's claims (GitHub's issuer, keys pinned: nothing is
// fetched).
func TestConsoleHistoryLinksTheRun(t *testing.T) {
	f := startFederationWith(t, func(string) [][]string { return nil })
	const github = "https://token.actions.githubusercontent.com"
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, f.iss.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	f.cli(t, "principal", "create", "ci-bot")
	f.cli(t, "pipeline", "create", "gh-main", "--github", "org/app@main", "--issuer", github, "--jwks-file", jwks)
	f.cli(t, "connection", "create", "ci", "--principal", "ci-bot")
	f.cli(t, "connection", "authorize", "ci", "--pipeline", "gh-main")
	token := f.iss.GitHub(oidctest.GitHubJob{Audience: f.service, RunID: 31337}, oidctest.WithClaims(map[string]any{"iss": github}))
	if code, _, stderr := runCLI(t, job(t, map[string]string{envIDToken: token}), "login", f.host, "--connection", "ci"); code != 0 {
		t.Fatalf("berth login --connection ci: %s", stderr)
	}
	// The history is the audit log's (restarting flushes it).
	f.s.stop(t)
	s := startServe(t, f.s.dir)
	admin := newBrowser(t)
	id, secret := s.admin(t)
	consoleSignIn(t, s, admin, id, secret)
	_, page := admin.get(s.url + "/connections/ci")
	if !strings.Contains(section(t, page, "history", "</main>"), `<a href="https://github.com/org/app/actions/runs/31337" rel="noopener noreferrer">build run 31337</a>`) {
		t.Fatalf("the history does not link the run:\n%s", section(t, page, "history", "</main>"))
	}
}
