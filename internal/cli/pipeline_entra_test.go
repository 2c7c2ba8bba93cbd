package cli

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/apitest"
)

func TestPipelineCreateEntra(t *testing.T) {
	s := apitest.New(t)
	env := s.AdminEnv()
	const tenant, app = "72f988bf-86f1-41af-91ab-2d7cd011db47", "5d3ca3b8-0a8a-4d5c-9b8e-3b0f4e2d1c7a"
	code, stdout, stderr := runCLI(t, env, "pipeline", "create", "acr-push", "--entra", tenant+"/"+app, "--audience", "api://berth-registry", "-o", "json")
	if code != 0 {
		t.Fatalf("create --entra: exit %d, %s", code, stderr)
	}
	p := decodeJSON[map[string]any](t, stdout)
	claims, _ := p["claims"].(map[string]any)
	if p["issuer"] != "https://login.microsoftonline.com/"+tenant+"/v2.0" || p["subject"] != "*" || p["preset"] != "entra" ||
		p["audience"] != "api://berth-registry" || claims["tid"] != tenant || claims["oid|appid|azp|sub"] != app {
		t.Errorf("entra preset: %v", p)
	}
	code, stdout, _ = runCLI(t, env, "pipeline", "create", "acr-v1", "--entra", tenant+"/"+app, "--issuer", "https://sts.windows.net/"+tenant+"/")
	if code != 0 || !strings.Contains(stdout, "issuer:    https://sts.windows.net/"+tenant+"/") || !strings.Contains(stdout, "claim:     oid|appid|azp|sub="+app) {
		t.Errorf("--entra with --issuer: exit %d:\n%s", code, stdout)
	}
	for _, args := range [][]string{
		{"pipeline", "create", "x", "--entra", tenant},
		{"pipeline", "create", "x", "--entra", tenant + "/" + app, "--github", "o/r"},
		{"pipeline", "create", "x", "--entra", tenant + "/" + app, "--claim", "tid=other"},
	} {
		if code, _, stderr := runCLI(t, env, args...); code == 0 || !strings.Contains(stderr, "[invalid]") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
