package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// The tests in this file drive berth's identity provider from the outside:
// a service principal made with the berth CLI logs in with crane, skopeo and
// oras, the refusals those clients print carry berth's reason codes, no
// secret ever reaches the server log, and the OpenID discovery document and
// JWKS describe the tokens the server issues.

// needBerth skips a test of berth's authentication when the server under test
// is not berth (BERTH_E2E_SERVER=distribution has none).
func needBerth(t testing.TB) {
	t.Helper()
	needServer(t)
	if serverKnd != "berth" {
		t.Skipf("authentication is berth's; BERTH_E2E_SERVER=%s", serverKnd)
	}
}

// cmdOpts are how runWith runs a command: its folder, extra environment
// variables (later ones win) and standard input.
type cmdOpts struct {
	dir   string
	env   []string
	stdin string
}

// runWith runs an external command with a timeout and returns its output and
// error, for commands that are expected to fail.
func runWith(t testing.TB, o cmdOpts, bin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = o.dir
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Stdin = strings.NewReader(o.stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// mustRunWith is runWith for commands that must succeed; it returns stdout.
func mustRunWith(t testing.TB, o cmdOpts, bin string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runWith(t, o, bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), redactArgs(args), err, stdout, stderr)
	}
	return stdout
}

// adminCreds are the initial admin's client id and secret.
func (s *server) adminCreds(t testing.TB) (id, secret string) {
	t.Helper()
	id, secret, ok := s.creds()
	if !ok {
		t.Fatalf("berth wrote no usable %s", filepath.Join(s.data, "initial-admin.json"))
	}
	return id, secret
}

// berthCLI runs the berth CLI against s as the client id and secret given.
// HOME is empty, so only the BERTH_* variables can authenticate it.
func berthCLI(t testing.TB, s *server, id, secret string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := t.TempDir()
	return runWith(t, cmdOpts{env: []string{
		"BERTH_URL=http://" + s.addr, "BERTH_CLIENT_ID=" + id, "BERTH_CLIENT_SECRET=" + secret,
		"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
	}}, berthBin, args...)
}

// asAdmin runs the berth CLI as the initial admin and returns its stdout.
func asAdmin(t testing.TB, s *server, args ...string) string {
	t.Helper()
	id, secret := s.adminCreds(t)
	stdout, stderr, err := berthCLI(t, s, id, secret, args...)
	if err != nil {
		t.Fatalf("berth %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// principal is a service principal created through the CLI, with one secret.
type principal struct {
	name, clientID   string
	secret, secretID string
	secretHint       string
}

// newPrincipal creates a service principal with the berth CLI, adds a secret
// and assigns role on scope, all as the initial admin.
func newPrincipal(t testing.TB, s *server, name, role, scope string) principal {
	t.Helper()
	var p struct {
		Name     string `json:"name"`
		ClientID string `json:"client_id"`
	}
	out := asAdmin(t, s, "principal", "create", name, "-o", "json")
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.ClientID == "" || p.Name != name {
		t.Fatalf("berth principal create %s -o json: %v\n%s", name, err, out)
	}
	var sec struct {
		ID        string `json:"id"`
		Hint      string `json:"hint"`
		Value     string `json:"value"`
		ExpiresAt string `json:"expires_at"`
	}
	out = asAdmin(t, s, "secret", "add", name, "-o", "json")
	if err := json.Unmarshal([]byte(out), &sec); err != nil || sec.Value == "" || sec.ID == "" {
		t.Fatalf("berth secret add %s -o json: %v (output not shown: it holds the secret)", name, err)
	}
	if !strings.HasPrefix(sec.Value, sec.Hint) || len(sec.Hint) >= len(sec.Value) {
		t.Fatalf("secret hint %q is not a short prefix of the value", sec.Hint)
	}
	if _, err := time.Parse(time.RFC3339, sec.ExpiresAt); err != nil {
		t.Fatalf("secret expires_at %q is not RFC 3339: %v", sec.ExpiresAt, err)
	}
	asAdmin(t, s, "role", "assign", "--principal", name, "--role", role, "--scope", scope)
	return principal{name: name, clientID: p.ClientID, secret: sec.Value, secretID: sec.ID, secretHint: sec.Hint}
}

// writeRandomLayout writes a random OCI image tagged tag into a new OCI
// layout folder and returns the folder and the image's manifest digest.
func writeRandomLayout(t testing.TB, tag string) (string, v1.Hash) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	img := randomOCIImage(t, 2, 32<<10)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{annotationRefName: tag})); err != nil {
		t.Fatal(err)
	}
	return dir, digestOf(t, img)
}

