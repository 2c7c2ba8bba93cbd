package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/oidctest"
)

// The tests in this file run a CI job as GitHub Actions runs it: a test OIDC
// issuer (internal/oidctest) mints the job's ID tokens, a loopback stand-in
// of GitHub's token request endpoint hands them to the job, and the job runs
// `berth login HOST --connection NAME` and then skopeo with no other
// credential, through docker-credential-berth.

// githubEndpoint is a loopback stand-in of GitHub Actions' ID token request
// endpoint (ACTIONS_ID_TOKEN_REQUEST_URL): GET with the job's bearer token
// and ?audience=, answering {"count":1,"value":TOKEN} with a token the issuer
// mints for that audience. It keeps every token it handed out, so that tests
// can check that none of them is printed or logged.
type githubEndpoint struct {
	srv    *httptest.Server
	bearer string

	mu        sync.Mutex
	audiences []string
	tokens    []string
}

func newGitHubEndpoint(t *testing.T, iss *oidctest.Issuer, job oidctest.GitHubJob) *githubEndpoint {
	t.Helper()
	g := &githubEndpoint{bearer: "e2e-runner-request-token"}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+g.bearer {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		j := job
		j.Audience = r.URL.Query().Get("audience")
		tok := iss.GitHub(j)
		g.mu.Lock()
		g.audiences = append(g.audiences, j.Audience)
		g.tokens = append(g.tokens, tok)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"count": 1, "value": tok})
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// issued returns the audiences asked for and the tokens handed out so far.
func (g *githubEndpoint) issued() (audiences, tokens []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.audiences...), append([]string(nil), g.tokens...)
}

// ciJob is the environment of a CI job on this machine: its own HOME, docker
// configuration and berth login store, docker-credential-berth on PATH, the
// GitHub Actions variables of the stand-in endpoint, and none of the BERTH_
// credentials of the environment the tests run in.
type ciJob struct {
	home, dockerConfig string
	env                []string
}

func newCIJob(t *testing.T, g *githubEndpoint) ciJob {
	t.Helper()
	bin := t.TempDir()
	if err := os.Symlink(berthBin, filepath.Join(bin, "docker-credential-berth")); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	j := ciJob{home: home, dockerConfig: filepath.Join(home, ".docker")}
	j.env = []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_RUNTIME_DIR=" + home,
		"DOCKER_CONFIG=" + j.dockerConfig,
		"REGISTRY_AUTH_FILE=" + filepath.Join(j.dockerConfig, "config.json"),
		"BERTH_URL=", "BERTH_CLIENT_ID=", "BERTH_CLIENT_SECRET=",
		"BERTH_ID_TOKEN=", "BERTH_ID_TOKEN_FILE=",
		"GITHUB_ACTIONS=true",
		"ACTIONS_ID_TOKEN_REQUEST_URL=" + g.srv.URL + "/_apis/distributedtask/hubs/Actions/idtoken?api-version=2.0",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + g.bearer,
	}
	return j
}

// federationSetup registers, as the initial admin, the principal ci-bot with
// push on team/*, the GitHub Actions pipeline ci-main (org/app on main, from
// the test issuer) and the federated connection ci acting as ci-bot; when
// permit is set the connection permits ci-main.
func federationSetup(t *testing.T, s *server, iss *oidctest.Issuer, permit bool) {
	t.Helper()
	asAdmin(t, s, "principal", "create", "ci-bot")
	asAdmin(t, s, "role", "assign", "--principal", "ci-bot", "--role", "push", "--scope", "team/*")
	asAdmin(t, s, "pipeline", "create", "ci-main", "--github", "org/app@main", "--issuer", iss.URL)
	asAdmin(t, s, "connection", "create", "ci", "--principal", "ci-bot")
	if permit {
		asAdmin(t, s, "connection", "authorize", "ci", "--pipeline", "ci-main")
	}
}

