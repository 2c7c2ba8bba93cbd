package cli

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// doctorEnv returns an environment whose login store and docker config are
// empty folders of the test, with extra on top.
func doctorEnv(t *testing.T, extra map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{
		"XDG_CONFIG_HOME": t.TempDir(),
		"DOCKER_CONFIG":   t.TempDir(),
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// runDoctor runs berth doctor -o json and returns its exit status and report.
func runDoctor(t *testing.T, env map[string]string, args ...string) (int, doctorReport) {
	t.Helper()
	code, stdout, stderr := runCLI(t, env, append([]string{"doctor", "-o", "json"}, args...)...)
	rep := decodeJSON[doctorReport](t, stdout)
	if (code == 0) != rep.OK {
		t.Errorf("exit %d with ok %v; stderr %q", code, rep.OK, stderr)
	}
	return code, rep
}

// wantDoctorChecks asserts the report's checks, in order, by name and status.
func wantDoctorChecks(t *testing.T, rep doctorReport, want ...string) {
	t.Helper()
	var got []string
	for _, c := range rep.Checks {
		got = append(got, c.Name+":"+string(c.Status))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("checks\n got %v\nwant %v\nreport: %+v", got, want, rep.Checks)
	}
}

func findDoctorCheck(t *testing.T, rep doctorReport, name string) doctorCheck {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, rep.Checks)
	return doctorCheck{}
}

// addDoctorPrincipal creates principal name with a secret and returns the secret's
// value and id.
func addDoctorPrincipal(t *testing.T, admin map[string]string, name string) (value, id string) {
	t.Helper()
	if code, _, stderr := runCLI(t, admin, "principal", "create", name); code != 0 {
		t.Fatalf("principal create %s: %s", name, stderr)
	}
	code, stdout, stderr := runCLI(t, admin, "secret", "add", name, "-o", "json")
	if code != 0 {
		t.Fatalf("secret add %s: %s", name, stderr)
	}
	s := decodeJSON[map[string]any](t, stdout)
	return s["value"].(string), s["id"].(string)
}

func TestDoctorHealthy(t *testing.T) {
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	env := doctorEnv(t, map[string]string{envURL: s.url, envClientID: id, envClientSecret: secret})

	code, rep := runDoctor(t, env, "--repository", "team/app", "--action", "push")
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "token:ok", "expiry:ok", "access:ok", "clock:ok")
	if c := findDoctorCheck(t, rep, doctorCheckChallenge); !strings.Contains(c.Message, s.url+"/oauth2/token") {
		t.Errorf("the challenge check does not show the realm: %+v", c)
	}

	// Text: one line per check, each with ✓.
	code, stdout, _ := runCLI(t, env, "doctor", s.url[len("http://"):])
	if code != 0 || strings.Count(stdout, "✓") != 7 || strings.Contains(stdout, "✗") {
		t.Errorf("text: exit %d\n%s", code, stdout)
	}
	if strings.Contains(stdout, secret) {
		t.Errorf("doctor shows the secret: %s", stdout)
	}
}

func TestDoctorRevokedSecret(t *testing.T) {
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	admin := map[string]string{envURL: s.url, envClientID: id, envClientSecret: secret}
	value, secretID := addDoctorPrincipal(t, admin, "ci")
	if code, _, stderr := runCLI(t, admin, "secret", "remove", "ci", secretID); code != 0 {
		t.Fatalf("secret remove: %s", stderr)
	}

	code, rep := runDoctor(t, doctorEnv(t, map[string]string{envURL: s.url, envClientID: "ci", envClientSecret: value}))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "token:fail", "expiry:skip", "clock:ok")
	if c := findDoctorCheck(t, rep, doctorCheckToken); c.Reason != berth.CodeSecretRevoked || c.Hint == "" {
		t.Errorf("token check %+v, want reason secret_revoked with the server's hint", c)
	}
}