// onlyManifestDigest is the digest of the one manifest of an OCI layout.
func onlyManifestDigest(t testing.TB, dir string) v1.Hash {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("%s/index.json lists %d manifests, want 1", dir, len(m.Manifests))
	}
	return m.Manifests[0].Digest
}

// mistype changes the last character of a secret, as a bad copy would.
func mistype(secret string) string {
	last := secret[len(secret)-1]
	repl := byte('a')
	if last == 'a' {
		repl = 'b'
	}
	return secret[:len(secret)-1] + string(repl)
}

// craneLogin logs crane in to s as id with secret (from stdin) in a private
// docker configuration folder, and returns the environment that uses it.
func craneLogin(t testing.TB, crane string, s *server, id, secret string) []string {
	t.Helper()
	env := []string{"DOCKER_CONFIG=" + t.TempDir()}
	mustRunWith(t, cmdOpts{env: env, stdin: secret}, crane, "auth", "login", s.addr, "-u", id, "--password-stdin")
	return env
}

// craneFlow logs in as p with crane, pushes a random image to team/web, pulls
// it back and compares digests, then checks the refusals crane prints: a push
// where p holds no role, and a login with a wrong secret.
func craneFlow(t *testing.T, crane string, s *server, p principal, admin string) {
	env := craneLogin(t, crane, s, p.clientID, p.secret)
	o := cmdOpts{env: env}
	src, want := writeRandomLayout(t, "v1")
	ref := s.addr + "/team/web:v1"
	out := mustRunWith(t, o, crane, "push", "--insecure", src, ref)
	if !strings.Contains(out, want.String()) {
		t.Errorf("crane push printed %q, want the digest %s", out, want)
	}
	if got := strings.TrimSpace(mustRunWith(t, o, crane, "digest", "--insecure", ref)); got != want.String() {
		t.Fatalf("crane digest %s: %s, pushed %s", ref, got, want)
	}
	pulled := filepath.Join(t.TempDir(), "pulled")
	mustRunWith(t, o, crane, "pull", "--insecure", "--format", "oci", ref, pulled)
	if got := onlyManifestDigest(t, pulled); got != want {
		t.Fatalf("crane pull %s: %s, pushed %s", ref, got, want)
	}

	t.Run("push without a role", func(t *testing.T) {
		other := s.addr + "/other/app:v1"
		_, stderr, err := runWith(t, o, crane, "push", "--insecure", src, other)
		if err == nil {
			t.Fatalf("crane push %s as %s succeeded; %s holds push on team/* only", other, p.name, p.name)
		}
		fix := "berth role assign --principal " + p.name + " --role push --scope other/app"
		if strings.Contains(stderr, "role_missing") && strings.Contains(stderr, fix) {
			return
		}
		t.Fatalf("crane push %s refused, but stderr lacks role_missing and %q:\n%s", other, fix, stderr)
	})

	t.Run("wrong secret", func(t *testing.T) {
		for _, c := range []struct{ what, secret string }{
			{"another principal's secret", admin},
			{"a mistyped secret", mistype(p.secret)},
		} {
			env := craneLogin(t, crane, s, p.clientID, c.secret)
			_, stderr, err := runWith(t, cmdOpts{env: env}, crane, "push", "--insecure", src, s.addr+"/team/web:wrong")
			if err == nil {
				t.Fatalf("crane push with %s succeeded", c.what)
			}
			if !strings.Contains(stderr, "secret_invalid") {
				t.Errorf("crane push with %s: stderr lacks secret_invalid:\n%s", c.what, stderr)
			}
			if strings.Contains(stderr, c.secret) {
				t.Errorf("crane push with %s: the refusal repeats the secret", c.what)
			}
		}
	})
}

