package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/berth-dev/berth"
)

// helperShim runs docker-credential-berth in process, as the credential
// helpers' client package runs a helper program.
type helperShim struct {
	ctx    context.Context
	args   []string
	in     io.Reader
	getenv func(string) string
}

func (p *helperShim) Input(in io.Reader) { p.in = in }

func (p *helperShim) Output() ([]byte, error) {
	in := p.in
	if in == nil {
		in = strings.NewReader("")
	}
	var out bytes.Buffer
	if code := RunCredentialHelper(p.ctx, p.args, in, &out, io.Discard, p.getenv); code != 0 {
		return out.Bytes(), errors.New("exit status 1")
	}
	return out.Bytes(), nil
}

func helperProgram(t *testing.T, env map[string]string) client.ProgramFunc {
	return func(args ...string) client.Program {
		return &helperShim{ctx: t.Context(), args: args, getenv: mapEnv(env)}
	}
}

// runHelper runs one helper action with stdin and returns its status and stdout.
func runHelper(t *testing.T, env map[string]string, action, stdin string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := RunCredentialHelper(t.Context(), []string{action}, strings.NewReader(stdin), &out, io.Discard, mapEnv(env))
	return code, out.String()
}

// redeem sends a refresh token to the token endpoint and returns the status
// and the decoded answer.
func redeem(t *testing.T, s *running, refresh string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "scope": {"repository:team/app:pull"}}
	resp, body := s.do(t, http.MethodPost, "/oauth2/token",
		map[string]string{"Authorization": "", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("token answer %q: %v", body, err)
	}
	return resp.StatusCode, m
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestLoginCredentialHelperEndToEnd(t *testing.T) {
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	host := strings.TrimPrefix(s.url, "http://")
	home, dockerDir := t.TempDir(), filepath.Join(t.TempDir(), "docker")
	if err := os.MkdirAll(dockerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	original := map[string]string{
		"auths":       `{"other.example.com":{"auth":"dTpw"}}`,
		"credHelpers": `{"gcr.io":"gcloud"}`,
		"credsStore":  `"desktop"`,
		"proxies":     `{"default":{"httpProxy":"http://proxy:3128","noProxy":"a<b>&c"}}`,
		"psFormat":    `"table {{.ID}}\t{{.Image}}"`,
	}
	var cfg strings.Builder
	cfg.WriteString("{")
	i := 0
	for k, v := range original {
		if i > 0 {
			cfg.WriteString(",")
		}
		i++
		cfg.WriteString(`"` + k + `":` + v)
	}
	cfg.WriteString("}")
	cfgPath := filepath.Join(dockerDir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{"HOME": home, "DOCKER_CONFIG": dockerDir, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}
	code, stdout, stderr := runCLI(t, env, "login", host)
	if code != 0 {
		t.Fatalf("berth login: exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "credHelpers") || strings.Contains(stderr, "warning") {
		t.Errorf("berth login printed %q, stderr %q", stdout, stderr)
	}

	// The login store: 0700 folder, 0600 file, a refresh token and no secret.
	store := filepath.Join(home, ".config", "berth", "logins.json")
	if m := fileMode(t, store); m != 0o600 {
		t.Errorf("logins.json has mode %o, want 600", m)
	}
	if m := fileMode(t, filepath.Dir(store)); m != 0o700 {
		t.Errorf("the berth config folder has mode %o, want 700", m)
	}
	raw, _ := os.ReadFile(store)
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatalf("logins.json holds the client secret")
	}
	logins, err := loadLogins(mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := logins[host]
	if !ok || l.RefreshToken == "" || l.URL != s.url || l.ClientID != id || l.CreatedAt.IsZero() {
		t.Fatalf("stored login for %s: %+v (all: %v)", host, l, logins)
	}
	if l.ExpiresAt == nil || l.ExpiresAt.Sub(l.CreatedAt) < 29*24*time.Hour || l.ExpiresAt.Sub(l.CreatedAt) > 31*24*time.Hour {
		t.Errorf("stored login expires at %v, want about 30 days after %v", l.ExpiresAt, l.CreatedAt)
	}

	// The docker configuration keeps every other key, and gains the helper.
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("config.json after login: %v\n%s", err, b)
	}
	for k, v := range original {
		if k == "credHelpers" {
			continue
		}
		var want, have bytes.Buffer
		_ = json.Compact(&want, []byte(v))
		_ = json.Compact(&have, got[k])
		if want.String() != have.String() {
			t.Errorf("config.json %s = %s, want %s", k, have.String(), want.String())
		}
	}
	var helpers map[string]string
	_ = json.Unmarshal(got["credHelpers"], &helpers)
	if helpers["gcr.io"] != "gcloud" || helpers[host] != "berth" || len(helpers) != 2 {
		t.Errorf("credHelpers = %v, want gcr.io kept and %s = berth", helpers, host)
	}
	if m := fileMode(t, cfgPath); m != 0o600 {
		t.Errorf("config.json has mode %o, want 600", m)
	}

	// get, byte for byte, as docker-credential-helpers' own helpers answer.
	code, out := runHelper(t, env, "get", host+"\n")
	want := `{"ServerURL":"` + host + `","Username":"\u003ctoken\u003e","Secret":"` + l.RefreshToken + `"}` + "\n"
	if code != 0 || out != want {
		t.Errorf("get: exit %d, stdout %q, want %q", code, out, want)
	}
	prog := helperProgram(t, env)
	for _, server := range []string{host, s.url, s.url + "/v2/"} {
		c, err := client.Get(prog, server)
		if err != nil || c.Username != "<token>" || c.Secret != l.RefreshToken || c.ServerURL != server {
			t.Errorf("client.Get(%q) = %+v, %v", server, c, err)
		}
	}
	if _, err := client.Get(prog, "unknown.example.com"); !credentials.IsErrCredentialsNotFound(err) {
		t.Errorf("client.Get of an unknown host: %v, want credentials not found", err)
	}
	if code, out := runHelper(t, env, "get", "unknown.example.com"); code != 1 || out != "credentials not found in native keychain\n" {
		t.Errorf("get of an unknown host: exit %d, stdout %q", code, out)
	}
	list, err := client.List(prog)
	if err != nil || len(list) != 1 || list[host] != "<token>" {
		t.Errorf("client.List = %v, %v", list, err)
	}
	if code, out := runHelper(t, env, "list", ""); code != 0 || out != `{"`+host+`":"\u003ctoken\u003e"}`+"\n" {
		t.Errorf("list: exit %d, stdout %q", code, out)
	}

	// The identity token works as docker's clients use it: redeemed for an
	// access token that /v2/ accepts.
	status, tok := redeem(t, s, l.RefreshToken)
	access, _ := tok["access_token"].(string)
	if status != http.StatusOK || access == "" {
		t.Fatalf("refresh_token grant: %d %v", status, tok)
	}
	resp, body := s.do(t, http.MethodGet, "/v2/", map[string]string{"Authorization": "Bearer " + access}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/v2/ with the refreshed access token: %d %s", resp.StatusCode, body)
	}

	// The admin CLI uses the stored login when the environment has no
	// credentials, for the latest login or BERTH_URL's host.
	for _, e := range []map[string]string{{"HOME": home}, {"HOME": home, "BERTH_URL": s.url}} {
		if code, stdout, stderr := runCLI(t, e, "principal", "list"); code != 0 || !strings.Contains(stdout, "admin") {
			t.Errorf("principal list with %v: exit %d, stdout %q, stderr %q", e, code, stdout, stderr)
		}
	}
	// Environment credentials win over the stored login.
	if code, _, stderr := runCLI(t, map[string]string{"HOME": home, "BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": "brt_wrong"},
		"principal", "list"); code != 1 || !strings.Contains(stderr, "[secret_invalid]") {
		t.Errorf("a wrong secret in the environment: exit %d, stderr %q; want it used, not the stored login", code, stderr)
	}

	// A login with a secret that is then removed: the helper's token is refused.
	adminEnv := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}
	code, stdout, stderr = runCLI(t, adminEnv, "secret", "add", "admin", "-o", "json")
	if code != 0 {
		t.Fatalf("secret add: %d %s", code, stderr)
	}
	added := decodeJSON[map[string]any](t, stdout)
	home2 := t.TempDir()
	env2 := map[string]string{"HOME": home2, "DOCKER_CONFIG": dockerDir, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": added["value"].(string)}
	if code, _, stderr := runCLI(t, env2, "login", s.url); code != 0 {
		t.Fatalf("login with the second secret: %d %s", code, stderr)
	}
	c2, err := client.Get(helperProgram(t, env2), host)
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := redeem(t, s, c2.Secret); status != http.StatusOK {
		t.Fatalf("the second login's token before the secret is removed: %d", status)
	}
	if code, _, stderr := runCLI(t, adminEnv, "secret", "remove", "admin", added["id"].(string)); code != 0 {
		t.Fatalf("secret remove: %d %s", code, stderr)
	}
	status, refused := redeem(t, s, c2.Secret)
	if status < 400 || refused["reason"] != "secret_revoked" {
		t.Errorf("the helper's token after secret remove: %d %v, want reason secret_revoked", status, refused)
	}
	if code, _, stderr := runCLI(t, map[string]string{"HOME": home2}, "principal", "list"); code != 1 || !strings.Contains(stderr, "[secret_revoked]") {
		t.Errorf("the CLI with a revoked stored login: exit %d, stderr %q", code, stderr)
	}

	// erase (docker logout), then berth logout removes the helper entry.
	if err := client.Erase(prog, host); err != nil {
		t.Errorf("client.Erase: %v", err)
	}
	if _, err := client.Get(prog, host); !credentials.IsErrCredentialsNotFound(err) {
		t.Errorf("client.Get after erase: %v", err)
	}
	if err := client.Erase(prog, host); err != nil {
		t.Errorf("a second erase: %v, want success (docker logout then removes auths)", err)
	}
	if code, _, stderr := runCLI(t, env, "logout", host); code != 0 {
		t.Errorf("logout: %d %s", code, stderr)
	}
	b, _ = os.ReadFile(cfgPath)
	got = nil
	_ = json.Unmarshal(b, &got)
	helpers = nil
	_ = json.Unmarshal(got["credHelpers"], &helpers)
	if _, ok := helpers[host]; ok || helpers["gcr.io"] != "gcloud" || string(got["credsStore"]) != `"desktop"` {
		t.Errorf("config.json after logout: %s", b)
	}
	if code, _, stderr := runCLI(t, env, "logout", host); code != 1 || !strings.Contains(stderr, "[not_found]") {
		t.Errorf("a second logout: %d %q", code, stderr)
	}

	// store: docker login HOST -u ID -p SECRET hands the helper a client
	// secret, which it exchanges for a refresh token; only that is stored.
	if err := client.Store(prog, &credentials.Credentials{ServerURL: host, Username: id, Secret: secret}); err != nil {
		t.Fatalf("client.Store: %v", err)
	}
	raw, _ = os.ReadFile(store)
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatalf("store wrote the client secret to logins.json")
	}
	c, err := client.Get(prog, host)
	if err != nil || c.Username != "<token>" {
		t.Fatalf("get after store: %+v %v", c, err)
	}
	if status, _ := redeem(t, s, c.Secret); status != http.StatusOK {
		t.Errorf("the token store obtained is refused: %d", status)
	}
	// An identity token is stored as it is.
	if err := client.Store(prog, &credentials.Credentials{ServerURL: host, Username: "<token>", Secret: c.Secret}); err != nil {
		t.Fatalf("client.Store of an identity token: %v", err)
	}
	if c2, err := client.Get(prog, host); err != nil || c2.Secret != c.Secret {
		t.Errorf("get after storing an identity token: %+v %v", c2, err)
	}
	// So is a refresh token under ACR's null client id, as scripts written
	// for ACR log in (docker login -u 00000000-… -p REFRESH_TOKEN).
	if err := client.Erase(prog, host); err != nil {
		t.Fatal(err)
	}
	if err := client.Store(prog, &credentials.Credentials{ServerURL: host, Username: berth.NullClientID, Secret: c.Secret}); err != nil {
		t.Fatalf("client.Store of a refresh token under the null client id: %v", err)
	}
	if c2, err := client.Get(prog, host); err != nil || c2.Username != "<token>" || c2.Secret != c.Secret {
		t.Errorf("get after storing a refresh token under the null client id: %+v %v", c2, err)
	}
	// A wrong secret is refused with the server's reason.
	err = client.Store(prog, &credentials.Credentials{ServerURL: host, Username: id, Secret: "brt_wrong"})
	if err == nil || !strings.Contains(err.Error(), "secret_invalid") {
		t.Errorf("store with a wrong secret: %v", err)
	}
}

func TestLoginOptions(t *testing.T) {
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	host := strings.TrimPrefix(s.url, "http://")

	// --client-id and --client-secret-stdin, with no environment credentials,
	// and a stale auths entry that the helper now overrides.
	home, dockerDir := t.TempDir(), t.TempDir()
	cfgPath := filepath.Join(dockerDir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(`{"auths":{"`+host+`":{"auth":"dTpw"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, getenv: mapEnv(map[string]string{"HOME": home, "DOCKER_CONFIG": dockerDir}), output: "text"}
	cmd := newLoginCommand(e)
	cmd.SetIn(strings.NewReader(secret + "\n"))
	cmd.SetArgs([]string{"http://" + host, "--client-id", id, "--client-secret-stdin"})
	cmd.SetOut(io.Discard)
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("login --client-secret-stdin: %v (stderr %q)", err, errOut.String())
	}
	// The stale auths entry is gone (docker logout would have erased the
	// berth login with it), and the file as it was is kept, 0600.
	if !strings.Contains(errOut.String(), "removed auths[") {
		t.Errorf("login does not say it removed the auths entry: %q", errOut.String())
	}
	if b, _ := os.ReadFile(cfgPath); strings.Contains(string(b), "dTpw") || !strings.Contains(string(b), `"credHelpers"`) {
		t.Errorf("the docker configuration after login: %s", b)
	}
	backups, _ := filepath.Glob(cfgPath + ".berth-backup-*")
	if len(backups) != 1 {
		t.Fatalf("backups of the docker configuration: %v, want one", backups)
	}
	if b, _ := os.ReadFile(backups[0]); !strings.Contains(string(b), "dTpw") || fileMode(t, backups[0]) != 0o600 {
		t.Errorf("the backup %s (mode %o) does not hold the file as it was: %s", backups[0], fileMode(t, backups[0]), b)
	}
	if l, _, ok, err := findLogin(e.getenv, host); !ok || err != nil || l.RefreshToken == "" {
		t.Errorf("no login stored: %+v %v", l, err)
	}

	// --expose-token prints a token and stores nothing.
	home2 := t.TempDir()
	env := map[string]string{"HOME": home2, "DOCKER_CONFIG": filepath.Join(home2, "docker"), "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret}
	code, stdout, stderr := runCLI(t, env, "login", host, "--expose-token")
	if code != 0 {
		t.Fatalf("--expose-token: %d %s", code, stderr)
	}
	tok := decodeJSON[map[string]string](t, stdout)
	if tok["accessToken"] == "" || tok["loginServer"] != host || tok["expiresOn"] == "" || len(tok) != 3 {
		t.Errorf("--expose-token printed %v", tok)
	}
	resp, body := s.do(t, http.MethodGet, "/v2/", map[string]string{"Authorization": "Bearer " + tok["accessToken"]}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/v2/ with the exposed token: %d %s", resp.StatusCode, body)
	}
	if _, err := os.Stat(filepath.Join(home2, ".config", "berth", "logins.json")); err == nil {
		t.Errorf("--expose-token stored a login")
	}
	if _, err := os.Stat(filepath.Join(home2, "docker", "config.json")); err == nil {
		t.Errorf("--expose-token wrote the docker configuration")
	}
	// Without credentials, from the stored login, as az acr login
	// --expose-token uses the az login.
	code, stdout, stderr = runCLI(t, map[string]string{"HOME": home, "DOCKER_CONFIG": dockerDir}, "login", host, "--expose-token", "--scope", "repository:team/app:pull")
	if tok = decodeJSON[map[string]string](t, stdout); code != 0 || tok["accessToken"] == "" || tok["loginServer"] != host {
		t.Fatalf("--expose-token from the stored login: %d %s %s", code, stdout, stderr)
	}
	if resp, body := s.do(t, http.MethodGet, "/v2/", map[string]string{"Authorization": "Bearer " + tok["accessToken"]}, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/v2/ with the token from the stored login: %d %s", resp.StatusCode, body)
	}

	// Refusals, each with its reason code.
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code string
	}{
		{"connection outside a CI job", map[string]string{"HOME": home2}, []string{"login", host, "--connection", "ci"}, "[credentials_missing]"},
		{"connection and a client id", env, []string{"login", host, "--connection", "ci", "--client-id", id}, "[invalid]"},
		{"id token file without a connection", env, []string{"login", host, "--id-token-file", "/dev/null"}, "[invalid]"},
		{"audience without a connection", env, []string{"login", host, "--audience", "x"}, "[invalid]"},
		{"plain http off loopback", env, []string{"login", "http://registry.example.com"}, "[invalid]"},
		{"no credentials, and no identity provider for a device login", map[string]string{"HOME": home2}, []string{"login", host}, "[idp_unknown]"},
		{"expose-token without credentials", map[string]string{"HOME": home2}, []string{"login", host, "--expose-token"}, "[credentials_missing]"},
		{"a client id without a secret", map[string]string{"HOME": home2}, []string{"login", host, "--client-id", id}, "[credentials_missing]"},
		{"wrong secret", map[string]string{"HOME": home2, "DOCKER_CONFIG": home2, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": "brt_wrong"}, []string{"login", host}, "[secret_invalid]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, stderr := runCLI(t, tc.env, tc.args...); code != 1 || !strings.Contains(stderr, tc.code) {
				t.Errorf("exit %d, stderr %q; want 1 and %s", code, stderr, tc.code)
			}
		})
	}
}

func TestParseServer(t *testing.T) {
	for _, tc := range []struct{ in, url, host string }{
		{"127.0.0.1:5000", "http://127.0.0.1:5000", "127.0.0.1:5000"},
		{"localhost:5000", "http://localhost:5000", "localhost:5000"},
		{"[::1]:5000", "http://[::1]:5000", "[::1]:5000"},
		{"Registry.Example.com", "https://registry.example.com", "registry.example.com"},
		{"https://registry.example.com:8443/", "https://registry.example.com:8443", "registry.example.com:8443"},
		{"https://registry.example.com/v2/", "https://registry.example.com", "registry.example.com"},
		{"http://127.0.0.2:5000", "http://127.0.0.2:5000", "127.0.0.2:5000"},
	} {
		srv, err := parseServer(tc.in)
		if err != nil || srv.url != tc.url || srv.host != tc.host {
			t.Errorf("parseServer(%q) = %+v, %v; want %s %s", tc.in, srv, err, tc.url, tc.host)
		}
		if hostKey(tc.in) != tc.host {
			t.Errorf("hostKey(%q) = %q, want %q", tc.in, hostKey(tc.in), tc.host)
		}
	}
	for _, in := range []string{"http://registry.example.com", "ftp://x", "https://u:p@x", "https://x/other", ""} {
		if _, err := parseServer(in); err == nil {
			t.Errorf("parseServer(%q) accepted", in)
		}
	}
}

func TestParseBearerChallenge(t *testing.T) {
	ch, ok := parseBearerChallenge([]string{`Basic realm="x"`, `Bearer realm="http://127.0.0.1:5000/oauth2/token",service="127.0.0.1:5000",scope="repository:a:pull"`})
	if !ok || ch.realm != "http://127.0.0.1:5000/oauth2/token" || ch.service != "127.0.0.1:5000" {
		t.Errorf("parseBearerChallenge = %+v, %v", ch, ok)
	}
	if _, ok := parseBearerChallenge([]string{`Basic realm="x"`}); ok {
		t.Errorf("a Basic challenge parsed as Bearer")
	}
}

func TestLoginStorePath(t *testing.T) {
	if p, _ := loginsPath(mapEnv(map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"})); p != "/x/berth/logins.json" {
		t.Errorf("with XDG_CONFIG_HOME: %s", p)
	}
	if p, _ := loginsPath(mapEnv(map[string]string{"HOME": "/h"})); p != "/h/.config/berth/logins.json" {
		t.Errorf("with HOME: %s", p)
	}
	if m, err := loadLogins(mapEnv(nil)); err != nil || len(m) != 0 {
		t.Errorf("loadLogins with no home: %v %v", m, err)
	}
	if err := saveLogin(mapEnv(nil), "h", storedLogin{}); err == nil {
		t.Errorf("saveLogin with no home succeeded")
	}
}

func TestCredentialHelperUsage(t *testing.T) {
	if code, out := runHelper(t, nil, "bogus", ""); code != 1 || !strings.Contains(out, "unknown action") {
		t.Errorf("unknown action: %d %q", code, out)
	}
	if code, out := runHelper(t, nil, "get", "\n"); code != 1 || out != "no credentials server URL\n" {
		t.Errorf("get without a server URL: %d %q", code, out)
	}
	if code, out := runHelper(t, nil, "version", ""); code != 0 || !strings.HasPrefix(out, "docker-credential-berth") {
		t.Errorf("version: %d %q", code, out)
	}
	// Also reachable as berth credential-helper.
	if code, stdout, _ := runCLI(t, map[string]string{"HOME": t.TempDir()}, "credential-helper", "list"); code != 0 || stdout != "{}\n" {
		t.Errorf("berth credential-helper list: %d %q", code, stdout)
	}
}