func TestDoctorMissingRole(t *testing.T) {
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	admin := map[string]string{envURL: s.url, envClientID: id, envClientSecret: secret}
	value, _ := addDoctorPrincipal(t, admin, "ci")
	if code, _, stderr := runCLI(t, admin, "role", "assign", "--principal", "ci", "--role", "pull", "--scope", "team/*"); code != 0 {
		t.Fatalf("role assign: %s", stderr)
	}
	env := doctorEnv(t, map[string]string{envURL: s.url, envClientID: "ci", envClientSecret: value})

	code, rep := runDoctor(t, env, "--repository", "team/app", "--action", "push")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "token:ok", "expiry:ok", "access:fail", "clock:ok")
	c := findDoctorCheck(t, rep, doctorCheckAccess)
	if c.Reason != berth.CodeRoleMissing || !strings.HasPrefix(c.Hint, "berth role assign --principal ci --role push --scope team/app") {
		t.Errorf("access check %+v, want role_missing and the role assign hint", c)
	}

	// Pulling is allowed by the namespace role.
	if code, rep := runDoctor(t, env, "--repository", "team/app"); code != 0 || findDoctorCheck(t, rep, doctorCheckAccess).Status != doctorStatusOK {
		t.Errorf("pull: exit %d, %+v", code, rep.Checks)
	}
}

