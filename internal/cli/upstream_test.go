package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/upstreamtest"
)

// runUpstreamCLI runs berth upstream ARGS… with stdin, as the CLI would.
func runUpstreamCLI(t *testing.T, vars map[string]string, stdin, output string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, getenv: mapEnv(vars), output: output}
	cmd := newUpstreamCommand(e)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		return 1, out.String(), errOut.String() + err.Error()
	}
	return 0, out.String(), errOut.String()
}

func TestUpstreamCommandsAndPull(t *testing.T) {
	const password = "pw-Zq81xKv3"
	up := upstreamtest.New(t, "bot", password)
	img, _ := random.Image(2048, 2)
	ref, _ := name.ParseReference(up.PushHost+"/library/alpine:3.20", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()

	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	env := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}
	expires := time.Now().AddDate(0, 0, 20).UTC().Format("2006-01-02")

	code, stdout, stderr := runUpstreamCLI(t, env, password+"\n", "json", "create", "hub", "--url", up.URL, "--namespace", "hub",
		"--username", "bot", "--password-stdin", "--tag-ttl", "2h", "--expires-at", expires)
	if code != 0 {
		t.Fatalf("create: exit %d, %s", code, stderr)
	}
	created := decodeJSON[map[string]any](t, stdout)
	keys(t, "upstream create -o json", created, "name", "url", "namespace", "username", "tag_ttl", "expires_at", "created_at", "has_password")
	if created["has_password"] != true || created["tag_ttl"] != "2h0m0s" || strings.Contains(stdout, password) {
		t.Errorf("create -o json: %s", stdout)
	}

	code, stdout, _ = runCLI(t, env, "upstream", "list", "-o", "json")
	if code != 0 || !strings.Contains(stdout, `"hub"`) || strings.Contains(stdout, password) {
		t.Errorf("list -o json: exit %d, %s", code, stdout)
	}
	code, stdout, _ = runCLI(t, env, "upstream", "show", "hub")
	if code != 0 || !strings.Contains(stdout, up.URL) || !strings.Contains(stdout, expires) || strings.Contains(stdout, password) {
		t.Errorf("show: exit %d, %s", code, stdout)
	}
	resp, body := s.do(t, "GET", "/api/v1/upstreams", nil, nil)
	if resp.StatusCode != 200 || strings.Contains(string(body), password) {
		t.Errorf("GET /api/v1/upstreams: %d %s", resp.StatusCode, body)
	}
	// verify: the credential works, and its expiry, 20 days away, is warned of.
	code, stdout, _ = runCLI(t, env, "upstream", "verify", "hub")
	if code != 0 || !strings.Contains(stdout, "✓") || !strings.Contains(stdout, "⚠") || !strings.Contains(stdout, "credential expiry") {
		t.Errorf("verify: exit %d, %s", code, stdout)
	}

	// The credential is listed with berth's own secrets that expire soon.
	code, stdout, _ = runCLI(t, env, "secret", "list", "--expiring-within", "30d", "-o", "json")
	if code != 0 || !strings.Contains(stdout, `"kind": "upstream"`) || !strings.Contains(stdout, `"upstream": "hub"`) {
		t.Errorf("secret list --expiring-within 30d: exit %d, %s", code, stdout)
	}
	code, stdout, _ = runCLI(t, env, "secret", "list", "--expiring-within", "10d", "-o", "json")
	if code != 0 || strings.Contains(stdout, `"upstream": "hub"`) {
		t.Errorf("secret list --expiring-within 10d lists a credential 20 days from expiry: %s", stdout)
	}

	// A pull through the cache, with the registry's own credentials.
	auth := remote.WithAuth(&authn.Basic{Username: id, Password: secret})
	host := strings.TrimPrefix(s.url, "http://")
	cached, _ := name.ParseReference(host+"/hub/library/alpine:3.20", name.Insecure)
	got, err := remote.Image(cached, auth)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := got.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, rc)
		rc.Close()
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled %s through the cache, want %s", d, want)
	}
	// Pushing there is refused with its own code.
	other, _ := random.Image(512, 1)
	if err := remote.Write(cached, other, auth); err == nil || !strings.Contains(err.Error(), string(berth.CodeCacheReadOnly)) {
		t.Errorf("push into the cache namespace: %v", err)
	}

	// The credential is sealed at rest: the database never holds it readable.
	for _, f := range []string{metadataFile, metadataFile + "-wal"} {
		b, _ := os.ReadFile(filepath.Join(s.dir, f))
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("%s holds the upstream password in plain text", f)
		}
	}

	// A wrong password: verify names the upstream and what it said.
	code, _, stderr = runUpstreamCLI(t, env, "wrong\n", "text", "create", "bad", "--url", up.URL, "--namespace", "bad", "--username", "bot", "--password-stdin")
	if code != 0 {
		t.Fatalf("create bad: %s", stderr)
	}
	code, stdout, _ = runCLI(t, env, "upstream", "verify", "bad", "-o", "json")
	check := decodeJSON[map[string]any](t, stdout)
	if code != 1 || check["ok"] != false || check["reason"] != "upstream_auth_failed" || !strings.Contains(check["message"].(string), "incorrect username or password") {
		t.Errorf("verify bad: exit %d, %s", code, stdout)
	}
	badRef, _ := name.ParseReference(host+"/bad/library/alpine:3.20", name.Insecure)
	if _, err := remote.Image(badRef, auth); err == nil || !strings.Contains(err.Error(), string(berth.CodeUpstreamAuthFailed)) || !strings.Contains(err.Error(), "upstream bad") {
		t.Errorf("pull through a refused credential: %v", err)
	}

	// Renewed in place: the namespace keeps what it cached, the new
	// credential replaces the old one and its expiry, sealed as well.
	code, stdout, stderr = runUpstreamCLI(t, env, password+"\n", "json", "update", "bad", "--username", "bot", "--password-stdin")
	if code != 0 {
		t.Fatalf("update bad: exit %d, %s", code, stderr)
	}
	updated := decodeJSON[map[string]any](t, stdout)
	if updated["namespace"] != "bad" || updated["has_password"] != true || updated["expires_at"] != nil || strings.Contains(stdout, password) {
		t.Errorf("update -o json: %s", stdout)
	}
	if code, stdout, _ = runCLI(t, env, "upstream", "verify", "bad"); code != 0 || !strings.Contains(stdout, "✓") {
		t.Errorf("verify after the credential was replaced: exit %d, %s", code, stdout)
	}
	if _, err := remote.Image(badRef, auth); err != nil {
		t.Errorf("pull through the replaced credential: %v", err)
	}
	for _, f := range []string{metadataFile, metadataFile + "-wal"} {
		b, _ := os.ReadFile(filepath.Join(s.dir, f))
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("%s holds the updated upstream password in plain text", f)
		}
	}
	// The expiry alone; then anonymous, which drops credential and expiry.
	code, stdout, stderr = runUpstreamCLI(t, env, "", "json", "update", "bad", "--expires-at", expires, "--tag-ttl", "3h")
	if updated = decodeJSON[map[string]any](t, stdout); code != 0 || updated["expires_at"] == nil || updated["has_password"] != true || updated["tag_ttl"] != "3h0m0s" {
		t.Errorf("update --expires-at --tag-ttl: exit %d, %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = runUpstreamCLI(t, env, "", "json", "update", "bad", "--anonymous")
	if updated = decodeJSON[map[string]any](t, stdout); code != 0 || updated["expires_at"] != nil || updated["has_password"] == true || updated["tag_ttl"] != "3h0m0s" {
		t.Errorf("update --anonymous: exit %d, %s %s", code, stdout, stderr)
	}
	if code, _, stderr = runUpstreamCLI(t, env, "", "text", "update", "bad"); code != 1 || !strings.HasPrefix(stderr, "invalid:") {
		t.Errorf("update with nothing to change: exit %d, %s", code, stderr)
	}
	if code, _, stderr = runUpstreamCLI(t, env, "", "text", "update", "nope", "--tag-ttl", "1h"); code != 1 || !strings.HasPrefix(stderr, "not_found:") {
		t.Errorf("update of an unknown upstream: exit %d, %s", code, stderr)
	}
	if code, _, stderr = runUpstreamCLI(t, env, "", "text", "update", "bad", "--anonymous", "--expires-at", expires); code != 1 || !strings.HasPrefix(stderr, "invalid:") {
		t.Errorf("an expiry without a credential: exit %d, %s", code, stderr)
	}

	// Hits, misses, upstream errors and bytes are counted; the credential's
	// expiry is a gauge.
	_, metrics := s.do(t, "GET", "/metrics", nil, nil)
	for _, series := range []string{`berth_cache_misses_total{kind="blob"} `, `berth_cache_misses_total{kind="manifest"} `,
		`berth_cache_upstream_errors_total{reason="upstream_auth_failed"}`, `berth_upstream_credential_expiry_timestamp_seconds{upstream="hub"}`,
		"berth_cache_upstream_bytes_total "} {
		if !strings.Contains(string(metrics), series) {
			t.Errorf("/metrics lacks %s:\n%s", series, grepLines(string(metrics), "berth_cache"))
		}
	}

	if strings.Contains(string(metrics), "berth_cache_upstream_bytes_total 0\n") {
		t.Error("berth_cache_upstream_bytes_total is 0 after a pull through the cache")
	}

	// A namespace that holds berth's own repositories is refused.
	own, _ := name.ParseReference(host+"/team/app:v1", name.Insecure)
	if err := remote.Write(own, img, auth); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runUpstreamCLI(t, env, "", "text", "create", "team", "--url", up.URL, "--namespace", "team")
	if code != 1 || !strings.Contains(stderr, "conflict:") || !strings.Contains(stderr, "team/app") {
		t.Errorf("create over team/: exit %d, %s", code, stderr)
	}

	code, _, _ = runCLI(t, env, "upstream", "delete", "hub")
	if code != 0 {
		t.Errorf("delete: exit %d", code)
	}
	code, _, stderr = runCLI(t, env, "upstream", "show", "hub")
	if code != 1 || !strings.Contains(stderr, "[not_found]") {
		t.Errorf("show after delete: exit %d, %s", code, stderr)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestServeEvictsCache: with --max-size, serve's scheduled collection
// evicts the cache namespace's least recently used images past the bound,
// and collects their blobs.
func TestServeEvictsCache(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	img, _ := random.Image(8<<10, 2)
	ref, _ := name.ParseReference(up.PushHost+"/library/alpine:3.20", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "log:\n  format: json\ngc:\n  interval: 5ms\n  grace: 5s\n") // longer than the pull: its links are not collected midway
	s := startServe(t, t.TempDir(), "--config", cfg)
	id, secret := s.admin(t)
	env := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}
	if code, _, stderr := runUpstreamCLI(t, env, "", "text", "create", "hub", "--url", up.URL, "--namespace", "hub", "--max-size", "1KiB"); code != 0 {
		t.Fatalf("create: %s", stderr)
	}
	host := strings.TrimPrefix(s.url, "http://")
	cached, _ := name.ParseReference(host+"/hub/library/alpine:3.20", name.Insecure)
	auth := remote.WithAuth(&authn.Basic{Username: id, Password: secret})
	got, err := remote.Image(cached, auth)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := got.RawConfigFile(); err != nil {
		t.Fatal(err)
	}
	layers, _ := got.Layers()
	for _, l := range layers {
		rc, _ := l.Compressed()
		_, _ = io.Copy(io.Discard, rc)
		rc.Close()
	}
	// The image is more than 1 KiB: the server's own schedule (a real
	// process, whose clock the test cannot move) evicts it; the test waits
	// for what a client sees, the tag gone, not for a log line.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := s.do(t, "GET", "/v2/hub/library/alpine/tags/list", nil, nil)
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusOK && !strings.Contains(string(body), "3.20") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no eviction within 10 s: %d %s\nstderr:\n%s", resp.StatusCode, body, s.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The eviction logs its line once it has finished, which may be after
	// the tag is gone from the listing.
	for !strings.Contains(s.stderr.String(), `"msg":"cache eviction"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the eviction was not logged:\n%s", s.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Each evicted image is audited, as retention's deletions are (the
	// audit log is written behind: wait for it).
	for {
		code, out, _ := runCLI(t, env, "audit", "--action", string(berth.AuditCacheEvict), "-o", "json")
		var evs []berth.AuditEvent
		if code == 0 && json.Unmarshal([]byte(out), &evs) == nil && len(evs) > 0 {
			if evs[0].Actor != "cache eviction" || evs[0].Detail["upstream"] != "hub" || !strings.HasPrefix(evs[0].Target, "hub/library/alpine@sha256:") {
				t.Fatalf("the eviction's audit event: %+v", evs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s audit event: %s", berth.AuditCacheEvict, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(s.stderr.String(), `"level":"ERROR"`) {
		t.Errorf("errors logged:\n%s", s.stderr.String())
	}
}

// TestCachePullNeedsPullRole: reading through the cache needs pull on the
// namespace, like any repository; the upstream is not asked before that.
func TestCachePullNeedsPullRole(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	img, _ := random.Image(1024, 1)
	ref, _ := name.ParseReference(up.PushHost+"/library/alpine:3.20", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	admin := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}
	if code, _, stderr := runUpstreamCLI(t, admin, "", "text", "create", "hub", "--url", up.URL, "--namespace", "hub"); code != 0 {
		t.Fatal(stderr)
	}
	cliJSON(t, admin, nil, "principal", "create", "ci")
	var sec struct {
		Value string `json:"value"`
	}
	cliJSON(t, admin, &sec, "secret", "add", "ci")
	auth := remote.WithAuth(&authn.Basic{Username: "ci", Password: sec.Value})
	cached, _ := name.ParseReference(strings.TrimPrefix(s.url, "http://")+"/hub/library/alpine:3.20", name.Insecure)

	if _, err := remote.Image(cached, auth); err == nil || !strings.Contains(err.Error(), "role_missing") {
		t.Fatalf("pull without a role: %v, want role_missing", err)
	}
	if n := up.Fetches(); n != 0 {
		t.Errorf("a refused pull reached the upstream (%d fetches)", n)
	}
	cliJSON(t, admin, nil, "role", "assign", "--principal", "ci", "--role", "pull", "--scope", "hub/*")
	got, err := remote.Image(cached, auth)
	if err != nil {
		t.Fatalf("pull with pull on hub/*: %v", err)
	}
	if want, _ := img.Digest(); func() v1.Hash { d, _ := got.Digest(); return d }() != want {
		t.Error("pulled another image")
	}
	// Push rights do not make the cache writable.
	cliJSON(t, admin, nil, "role", "assign", "--principal", "ci", "--role", "push", "--scope", "hub/*")
	other, _ := random.Image(512, 1)
	if err := remote.Write(cached, other, auth); err == nil || !strings.Contains(err.Error(), "cache_read_only") {
		t.Errorf("push with push on hub/*: %v, want cache_read_only", err)
	}
	// Nor does a token carry push there: it would grant what the registry refuses.
	cliJSON(t, admin, nil, "role", "assign", "--principal", "ci", "--role", "push", "--scope", "team/*")
	code, tok := tokenRequest(t, http.MethodGet, s.url, url.Values{"service": {"berth"},
		"scope": {"repository:hub/library/alpine:pull,push", "repository:team/app:pull,push"}}, "ci", sec.Value)
	if code != http.StatusOK {
		t.Fatalf("token: %d %v", code, tok)
	}
	access := tokenAccess(t, tok["token"].(string))
	if got := access["repository:hub/library/alpine"]; !slices.Equal(got, []string{"pull"}) {
		t.Errorf("the token carries %v on the cache namespace, want [pull]", got)
	}
	if got := access["repository:team/app"]; !slices.Equal(got, []string{"pull", "push"}) {
		t.Errorf("the token carries %v on team/app, want [pull push]", got)
	}
}

// tokenAccess returns the access claim of a berth access token (its
// signature unchecked), by TYPE:NAME.
func tokenAccess(t *testing.T, token string) map[string][]string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Access []struct {
			Type, Name string
			Actions    []string
		} `json:"access"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, a := range claims.Access {
		out[a.Type+":"+a.Name] = a.Actions
	}
	return out
}

// The console's repository page marks the platforms of a cached index that
// nobody pulled yet as not held, and says the tag's size leaves them out,
// rather than counting them as nothing.
func TestConsoleMarksPlatformsNotHeld(t *testing.T) {
	up := upstreamtest.New(t, "", "")
	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(up.PushHost+"/library/multi:1", name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	pulled, skipped := im.Manifests[0].Digest, im.Manifests[1].Digest

	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	admin := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}
	if code, _, stderr := runUpstreamCLI(t, admin, "", "text", "create", "hub", "--url", up.URL, "--namespace", "hub"); code != 0 {
		t.Fatalf("upstream create: %d %s", code, stderr)
	}
	auth := remote.WithAuth(&authn.Basic{Username: id, Password: secret})
	host := strings.TrimPrefix(s.url, "http://")
	cachedIndex, _ := name.ParseReference(host+"/hub/library/multi:1", name.Insecure)
	if _, err := remote.Index(cachedIndex, auth); err != nil {
		t.Fatal(err)
	}
	one, _ := name.ParseReference(host+"/hub/library/multi@"+pulled.String(), name.Insecure)
	img, err := remote.Image(one, auth)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil { // pulls its blobs: then the cache stores it
		t.Fatal(err)
	}

	// The cache stores the platform's manifest once the last of its blobs
	// is stored, which may end after the client read the blob's last byte.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, b := s.do(t, "GET", "/api/v1/repositories/hub/library/multi", nil, nil)
		var detail struct {
			Manifests []struct{ Digest string } `json:"manifests"`
		}
		if json.Unmarshal(b, &detail) == nil && slices.ContainsFunc(detail.Manifests, func(m struct{ Digest string }) bool { return m.Digest == pulled.String() }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pulled platform was not stored: %s", b)
		}
	}
	b := newBrowser(t)
	consoleSignIn(t, s, b, id, secret)
	resp, page := b.get(s.url + "/repositories/hub/library/multi")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("repository page: %s\n%s", resp.Status, page)
	}
	tags := section(t, page, "tags", "manifests")
	heldItem := `<code title="` + pulled.String() + `">` + berth.Digest(pulled.String()).Short() + `…</code></li>`
	missingItem := `<code title="` + skipped.String() + `">` + berth.Digest(skipped.String()).Short() + `…</code> <span class="muted">not held</span></li>`
	if !strings.Contains(tags, heldItem) || !strings.Contains(tags, missingItem) {
		t.Errorf("the tag's platforms do not mark the one not pulled as not held:\n%s", tags)
	}
	if !strings.Contains(tags, "(not counting 1 platform not held)") {
		t.Errorf("the tag's size does not say it leaves a platform out:\n%s", tags)
	}
}