// skopeoFlow copies a random image into team/web-skopeo as p with --creds,
// copies it back out and inspects it, comparing digests at every step.
func skopeoFlow(t *testing.T, skopeo string, s *server, p principal) {
	t.Helper()
	creds := p.clientID + ":" + p.secret
	// A private auth file, so that only --creds can authenticate.
	o := cmdOpts{env: []string{"REGISTRY_AUTH_FILE=" + filepath.Join(t.TempDir(), "auth.json")}}
	src, want := writeRandomLayout(t, "v1")
	dst := "docker://" + s.addr + "/team/web-skopeo:v1"
	mustRunWith(t, o, skopeo, "--insecure-policy", "copy", "--preserve-digests", "--dest-tls-verify=false",
		"--dest-creds", creds, "oci:"+src+":v1", dst)
	out := filepath.Join(t.TempDir(), "out")
	mustRunWith(t, o, skopeo, "--insecure-policy", "copy", "--preserve-digests", "--src-tls-verify=false",
		"--src-creds", creds, dst, "oci:"+out+":v1")
	if got := layoutManifestDigest(t, out, "v1"); got != want {
		t.Fatalf("skopeo copied back %s, pushed %s", got, want)
	}
	raw := mustRunWith(t, o, skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", creds, dst)
	got, _, err := v1.SHA256(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("skopeo inspect --raw: digest %s, pushed %s", got, want)
	}
}

// orasFlow logs in as p with oras login --password-stdin, pushes a file to
// team/web-oras and pulls it back byte for byte.
func orasFlow(t *testing.T, oras string, s *server, p principal) {
	t.Helper()
	work := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.json")
	o := cmdOpts{dir: work, stdin: p.secret}
	mustRunWith(t, o, oras, "login", "--plain-http", "--registry-config", cfg, "-u", p.clientID, "--password-stdin", s.addr)
	o.stdin = ""
	payload := randomBytes(t, 100<<10)
	if err := os.WriteFile(filepath.Join(work, "payload.bin"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := s.addr + "/team/web-oras:v1"
	out := mustRunWith(t, o, oras, "push", "--plain-http", "--registry-config", cfg, "--format", "json",
		"--artifact-type", "application/vnd.berth.test.artifact", ref, "payload.bin:application/vnd.berth.test.payload")
	var pushed orasDesc
	if err := json.Unmarshal([]byte(out), &pushed); err != nil || !strings.HasPrefix(pushed.Digest, "sha256:") {
		t.Fatalf("oras push output: %v\n%s", err, out)
	}
	pullDir := filepath.Join(work, "pulled")
	mustRunWith(t, o, oras, "pull", "--plain-http", "--registry-config", cfg, "-o", pullDir, s.addr+"/team/web-oras@"+pushed.Digest)
	compareFile(t, filepath.Join(pullDir, "payload.bin"), payload)
}

// TestCraneAsServicePrincipal: a principal made with the CLI logs crane in
// with its client id and secret, pushes and pulls, and crane's refusals name
// the reason and the fixing command.
func TestCraneAsServicePrincipal(t *testing.T) {
	needBerth(t)
	crane := tool(t, "crane")
	s := startServer(t, t.TempDir())
	_, admin := s.adminCreds(t)
	craneFlow(t, crane, s, newPrincipal(t, s, "ci-web", "push", "team/*"), admin)
}

// TestSkopeoAsServicePrincipal: skopeo pushes and pulls with --creds
// CLIENT_ID:SECRET of a principal that is not the admin.
func TestSkopeoAsServicePrincipal(t *testing.T) {
	needBerth(t)
	skopeo := tool(t, "skopeo")
	s := startServer(t, t.TempDir())
	skopeoFlow(t, skopeo, s, newPrincipal(t, s, "ci-web", "push", "team/*"))
}

// TestOrasAsServicePrincipal: oras logs in with --password-stdin as a
// principal that is not the admin, pushes and pulls.
func TestOrasAsServicePrincipal(t *testing.T) {
	needBerth(t)
	oras := tool(t, "oras")
	s := startServer(t, t.TempDir())
	orasFlow(t, oras, s, newPrincipal(t, s, "ci-web", "push", "team/*"))
}

// tokenResponse is what /oauth2/token answers, in both dialects.
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Error        string `json:"error"`
	Reason       string `json:"reason"`
}

// tokenURL is the server's token endpoint.
func (s *server) tokenURL() string { return "http://" + s.addr + "/oauth2/token" }

// tokenRequest sends GET (query) or POST (form) to the token endpoint, with
// Basic credentials when user is not empty, and returns the status and answer.
func tokenRequest(t testing.TB, endpoint, method, user, pass string, params url.Values) (int, tokenResponse) {
	t.Helper()
	u := endpoint
	var body io.Reader
	if method == http.MethodGet {
		u += "?" + params.Encode()
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var tr tokenResponse
	if err := json.Unmarshal(raw, &tr); err != nil {
		t.Fatalf("%s %s: %s, not JSON: %v", method, endpoint, resp.Status, err)
	}
	return resp.StatusCode, tr
}

// credential is one value the server must never log, and its name.
type credential struct{ what, value string }

// tokenFlows runs the token endpoint's flows as p: Docker GET with
// offline_token=true, refresh_token, client_credentials (basic and post) and
// password grants, and refused attempts that carry secrets where they do not
// belong. It returns every token it was given.
func tokenFlows(t *testing.T, s *server, p principal, admin string) []credential {
	t.Helper()
	var got []credential
	keep := func(what string, tr tokenResponse) {
		for _, v := range []string{tr.Token, tr.AccessToken} {
			if v != "" {
				got = append(got, credential{what + " access token", v})
			}
		}
		if tr.RefreshToken != "" {
			got = append(got, credential{what + " refresh token", tr.RefreshToken})
		}
	}
	scope := "repository:team/web:pull,push"

	status, tr := tokenRequest(t, s.tokenURL(), http.MethodGet, p.clientID, p.secret, url.Values{
		"service": {"berth"}, "scope": {scope}, "offline_token": {"true"}, "client_id": {"e2e"}})
	if status != http.StatusOK || tr.Token == "" || tr.RefreshToken == "" {
		t.Fatalf("GET /oauth2/token offline_token=true: %d %+v, want a token and a refresh token", status, tr.Error)
	}
	keep("Docker GET", tr)
	refresh := tr.RefreshToken

	status, tr = tokenRequest(t, s.tokenURL(), http.MethodPost, "", "", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "service": {"berth"}, "scope": {scope}, "client_id": {"e2e"}})
	if status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("POST /oauth2/token grant_type=refresh_token: %d %s %s", status, tr.Error, tr.Reason)
	}
	keep("refresh_token grant", tr)

	status, tr = tokenRequest(t, s.tokenURL(), http.MethodPost, "", "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {p.clientID}, "client_secret": {p.secret},
		"scope": {scope}, "access_type": {"offline"}})
	if status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("POST /oauth2/token client_credentials (client_secret_post): %d %s %s", status, tr.Error, tr.Reason)
	}
	keep("client_credentials", tr)

	status, tr = tokenRequest(t, s.tokenURL(), http.MethodPost, p.clientID, p.secret, url.Values{
		"grant_type": {"client_credentials"}, "scope": {scope}})
	if status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("POST /oauth2/token client_credentials (client_secret_basic): %d %s %s", status, tr.Error, tr.Reason)
	}
	keep("client_credentials basic", tr)

	status, tr = tokenRequest(t, s.tokenURL(), http.MethodPost, "", "", url.Values{
		"grant_type": {"password"}, "username": {p.clientID}, "password": {p.secret},
		"service": {"berth"}, "scope": {scope}, "client_id": {"e2e"}, "access_type": {"offline"}})
	if status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("POST /oauth2/token password: %d %s %s", status, tr.Error, tr.Reason)
	}
	keep("password grant", tr)

	// Refusals, each holding a secret where it might be echoed.
	for _, c := range []struct {
		what, method, user, pass string
		params                   url.Values
		reason                   string
	}{
		{"a mistyped secret", http.MethodGet, p.clientID, mistype(p.secret),
			url.Values{"service": {"berth"}, "scope": {scope}}, "secret_invalid"},
		{"another principal's secret", http.MethodGet, p.clientID, admin,
			url.Values{"service": {"berth"}, "scope": {scope}}, "secret_invalid"},
		{"the secret as the client id", http.MethodGet, p.secret, p.clientID,
			url.Values{"service": {"berth"}, "scope": {scope}}, "client_unknown"},
		{"the secret in the query string", http.MethodGet, "", "",
			url.Values{"service": {"berth"}, "client_id": {p.clientID}, "client_secret": {p.secret}}, ""},
		{"a mistyped refresh token", http.MethodPost, "", "",
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {mistype(refresh)}}, "refresh_token_invalid"},
		{"a secret as the refresh token", http.MethodPost, "", "",
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {p.secret}}, "refresh_token_invalid"},
		{"a refresh token as the secret", http.MethodPost, "", "",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {p.clientID}, "client_secret": {refresh}}, "secret_invalid"},
	} {
		status, tr := tokenRequest(t, s.tokenURL(), c.method, c.user, c.pass, c.params)
		if status < 400 || tr.Error == "" {
			t.Errorf("%s /oauth2/token with %s: %d, want a refusal", c.method, c.what, status)
		}
		if c.reason != "" && tr.Reason != c.reason {
			t.Errorf("%s /oauth2/token with %s: reason %q, want %q", c.method, c.what, tr.Reason, c.reason)
		}
	}
	return got
}

