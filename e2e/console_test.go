package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/internal/oidctest"
)

// chromium returns the headless browser's path: Debian's chromium package,
// which .ci/run installs. Missing, the test skips, or fails under BERTH_E2E=1.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("BERTH_E2E") == "1" {
		t.Fatal("BERTH_E2E=1 but no chromium is installed (apt-get install chromium, or run .ci/run)")
	}
	t.Skip("no chromium is installed, so the console is not driven by a browser (apt-get install chromium, or set BERTH_E2E=1 to make this a failure)")
	return ""
}

// adminAPI sends one management API request as the initial admin and
// returns the decoded answer, failing unless the status is want.
func adminAPI(t *testing.T, s *server, method, path string, body any, want int) map[string]any {
	t.Helper()
	user, pass, _ := s.creds()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "http://"+s.addr+path, bytes.NewReader(b))
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s %v", method, path, resp.Status, out)
	}
	return out
}

// TestConsoleBrowser drives the web console with headless Chromium: a
// person signs in through the company's identity provider, sees Attention,
// saves a connection's secret (the new value then works), and Why not? names
// the missing role; a person without owner sees no administration, and a
// forged POST is refused. Screenshots go to $BERTH_SCREENSHOTS when set
// (docs/screenshots holds the ones docs/console.md shows).
func TestConsoleBrowser(t *testing.T) {
	needServer(t)
	if serverKind() != "berth" {
		t.Skip("the console is berth's")
	}
	exe := chromium(t)
	company := oidctest.NewCompany(t, "berth-app", "upstream-secret")
	company.SetPerson(oidctest.Person{Subject: "00u-ada", Username: "ada", Email: "ada@corp.example", Groups: []string{"admins"}})
	s := startServer(t, t.TempDir())
	adminAPI(t, s, http.MethodPost, "/api/v1/idps", map[string]string{"name": "corp", "issuer": company.URL, "client_id": "berth-app", "client_secret": "upstream-secret"}, http.StatusCreated)
	adminAPI(t, s, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:admins", "role": "owner", "scope": "registry"}, http.StatusCreated)
	adminAPI(t, s, http.MethodPost, "/api/v1/principals", map[string]string{"name": "legacy-ci"}, http.StatusCreated)
	adminAPI(t, s, http.MethodPost, "/api/v1/connections", map[string]string{"name": "legacy", "principal": "legacy-ci", "auth": "secret", "expires_in": "10d"}, http.StatusCreated)
	base := "http://" + s.addr
	// An image with a tag, for the repository pages.
	id, secret := s.adminCreds(t)
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(s.addr+"/team/app:v1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: id, Password: secret})); err != nil {
		t.Fatal(err)
	}

	shots := os.Getenv("BERTH_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1100, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, s.logTail())
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join(shots, name), b, 0o644)
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
	}

	// Sign in through the company's provider: / sends the browser to
	// /signin, whose link goes through the provider and back to /.
	do("sign-in page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#client_secret`)))
	shot("signin.png")
	do("sign in", chromedp.Click(chromedp.CSS(`a[href^="/login/corp"]`)), chromedp.WaitVisible(chromedp.CSS(`#secrets`)))
	title, err := chromedp.Run(ctx, chromedp.Title())
	if page := text(`body`); err != nil || title != "Attention · berth" || !strings.Contains(page, "Signed in as ada") || !strings.Contains(page, "legacy-ci") {
		t.Fatalf("Attention: title %q %v\n%s", title, err, page)
	}
	shot("attention.png")

	// Save renews the connection's secret; the value is on the page once,
	// and works at once.
	do("Save", chromedp.Navigate(base+"/connections/legacy"), chromedp.Click(chromedp.Search(`//button[text()="Save"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#secret-value`)))
	value := strings.TrimSpace(text(`#secret-value`))
	shot("connection-save.png")
	req, _ := http.NewRequest(http.MethodGet, base+"/v2/", nil)
	req.SetBasicAuth("legacy-ci", value)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the saved secret at /v2/: %v %v", resp, err)
	}

	// Why not? names the missing role.
	do("Why not?", chromedp.Navigate(base+"/why-not"),
		chromedp.SetValue(chromedp.CSS(`#principal`), "legacy-ci"), chromedp.SetValue(chromedp.CSS(`#action`), "push"),
		chromedp.SetValue(chromedp.CSS(`#repository`), "team/app"),
		chromedp.Click(chromedp.Search(`//button[text()="Check"]`)), chromedp.WaitVisible(chromedp.CSS(`#decision`)))
	if page := text(`#main`); !strings.Contains(page, "role_missing") || !strings.Contains(page, "Missing role: push") {
		t.Fatalf("Why not? does not name the missing role:\n%s", page)
	}
	shot("why-not.png")

	// Every other page an owner reaches from the header, each shown (and
	// looked at: docs/console.md) without a refusal.
	for _, p := range []struct{ path, title, shot string }{
		{"/principals", "Principals", "principals.png"},
		{"/principals/legacy-ci", "legacy-ci", "principal.png"},
		{"/pipelines", "Pipelines", "pipelines.png"},
		{"/repositories", "Repositories", "repositories.png"},
		{"/repositories/team/app", "team/app", "repository.png"},
		{"/access", "Access", "access.png"},
		{"/audit", "Audit", "audit.png"},
		{"/webhooks", "Webhooks", "webhooks.png"},
		{"/errors/role_missing", "role_missing", "error-page.png"},
	} {
		do(p.path, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS(`#main`)))
		if page := text(`#main`); strings.Contains(page, "Refused") || !strings.Contains(page, p.title) {
			t.Fatalf("%s does not show %q:\n%s", p.path, p.title, page)
		}
		shot(p.shot)
	}

	// Sign out; Bob, without owner, signs in: no administration, and a
	// form forged with a wrong csrf value is refused.
	company.SetPerson(oidctest.Person{Subject: "00u-bob", Username: "bob", Email: "bob@corp.example", Groups: []string{"devs"}})
	do("sign out", chromedp.Navigate(base+"/"), chromedp.Click(chromedp.Search(`//button[text()="Sign out"]`)), chromedp.WaitVisible(chromedp.Search(`//h1[text()="Signed out"]`)))
	do("Bob signs in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#client_secret`)),
		chromedp.Click(chromedp.CSS(`a[href^="/login/corp"]`)), chromedp.WaitVisible(chromedp.CSS(`.refusal`)))
	noAdmin, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('a[href="/principals"]') === null && document.querySelector('form[method="post"][action^="/principals"], form[action$="/permit"]') === null`))
	if page := text(`body`); err != nil || !noAdmin || !strings.Contains(page, "role_missing") || !strings.Contains(page, "Signed in as bob") {
		t.Fatalf("Bob sees administration (%v, %v):\n%s", noAdmin, err, page)
	}
	shot("no-owner.png")
	do("forged POST", chromedp.Evaluate[chromedp.Void](`(function(){var f=document.createElement('form');f.method='post';f.action='/principals/legacy-ci/disable';
var i=document.createElement('input');i.type='hidden';i.name='csrf';i.value='00000000000000000000000000000000';f.appendChild(i);
document.body.appendChild(f);f.submit()})()`), chromedp.WaitVisible(chromedp.Search(`//h1[text()="Refused"]`)))
	if page := text(`#main`); !strings.Contains(page, "signin_state_invalid") {
		t.Fatalf("a forged POST was not refused:\n%s", page)
	}
	if p := adminAPI(t, s, http.MethodGet, "/api/v1/principals/legacy-ci", nil, http.StatusOK); p["disabled"] != false {
		t.Fatalf("the forged POST disabled legacy-ci: %v", p)
	}
}
