package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/oidctest"
)

// deviceCLI is `berth login HOST` running in its own goroutine, polling
// only when the test lets it (deviceWait replaced).
type deviceCLI struct {
	t       *testing.T
	stderr  *lockedBuffer
	stdout  *lockedBuffer
	waits   chan time.Duration // the interval of each wait, as the CLI starts it
	proceed chan struct{}
	done    chan int
}

func startDeviceLogin(t *testing.T, env map[string]string, args ...string) *deviceCLI {
	t.Helper()
	d := &deviceCLI{t: t, stderr: &lockedBuffer{}, stdout: &lockedBuffer{}, waits: make(chan time.Duration, 1), proceed: make(chan struct{}), done: make(chan int, 1)}
	orig := deviceWait
	t.Cleanup(func() { deviceWait = orig })
	deviceWait = func(ctx context.Context, interval time.Duration) error {
		d.waits <- interval
		select {
		case <-d.proceed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	go func() {
		d.done <- Run(context.Background(), append([]string{"login"}, args...), d.stdout, d.stderr, mapEnv(env))
	}()
	return d
}

// wait returns the interval of the CLI's next wait before a poll.
func (d *deviceCLI) wait() time.Duration {
	d.t.Helper()
	select {
	case w := <-d.waits:
		return w
	case code := <-d.done:
		d.t.Fatalf("berth login exited %d before polling: %s", code, d.stderr.String())
	case <-time.After(10 * time.Second):
		d.t.Fatalf("berth login did not poll within 10 s: %s", d.stderr.String())
	}
	return 0
}

// poll lets the CLI poll once.
func (d *deviceCLI) poll() { d.proceed <- struct{}{} }

func (d *deviceCLI) exit() int {
	d.t.Helper()
	select {
	case code := <-d.done:
		return code
	case <-time.After(10 * time.Second):
		d.t.Fatalf("berth login did not finish within 10 s: %s", d.stderr.String())
	}
	return 0
}

var completeURI = regexp.MustCompile(`or open (http://\S+)`)

// approve follows the verification_uri_complete the CLI printed in b's
// browser: the person signs in on the way, and presses decision.
func approve(t *testing.T, b *browser, stderr, decision string) {
	t.Helper()
	m := completeURI.FindStringSubmatch(stderr)
	if m == nil || !strings.Contains(m[1], "user_code=") {
		t.Fatalf("the CLI printed no verification_uri_complete with the user code: %s", stderr)
	}
	resp, page := b.get(m[1])
	if link := regexp.MustCompile(`href="(/login/corp[^"]*)"`).FindStringSubmatch(page); link != nil {
		// Not signed in yet: /device sent the browser to /login, which
		// comes back to /device after the sign-in.
		u, _ := url.Parse(m[1])
		resp, page = b.get(u.Scheme + "://" + u.Host + html.UnescapeString(link[1]))
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "berth-cli") || !strings.Contains(page, `<form method="post" action="/device">`) {
		t.Fatalf("approval page: %s\n%s", resp.Status, page)
	}
	code := regexp.MustCompile(`name="user_code" value="([A-Z-]+)"`).FindStringSubmatch(page)
	if code == nil || !strings.Contains(m[1], code[1]) {
		t.Fatalf("the approval page does not show the code of %s:\n%s", m[1], page)
	}
	u, _ := url.Parse(m[1])
	resp, page = b.post(u.Scheme+"://"+u.Host+"/device", url.Values{"csrf": {csrfOf(t, page)}, "user_code": {code[1]}, "decision": {decision}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s\n%s", decision, resp.Status, page)
	}
}

// grants reports whether the access token's access claim holds action on
// the repository.
func grants(t *testing.T, token, repo, action string) bool {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Access []berth.ResourceActions `json:"access"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	for _, ra := range c.Access {
		if ra.Type == "repository" && ra.Name == repo && slices.Contains(ra.Actions, action) {
			return true
		}
	}
	return false
}

func TestDeviceLogin(t *testing.T) {
	offset := moveServeClock(t)
	s, company := peopleServer(t)
	company.Now = serveNow
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:devs", "role": "push", "scope": "team/*"}, http.StatusCreated)
	host := strings.TrimPrefix(s.url, "http://")
	home := t.TempDir()
	env := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, "config"), "DOCKER_CONFIG": filepath.Join(home, "docker")}

	// The discovery document names the device authorization endpoint.
	_, disco := s.do(t, http.MethodGet, "/.well-known/openid-configuration", map[string]string{"Authorization": ""}, nil)
	if !strings.Contains(string(disco), `"device_authorization_endpoint":"`+s.url+`/oauth2/device_authorization"`) ||
		!strings.Contains(string(disco), "urn:ietf:params:oauth:grant-type:device_code") {
		t.Fatalf("discovery: %s", disco)
	}

	cli := startDeviceLogin(t, env, host)
	if w := cli.wait(); w != 5*time.Second {
		t.Fatalf("first interval %s, want the server's 5 s", w)
	}
	// Polled before the approval: authorization_pending, the interval kept.
	cli.poll()
	if w := cli.wait(); w != 5*time.Second {
		t.Fatalf("interval after authorization_pending: %s", w)
	}
	// Polled again at once, sooner than the interval: slow_down, 5 s more.
	cli.poll()
	if w := cli.wait(); w != 10*time.Second {
		t.Fatalf("interval after slow_down: %s, want 10 s", w)
	}

	// Tampering with the approval form: a person signed in, with a forged
	// csrf field, is refused, and the login stays pending.
	ada := newBrowser(t)
	ada.get(s.url + "/login/corp?next=/")
	m := completeURI.FindStringSubmatch(cli.stdout.String())
	u, _ := url.Parse(m[1])
	resp, page := ada.post(u.Scheme+"://"+u.Host+"/device", url.Values{"csrf": {strings.Repeat("a", 32)}, "user_code": {u.Query().Get("user_code")}, "decision": {"approve"}})
	wantReason(t, "an approval with a forged csrf field", resp, page, http.StatusForbidden, berth.CodeSignInStateInvalid)
	approve(t, ada, cli.stdout.String(), "approve")
	offset.Add(int64(11 * time.Second))
	cli.poll()
	if code := cli.exit(); code != 0 {
		t.Fatalf("berth login: exit %d\n%s", code, cli.stderr.String())
	}
	if out := cli.stdout.String(); !strings.Contains(out, "Logged in to "+s.url+" as ada.lovelace") {
		t.Fatalf("login output: %s", out)
	}

	// The stored login is the person's: its refresh token gets push on
	// team/app through the group, and ends with the session.
	b, err := os.ReadFile(filepath.Join(home, "config", "berth", "logins.json"))
	if err != nil {
		t.Fatal(err)
	}
	var logins map[string]storedLogin
	if err := json.Unmarshal(b, &logins); err != nil {
		t.Fatalf("logins.json: %v\n%s", err, b)
	}
	l, ok := logins[host]
	if !ok || !strings.HasPrefix(l.RefreshToken, "brr_") || l.ExpiresAt == nil || l.ExpiresAt.Sub(time.Now()) > 12*time.Hour+time.Minute || !l.ExpiresAt.After(serveNow()) {
		t.Fatalf("stored login: %+v", l)
	}
	cfg, _ := os.ReadFile(filepath.Join(home, "docker", "config.json"))
	if !strings.Contains(string(cfg), `"credHelpers"`) || !strings.Contains(string(cfg), `"`+host+`": "berth"`) {
		t.Fatalf("docker configuration: %s", cfg)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	tok, err := refreshAccessToken(t.Context(), hc, l, []string{"repository:team/app:pull,push"})
	if err != nil || !grants(t, tok.access(), "team/app", "push") {
		t.Fatalf("push through the person's login: %+v %v", tok, err)
	}
	if claims := readAccessClaims(tok.access()); claims.Name != "ada.lovelace" || !strings.HasPrefix(claims.CredentialID, berth.SessionCredentialPrefix) {
		t.Fatalf("access token claims: %+v", claims)
	}

	// An hour on, many requests at once: the provider's refresh token is
	// used once (the test provider rotates them, as Okta and Entra ID do),
	// and no request reads the others' refresh as the person refused.
	offset.Add(int64(61 * time.Minute))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := refreshAccessToken(t.Context(), hc, l, []string{"repository:team/app:pull"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent refreshes when the provider's refresh is due: %v", err)
		}
	}

	// Removed from the group upstream: within the hour the refresh re-reads
	// the groups, and push is gone, without a berth command.
	company.SetPerson(oidctest.Person{Subject: "00u-ada", Username: "ada", Groups: []string{"others"}})
	offset.Add(int64(61 * time.Minute))
	tok, err = refreshAccessToken(t.Context(), hc, l, []string{"repository:team/app:pull,push"})
	switch {
	case err == nil && grants(t, tok.access(), "team/app", "push"):
		t.Fatalf("push after the person left the group upstream: %+v", tok)
	case err != nil && !berth.IsCode(err, berth.CodeRoleMissing):
		t.Fatalf("refresh after the person left the group upstream: %v", err)
	}
	check := s.apiJSON(t, http.MethodGet, "/api/v1/access/check?principal=ada.lovelace&action=push&repository=team/app", nil, http.StatusOK)
	if groups, _ := check["granting_groups"].([]any); check["allowed"] != false || check["reason"] != "role_missing" || len(groups) != 1 || groups[0] != "corp:devs" {
		t.Fatalf("access check after leaving the group: %v", check)
	}
	// Refused upstream: the session ends.
	company.RefuseRefresh(true)
	offset.Add(int64(61 * time.Minute))
	_, err = refreshAccessToken(t.Context(), hc, l, nil)
	if !berth.IsCode(err, berth.CodeSessionEnded) {
		t.Fatalf("refresh after the provider refused the person: %v", err)
	}
}

func TestDeviceLoginDeniedAndExpired(t *testing.T) {
	offset := moveServeClock(t)
	s, company := peopleServer(t)
	company.Now = serveNow
	host := strings.TrimPrefix(s.url, "http://")
	home := t.TempDir()
	env := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, "config"), "DOCKER_CONFIG": filepath.Join(home, "docker")}

	cli := startDeviceLogin(t, env, host, "--device")
	cli.wait()
	approve(t, newBrowser(t), cli.stdout.String(), "deny")
	cli.poll()
	if code := cli.exit(); code != 1 || !strings.Contains(cli.stderr.String(), "[device_code_denied]") {
		t.Fatalf("denied login: exit %d\n%s", code, cli.stderr.String())
	}

	cli = startDeviceLogin(t, env, host)
	cli.wait()
	offset.Add(int64(11 * time.Minute))
	cli.poll()
	if code := cli.exit(); code != 1 || !strings.Contains(cli.stderr.String(), "[device_code_expired]") {
		t.Fatalf("expired login: exit %d\n%s", code, cli.stderr.String())
	}
	// An expired code can no longer be approved either.
	b := newBrowser(t)
	m := completeURI.FindStringSubmatch(cli.stdout.String())
	b.get(s.url + "/login/corp")
	resp, page := b.get(m[1])
	wantReason(t, "approving an expired code", resp, page, http.StatusBadRequest, berth.CodeDeviceCodeExpired)
}

// loginPerson runs berth login HOST by device code to the end, approving in
// a fresh browser, and returns the environment the CLI then works in.
func loginPerson(t *testing.T, s *running) map[string]string {
	t.Helper()
	home := t.TempDir()
	env := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, "config"), "DOCKER_CONFIG": filepath.Join(home, "docker")}
	cli := startDeviceLogin(t, env, strings.TrimPrefix(s.url, "http://"))
	cli.wait()
	approve(t, newBrowser(t), cli.stdout.String(), "approve")
	cli.poll()
	if code := cli.exit(); code != 0 {
		t.Fatalf("berth login: exit %d\n%s", code, cli.stderr.String())
	}
	return env
}

func TestPersonalAccessTokens(t *testing.T) {
	s, _ := peopleServer(t)
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:devs", "role": "push", "scope": "team/*"}, http.StatusCreated)
	env := loginPerson(t, s)

	// The person's stored login makes the token; its value is shown once.
	code, out, stderr := runCLI(t, env, "token", "create", "--scope", "repository:team/app:pull", "--expires-in", "7d", "--description", "laptop", "-o", "json")
	var tok struct {
		ID, Value, Hint string
		Expires         time.Time `json:"expires_at"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || !berth.IsPATValue(tok.Value) || tok.ID == "" {
		t.Fatalf("token create: %d %s %s", code, out, stderr)
	}
	if d := time.Until(tok.Expires); d < 6*24*time.Hour || d > 7*24*time.Hour+time.Minute {
		t.Fatalf("expires %s", tok.Expires)
	}
	if code, out, _ = runCLI(t, env, "token", "list"); code != 0 || !strings.Contains(out, tok.Hint) || strings.Contains(out, tok.Value) {
		t.Fatalf("token list: %s", out)
	}
	// Never more than the person holds; never longer than the cap.
	if code, _, stderr = runCLI(t, env, "token", "create", "--scope", "repository:other/app:pull"); code != 1 || !strings.Contains(stderr, "[role_missing]") {
		t.Fatalf("a scope the person does not hold: %d %s", code, stderr)
	}
	if code, _, stderr = runCLI(t, env, "token", "create", "--scope", "repository:team/app:pull", "--expires-in", "400d"); code != 1 || !strings.Contains(stderr, "[invalid]") {
		t.Fatalf("past auth.max_token_lifetime: %d %s", code, stderr)
	}
	// A service principal has client secrets, not personal tokens.
	if resp, b := s.do(t, http.MethodPost, "/api/v1/tokens", map[string]string{"Content-Type": "application/json"}, []byte(`{"scopes":["repository:team/app:pull"]}`)); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"invalid"`) {
		t.Fatalf("admin creating a personal token: %s %s", resp.Status, b)
	}

	// As a password: pull is granted, push is not, though the person may push.
	basic := func(method, path string) (*http.Response, string) {
		req, _ := http.NewRequest(method, s.url+path, nil)
		req.SetBasicAuth("ada.lovelace", tok.Value)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := basic(http.MethodGet, "/oauth2/token?service=berth&scope=repository:team/app:pull,push")
	var answer struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &answer) != nil {
		t.Fatalf("token endpoint with the token as password: %s %s", resp.Status, body)
	}
	if !grants(t, answer.Token, "team/app", "pull") || grants(t, answer.Token, "team/app", "push") {
		t.Fatalf("the access token grants more or less than the personal token's scope: %s", body)
	}
	if resp, body = basic(http.MethodGet, "/v2/team/app/tags/list"); resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		t.Fatalf("pull with Basic and the token: %s %s", resp.Status, body)
	}
	// The catalog with an access token from it: the personal token was not
	// created for it, so no token request can carry it, and the refusal
	// names the token to create (it told the client to request a token).
	catalog, _ := http.NewRequest(http.MethodGet, s.url+"/v2/_catalog", nil)
	catalog.Header.Set("Authorization", "Bearer "+answer.Token)
	if r, err := s.client.Do(catalog); err != nil {
		t.Fatal(err)
	} else {
		var e struct {
			Errors []struct {
				Detail struct {
					Reason berth.Code `json:"reason"`
					Hint   string     `json:"hint"`
				} `json:"detail"`
			} `json:"errors"`
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if json.Unmarshal(b, &e) != nil || len(e.Errors) != 1 || e.Errors[0].Detail.Reason != berth.CodeScopeNotGranted ||
			!strings.Contains(e.Errors[0].Detail.Hint, "berth token create --scope registry:catalog:*") {
			t.Fatalf("catalog with a token from a personal token lacking it: %s %s", r.Status, b)
		}
	}
	if resp, body = basic(http.MethodPost, "/v2/team/app/blobs/uploads/"); (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) || !strings.Contains(body, `"reason":"scope_not_granted"`) {
		t.Fatalf("push with a pull-only token: %s %s", resp.Status, body)
	}
	// A personal token cannot make another, which would hold what the
	// person does, not what this token does.
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/tokens", strings.NewReader(`{"scopes":["repository:team/app:pull,push"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("ada.lovelace", tok.Value)
	wider, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var refusal api.ErrorBody
	_ = json.NewDecoder(wider.Body).Decode(&refusal)
	wider.Body.Close()
	if refusal.Error.Code != berth.CodeScopeNotGranted {
		t.Fatalf("a personal token creating a wider one: %s %+v", wider.Status, refusal)
	}
	// Another principal's name with the token: refused.
	req, _ = http.NewRequest(http.MethodGet, s.url+"/v2/team/app/tags/list", nil)
	req.SetBasicAuth("admin", tok.Value)
	if r2, err := s.client.Do(req); err != nil || r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the token with another user name: %v %v", r2, err)
	} else {
		r2.Body.Close()
	}

	// The token's expiry is a metric, as a secret's is.
	if resp, metrics := s.do(t, http.MethodGet, "/metrics", nil, nil); resp.StatusCode != http.StatusOK ||
		!strings.Contains(string(metrics), `berth_personal_access_token_expiry_timestamp_seconds{principal="ada.lovelace",token_id="`+tok.ID+`"}`) {
		t.Fatalf("metrics: %s\n%s", resp.Status, metrics)
	}

	// A leaked token, found by berth scan and revoked with --revoke.
	var leaked struct{ ID, Value string }
	cliJSON(t, env, &leaked, "token", "create", "--scope", "repository:team/app:pull")
	file := filepath.Join(t.TempDir(), "ci.env")
	if err := os.WriteFile(file, []byte("REGISTRY_PASSWORD="+leaked.Value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	adminID, adminSecret := s.admin(t)
	admin := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": adminID, "BERTH_CLIENT_SECRET": adminSecret, "HOME": t.TempDir()}
	code, out, stderr = runCLI(t, admin, "scan", file, "--revoke")
	if !strings.Contains(out+stderr, "berth-personal-access-token") || !strings.Contains(out+stderr, "revoked") {
		t.Fatalf("scan --revoke: %d %s %s", code, out, stderr)
	}
	req0, _ := http.NewRequest(http.MethodGet, s.url+"/v2/team/app/tags/list", nil)
	req0.SetBasicAuth("ada.lovelace", leaked.Value)
	if r0, err := s.client.Do(req0); err != nil || r0.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the leaked token after scan --revoke: %v %v", r0, err)
	} else {
		r0.Body.Close()
	}

	// An owner revokes a person's token: the answer and the audit name the
	// person, not the owner.
	var another struct{ ID string }
	cliJSON(t, env, &another, "token", "create", "--scope", "repository:team/app:pull")
	if got := s.apiJSON(t, http.MethodDelete, "/api/v1/tokens/"+another.ID, nil, http.StatusOK); got["principal"] != "ada.lovelace" {
		t.Fatalf("an owner's revocation names %v, want ada.lovelace", got["principal"])
	}

	// The value given for the id is refused before it is sent anywhere,
	// and never repeated.
	if code, out, stderr = runCLI(t, env, "token", "revoke", tok.Value); code == 0 || !strings.Contains(stderr, "[invalid]") || strings.Contains(out+stderr, tok.Value) {
		t.Fatalf("token revoke VALUE: %d %s %s", code, out, stderr)
	}

	// Revoked: refused at once, as the access token it produced.
	if code, _, stderr = runCLI(t, env, "token", "revoke", tok.ID); code != 0 {
		t.Fatalf("token revoke: %d %s", code, stderr)
	}
	if resp, body = basic(http.MethodGet, "/v2/team/app/tags/list"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "secret_revoked") {
		t.Fatalf("after revocation: %s %s", resp.Status, body)
	}
	req, _ = http.NewRequest(http.MethodGet, s.url+"/v2/team/app/tags/list", nil)
	req.Header.Set("Authorization", "Bearer "+answer.Token)
	r3, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b3, _ := io.ReadAll(r3.Body)
	r3.Body.Close()
	if r3.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b3), "secret_revoked") {
		t.Fatalf("the access token of a revoked personal token: %s %s", r3.Status, b3)
	}

	// berth logout ends the person's login: the access token it gave stops
	// at once (session_ended), not when it expires.
	logins, err := os.ReadFile(filepath.Join(env["XDG_CONFIG_HOME"], "berth", "logins.json"))
	if err != nil {
		t.Fatal(err)
	}
	var stored map[string]storedLogin
	if err := json.Unmarshal(logins, &stored); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(s.url, "http://")
	fresh, err := refreshAccessToken(t.Context(), &http.Client{Timeout: 10 * time.Second}, stored[host], []string{"repository:team/app:pull"})
	if err != nil {
		t.Fatal(err)
	}
	pull := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/v2/team/app/tags/list", nil)
		req.Header.Set("Authorization", "Bearer "+fresh.access())
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := pull(); code == http.StatusUnauthorized || code == http.StatusForbidden {
		t.Fatalf("the login's access token: %d %s", code, body)
	}
	if code, _, stderr := runCLI(t, env, "logout", host); code != 0 {
		t.Fatalf("berth logout: %d %s", code, stderr)
	}
	if code, body := pull(); code != http.StatusUnauthorized || !strings.Contains(body, "session_ended") {
		t.Fatalf("the access token after berth logout: %d %s", code, body)
	}
}

// TestDeviceLoginStartsLimited: starting a device login writes a row for a
// caller nobody has authenticated, so one address may start
// oauth.DefaultFailureLimit of them per window; the next is refused with
// too_many_attempts and a Retry-After, and the window frees it again.
func TestDeviceLoginStartsLimited(t *testing.T) {
	offset := moveServeClock(t)
	s, _ := peopleServer(t)
	start := func() (*http.Response, string) {
		t.Helper()
		resp, err := http.PostForm(s.url+"/oauth2/device_authorization", url.Values{"client_id": {"berth-cli"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for i := range 10 {
		if resp, body := start(); resp.StatusCode != http.StatusOK {
			t.Fatalf("device login %d of the allowed 10: %s %s", i+1, resp.Status, body)
		}
	}
	resp, body := start()
	// The refusal is the token endpoint's: RFC 6749's error and berth's reason.
	var refusal struct {
		Error  string
		Reason berth.Code
	}
	if err := json.Unmarshal([]byte(body), &refusal); err != nil || resp.StatusCode != http.StatusTooManyRequests ||
		refusal.Reason != berth.CodeTooManyAttempts || refusal.Error != "temporarily_unavailable" {
		t.Fatalf("the eleventh device login in a minute: %s %s, want 429 too_many_attempts", resp.Status, body)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("the refusal has no Retry-After: %v", resp.Header)
	}
	offset.Add(int64(time.Minute))
	if resp, body := start(); resp.StatusCode != http.StatusOK {
		t.Fatalf("a device login a minute later: %s %s", resp.Status, body)
	}
}

// After a person's login: berth doctor judges their sign-in session as the
// session of hours it is, and names a new sign-in as its fix (it had warned
// at once and told the person to add a client secret, which needs owner);
// berth role list shows the roles they hold through their groups (it said
// they held none).
func TestPersonAfterDeviceLogin(t *testing.T) {
	s, _ := peopleServer(t)
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:devs", "role": "push", "scope": "team/*"}, http.StatusCreated)
	env := loginPerson(t, s)
	_, rep := runDoctor(t, env, strings.TrimPrefix(s.url, "http://"))
	c := findDoctorCheck(t, rep, doctorCheckExpiry)
	if c.Status != doctorStatusOK || strings.Contains(c.Message+c.Hint, "secret add") || !strings.Contains(c.Message, "sign-in session") {
		t.Errorf("expiry check after a person's login: %+v", c)
	}
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:ops", "role": "pull", "scope": "ops/*"}, http.StatusCreated)
	code, out, stderr := runCLI(t, env, "role", "list")
	if code != 0 || !regexp.MustCompile(`group corp:devs +push +team/\*`).MatchString(out) || strings.Contains(out, "corp:ops") {
		t.Errorf("role list of a person: %d\n%s%s", code, out, stderr)
	}
	// Which groups a person is in is theirs and a registry owner's to
	// know: an owner of team/* asking for ada's roles is not told.
	s.apiJSON(t, http.MethodPost, "/api/v1/principals", map[string]string{"name": "team-owner"}, http.StatusCreated)
	secret := s.apiJSON(t, http.MethodPost, "/api/v1/principals/team-owner/secrets", map[string]string{}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"principal": "team-owner", "role": "owner", "scope": "team/*"}, http.StatusCreated)
	teamOwner := map[string]string{"Authorization": "Basic " + basicCredentials("team-owner", secret["value"].(string))}
	if resp, body := s.do(t, http.MethodGet, "/api/v1/roles?principal=ada.lovelace", teamOwner, nil); resp.StatusCode != http.StatusOK || strings.Contains(string(body), "corp:devs") {
		t.Errorf("a scope owner asking for a person's roles: %s %s", resp.Status, body)
	}
	if got, _ := json.Marshal(s.apiJSON(t, http.MethodGet, "/api/v1/roles?principal=ada.lovelace", nil, http.StatusOK)); !strings.Contains(string(got), "corp:devs") {
		t.Errorf("a registry owner asking for a person's roles: %s", got)
	}
}
