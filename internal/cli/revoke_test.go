package cli

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// loginAsAdmin runs berth login against s as its first admin, in a fresh
// home and docker configuration, and returns the environment and the stored
// refresh token.
func loginAsAdmin(t *testing.T, s *running) (map[string]string, string) {
	t.Helper()
	id, secret := s.admin(t)
	host := strings.TrimPrefix(s.url, "http://")
	env := map[string]string{"HOME": t.TempDir(), "DOCKER_CONFIG": t.TempDir(), envClientID: id, envClientSecret: secret}
	if code, stdout, stderr := runCLI(t, env, "login", host); code != 0 {
		t.Fatalf("berth login: exit %d\n%s%s", code, stdout, stderr)
	}
	l, _, ok, err := findLogin(mapEnv(env), host)
	if err != nil || !ok || l.RefreshToken == "" {
		t.Fatalf("no login stored: %v", err)
	}
	delete(env, envClientID)
	delete(env, envClientSecret)
	return env, l.RefreshToken
}

// TestLogoutRevokesTheRefreshToken: berth logout and the credential helper's
// erase (what docker logout and crane auth logout call) end the login on the
// server too, through RFC 7009 revocation.
func TestLogoutRevokesTheRefreshToken(t *testing.T) {
	s := startServe(t, t.TempDir())
	host := strings.TrimPrefix(s.url, "http://")

	env, refresh := loginAsAdmin(t, s)
	if status, _ := redeem(t, s, refresh); status != http.StatusOK {
		t.Fatalf("the fresh login's refresh token is refused: %d", status)
	}
	code, stdout, stderr := runCLI(t, env, "logout", host, "-o", "json")
	var out struct {
		Revoked bool `json:"refresh_token_revoked"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil || !out.Revoked {
		t.Fatalf("berth logout: exit %d\n%s%s", code, stdout, stderr)
	}
	if status, body := redeem(t, s, refresh); status != http.StatusBadRequest || body["reason"] != "refresh_token_invalid" {
		t.Errorf("after berth logout the refresh token still redeems: %d %v", status, body)
	}

	env, refresh = loginAsAdmin(t, s)
	if code, out := runHelper(t, env, "erase", s.url); code != 0 {
		t.Fatalf("docker-credential-berth erase: %d %s", code, out)
	}
	if status, body := redeem(t, s, refresh); status != http.StatusBadRequest || body["reason"] != "refresh_token_invalid" {
		t.Errorf("after the helper's erase the refresh token still redeems: %d %v", status, body)
	}
}

// TestRevocationEndpoint checks RFC 7009 as a client sees it: announced in
// the discovery document; 200 for a token revoked, unknown or malformed
// (section 2.2); unsupported_token_type for an access token (2.2.1); and a
// client that authenticates revokes only its own tokens.
func TestRevocationEndpoint(t *testing.T) {
	s := startServe(t, t.TempDir())
	resp, body := s.do(t, "GET", "/.well-known/openid-configuration", map[string]string{"Authorization": ""}, nil)
	var doc struct {
		Revocation string `json:"revocation_endpoint"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &doc) != nil || doc.Revocation != s.url+"/oauth2/revoke" {
		t.Fatalf("the discovery document names no revocation endpoint: %s", body)
	}
	revoke := func(hdr map[string]string, form url.Values) (int, map[string]any) {
		t.Helper()
		if hdr == nil {
			hdr = map[string]string{"Authorization": ""}
		}
		hdr["Content-Type"] = "application/x-www-form-urlencoded"
		resp, body := s.do(t, "POST", "/oauth2/revoke", hdr, []byte(form.Encode()))
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		return resp.StatusCode, m
	}
	for _, tok := range []string{"not-a-token", "brr_" + strings.Repeat("A", 40)} {
		if status, m := revoke(nil, url.Values{"token": {tok}}); status != 200 {
			t.Errorf("revoking an unknown token %q: %d %v, want 200", tok, status, m)
		}
	}
	if status, m := revoke(nil, url.Values{}); status != 400 || m["error"] != "invalid_request" {
		t.Errorf("no token: %d %v", status, m)
	}
	resp, body = s.do(t, "GET", "/oauth2/token?service=berth", nil, nil)
	var tr struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(body, &tr) != nil || tr.Token == "" {
		t.Fatalf("token: %s", body)
	}
	if status, m := revoke(nil, url.Values{"token": {tr.Token}}); status != 400 || m["error"] != "unsupported_token_type" {
		t.Errorf("an access token: %d %v, want 400 unsupported_token_type", status, m)
	}

	// Another principal's client credentials revoke nothing.
	_, refresh := loginAsAdmin(t, s)
	env := adminEnv(t, s)
	for _, args := range [][]string{{"principal", "create", "other"}} {
		if code, stdout, stderr := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: %s%s", args, stdout, stderr)
		}
	}
	code, stdout, _ := runCLI(t, env, "secret", "add", "other", "-o", "json")
	var sec struct{ Value string }
	if code != 0 || json.Unmarshal([]byte(stdout), &sec) != nil {
		t.Fatalf("secret add: %s", stdout)
	}
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth("other", sec.Value)
	if status, m := revoke(map[string]string{"Authorization": req.Header.Get("Authorization")}, url.Values{"token": {refresh}}); status != 200 {
		t.Fatalf("revoking another's token: %d %v", status, m)
	}
	if status, _ := redeem(t, s, refresh); status != 200 {
		t.Errorf("a client revoked another principal's refresh token")
	}
	if status, _ := revoke(nil, url.Values{"token": {refresh}}); status != 200 {
		t.Fatal("revoke as the holder")
	}
	if status, body := redeem(t, s, refresh); status != 400 || body["reason"] != "refresh_token_invalid" {
		t.Errorf("the revoked refresh token still redeems: %d %v", status, body)
	}
}
