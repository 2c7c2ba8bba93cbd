package cli

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth"
)

// fakeIDToken returns an unsigned compact JWS with these claims: enough for
// the finder, which reads but never verifies.
func fakeIDToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(b) + "." + enc([]byte("signature"))
}

// githubStandIn serves GitHub Actions' ID token request endpoint as a runner
// sees it: GET with the job's bearer token and ?audience=, answering
// {"count":…, "value": TOKEN}. It records the audience asked for.
type githubStandIn struct {
	srv      *httptest.Server
	bearer   string
	audience atomic.Value // string
	calls    atomic.Int32
}

func newGitHubStandIn(t *testing.T, bearer string, mint func(aud string) string) *githubStandIn {
	g := &githubStandIn{bearer: bearer}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.calls.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/_apis/distributedtask/hubs/Actions/idtoken" || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+g.bearer {
			http.Error(w, `{"message":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		aud := r.URL.Query().Get("audience")
		g.audience.Store(aud)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"count": 1, "value": mint(aud)})
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// requestURL is what a runner puts in ACTIONS_ID_TOKEN_REQUEST_URL.
func (g *githubStandIn) requestURL() string {
	return g.srv.URL + "/_apis/distributedtask/hubs/Actions/idtoken?api-version=2.0"
}

func TestIDTokenGitHubActions(t *testing.T) {
	g := newGitHubStandIn(t, "runner-bearer", func(aud string) string {
		return fakeIDToken(t, map[string]any{"iss": "https://token.actions.githubusercontent.com", "sub": "repo:org/app:ref:refs/heads/main", "aud": aud, "exp": 2000000000})
	})
	env := map[string]string{"GITHUB_ACTIONS": "true", envGitHubRequestURL: g.requestURL(), envGitHubRequestToken: "runner-bearer"}
	f := &idTokenFinder{getenv: mapEnv(env), http: g.srv.Client(), defaultFile: filepath.Join(t.TempDir(), "none")}
	tok, err := f.find(t.Context(), "", "registry.example.com:5000")
	if err != nil {
		t.Fatal(err)
	}
	if got := g.audience.Load(); got != "registry.example.com:5000" {
		t.Errorf("the endpoint was asked for audience %q, want the registry's service", got)
	}
	if tok.source != "GitHub Actions" || tok.subject != "repo:org/app:ref:refs/heads/main" || len(tok.audience) != 1 || tok.audience[0] != "registry.example.com:5000" {
		t.Errorf("token %+v", tok)
	}
	if s := tok.String() + tok.describe(); strings.Contains(s, tok.value) {
		t.Errorf("the token's description shows the token: %q", s)
	}

	// A wrong bearer token: credentials_missing naming the permission.
	env[envGitHubRequestToken] = "stale"
	_, err = f.find(t.Context(), "", "aud")
	if berth.ErrorCode(err) != berth.CodeCredentialsMissing || !strings.Contains(berth.AsError(err).Hint, "id-token: write") {
		t.Errorf("refused request: %v", err)
	}
	if strings.Contains(err.Error(), "stale") {
		t.Errorf("the error shows the request token: %v", err)
	}

	// Only one of the two variables: the workflow lacks the permission.
	delete(env, envGitHubRequestURL)
	_, err = f.find(t.Context(), "", "aud")
	if berth.ErrorCode(err) != berth.CodeCredentialsMissing || !strings.Contains(berth.AsError(err).Hint, "id-token: write") {
		t.Errorf("half set: %v", err)
	}

	// The job's bearer token never goes to a plain http host off loopback.
	env[envGitHubRequestURL] = "http://pipelines.example.com/idtoken?api-version=2.0"
	env[envGitHubRequestToken] = "runner-bearer"
	_, err = f.find(t.Context(), "", "aud")
	if berth.ErrorCode(err) != berth.CodeInvalid {
		t.Errorf("plain http off loopback: %v", err)
	}
}

func TestIDTokenGitHubAnswerNotJWT(t *testing.T) {
	g := newGitHubStandIn(t, "b", func(string) string { return "not-a-jwt" })
	env := map[string]string{envGitHubRequestURL: g.requestURL(), envGitHubRequestToken: "b"}
	f := &idTokenFinder{getenv: mapEnv(env), http: g.srv.Client()}
	_, err := f.find(t.Context(), "", "aud")
	if berth.ErrorCode(err) != berth.CodeAssertionInvalid {
		t.Errorf("got %v, want assertion_invalid", err)
	}
}

func TestIDTokenAzurePipelines(t *testing.T) {
	want := fakeIDToken(t, map[string]any{"iss": "https://vstoken.dev.azure.com/org-id", "sub": "sc://contoso/web/berth", "aud": azureAudience})
	var query atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodPost:
			http.Error(w, `{"message":"The requested resource does not support http method 'GET'."}`, http.StatusMethodNotAllowed)
		case r.Header.Get("Authorization") != "Bearer system-access-token":
			http.Error(w, "{}", http.StatusUnauthorized)
		case r.Header.Get("Content-Type") != "application/json":
			http.Error(w, "{}", http.StatusUnsupportedMediaType)
		default:
			query.Store(r.URL.RawQuery)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"oidcToken": want})
		}
	}))
	defer srv.Close()
	uri := srv.URL + "/contoso/proj-id/_apis/distributedtask/hubs/build/plans/plan-id/jobs/job-id/oidctoken"
	env := map[string]string{"TF_BUILD": "True", envAzureRequestURI: uri, envAzureAccessToken: "system-access-token", envAzureServiceConnection: "3f1c-conn-id"}
	f := &idTokenFinder{getenv: mapEnv(env), http: srv.Client(), defaultFile: filepath.Join(t.TempDir(), "none")}
	tok, err := f.find(t.Context(), "", "ignored")
	if err != nil {
		t.Fatal(err)
	}
	if tok.value != want || tok.source != "Azure Pipelines" {
		t.Errorf("token from %s", tok.source)
	}
	if q, _ := query.Load().(string); q != "api-version=7.1&serviceConnectionId=3f1c-conn-id" {
		t.Errorf("query %q", q)
	}

	// Without a service connection id: the pipeline's own token.
	delete(env, envAzureServiceConnection)
	if _, err := f.find(t.Context(), "", ""); err != nil {
		t.Fatal(err)
	}
	if q, _ := query.Load().(string); q != "api-version=7.1" {
		t.Errorf("query %q", q)
	}

	// SYSTEM_ACCESSTOKEN not mapped into the step: the hint says how.
	delete(env, envAzureAccessToken)
	_, err = f.find(t.Context(), "", "")
	if berth.ErrorCode(err) != berth.CodeCredentialsMissing || !strings.Contains(berth.AsError(err).Hint, "$(System.AccessToken)") {
		t.Errorf("no access token: %v", err)
	}

	// A refused request names the fix.
	env[envAzureAccessToken] = "wrong"
	_, err = f.find(t.Context(), "", "")
	if berth.ErrorCode(err) != berth.CodeCredentialsMissing || !strings.Contains(berth.AsError(err).Hint, "System.AccessToken") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("refused: %v", err)
	}
}

func TestIDTokenSourceOrder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, sub string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(fakeIDToken(t, map[string]any{"sub": sub})+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flagFile, envFile, k8sFile := write("flag", "flag"), write("envfile", "envfile"), write("k8s", "k8s")
	g := newGitHubStandIn(t, "b", func(string) string { return fakeIDToken(t, map[string]any{"sub": "github"}) })
	full := map[string]string{
		envIDToken:            fakeIDToken(t, map[string]any{"sub": "env"}),
		envIDTokenFile:        envFile,
		envGitHubRequestURL:   g.requestURL(),
		envGitHubRequestToken: "b",
	}
	for _, tc := range []struct {
		name, flag string
		unset      []string
		want       string
	}{
		{"the flag first", flagFile, nil, "flag"},
		{"then BERTH_ID_TOKEN", "", nil, "env"},
		{"then BERTH_ID_TOKEN_FILE", "", []string{envIDToken}, "envfile"},
		{"then GitHub Actions", "", []string{envIDToken, envIDTokenFile}, "github"},
		{"then the Kubernetes file", "", []string{envIDToken, envIDTokenFile, envGitHubRequestURL, envGitHubRequestToken}, "k8s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range full {
				env[k] = v
			}
			for _, k := range tc.unset {
				delete(env, k)
			}
			f := &idTokenFinder{getenv: mapEnv(env), http: g.srv.Client(), defaultFile: k8sFile}
			tok, err := f.find(t.Context(), tc.flag, "aud")
			if err != nil {
				t.Fatal(err)
			}
			if tok.subject != tc.want {
				t.Errorf("the token came from %s (subject %q), want %q", tok.source, tok.subject, tc.want)
			}
		})
	}
}

func TestIDTokenMissing(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		name string
		env  map[string]string
		hint string
	}{
		{"github without the permission", map[string]string{"GITHUB_ACTIONS": "true"}, "id-token: write"},
		{"gitlab without id_tokens", map[string]string{"GITLAB_CI": "true"}, "id_tokens: { BERTH_ID_TOKEN: { aud: registry.example.com } }"},
		{"azure without the access token", map[string]string{"TF_BUILD": "True"}, "$(System.AccessToken)"},
		{"kubernetes without a projected token", map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "serviceAccountToken"},
		{"elsewhere", map[string]string{}, "--id-token-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &idTokenFinder{getenv: mapEnv(tc.env), defaultFile: none}
			_, err := f.find(t.Context(), "", "registry.example.com")
			be := berth.AsError(err)
			if be == nil || be.Code != berth.CodeCredentialsMissing || !strings.Contains(be.Hint, tc.hint) {
				t.Errorf("got %v, want credentials_missing with a hint holding %q", err, tc.hint)
			}
		})
	}

	f := &idTokenFinder{getenv: mapEnv(nil), defaultFile: none}
	if _, err := f.find(t.Context(), filepath.Join(t.TempDir(), "absent"), "aud"); berth.ErrorCode(err) != berth.CodeCredentialsMissing {
		t.Errorf("absent --id-token-file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("secret-but-not-a-jwt"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := f.find(t.Context(), bad, "aud")
	if berth.ErrorCode(err) != berth.CodeAssertionInvalid || strings.Contains(err.Error(), "secret-but-not-a-jwt") {
		t.Errorf("not a JWT: %v", err)
	}
}
