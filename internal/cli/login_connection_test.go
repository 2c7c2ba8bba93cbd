package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/oidctest"
)

// federation is a running berth with a test OIDC issuer and, registered by
// the admin through the CLI: the principal ci-bot (push on team/*), the
// pipelines gh-main (GitHub org/app on main), gl-main (GitLab group/app on
// main), az (Azure Pipelines contoso/web/berth) and gh-release (org/app on
// release), and the federated connection ci, which permits all but
// gh-release.
type federation struct {
	s       *running
	iss     *oidctest.Issuer
	host    string
	service string
	admin   map[string]string
}

func startFederation(t *testing.T) *federation {
	t.Helper()
	return startFederationWith(t, func(issuer string) [][]string {
		return [][]string{
			{"principal", "create", "ci-bot"},
			{"role", "assign", "--principal", "ci-bot", "--role", "push", "--scope", "team/*"},
			{"pipeline", "create", "gh-main", "--github", "org/app@main", "--issuer", issuer},
			{"pipeline", "create", "gh-release", "--github", "org/app@release", "--issuer", issuer},
			{"pipeline", "create", "gl-main", "--gitlab", "group/app@main", "--gitlab-url", issuer},
			{"pipeline", "create", "az", "--azure-devops", "contoso/web/berth", "--issuer", issuer, "--audience", oidctest.AzureAudience},
			{"connection", "create", "ci", "--principal", "ci-bot"},
			{"connection", "authorize", "ci", "--pipeline", "gh-main"},
			{"connection", "authorize", "ci", "--pipeline", "gl-main"},
			{"connection", "authorize", "ci", "--pipeline", "az"},
		}
	})
}

// startFederationWith starts a berth and a test issuer, and runs as the
// admin the commands that setup returns for the issuer's URL.
func startFederationWith(t *testing.T, setup func(issuer string) [][]string) *federation {
	t.Helper()
	f := &federation{iss: oidctest.New(t), s: startServe(t, t.TempDir())}
	id, secret := f.s.admin(t)
	f.host = strings.TrimPrefix(f.s.url, "http://")
	f.admin = map[string]string{"BERTH_URL": f.s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret, "HOME": t.TempDir()}
	for _, args := range setup(f.iss.URL) {
		f.cli(t, args...)
	}
	srv, err := parseServer(f.host)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := discoverChallenge(t.Context(), f.s.client, srv)
	if err != nil {
		t.Fatal(err)
	}
	f.service = ch.service
	return f
}

