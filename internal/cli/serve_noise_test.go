package cli

import (
	"encoding/json"
	"net/url"
	"testing"
)

// TestAuditNoise: the anonymous GET /v2/ every client sends before it logs
// in is a challenge, not a denial, so berth audit --result denied shows real
// refusals only; and a refused password grant (oras sends client_id=oras-go
// with username and password) is recorded as the principal it named.
func TestAuditNoise(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	env := adminEnv(t, s)
	if code, stdout, stderr := runCLI(t, env, "principal", "create", "dev"); code != 0 {
		t.Fatalf("principal create: %s%s", stdout, stderr)
	}
	if resp, _ := s.do(t, "GET", "/v2/", map[string]string{"Authorization": ""}, nil); resp.StatusCode != 401 {
		t.Fatalf("anonymous /v2/: %d", resp.StatusCode)
	}
	form := url.Values{"grant_type": {"password"}, "client_id": {"oras-go"}, "username": {"dev"}, "password": {"brt_wrong"},
		"service": {"berth"}, "scope": {"repository:team/app:pull"}}
	if resp, body := s.do(t, "POST", "/oauth2/token", map[string]string{"Authorization": "", "Content-Type": "application/x-www-form-urlencoded", "User-Agent": "oras-go"},
		[]byte(form.Encode())); resp.StatusCode == 200 {
		t.Fatalf("a wrong password was accepted: %s", body)
	}
	if code := s.stop(t); code != 0 { // flushes the audit log
		t.Fatalf("serve exited %d", code)
	}
	audit := func(args ...string) []map[string]any {
		t.Helper()
		code, stdout, stderr := runCLI(t, nil, append([]string{"audit", "--data", dir, "-o", "json"}, args...)...)
		var events []map[string]any
		if code != 0 || json.Unmarshal([]byte(stdout), &events) != nil {
			t.Fatalf("audit %v: %d %s%s", args, code, stdout, stderr)
		}
		return events
	}
	pings := audit("--action", "registry.version")
	if len(pings) != 1 || pings[0]["result"] != "challenged" || pings[0]["reason"] != "credentials_missing" {
		t.Errorf("the anonymous ping: %+v, want one challenged event", pings)
	}
	for _, e := range audit("--result", "denied") {
		if e["action"] == "registry.version" {
			t.Errorf("the anonymous ping is listed as a denial: %+v", e)
		}
	}
	if got := audit("--result", "challenged"); len(got) != 1 {
		t.Errorf("--result challenged: %+v", got)
	}
	dev := audit("--principal", "dev", "--action", "auth.token")
	if len(dev) != 1 || dev[0]["result"] != "denied" || dev[0]["actor"] != "dev" {
		t.Errorf("oras's refused password grant by dev: %+v, want one denied auth.token with actor dev", dev)
	}
}