// scanLog returns every sign in log of a credential: a known value in full,
// the part of a known secret or refresh token after its 8-character hint,
// the signature of a known access token, the Basic authorization value of a
// known client id and secret; and of an unknown one: a brt_ (client secret)
// or brr_ (refresh token) value longer than a hint, or anything shaped like a
// JWT. Each finding names what leaked and where, without the value itself.
func scanLog(log string, known []credential, basic [][2]string) []string {
	var findings []string
	lines := strings.Split(log, "\n")
	report := func(what string, needle string) {
		for i, l := range lines {
			if strings.Contains(l, needle) {
				findings = append(findings, fmt.Sprintf("line %d holds %s: %s", i+1, what, strings.ReplaceAll(l, needle, "<"+what+">")))
			}
		}
	}
	for _, c := range known {
		if c.value == "" {
			continue
		}
		report(c.what, c.value)
		switch {
		case strings.HasPrefix(c.value, "brt_"), strings.HasPrefix(c.value, "brr_"):
			if len(c.value) > 8 {
				report(c.what+" (after its hint)", c.value[8:])
			}
		case strings.Count(c.value, ".") == 2:
			report(c.what+" (its signature)", c.value[strings.LastIndex(c.value, ".")+1:])
		}
	}
	for _, b := range basic {
		report("the Basic credentials of "+b[0], base64.StdEncoding.EncodeToString([]byte(b[0]+":"+b[1])))
	}
	for i, l := range lines {
		for _, w := range credentialShaped(l) {
			findings = append(findings, fmt.Sprintf("line %d holds %s", i+1, w))
		}
	}
	return findings
}