// cli runs a command as the admin and fails the test when it fails.
func (f *federation) cli(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, f.admin, args...)
	if code != 0 {
		t.Fatalf("berth %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// job returns the environment of a CI job: its own HOME and docker config,
// plus extra.
func job(t *testing.T, extra map[string]string) map[string]string {
	home := t.TempDir()
	env := map[string]string{"HOME": home, "DOCKER_CONFIG": filepath.Join(home, "docker")}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func TestLoginConnectionGitHubActions(t *testing.T) {
	f := startFederation(t)
	g := newGitHubStandIn(t, "runner-bearer", func(aud string) string {
		return f.iss.GitHub(oidctest.GitHubJob{Repository: "org/app", Ref: "refs/heads/main", Audience: aud})
	})
	env := job(t, map[string]string{"GITHUB_ACTIONS": "true", envGitHubRequestURL: g.requestURL(), envGitHubRequestToken: "runner-bearer"})
	code, stdout, stderr := runCLI(t, env, "login", f.host, "--connection", "ci")
	if code != 0 {
		t.Fatalf("berth login --connection: exit %d\n%s", code, stderr)
	}
	if got := g.audience.Load(); got != f.service {
		t.Errorf("the job asked GitHub for an ID token for %q; want the registry's service %q", got, f.service)
	}
	if !strings.Contains(stdout, "service connection ci") || !strings.Contains(stdout, "pipeline gh-main") {
		t.Errorf("berth login printed %q", stdout)
	}

	logins, err := loadLogins(mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	l := logins[f.host]
	if l.RefreshToken == "" || l.Connection != "ci" || l.Pipeline != "gh-main" || l.ClientID == "" {
		t.Fatalf("stored login %+v", l)
	}
	if l.ExpiresAt == nil || l.ExpiresAt.Sub(l.CreatedAt) < 5*time.Hour || l.ExpiresAt.Sub(l.CreatedAt) > 7*time.Hour {
		t.Errorf("the connection's login expires at %v, want about 6 h after %v", l.ExpiresAt, l.CreatedAt)
	}

	// docker-credential-berth serves it unchanged, and it refreshes.
	code, out := runHelper(t, env, "get", f.host)
	var got struct{ Username, Secret string }
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got.Secret != l.RefreshToken || got.Username != identityTokenUser {
		t.Fatalf("credential helper get: exit %d, user %q, %v", code, got.Username, err)
	}
	if status, body := redeem(t, f.s, l.RefreshToken); status != http.StatusOK {
		t.Fatalf("redeeming the connection's refresh token: %d %v", status, body)
	}

	// doctor in the job exchanges a fresh ID token and names both.
	code, stdout, stderr = runCLI(t, env, "doctor", f.host, "-o", "json")
	if code != 0 {
		t.Fatalf("berth doctor: exit %d\n%s\n%s", code, stdout, stderr)
	}
	rep := decodeJSON[doctorReport](t, stdout)
	c := findDoctorCheck(t, rep, doctorCheckPipeline)
	if c.Status != doctorStatusOK || c.Connection != "ci" || c.Pipeline != "gh-main" {
		t.Errorf("pipeline check %+v", c)
	}
	// A 6 h session is what a federated login is, not a credential about to expire.
	if c := findDoctorCheck(t, rep, doctorCheckExpiry); c.Status != doctorStatusOK || !strings.Contains(c.Message, "session of service connection ci") || strings.Contains(c.Message, "0 days") {
		t.Errorf("expiry check %+v", c)
	}

	// Once the pipeline is no longer permitted, doctor says so and how to fix it.
	f.cli(t, "connection", "unauthorize", "ci", "--pipeline", "gh-main")
	code, stdout, _ = runCLI(t, env, "doctor", f.host, "-o", "json")
	c = findDoctorCheck(t, decodeJSON[doctorReport](t, stdout), doctorCheckPipeline)
	if code == 0 || c.Status != doctorStatusFail || c.Reason != "pipeline_not_authorized" || !strings.Contains(c.Hint, "berth connection permit ci --pipeline gh-main") {
		t.Errorf("doctor after unauthorize: exit %d, pipeline check %+v", code, c)
	}

	// Nothing printed holds a token.
	for _, s := range []string{l.RefreshToken, "runner-bearer"} {
		if strings.Contains(stdout+stderr, s) {
			t.Errorf("output holds a credential")
		}
	}
}

func TestLoginConnectionGitLabAndAzure(t *testing.T) {
	f := startFederation(t)

	env := job(t, map[string]string{"GITLAB_CI": "true", envIDToken: f.iss.GitLab(oidctest.GitLabJob{Project: "group/app", Ref: "main", Audience: f.service})})
	if code, _, stderr := runCLI(t, env, "login", f.host, "--connection", "ci"); code != 0 {
		t.Fatalf("GitLab: exit %d\n%s", code, stderr)
	}
	if l, _, _, _ := findLogin(mapEnv(env), f.host); l.Pipeline != "gl-main" {
		t.Errorf("GitLab login: pipeline %q", l.Pipeline)
	}

	azure := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer system-access-token" || r.URL.Query().Get("serviceConnectionId") != "conn-id" {
			http.Error(w, "{}", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"oidcToken": f.iss.Azure(oidctest.AzureJob{Organization: "contoso", Project: "web", Connection: "berth"})})
	}))
	defer azure.Close()
	env = job(t, map[string]string{"TF_BUILD": "True", envAzureRequestURI: azure.URL + "/oidctoken", envAzureAccessToken: "system-access-token", envAzureServiceConnection: "conn-id"})
	if code, _, stderr := runCLI(t, env, "login", f.host, "--connection", "ci"); code != 0 {
		t.Fatalf("Azure: exit %d\n%s", code, stderr)
	}
	if l, _, _, _ := findLogin(mapEnv(env), f.host); l.Pipeline != "az" {
		t.Errorf("Azure login: pipeline %q", l.Pipeline)
	}

	// --expose-token with --id-token-file prints an access token and stores nothing.
	file := filepath.Join(t.TempDir(), "id-token")
	if err := os.WriteFile(file, []byte(f.iss.GitHub(oidctest.GitHubJob{Audience: f.service})), 0o600); err != nil {
		t.Fatal(err)
	}
	env = job(t, nil)
	code, stdout, stderr := runCLI(t, env, "login", f.host, "--connection", "ci", "--id-token-file", file, "--expose-token", "--scope", "repository:team/app:pull")
	if code != 0 {
		t.Fatalf("--expose-token: exit %d\n%s", code, stderr)
	}
	tok := decodeJSON[map[string]string](t, stdout)
	if tok["accessToken"] == "" || tok["loginServer"] != f.host || tok["expiresOn"] == "" {
		t.Errorf("--expose-token printed %v", tok)
	}
	if c := readAccessClaims(tok["accessToken"]); c.Connection != "ci" || c.Pipeline != "gh-main" {
		t.Errorf("the exposed token's claims: %+v", c)
	}
	if _, err := os.Stat(filepath.Join(env["HOME"], ".config", "berth", "logins.json")); err == nil {
		t.Errorf("--expose-token stored a login")
	}
}