// TestDoctorStoredLogin checks a berth login used through the credential
// helper, with a docker auths entry for the same host beside it.
func TestDoctorStoredLogin(t *testing.T) {
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	u, _ := url.Parse(s.url)
	host := u.Host

	// A refresh token, as berth login obtains it.
	resp, body := s.do(t, "GET", "/oauth2/token?offline_token=true", nil, nil)
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &tok); resp.StatusCode != 200 || err != nil || tok.RefreshToken == "" {
		t.Fatalf("offline token: %s %s", resp.Status, body)
	}
	env := doctorEnv(t, nil)
	expires := time.Now().Add(60 * 24 * time.Hour).UTC()
	writeDoctorJSON(t, filepath.Join(env["XDG_CONFIG_HOME"], "berth", "logins.json"), map[string]any{
		host: map[string]any{"url": s.url, "client_id": id, "refresh_token": tok.RefreshToken, "expires_at": expires, "created_at": time.Now().UTC()},
	})
	docker := filepath.Join(env["DOCKER_CONFIG"], "config.json")
	writeDoctorJSON(t, docker, map[string]any{"credHelpers": map[string]string{host: "berth"}, "auths": map[string]any{host: map[string]string{}}})

	// The helper alone (docker login leaves an empty auths entry): healthy.
	code, rep := runDoctor(t, env, host)
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "helper:ok", "token:ok", "expiry:ok", "clock:ok")
	if c := findDoctorCheck(t, rep, doctorCheckExpiry); !strings.Contains(c.Message, expires.Format(time.RFC3339)) {
		t.Errorf("expiry does not name the refresh token's expiry %s: %+v", expires.Format(time.RFC3339), c)
	}
	// A refresh token that ends before its secret (which lasts 90 days) is
	// renewed by a new login: no warning at 20 days (a fresh login's lasts
	// 30), a warning in the last week, whose fix is berth login.
	for _, tt := range []struct {
		left   time.Duration
		status doctorStatus
	}{{20 * 24 * time.Hour, doctorStatusOK}, {5 * 24 * time.Hour, doctorStatusWarn}} {
		soon := time.Now().Add(tt.left).UTC()
		writeDoctorJSON(t, filepath.Join(env["XDG_CONFIG_HOME"], "berth", "logins.json"), map[string]any{
			host: map[string]any{"url": s.url, "client_id": id, "refresh_token": tok.RefreshToken, "expires_at": soon, "created_at": time.Now().UTC()},
		})
		code, rep = runDoctor(t, env, host)
		c := findDoctorCheck(t, rep, doctorCheckExpiry)
		if code != 0 || c.Status != tt.status || (tt.status == doctorStatusWarn && !strings.HasPrefix(c.Hint, "berth login "+host)) {
			t.Errorf("a refresh token expiring in %s, its secret in 90 days: exit %d, %+v; want %s (fix berth login)", tt.left, code, c, tt.status)
		}
	}

	writeDoctorJSON(t, filepath.Join(env["XDG_CONFIG_HOME"], "berth", "logins.json"), map[string]any{
		host: map[string]any{"url": s.url, "client_id": id, "refresh_token": tok.RefreshToken, "expires_at": expires, "created_at": time.Now().UTC()},
	})

	// With no HOST and no BERTH_URL, the only stored login is checked.
	if code, rep := runDoctor(t, env); code != 0 || !strings.Contains(findDoctorCheck(t, rep, doctorCheckHost).Message, "answers") {
		t.Errorf("no HOST: exit %d, %+v", code, rep.Checks)
	}

	// A stale auths entry holding a credential beside the helper.
	auth := base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
	writeDoctorJSON(t, docker, map[string]any{"credHelpers": map[string]string{host: "berth"}, "auths": map[string]any{host: map[string]string{"auth": auth}}})
	code, rep = runDoctor(t, env, host)
	if code != 0 {
		t.Errorf("stale auths: exit %d, want 0 (a warning)", code)
	}
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:warn", "helper:ok", "token:ok", "expiry:ok", "clock:ok")
	// Not docker logout: it would erase the berth login through the helper.
	if c := findDoctorCheck(t, rep, doctorCheckCredential); !strings.HasPrefix(c.Hint, "berth login "+host) || strings.Contains(c.Hint, "docker logout") {
		t.Errorf("credential check %+v, want berth login to remove the auths entry", c)
	}

	// The helper registered but no login stored.
	if err := os.Remove(filepath.Join(env["XDG_CONFIG_HOME"], "berth", "logins.json")); err != nil {
		t.Fatal(err)
	}
	code, rep = runDoctor(t, env, host)
	if c := findDoctorCheck(t, rep, doctorCheckCredential); code != 1 || c.Status != doctorStatusFail || c.Hint != "berth login "+host {
		t.Errorf("no login: exit %d, %+v", code, c)
	}
	if c := findDoctorCheck(t, rep, doctorCheckHelper); c.Status != doctorStatusFail || c.Hint != "berth login "+host {
		t.Errorf("no login: the helper answers get? %+v", c)
	}

	// A login whose secret expires within 30 days: the refresh token ends
	// with it, so the fix is a new secret, never a new login with this one.
	adminEnv := map[string]string{envURL: s.url, envClientID: id, envClientSecret: secret, "HOME": t.TempDir()}
	for _, args := range [][]string{{"principal", "create", "short"}, {"role", "assign", "--principal", "short", "--role", "pull", "--scope", "team/*"}} {
		if code, stdout, stderr := runCLI(t, adminEnv, args...); code != 0 {
			t.Fatalf("%v: %s%s", args, stdout, stderr)
		}
	}
	code, stdout, _ := runCLI(t, adminEnv, "secret", "add", "short", "--expires-in", "20d", "-o", "json")
	var short struct{ Value string }
	if code != 0 || json.Unmarshal([]byte(stdout), &short) != nil {
		t.Fatalf("secret add short: %s", stdout)
	}
	// loginAs stores what berth login would for short with secret.
	loginAs := func(secret string) {
		t.Helper()
		resp, body := s.do(t, "GET", "/oauth2/token?offline_token=true", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("short:"+secret))}, nil)
		var tok struct {
			RefreshToken          string `json:"refresh_token"`
			RefreshTokenExpiresIn int    `json:"refresh_token_expires_in"`
		}
		if err := json.Unmarshal(body, &tok); resp.StatusCode != 200 || err != nil {
			t.Fatalf("offline token of short: %s %s", resp.Status, body)
		}
		writeDoctorJSON(t, filepath.Join(env["XDG_CONFIG_HOME"], "berth", "logins.json"), map[string]any{
			host: map[string]any{"url": s.url, "client_id": "short", "refresh_token": tok.RefreshToken,
				"expires_at": time.Now().Add(time.Duration(tok.RefreshTokenExpiresIn) * time.Second).UTC(), "created_at": time.Now().UTC()},
		})
	}
	loginAs(short.Value)
	code, rep = runDoctor(t, env, host)
	if c := findDoctorCheck(t, rep, doctorCheckExpiry); c.Status != doctorStatusWarn || !strings.HasPrefix(c.Hint, "berth secret add short --expires-in 90d") {
		t.Errorf("a login whose secret expires in 20 days: exit %d, %+v; want the fix berth secret add short", code, c)
	}

	// The same, with the secret of a service connection: the connection
	// renews it.
	code, stdout, _ = runCLI(t, adminEnv, "connection", "create", "legacy", "--principal", "short", "--auth", "secret", "--expires-in", "20d", "-o", "json")
	var conn struct {
		NewSecret struct{ Value string } `json:"new_secret"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &conn) != nil || conn.NewSecret.Value == "" {
		t.Fatalf("connection create legacy: %s", stdout)
	}
	loginAs(conn.NewSecret.Value)
	code, rep = runDoctor(t, env, host)
	if c := findDoctorCheck(t, rep, doctorCheckExpiry); c.Status != doctorStatusWarn || !strings.HasPrefix(c.Hint, "berth connection save legacy") {
		t.Errorf("a login with a connection's secret expiring in 20 days: exit %d, %+v; want the fix berth connection save legacy", code, c)
	}

	// The helper registered but not on PATH: every client would fail to run
	// it, whatever the login store holds.
	env["PATH"] = t.TempDir()
	code, rep = runDoctor(t, env, host)
	if c := findDoctorCheck(t, rep, doctorCheckHelper); code != 1 || c.Status != doctorStatusFail || !strings.Contains(c.Hint, "docker-credential-berth") {
		t.Errorf("helper not on PATH: exit %d, %+v", code, c)
	}
}

// TestDoctorDockerAuths checks a credential docker login stored in auths,
// with no berth login and no environment.
func TestDoctorDockerAuths(t *testing.T) {
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	u, _ := url.Parse(s.url)
	env := doctorEnv(t, nil)
	auth := base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
	writeDoctorJSON(t, filepath.Join(env["DOCKER_CONFIG"], "config.json"), map[string]any{"auths": map[string]any{"http://" + u.Host: map[string]string{"auth": auth}}})

	code, rep := runDoctor(t, env, u.Host, "--repository", "team/app")
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "token:ok", "expiry:ok", "access:ok", "clock:ok")
}

func TestDoctorUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	code, rep := runDoctor(t, doctorEnv(t, nil), "http://"+addr, "--repository", "team/app")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantDoctorChecks(t, rep, "host:fail", "tls:skip", "challenge:skip", "credential:skip", "token:skip", "expiry:skip", "access:skip", "clock:skip")

	// A certificate this machine does not trust.
	hs := httptest.NewTLSServer(http.NotFoundHandler())
	defer hs.Close()
	code, rep = runDoctor(t, doctorEnv(t, nil), hs.URL)
	if code != 1 {
		t.Errorf("untrusted certificate: exit %d, want 1", code)
	}
	wantDoctorChecks(t, rep, "host:ok", "tls:fail", "challenge:skip", "credential:skip", "token:skip", "expiry:skip", "clock:skip")

	// Nothing to check at all.
	code, rep = runDoctor(t, doctorEnv(t, nil))
	if code != 1 || findDoctorCheck(t, rep, doctorCheckHost).Status != doctorStatusFail {
		t.Errorf("no host: exit %d, %+v", code, rep.Checks)
	}
	// The skipped checks say why: there is no host, not one that is silent.
	if c := findDoctorCheck(t, rep, doctorCheckTLS); c.Status != doctorStatusSkip || !strings.Contains(c.Message, "no registry to check") {
		t.Errorf("no host: the TLS check says %q", c.Message)
	}
}

func TestDoctorFlags(t *testing.T) {
	for _, args := range [][]string{
		{"doctor", "--action", "push"},
		{"doctor", "--repository", "team/app", "--action", "write"},
		{"doctor", "--repository", "Team/App"},
		{"doctor", "a", "b"},
	} {
		if code, _, stderr := runCLI(t, doctorEnv(t, nil), args...); code != 1 || !strings.Contains(stderr, "[invalid]") && !strings.Contains(stderr, "[name_invalid]") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

func TestDoctorTarget(t *testing.T) {
	for _, tc := range []struct {
		arg, envURL, want string
	}{
		{"registry.example.com", "", "https://registry.example.com"},
		{"127.0.0.1:5000", "", "http://127.0.0.1:5000"},
		{"localhost:5000", "", "http://localhost:5000"},
		{"10.0.0.1:5000", "http://10.0.0.1:5000", "http://10.0.0.1:5000"},
		{"", "https://r.example.com/", "https://r.example.com"},
		{"http://r.example.com:8080/", "", "http://r.example.com:8080"},
	} {
		d := &doctor{e: &env{getenv: mapEnv(map[string]string{envURL: tc.envURL})}, arg: tc.arg, logins: map[string]storedLogin{}}
		u, err := d.target()
		if err != nil || u.String() != tc.want {
			t.Errorf("target(%q, BERTH_URL=%q) = %v, %v; want %s", tc.arg, tc.envURL, u, err, tc.want)
		}
	}
}

func TestDoctorTLS(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want doctorStatus
	}{
		{"http://127.0.0.1:5000", doctorStatusOK},
		{"http://localhost:5000", doctorStatusOK},
		{"http://[::1]:5000", doctorStatusOK},
		{"http://10.0.0.1:5000", doctorStatusFail},
		{"http://registry.example.com", doctorStatusFail},
	} {
		u, _ := url.Parse(tc.url)
		d := &doctor{now: time.Now, base: u, v2: &http.Response{}}
		d.checkTLS()
		if len(d.checks) != 1 || d.checks[0].Status != tc.want || (tc.want == doctorStatusFail) != (d.checks[0].Hint != "") {
			t.Errorf("%s: %+v, want %s", tc.url, d.checks, tc.want)
		}
	}
}

func TestDoctorCredentialHalfEnvironment(t *testing.T) {
	for _, vars := range []map[string]string{{envClientID: "ci"}, {envClientSecret: "brt_x"}} {
		d := &doctor{e: &env{getenv: mapEnv(vars)}, hostKey: "127.0.0.1:5000", logins: map[string]storedLogin{}}
		d.checkCredential()
		if len(d.checks) != 1 || d.checks[0].Status != doctorStatusFail || d.checks[0].Hint == "" {
			t.Errorf("%v: %+v", vars, d.checks)
		}
	}
}

func TestDoctorClockCheck(t *testing.T) {
	local := time.Date(2026, 11, 25, 12, 0, 0, 400e6, time.UTC)
	for _, tc := range []struct {
		skew time.Duration
		want doctorStatus
	}{
		{0, doctorStatusOK},
		{-time.Second, doctorStatusOK},
		{30 * time.Second, doctorStatusOK},
		{31 * time.Second, doctorStatusWarn},
		{-4 * time.Minute, doctorStatusWarn},
		{5*time.Minute + time.Second, doctorStatusFail},
		{-time.Hour, doctorStatusFail},
	} {
		server := local.Truncate(time.Second).Add(tc.skew)
		c := doctorClockCheck(server, local)
		if c.Status != tc.want || (c.Status != doctorStatusOK) != (c.Hint != "") {
			t.Errorf("skew %s: %+v, want %s", tc.skew, c, tc.want)
		}
	}
}

func writeDoctorJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDoctorExpiredSecret moves the server's clock past a secret's expiry:
// the token check fails with secret_expired and the server's fixing hint.
func TestDoctorExpiredSecret(t *testing.T) {
	offset := moveServeClock(t)
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	admin := map[string]string{envURL: s.url, envClientID: id, envClientSecret: secret}
	value, _ := addDoctorPrincipal(t, admin, "ci")
	offset.Store(int64(400 * 24 * time.Hour)) // past the longest secret lifetime

	code, rep := runDoctor(t, doctorEnv(t, map[string]string{envURL: s.url, envClientID: "ci", envClientSecret: value}))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	c := findDoctorCheck(t, rep, doctorCheckToken)
	if c.Status != "fail" || c.Reason != berth.CodeSecretExpired || !strings.Contains(c.Hint, "berth secret add ci") {
		t.Errorf("token check %+v, want a failure with reason secret_expired and the berth secret add hint", c)
	}
}