// credentialShaped names every credential-shaped word in a line: a client
// secret or refresh token longer than its 8-character hint, or a JWT.
func credentialShaped(line string) []string {
	isWord := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	isB64URL := func(c byte) bool { return isWord(c) || c == '-' || c == '_' }
	var out []string
	for _, prefix := range []string{"brt_", "brr_"} {
		for rest := line; ; {
			i := strings.Index(rest, prefix)
			if i < 0 {
				break
			}
			n := len(prefix)
			for i+n < len(rest) && isWord(rest[i+n]) {
				n++
			}
			if n > 8 {
				out = append(out, fmt.Sprintf("a %s value of %d characters (a hint has 8)", prefix, n))
			}
			rest = rest[i+n:]
		}
	}
	// A JWT: base64url "eyJ…" . "eyJ…" . signature.
	for rest := line; ; {
		i := strings.Index(rest, "eyJ")
		if i < 0 {
			break
		}
		parts, j := 0, i
		for parts < 3 {
			k := j
			for k < len(rest) && isB64URL(rest[k]) {
				k++
			}
			if k-j < 8 {
				break
			}
			parts++
			if parts == 3 || k >= len(rest) || rest[k] != '.' {
				j = k
				break
			}
			j = k + 1
		}
		if parts == 3 {
			out = append(out, "a JWT")
		}
		rest = rest[max(j, i+3):]
	}
	return out
}

