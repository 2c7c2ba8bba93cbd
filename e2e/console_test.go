package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

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

// TestConsoleBrowser drives the web console with headless Chromium through
// the scenarios of the console's issue: a person signs in through the
// company's identity provider; Attention shows a connection whose secret has
// expired, Save renews it and skopeo pushes with the new value; a pending
// pipeline request is permitted and the CI job's login then succeeds; Why
// not? names the missing role and its hinted command fixes it; a person
// without owner sees no administration, and a forged POST is refused.
// Screenshots go to $BERTH_SCREENSHOTS when set (docs/screenshots holds the
// ones docs/console.md shows).
func TestConsoleBrowser(t *testing.T) {
	needServer(t)
	if serverKind() != "berth" {
		t.Skip("the console is berth's")
	}
	exe := chromium(t)
	skopeo := tool(t, "skopeo")
	company := oidctest.NewCompany(t, "berth-app", "upstream-secret")
	company.SetPerson(oidctest.Person{Subject: "00u-ada", Username: "ada", Email: "ada@corp.example", Groups: []string{"admins"}})
	s := startServer(t, t.TempDir())
	// legacy's secret lives two seconds: by the time the browser signs in
	// it has expired, as a forgotten one does after months (the server's
	// clock is real; the test waits for the state, not for a duration).
	adminAPI(t, s, http.MethodPost, "/api/v1/principals", map[string]string{"name": "legacy-ci"}, http.StatusCreated)
	adminAPI(t, s, http.MethodPost, "/api/v1/connections", map[string]string{"name": "legacy", "principal": "legacy-ci", "auth": "secret", "expires_in": "2s"}, http.StatusCreated)
	adminAPI(t, s, http.MethodPost, "/api/v1/idps", map[string]string{"name": "corp", "issuer": company.URL, "client_id": "berth-app", "client_secret": "upstream-secret"}, http.StatusCreated)
	adminAPI(t, s, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:admins", "role": "owner", "scope": "registry"}, http.StatusCreated)
	base := "http://" + s.addr
	hook, _ := adminAPI(t, s, http.MethodPost, "/api/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"image.pushed"}}, http.StatusCreated)["id"].(string)
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
	// A GitHub Actions pipeline the federated connection ci does not
	// permit yet: its job's login is refused, which files a request.
	iss := oidctest.New(t)
	federationSetup(t, s, iss, false)
	job := newCIJob(t, newGitHubEndpoint(t, iss, oidctest.GitHubJob{Repository: "org/app", Ref: "refs/heads/main"}))
	if _, stderr, err := runWith(t, cmdOpts{env: job.env}, berthBin, "login", s.addr, "--connection", "ci"); err == nil || !strings.Contains(stderr, "pipeline_not_authorized") {
		t.Fatalf("the CI job's login before Permit: %v\n%s", err, stderr)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		c := adminAPI(t, s, http.MethodGet, "/api/v1/connections/legacy", nil, http.StatusOK)
		if sec, _ := c["secret"].(map[string]any); sec != nil && sec["state"] == "expired" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("legacy's two-second secret has not expired: %v", c)
		}
		time.Sleep(100 * time.Millisecond)
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
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
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
	if page := text(`body`); err != nil || title != "Attention · berth" || !strings.Contains(page, "Signed in as ada") {
		t.Fatalf("Attention: title %q %v\n%s", title, err, page)
	}
	// Attention lists legacy under the expired secrets and ci-main's
	// request under the pending ones.
	do("Attention lists", chromedp.WaitVisible(chromedp.Search(`//h2[@id="expired"]/following-sibling::table[1]//a[@href="/connections/legacy"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Permit ci-main on ci"]`)))
	shot("attention.png")

	// Why not? names the missing role, and its hinted command fixes it.
	whyNot := func() {
		t.Helper()
		do("Why not?", chromedp.Navigate(base+"/why-not"),
			chromedp.SetValue(chromedp.CSS(`#principal`), "legacy-ci"), chromedp.SetValue(chromedp.CSS(`#action`), "push"),
			chromedp.SetValue(chromedp.CSS(`#repository`), "team/app"),
			chromedp.Click(chromedp.Search(`//button[text()="Check"]`)), chromedp.WaitVisible(chromedp.CSS(`#decision`)))
	}
	whyNot()
	if page := text(`#main`); !strings.Contains(page, "role_missing") || !strings.Contains(page, "Missing role: push") {
		t.Fatalf("Why not? does not name the missing role:\n%s", page)
	}
	shot("why-not.png")
	fix := strings.Fields(text(`.refusal p:last-of-type code`))
	if len(fix) < 3 || fix[0] != "berth" || fix[1] != "role" {
		t.Fatalf("Why not? hints %q, not a berth role command", fix)
	}
	for i := range fix {
		fix[i] = strings.Trim(fix[i], `'"`)
	}
	asAdmin(t, s, fix[1:]...)
	whyNot()
	if page := text(`#decision + *`); !strings.Contains(page, "Allowed") {
		t.Fatalf("after the hinted %q, Why not? still refuses:\n%s", fix, text(`#main`))
	}

	// Save renews the expired secret; the value is on the page once, and
	// skopeo pushes with it at once.
	do("Save", chromedp.Navigate(base+"/connections/legacy"), chromedp.Click(chromedp.Search(`//button[text()="Save"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#secret-value`)))
	value := strings.TrimSpace(text(`#secret-value`))
	shot("connection-save.png")
	layoutDir, pushed := writeRandomLayout(t, "v2")
	run(t, "", skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false", "--dest-creds", "legacy-ci:"+value,
		"oci:"+layoutDir+":v2", "docker://"+s.addr+"/team/app:v2")
	if desc, err := remote.Head(s.ref(t, "team/app:v2"), s.remoteOpts(context.Background())...); err != nil || desc.Digest != pushed {
		t.Fatalf("team/app:v2 after the push with the saved secret: %v %v, pushed %s", desc, err, pushed)
	}

	// Permit, on Attention, lets the CI job log in.
	do("Permit", chromedp.Navigate(base+"/"), chromedp.Click(chromedp.CSS(`button[aria-label="Permit ci-main on ci"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`button[aria-label="Permit ci-main on ci"]`)), chromedp.WaitVisible(chromedp.CSS(`#secrets`)))
	mustRunWith(t, cmdOpts{env: job.env}, berthBin, "login", s.addr, "--connection", "ci")

	// The repository page lists an index's platforms, and Delete removes a
	// manifest by digest.
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: withPlatform(t, randomOCIImage(t, 1, 1024), "linux", "amd64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: withPlatform(t, randomOCIImage(t, 1, 1024), "linux", "arm64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	multi, _ := name.ParseReference(s.addr+"/team/app:multi", name.Insecure)
	if err := remote.WriteIndex(multi, idx, remote.WithAuth(&authn.Basic{Username: id, Password: secret})); err != nil {
		t.Fatal(err)
	}
	do("platforms", chromedp.Navigate(base+"/repositories/team/app"), chromedp.WaitVisible(chromedp.CSS(`ul[aria-label="Platforms of multi"]`)))
	if got := text(`ul[aria-label="Platforms of multi"]`); !strings.Contains(got, "linux/amd64") || !strings.Contains(got, "linux/arm64/v8") {
		t.Fatalf("the platforms of team/app:multi: %q", got)
	}
	// A platform the repository no longer holds (deleted by digest, or
	// never pulled through a cache) is marked, and the tag's size says it
	// leaves it out.
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	arm := im.Manifests[1].Digest
	if err := remote.Delete(s.ref(t, "team/app@"+arm.String()), remote.WithAuth(&authn.Basic{Username: id, Password: secret})); err != nil {
		t.Fatal(err)
	}
	do("a platform not held", chromedp.Navigate(base+"/repositories/team/app"), chromedp.WaitVisible(chromedp.CSS(`ul[aria-label="Platforms of multi"]`)))
	if got := text(`ul[aria-label="Platforms of multi"]`); !strings.Contains(got, "linux/arm64/v8 "+arm.String()[:19]+"… not held") || strings.Count(got, "not held") != 1 {
		t.Fatalf("the platforms of team/app:multi after linux/arm64's manifest was deleted: %q", got)
	}
	if got := text(`section[aria-labelledby="tags"]`); !strings.Contains(got, "(not counting 1 platform not held)") {
		t.Fatalf("the tags of team/app do not say multi's size leaves a platform out: %q", got)
	}
	shot("repository-not-held.png")
	v1Digest := digestOf(t, img).String()
	del := `button[aria-label="Delete manifest ` + v1Digest + `"]`
	do("Delete manifest", chromedp.Click(chromedp.CSS(del)), chromedp.WaitNotPresent(chromedp.CSS(del)))
	var gone *transport.Error
	if _, err := remote.Head(s.ref(t, "team/app@"+v1Digest), s.remoteOpts(context.Background())...); !errors.As(err, &gone) || gone.StatusCode != http.StatusNotFound {
		t.Fatalf("team/app@%s after Delete: %v, want 404", v1Digest, err)
	}

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
		{"/errors", "Reason codes", "errors.png"},
		{"/connections", "legacy", "connections.png"},
		{"/connections/ci", "ci-main", "connection.png"},
		{"/webhooks/" + hook, "127.0.0.1:9", "webhook.png"},
	} {
		do(p.path, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS(`#main`)))
		if page := text(`#main`); strings.Contains(page, "Refused") || !strings.Contains(page, p.title) {
			t.Fatalf("%s does not show %q:\n%s", p.path, p.title, page)
		}
		shot(p.shot)
	}

	// Add secret on a principal's page: the value shows once, and the
	// login lines beside it wait for it on stdin rather than hold it (a
	// line that held it would put it in the shell's history).
	do("Add secret", chromedp.Navigate(base+"/principals/legacy-ci"), chromedp.Click(chromedp.Search(`//button[text()="Add secret"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#secret-value`)))
	added := strings.TrimSpace(text(`#secret-value`))
	if login := text(`#berth-login`) + "\n" + text(`#docker-login`); added == "" || strings.Contains(login, added) ||
		!strings.Contains(login, "--client-secret-stdin") || !strings.Contains(login, "--password-stdin") {
		t.Fatalf("the login lines after Add secret:\n%s", login)
	}
	shot("principal-new-secret.png")

	// A device login's approval page (berth login on a terminal): where and
	// when it started, and that this browser comes from the same address.
	started, err := http.PostForm(base+"/oauth2/device_authorization", url.Values{"client_id": {"berth-cli"}})
	if err != nil {
		t.Fatal(err)
	}
	var device struct {
		Complete string `json:"verification_uri_complete"`
	}
	if err := json.NewDecoder(started.Body).Decode(&device); err != nil || started.StatusCode != http.StatusOK || device.Complete == "" {
		t.Fatalf("device authorization: %s %+v %v", started.Status, device, err)
	}
	started.Body.Close()
	do("device approval", chromedp.Navigate(device.Complete), chromedp.WaitVisible(chromedp.Search(`//h1[text()="Approve this login?"]`)))
	if page := text(`body`); !strings.Contains(page, "the address this browser comes from") || !strings.Contains(page, "calling itself berth-cli") {
		t.Fatalf("the device approval page:\n%s", page)
	}
	shot("device-approve.png")

	// At 360 px wide (a phone), no page is wider than the screen: wide
	// tables scroll inside themselves, long values wrap.
	do("360 px", chromedp.EmulateViewport(360, 800))
	for _, path := range []string{"/", "/principals", "/principals/legacy-ci", "/connections", "/connections/legacy", "/pipelines",
		"/repositories/team/app", "/access", "/audit", "/webhooks", "/why-not", "/errors/role_missing"} {
		do(path+" at 360 px", chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS(`#main`)))
		width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if err != nil || width > 360 {
			shot("narrow-" + strings.NewReplacer("/", "_").Replace(path) + ".png")
			t.Errorf("%s at 360 px is %d px wide (%v)", path, width, err)
		}
		if path == "/repositories/team/app" {
			shot("narrow-repository.png")
		}
	}
	do("back to 1100 px", chromedp.EmulateViewport(1100, 900))

	// Keyboard: the first Tab reaches "Skip to content", and Enter on it
	// moves on to the page's main landmark.
	do("Tab", chromedp.Navigate(base+"/principals"), chromedp.WaitVisible(chromedp.CSS(`#main`)), chromedp.KeyEvent("\t"))
	if focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.textContent`)); err != nil || focused != "Skip to content" {
		t.Errorf("the first Tab focuses %q (%v), want the skip link", focused, err)
	}
	do("Enter on the skip link", chromedp.KeyEvent("\r"))
	if hash, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash`)); err != nil || hash != "#main" {
		t.Errorf("Enter on the skip link went to %q (%v), want #main", hash, err)
	}

	// Sign out; Bob, without owner, signs in: no administration, and a
	// form forged with a wrong csrf value is refused.
	company.SetPerson(oidctest.Person{Subject: "00u-bob", Username: "bob", Email: "bob@corp.example", Groups: []string{"devs"}})
	do("sign out", chromedp.Navigate(base+"/"), chromedp.Click(chromedp.Search(`//button[text()="Sign out"]`)), chromedp.WaitVisible(chromedp.Search(`//h1[text()="Signed out"]`)))
	shot("signed-out.png")
	// The sign-in service's own page is styled: its policy allows its one
	// inline style by hash (a wrong hash would leave it unstyled).
	do("login page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).maxWidth`)); err != nil || w == "none" {
		t.Errorf("/login is unstyled (max-width %q, %v): its Content-Security-Policy refused its style", w, err)
	}
	shot("login.png")
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