func TestLoginConnectionRefusals(t *testing.T) {
	f := startFederation(t)
	gh := func(j oidctest.GitHubJob, opts ...oidctest.Option) string {
		if j.Audience == "" {
			j.Audience = f.service
		}
		return f.iss.GitHub(j, opts...)
	}
	main := oidctest.GitHubJob{Repository: "org/app", Ref: "refs/heads/main"}
	for _, tc := range []struct {
		name       string
		token      string
		connection string
		want       []string
	}{
		{"expired", gh(main, oidctest.Expired(10*time.Minute)), "ci", []string{"[assertion_expired]"}},
		{"bad signature", gh(main, oidctest.WithOtherKey()), "ci", []string{"[assertion_invalid]"}},
		{"unknown kid", gh(main, oidctest.WithUnknownKid()), "ci", []string{"[assertion_invalid]"}},
		{"another branch", gh(oidctest.GitHubJob{Repository: "org/app", Ref: "refs/heads/feature"}), "ci", []string{"[pipeline_unknown]", "gh-main"}},
		{"another audience", gh(oidctest.GitHubJob{Repository: "org/app", Ref: "refs/heads/main", Audience: "someone-else"}), "ci", []string{"[audience_mismatch]"}},
		{"not permitted", gh(oidctest.GitHubJob{Repository: "org/app", Ref: "refs/heads/release"}), "ci", []string{"[pipeline_not_authorized]", "berth connection permit ci --pipeline gh-release"}},
		{"unknown connection", gh(main), "nope", []string{"[connection_unknown]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := job(t, map[string]string{envIDToken: tc.token})
			code, stdout, stderr := runCLI(t, env, "login", f.host, "--connection", tc.connection)
			if code != 1 {
				t.Fatalf("exit %d, stdout %q", code, stdout)
			}
			t.Logf("berth login --connection %s:\n%s", tc.connection, stderr)
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stdout+stderr, tc.token) {
				t.Errorf("the refusal prints the ID token")
			}
			if _, err := os.Stat(filepath.Join(env["HOME"], ".config", "berth", "logins.json")); err == nil {
				t.Errorf("a refused login stored something")
			}
		})
	}

	// A disabled connection refuses every pipeline.
	f.cli(t, "connection", "disable", "ci")
	env := job(t, map[string]string{envIDToken: gh(main)})
	if code, _, stderr := runCLI(t, env, "login", f.host, "--connection", "ci"); code != 1 || !strings.Contains(stderr, "[connection_disabled]") {
		t.Errorf("disabled connection: exit %d\n%s", code, stderr)
	}
}