// TestLeakScannerFindsPlantedSecrets shows that scanLog can fail: it finds
// each kind of credential planted in a synthetic log, and nothing in a log
// that holds only hints and redactions.
func TestLeakScannerFindsPlantedSecrets(t *testing.T) {
	secret := "brt_Zq7Kp2Lm9Xv4Bn6Cd8Ef1Gh3Jk5Mn7Pq9Rs2Tu"
	unknown := "brt_Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0Kk1Ll2Mm"
	refresh := "brr_9by48Ut8F2AUrgcUJMsNi1Hw6Ml1F7mL0sGTJc"
	jwt := "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJjaS13ZWIifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
	otherJWT := "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.b3RoZXItc2lnbmF0dXJl"
	id := "519188d6-6d39-4c3f-a52e-745ba9ad4613"
	known := []credential{{"ci-web's secret", secret}, {"a refresh token", refresh}, {"an access token", jwt}}
	basic := [][2]string{{id, secret}}

	clean := strings.Join([]string{
		`time=… level=INFO msg="secret added" principal=ci-web hint=brt_Zq7K expires_at=2027-02-23T20:35:47Z`,
		`time=… level=INFO msg="token request refused" reason=secret_invalid message="secret 'brt_Zq7K…' expired"`,
		`time=… level=DEBUG msg="token issued" refresh_token=brr_[redacted] principal=ci-web`,
		`{"level":"INFO","msg":"request","path":"/v2/team/web/manifests/v1","status":200}`,
	}, "\n")
	if f := scanLog(clean, known, basic); len(f) != 0 {
		t.Fatalf("scanLog found credentials in a clean log:\n%s", strings.Join(f, "\n"))
	}

	for _, c := range []struct{ name, line string }{
		{"a known secret", `level=INFO msg="login" secret=` + secret},
		{"a known secret in JSON", `{"msg":"login","password":"` + secret + `"}`},
		{"the tail of a known secret", `level=INFO msg="login" rest=` + secret[8:]},
		{"an unknown secret", `level=INFO msg=x value=` + unknown},
		{"a secret cut after 9 characters", `level=INFO msg=x hint=` + unknown[:9]},
		{"a refresh token", `level=DEBUG msg="token issued" refresh_token=` + refresh},
		{"a known access token", `level=DEBUG msg="token issued" token=` + jwt},
		{"a known access token's signature", `level=DEBUG sig=` + jwt[strings.LastIndex(jwt, ".")+1:]},
		{"an unknown access token", `level=INFO authorization="Bearer ` + otherJWT + `"`},
		{"Basic credentials", `level=INFO authorization="Basic ` + base64.StdEncoding.EncodeToString([]byte(id+":"+secret)) + `"`},
	} {
		if f := scanLog(clean+"\n"+c.line+"\n", known, basic); len(f) == 0 {
			t.Errorf("scanLog missed %s planted in the log", c.name)
		} else if strings.Contains(strings.Join(f, "\n"), secret) {
			t.Errorf("scanLog's findings on %s repeat the secret", c.name)
		}
	}
}

