package cli

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// TestPullOfAnUnknownRepository: a pull of a repository that does not exist
// (a typo) is not answered with the command that grants access to the typo.
// A caller who may list there learns it does not exist and the closest
// names; one who may not keeps the refusal that tells nothing, with the
// closest repository it may see.
func TestPullOfAnUnknownRepository(t *testing.T) {
	s := startServe(t, t.TempDir())
	env := adminEnv(t, s)
	blob := []byte("layer")
	for _, repo := range []string{"team/app", "team/api", "other/app"} {
		if resp, body := s.do(t, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha256Digest(blob), nil, blob); resp.StatusCode != 201 {
			t.Fatalf("push to %s: %d %s", repo, resp.StatusCode, body)
		}
	}
	secretOf := func(name string, roles ...[2]string) string {
		t.Helper()
		if code, stdout, stderr := runCLI(t, env, "principal", "create", name); code != 0 {
			t.Fatalf("%s%s", stdout, stderr)
		}
		for _, r := range roles {
			if code, stdout, stderr := runCLI(t, env, "role", "assign", "--principal", name, "--role", r[0], "--scope", r[1]); code != 0 {
				t.Fatalf("%s%s", stdout, stderr)
			}
		}
		code, stdout, _ := runCLI(t, env, "secret", "add", name, "-o", "json")
		var sec struct{ Value string }
		if code != 0 || json.Unmarshal([]byte(stdout), &sec) != nil {
			t.Fatalf("secret add %s: %s", name, stdout)
		}
		return sec.Value
	}
	pull := func(user, secret, repo string) (int, map[string]any) {
		t.Helper()
		auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+secret))
		resp, body := s.do(t, "GET", "/v2/"+repo+"/manifests/v1", map[string]string{"Authorization": auth}, nil)
		var eb struct {
			Errors []struct {
				Message string         `json:"message"`
				Detail  map[string]any `json:"detail"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) == 0 {
			t.Fatalf("pull %s as %s: %d %s", repo, user, resp.StatusCode, body)
		}
		d := eb.Errors[0].Detail
		d["message"] = eb.Errors[0].Message
		return resp.StatusCode, d
	}

	// May list the whole registry: the typo does not exist, team/app is closest.
	lister := secretOf("lister", [2]string{"catalog", "registry"}, [2]string{"pull", "team/*"})
	status, d := pull("lister", lister, "taem/app")
	if status != 404 || d["reason"] != "name_unknown" || !strings.Contains(d["message"].(string), "team/app") || strings.Contains(d["hint"].(string), "role assign") {
		t.Errorf("pull of taem/app by a lister: %d %v; want name_unknown naming team/app, no role assign", status, d)
	}
	// An existing repository it may not pull is still role_missing.
	if status, d := pull("lister", lister, "other/app"); status != 403 || d["reason"] != "role_missing" {
		t.Errorf("pull of other/app by a lister: %d %v", status, d)
	}

	// May see team/* only: the refusal tells nothing of taem/app, and points
	// at team/app.
	dev := secretOf("dev", [2]string{"pull", "team/*"})
	status, d = pull("dev", dev, "taem/app")
	if status != 403 || d["reason"] != "role_missing" || !strings.Contains(d["hint"].(string), "did you mean team/app") {
		t.Errorf("pull of taem/app by dev: %d %v; want role_missing pointing at team/app", status, d)
	}
}

// TestScopeWithoutStar: --scope team, meant as team/*, is one repository
// named team; berth role assign warns when none is so named and
// repositories exist under team/.
func TestScopeWithoutStar(t *testing.T) {
	s := startServe(t, t.TempDir())
	env := adminEnv(t, s)
	blob := []byte("layer")
	if resp, body := s.do(t, "POST", "/v2/team/app/blobs/uploads/?digest="+sha256Digest(blob), nil, blob); resp.StatusCode != 201 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	if code, stdout, stderr := runCLI(t, env, "principal", "create", "dev"); code != 0 {
		t.Fatalf("%s%s", stdout, stderr)
	}
	for _, tt := range []struct {
		scope string
		warn  bool
	}{{"team", true}, {"team/*", false}, {"team/app", false}, {"other", false}} {
		code, stdout, stderr := runCLI(t, env, "role", "assign", "--principal", "dev", "--role", "pull", "--scope", tt.scope, "-o", "json")
		var a struct{ Warnings []string }
		if code != 0 || json.Unmarshal([]byte(stdout), &a) != nil {
			t.Fatalf("role assign --scope %s: %d %s%s", tt.scope, code, stdout, stderr)
		}
		if got := len(a.Warnings) > 0 && strings.Contains(stderr, "--scope team/*"); got != tt.warn {
			t.Errorf("--scope %s: warned %v (%v, stderr %q), want %v", tt.scope, got, a.Warnings, stderr, tt.warn)
		}
	}
}

// TestUnknownRepositoryWithANarrowToken: naming the closest repositories is
// listing them; a bearer token issued for one repository, not for the
// catalog, does not learn other repositories' names that way.
func TestUnknownRepositoryWithANarrowToken(t *testing.T) {
	s := startServe(t, t.TempDir())
	env := adminEnv(t, s)
	blob := []byte("layer")
	if resp, body := s.do(t, "POST", "/v2/secret/db/blobs/uploads/?digest="+sha256Digest(blob), nil, blob); resp.StatusCode != 201 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	for _, args := range [][]string{{"principal", "create", "viewer"},
		{"role", "assign", "--principal", "viewer", "--role", "catalog", "--scope", "registry"},
		{"role", "assign", "--principal", "viewer", "--role", "pull", "--scope", "secret/*"}} {
		if code, stdout, stderr := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: %s%s", args, stdout, stderr)
		}
	}
	code, stdout, _ := runCLI(t, env, "secret", "add", "viewer", "-o", "json")
	var sec struct{ Value string }
	if code != 0 || json.Unmarshal([]byte(stdout), &sec) != nil {
		t.Fatalf("secret add: %s", stdout)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("viewer:"+sec.Value))
	token := func(scope string) string {
		resp, body := s.do(t, "GET", "/oauth2/token?service=berth&scope="+url.QueryEscape(scope), map[string]string{"Authorization": basic}, nil)
		var tok struct{ Token string }
		if resp.StatusCode != 200 || json.Unmarshal(body, &tok) != nil {
			t.Fatalf("token for %s: %d %s", scope, resp.StatusCode, body)
		}
		return tok.Token
	}
	for scope, names := range map[string]bool{"repository:secret/db:pull": false, "repository:secret/db:pull registry:catalog:*": true} {
		resp, body := s.do(t, "GET", "/v2/secrte/db/manifests/v1", map[string]string{"Authorization": "Bearer " + token(scope)}, nil)
		if got := strings.Contains(string(body), "secret/db"); got != names || resp.StatusCode < 400 {
			t.Errorf("token for %s: %d %s; names secret/db: %v, want %v", scope, resp.StatusCode, body, got, names)
		}
	}
}
