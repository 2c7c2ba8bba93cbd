package e2e

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/oidctest"
)

// The tests in this file run what a team coming from Azure Container
// Registry runs: an Entra ID token (minted by the test issuer in Entra's
// shape) is exchanged at /oauth2/exchange for a refresh token, as az acr
// login does, and crane, skopeo and docker-login-style Basic credentials with
// the null GUID push and pull with it.

const (
	nullGUID      = "00000000-0000-0000-0000-000000000000"
	entraAudience = "api://berth-registry"
)

// acrSetup registers, as the initial admin, the principal acr-bot with push
// on team/*, the Entra pipeline acr-push for oidctest's application at the
// test issuer, and the federated connection acr permitting it.
func acrSetup(t *testing.T, s *server, iss *oidctest.Issuer) {
	t.Helper()
	asAdmin(t, s, "principal", "create", "acr-bot")
	asAdmin(t, s, "role", "assign", "--principal", "acr-bot", "--role", "push", "--scope", "team/*")
	asAdmin(t, s, "pipeline", "create", "acr-push", "--entra", oidctest.EntraTenant+"/"+oidctest.EntraAppID,
		"--issuer", iss.URL, "--audience", entraAudience)
	asAdmin(t, s, "connection", "create", "acr", "--principal", "acr-bot")
	asAdmin(t, s, "connection", "authorize", "acr", "--pipeline", "acr-push")
}

// acrExchange posts an Entra token to /oauth2/exchange as az acr login does,
// naming tenant when it is not "", and returns the status and the answer.
func acrExchange(t *testing.T, s *server, token, tenant string) (int, tokenResponse) {
	t.Helper()
	form := url.Values{"grant_type": {"access_token"}, "service": {"berth"}, "access_token": {token}}
	if tenant != "" {
		form.Set("tenant", tenant)
	}
	return tokenRequest(t, "http://"+s.addr+"/oauth2/exchange", http.MethodPost, "", "", form)
}

// TestACRExchangeCraneSkopeo: the refresh token of /oauth2/exchange logs
// crane in as user 00000000-0000-0000-0000-000000000000 (docker login's
// Basic), and as an identity token (the refresh_token grant), and skopeo
// with --creds; each pushes and pulls within the connection principal's
// roles only.
func TestACRExchangeCraneSkopeo(t *testing.T) {
	needBerth(t)
	crane, skopeo := tool(t, "crane"), tool(t, "skopeo")
	iss := oidctest.New(t)
	s := startServer(t, t.TempDir())
	acrSetup(t, s, iss)

	status, tr := acrExchange(t, s, iss.Entra(oidctest.EntraToken{Audience: entraAudience}), oidctest.EntraTenant)
	if status != http.StatusOK || !strings.HasPrefix(tr.RefreshToken, "brr_") {
		t.Fatalf("/oauth2/exchange: %d %+v", status, tr)
	}
	rt := tr.RefreshToken

	// docker login HOST -u 00000000-… -p REFRESH_TOKEN: the login's token
	// request, then a Basic request to /v2/ itself.
	code, login := tokenRequest(t, s.tokenURL(), http.MethodGet, nullGUID, rt, url.Values{"service": {"berth"}, "offline_token": {"true"}, "client_id": {"docker"}})
	if code != http.StatusOK || login.Token == "" || login.RefreshToken != "" {
		t.Fatalf("docker login's token request: %d %+v", code, login)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/v2/", nil)
	req.SetBasicAuth(nullGUID, rt)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ with Basic %s: %v %v", nullGUID, resp, err)
	} else {
		resp.Body.Close()
	}

	src, want := writeRandomLayout(t, "v1")
	t.Run("crane with the null GUID", func(t *testing.T) {
		o := cmdOpts{env: craneLogin(t, crane, s, nullGUID, rt)}
		ref := s.addr + "/team/acr:v1"
		mustRunWith(t, o, crane, "push", "--insecure", src, ref)
		if got := strings.TrimSpace(mustRunWith(t, o, crane, "digest", "--insecure", ref)); got != want.String() {
			t.Fatalf("crane digest %s, pushed %s", got, want)
		}
		if _, stderr, err := runWith(t, o, crane, "push", "--insecure", src, s.addr+"/other/acr:v1"); err == nil || !strings.Contains(stderr, "role_missing") {
			t.Errorf("crane pushed outside team/*: %v\n%s", err, stderr)
		}
	})
	t.Run("crane with an identity token", func(t *testing.T) {
		dir := t.TempDir()
		cfg := `{"auths":{"` + s.addr + `":{"identitytoken":"` + rt + `"}}}`
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		o := cmdOpts{env: []string{"DOCKER_CONFIG=" + dir}}
		mustRunWith(t, o, crane, "push", "--insecure", src, s.addr+"/team/acr-identity:v1")
		pulled := filepath.Join(t.TempDir(), "pulled")
		mustRunWith(t, o, crane, "pull", "--insecure", "--format", "oci", s.addr+"/team/acr-identity:v1", pulled)
		if got := onlyManifestDigest(t, pulled); got != want {
			t.Fatalf("crane pulled %s, pushed %s", got, want)
		}
	})
	t.Run("skopeo with --creds", func(t *testing.T) {
		o := cmdOpts{env: []string{"REGISTRY_AUTH_FILE=" + filepath.Join(t.TempDir(), "auth.json")}}
		creds := nullGUID + ":" + rt
		dst := "docker://" + s.addr + "/team/acr-skopeo:v1"
		mustRunWith(t, o, skopeo, "--insecure-policy", "copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", creds, "oci:"+src+":v1", dst)
		out := filepath.Join(t.TempDir(), "out")
		mustRunWith(t, o, skopeo, "--insecure-policy", "copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds", creds, dst, "oci:"+out+":v1")
		if got := layoutManifestDigest(t, out, "v1"); got != want {
			t.Fatalf("skopeo copied back %s, pushed %s", got, want)
		}
	})

	if strings.Contains(s.logAll(), rt) {
		t.Errorf("the server log holds the refresh token")
	}
}

// TestACRExchangeRefusals: an Entra token of another tenant or another
// application, or an expired one, is refused at /oauth2/exchange with its
// reason code.
func TestACRExchangeRefusals(t *testing.T) {
	needBerth(t)
	iss := oidctest.New(t)
	s := startServer(t, t.TempDir())
	acrSetup(t, s, iss)
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"wrong tenant", iss.Entra(oidctest.EntraToken{Tenant: "0f0e0d0c-0b0a-4909-8807-060504030201", Audience: entraAudience}), "pipeline_unknown"},
		{"wrong app", iss.Entra(oidctest.EntraToken{AppID: "11111111-2222-4333-8444-555555555555", Audience: entraAudience}), "pipeline_unknown"},
		{"expired", iss.Entra(oidctest.EntraToken{Audience: entraAudience}, oidctest.Expired(10*time.Minute)), "assertion_expired"},
	} {
		status, tr := acrExchange(t, s, tc.token, "")
		if status == http.StatusOK || tr.Reason != tc.reason || tr.RefreshToken != "" {
			t.Errorf("%s: %d %+v, want reason %s", tc.name, status, tr, tc.reason)
		}
	}
}