// TestSecretsNeverLogged runs the flows of this file (crane, skopeo and oras
// as a service principal, refused logins, Docker GET with offline_token,
// refresh_token, client_credentials and password grants, the CLI with a
// wrong secret) against a server logging at debug level, in text and in
// JSON, and then searches the server's whole log (its stdout and stderr) for
// every secret and token used, and for any credential-shaped value.
func TestSecretsNeverLogged(t *testing.T) {
	needBerth(t)
	crane, skopeo, oras := tool(t, "crane"), tool(t, "skopeo"), tool(t, "oras")
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "berth.yaml")
			if err := os.WriteFile(cfg, []byte("log:\n  level: debug\n  format: "+format+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			s := startServerArgs(t, t.TempDir(), "--config", cfg)
			adminID, admin := s.adminCreds(t)
			p := newPrincipal(t, s, "ci-web", "push", "team/*")
			known := []credential{{"the admin's secret", admin}, {"ci-web's secret", p.secret}}
			basic := [][2]string{{adminID, admin}, {p.clientID, p.secret}, {"ci-web", p.secret}}

			t.Run("crane", func(t *testing.T) { craneFlow(t, crane, s, p, admin) })
			t.Run("skopeo", func(t *testing.T) { skopeoFlow(t, skopeo, s, p) })
			t.Run("oras", func(t *testing.T) { orasFlow(t, oras, s, p) })
			t.Run("token endpoint", func(t *testing.T) { known = append(known, tokenFlows(t, s, p, admin)...) })
			t.Run("CLI with a wrong secret", func(t *testing.T) {
				wrong := mistype(admin)
				known = append(known, credential{"the admin's mistyped secret", wrong})
				stdout, stderr, err := berthCLI(t, s, adminID, wrong, "principal", "list", "-o", "json")
				if err == nil {
					t.Fatal("berth principal list with a mistyped secret succeeded")
				}
				// -o json puts the error, too, on stdout as one JSON document.
				if !strings.Contains(stdout+stderr, "secret_invalid") {
					t.Errorf("berth principal list with a mistyped secret: its output lacks secret_invalid:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
				}
			})
			if t.Failed() {
				return
			}

			s.stop() // every line written
			log := s.logAll()
			// The log is the one the flows produced: refusals (info), issued
			// tokens (debug) and the new secret's hint are in it.
			for _, want := range []string{"secret_invalid", "client_unknown", "refresh_token_invalid", "token issued", "/oauth2/token", "/v2/team/web", p.secretHint} {
				if !strings.Contains(log, want) {
					t.Fatalf("the server log lacks %q; is it captured at debug level?\n%s", want, s.logTail())
				}
			}
			if len(known) < 12 {
				t.Fatalf("only %d credentials to search for; the flows issued fewer tokens than they should", len(known))
			}
			if f := scanLog(log, known, basic); len(f) != 0 {
				t.Errorf("the server log (%d bytes) holds credentials:\n%s", len(log), strings.Join(f, "\n"))
			}
		})
	}
}