// TestPipelineLoginSkopeo: a GitHub Actions job of a permitted pipeline runs
// berth login --connection, which fetches its ID token from the token request
// endpoint for the registry's service, and then pushes and pulls with skopeo
// through docker-credential-berth, with no secret anywhere. berth doctor in
// the job reports the connection and the pipeline. No ID token, refresh
// token or request token is printed or logged.
func TestPipelineLoginSkopeo(t *testing.T) {
	needBerth(t)
	skopeo := tool(t, "skopeo")
	iss := oidctest.New(t)
	s := startServer(t, t.TempDir())
	federationSetup(t, s, iss, true)
	g := newGitHubEndpoint(t, iss, oidctest.GitHubJob{Repository: "org/app", Ref: "refs/heads/main"})
	job := newCIJob(t, g)
	o := cmdOpts{env: job.env}

	stdout, stderr, err := runWith(t, o, berthBin, "login", s.addr, "--connection", "ci")
	if err != nil {
		t.Fatalf("berth login --connection ci: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "service connection ci") || !strings.Contains(stdout, "ci-main") {
		t.Errorf("berth login --connection printed %q; want the connection and the pipeline", stdout)
	}
	printed := stdout + stderr
	auds, _ := g.issued()
	if len(auds) != 1 || auds[0] == "" {
		t.Fatalf("the job asked the token endpoint for audiences %q; want one, the registry's service", auds)
	}

	// skopeo finds the login through credHelpers and docker-credential-berth.
	src, want := writeRandomLayout(t, "v1")
	dst := "docker://" + s.addr + "/team/app:v1"
	mustRunWith(t, o, skopeo, "--insecure-policy", "copy", "--preserve-digests", "--dest-tls-verify=false", "oci:"+src+":v1", dst)
	out := filepath.Join(t.TempDir(), "out")
	mustRunWith(t, o, skopeo, "--insecure-policy", "copy", "--preserve-digests", "--src-tls-verify=false", dst, "oci:"+out+":v1")
	if got := layoutManifestDigest(t, out, "v1"); got != want {
		t.Fatalf("skopeo pulled %s, pushed %s", got, want)
	}
	// The connection's principal has push on team/* only.
	_, stderr, err = runWith(t, o, skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false", "oci:"+src+":v1", "docker://"+s.addr+"/other/app:v1")
	if err == nil {
		t.Errorf("skopeo pushed to other/app, outside the connection principal's roles")
	}

	// berth doctor in the job: the pipeline check names the connection and
	// the pipeline, with a fresh ID token exchanged.
	stdout, stderr, err = runWith(t, o, berthBin, "doctor", s.addr, "--repository", "team/app", "--action", "push", "-o", "json")
	if err != nil {
		t.Fatalf("berth doctor: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	printed += stdout + stderr
	var rep struct {
		Checks []struct {
			Name, Status, Connection, Pipeline string
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("berth doctor -o json: %v\n%s", err, stdout)
	}
	found := false
	for _, c := range rep.Checks {
		if c.Name == "pipeline" {
			found = true
			if c.Status != "ok" || c.Connection != "ci" || c.Pipeline != "ci-main" {
				t.Errorf("doctor's pipeline check: %+v", c)
			}
		}
	}
	if !found {
		t.Errorf("berth doctor ran no pipeline check:\n%s", stdout)
	}

	// No credential is printed or logged.
	_, tokens := g.issued()
	store, _ := os.ReadFile(filepath.Join(job.home, ".config", "berth", "logins.json"))
	var logins map[string]struct {
		RefreshToken string `json:"refresh_token"`
		Connection   string `json:"connection"`
	}
	if err := json.Unmarshal(store, &logins); err != nil || logins[s.addr].RefreshToken == "" || logins[s.addr].Connection != "ci" {
		t.Fatalf("the login store holds no connection login for %s: %v", s.addr, err)
	}
	secrets := append(tokens, g.bearer, logins[s.addr].RefreshToken)
	logged := s.logAll()
	for _, sec := range secrets {
		for what, text := range map[string]string{"the output of berth login and doctor": printed, "the server log": logged, "the login store": string(store)} {
			if what == "the login store" && sec == logins[s.addr].RefreshToken {
				continue
			}
			if strings.Contains(text, sec) {
				t.Errorf("%s holds a credential (%d characters)", what, len(sec))
			}
		}
	}
}

// TestPipelineLoginNotPermitted: a registered pipeline that the connection
// does not permit is refused with pipeline_not_authorized, and the job's log
// names the command that permits it; once permitted, the same job logs in.
func TestPipelineLoginNotPermitted(t *testing.T) {
	needBerth(t)
	iss := oidctest.New(t)
	s := startServer(t, t.TempDir())
	federationSetup(t, s, iss, false)
	g := newGitHubEndpoint(t, iss, oidctest.GitHubJob{Repository: "org/app", Ref: "refs/heads/main"})
	job := newCIJob(t, g)
	o := cmdOpts{env: job.env}

	stdout, stderr, err := runWith(t, o, berthBin, "login", s.addr, "--connection", "ci")
	if err == nil {
		t.Fatalf("berth login --connection ci succeeded for a pipeline the connection does not permit\n%s", stdout)
	}
	for _, want := range []string{"pipeline_not_authorized", "berth connection permit ci --pipeline ci-main"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("berth login's refusal lacks %q:\n%s", want, stderr)
		}
	}
	_, tokens := g.issued()
	for _, tok := range tokens {
		if strings.Contains(stdout+stderr, tok) {
			t.Errorf("the refusal prints the ID token")
		}
	}
	if _, err := os.Stat(filepath.Join(job.dockerConfig, "config.json")); err == nil {
		t.Errorf("a refused login registered the credential helper")
	}

	// A different job: the wrong branch is an unknown pipeline.
	other := newGitHubEndpoint(t, iss, oidctest.GitHubJob{Repository: "org/app", Ref: "refs/heads/feature"})
	_, stderr, err = runWith(t, cmdOpts{env: newCIJob(t, other).env}, berthBin, "login", s.addr, "--connection", "ci")
	if err == nil || !strings.Contains(stderr, "pipeline_unknown") {
		t.Errorf("a job on another branch: err %v, stderr:\n%s", err, stderr)
	}

	asAdmin(t, s, "connection", "permit", "ci", "--pipeline", "ci-main")
	mustRunWith(t, o, berthBin, "login", s.addr, "--connection", "ci")
}
