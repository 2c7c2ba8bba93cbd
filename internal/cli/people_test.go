package cli

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oidctest"
)

// browser is a person's browser: a cookie jar, and redirects followed
// across the registry and the identity provider, as a real one does.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(u, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", page)
	}
	return m[1]
}

// wantReason checks that an error page names the reason code.
func wantReason(t *testing.T, what string, resp *http.Response, page string, status int, code berth.Code) {
	t.Helper()
	if resp.StatusCode != status || !strings.Contains(page, "<code>"+string(code)+"</code>") {
		t.Fatalf("%s: %s, want %d with reason %s; page:\n%s", what, resp.Status, status, code, page)
	}
}

// peopleServer starts berth serve with the company's provider added as
// "corp" and returns both.
func peopleServer(t *testing.T, args ...string) (*running, *oidctest.Company) {
	t.Helper()
	return peopleServerEnv(t, nil, args...)
}

// peopleServerEnv is peopleServer with the environment env (BERTH_DB…).
func peopleServerEnv(t *testing.T, env map[string]string, args ...string) (*running, *oidctest.Company) {
	t.Helper()
	company := oidctest.NewCompany(t, "berth-app", "upstream-secret")
	company.SetPerson(oidctest.Person{Subject: "00u-ada", Username: "Ada.Lovelace@corp.example", Email: "ada@corp.example", Groups: []string{"devs"}})
	s := startServeEnv(t, env, t.TempDir(), args...)
	body, _ := json.Marshal(map[string]any{"name": "corp", "issuer": company.URL, "client_id": "berth-app", "client_secret": "upstream-secret"})
	resp, b := s.do(t, http.MethodPost, "/api/v1/idps", map[string]string{"Content-Type": "application/json"}, body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("add idp: %s %s", resp.Status, b)
	}
	if strings.Contains(string(b), "upstream-secret") {
		t.Fatalf("the API showed the client secret: %s", b)
	}
	return s, company
}

func (s *running) apiJSON(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	resp, b := s.do(t, method, path, map[string]string{"Content-Type": "application/json"}, raw)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestBrowserSignIn(t *testing.T) {
	s, company := peopleServer(t)
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:devs", "role": "push", "scope": "team/*"}, http.StatusCreated)
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:admins", "role": "owner", "scope": "registry"}, http.StatusCreated)

	// /login lists the provider; following it signs Ada in, through the
	// provider and back, and lands on /login showing who is signed in.
	ada := newBrowser(t)
	_, page := ada.get(s.url + "/login")
	if !strings.Contains(page, `href="/login/corp"`) {
		t.Fatalf("/login does not list corp:\n%s", page)
	}
	resp, page := ada.get(s.url + "/login/corp")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Signed in as <strong>ada.lovelace</strong>") {
		t.Fatalf("after sign-in: %s\n%s\n%s", resp.Status, page, s.stderr.String())
	}
	var cookie *http.Cookie
	u, _ := url.Parse(s.url)
	for _, c := range ada.c.Jar.Cookies(u) {
		if c.Name == "berth_session" {
			cookie = c
		}
	}
	if cookie == nil || !strings.HasPrefix(cookie.Value, "brs_") {
		t.Fatalf("no session cookie: %v", ada.c.Jar.Cookies(u))
	}

	// The first sign-in made a principal of kind user, named from the
	// username claim; its rights are its group's.
	list := s.apiJSON(t, http.MethodGet, "/api/v1/principals?kind=user", nil, http.StatusOK)
	ps, _ := list["principals"].([]any)
	if len(ps) != 1 || ps[0].(map[string]any)["name"] != "ada.lovelace" || ps[0].(map[string]any)["kind"] != "user" {
		t.Fatalf("people: %v", list)
	}
	check := s.apiJSON(t, http.MethodGet, "/api/v1/access/check?principal=ada.lovelace&action=push&repository=team/app", nil, http.StatusOK)
	if check["allowed"] != true || check["allowing"].(map[string]any)["group"] != "corp:devs" {
		t.Fatalf("push through corp:devs: %v", check)
	}
	check = s.apiJSON(t, http.MethodGet, "/api/v1/access/check?principal=ada.lovelace&action=delete&repository=team/app", nil, http.StatusOK)
	if groups, _ := check["granting_groups"].([]any); check["allowed"] != false || check["reason"] != "role_missing" || len(groups) != 1 || groups[0] != "corp:admins" {
		t.Fatalf("delete: %v", check)
	}

	// Signing in again is the same principal; the groups are the new
	// sign-in's.
	company.SetPerson(oidctest.Person{Subject: "00u-ada", Username: "someone-else", Groups: []string{"admins"}})
	again := newBrowser(t)
	if _, page := again.get(s.url + "/login/corp"); !strings.Contains(page, "Signed in as <strong>ada.lovelace</strong>") {
		t.Fatalf("second sign-in:\n%s", page)
	}
	check = s.apiJSON(t, http.MethodGet, "/api/v1/access/check?principal=ada.lovelace&action=delete&repository=team/app", nil, http.StatusOK)
	if check["allowed"] != true {
		t.Fatalf("delete as a member of corp:admins: %v", check)
	}
	check = s.apiJSON(t, http.MethodGet, "/api/v1/access/check?principal=ada.lovelace&action=push&repository=team/app", nil, http.StatusOK)
	if check["allowing"].(map[string]any)["group"] != "corp:admins" {
		t.Fatalf("push no longer through corp:devs: %v", check)
	}

	// Signing out needs the form's csrf field.
	_, page = ada.get(s.url + "/logout")
	csrf := csrfOf(t, page)
	resp, page = ada.post(s.url+"/logout", url.Values{"csrf": {strings.Repeat("0", 32)}})
	wantReason(t, "sign-out with a forged csrf", resp, page, http.StatusForbidden, berth.CodeSignInStateInvalid)
	if _, page = ada.get(s.url + "/login"); !strings.Contains(page, "Signed in as") {
		t.Fatal("a forged sign-out ended the session")
	}
	if resp, _ = ada.post(s.url+"/logout", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-out: %s", resp.Status)
	}
	if _, page = ada.get(s.url + "/login"); strings.Contains(page, "Signed in as") {
		t.Fatal("still signed in after sign-out")
	}
	// The old cookie, replayed, is no session.
	replay := newBrowser(t)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "berth_session", Value: cookie.Value}})
	if _, page = replay.get(s.url + "/login"); strings.Contains(page, "Signed in as") {
		t.Fatal("the ended session's cookie still signs in")
	}

	// Disabling the principal ends the person's sessions at once, and
	// refuses the next sign-in.
	if _, page = again.get(s.url + "/login"); !strings.Contains(page, "Signed in as") {
		t.Fatal("the second browser lost its session")
	}
	s.apiJSON(t, http.MethodPost, "/api/v1/principals/ada.lovelace/disable", nil, http.StatusOK)
	if _, page = again.get(s.url + "/login"); strings.Contains(page, "Signed in as") {
		t.Fatal("a disabled person is still signed in")
	}
	resp, page = newBrowser(t).get(s.url + "/login/corp")
	wantReason(t, "sign-in of a disabled person", resp, page, http.StatusUnauthorized, berth.CodePrincipalDisabled)
	s.apiJSON(t, http.MethodPost, "/api/v1/principals/ada.lovelace/enable", nil, http.StatusOK)
	if _, page = again.get(s.url + "/login"); strings.Contains(page, "Signed in as") {
		t.Fatal("enabling the principal brought an ended session back")
	}
}

// noFollow is a browser that stops at each redirect, to tamper with it.
func noFollow(b *browser) *http.Client {
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func TestSignInRefusals(t *testing.T) {
	s, company := peopleServer(t)
	b := newBrowser(t)
	nf := noFollow(b)

	// The provider's answer must carry this browser's state.
	resp, err := nf.Get(s.url + "/login/corp")
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("start: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = nf.Get(resp.Header.Get("Location")) // the provider signs in at once
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	q := back.Query()
	if q.Get("code") == "" {
		t.Fatalf("provider answer: %s", back)
	}
	q.Set("state", "forged-state")
	back.RawQuery = q.Encode()
	r2, page := b.get(back.String())
	wantReason(t, "forged state", r2, page, http.StatusForbidden, berth.CodeSignInStateInvalid)

	// A callback in a browser that started no sign-in.
	r2, page = newBrowser(t).get(s.url + "/login/callback?code=x&state=y")
	wantReason(t, "no flow cookie", r2, page, http.StatusForbidden, berth.CodeSignInStateInvalid)

	// The provider refuses the person.
	company.Refuse("access_denied")
	r2, page = newBrowser(t).get(s.url + "/login/corp")
	wantReason(t, "refused upstream", r2, page, http.StatusUnauthorized, berth.CodeSignInRefused)
	company.Refuse("")

	// An unknown provider; an unreachable one.
	r2, page = newBrowser(t).get(s.url + "/login/nope")
	wantReason(t, "unknown provider", r2, page, http.StatusNotFound, berth.CodeIdPUnknown)
	gone := oidctest.NewCompany(t, "berth-app", "s")
	gone.Close()
	body := map[string]any{"name": "gone", "issuer": gone.URL, "client_id": "berth-app", "client_secret": "s"}
	s.apiJSON(t, http.MethodPost, "/api/v1/idps", body, http.StatusCreated)
	r2, page = newBrowser(t).get(s.url + "/login/gone")
	wantReason(t, "unreachable provider", r2, page, http.StatusBadGateway, berth.CodeIdPUnreachable)
	if _, page = newBrowser(t).get(s.url + "/login/corp"); !strings.Contains(page, "Signed in as") {
		t.Fatalf("sign-in after the refusals: %s", page)
	}

	// Every sign-in, made or refused, is in the audit log with its reason.
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	code, stdout, stderr := runCLI(t, nil, "audit", "--data", s.dir, "-o", "json")
	var events []struct {
		Action, Actor, Target, Result string
		Reason                        berth.Code
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &events) != nil {
		t.Fatalf("audit: %d %s %s", code, stdout, stderr)
	}
	seen := map[string]bool{}
	for _, e := range events {
		if e.Action == string(berth.AuditAuthSignIn) {
			seen[e.Target+" "+e.Result+" "+string(e.Reason)+" "+e.Actor] = true
		}
	}
	for _, want := range []string{"corp denied signin_state_invalid ", "corp denied signin_refused ", "gone denied idp_unreachable ", "nope denied idp_unknown ", "corp allowed  ada.lovelace"} {
		if !seen[want] {
			t.Errorf("no auth.signin event %q in %v", want, seen)
		}
	}
	if strings.Contains(stdout, "upstream-secret") {
		t.Error("the audit log holds the provider's client secret")
	}
}

func TestIdPCommands(t *testing.T) {
	company := oidctest.NewCompany(t, "berth-app", "upstream-secret")
	company.SetPerson(oidctest.Person{Subject: "00u-ada", Username: "ada", Groups: []string{"devs"}})
	s := startServe(t, t.TempDir())
	id, secret := s.admin(t)
	vars := map[string]string{"BERTH_URL": s.url, "BERTH_CLIENT_ID": id, "BERTH_CLIENT_SECRET": secret, "HOME": t.TempDir()}

	add := func(stdin string, args ...string) (error, string) {
		var out, errOut strings.Builder
		e := &env{stdout: &out, stderr: &errOut, getenv: mapEnv(vars), output: "json"}
		cmd := newIdPCommand(e)
		cmd.SetIn(strings.NewReader(stdin))
		cmd.SetArgs(append([]string{"add"}, args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.ExecuteContext(t.Context())
		return err, out.String()
	}
	err, out := add("upstream-secret\n", "corp", "--issuer", company.URL, "--client-id", "berth-app", "--client-secret-stdin", "--scopes", "openid profile groups")
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]any
	if json.Unmarshal([]byte(out), &created) != nil || created["redirect_uri"] != s.url+"/login/callback" || strings.Contains(out, "upstream-secret") {
		t.Fatalf("idp add -o json: %s", out)
	}
	if err, _ := add("", "corp2", "--issuer", company.URL, "--client-id", "x"); !berth.IsCode(err, berth.CodeInvalid) {
		t.Fatalf("without --client-secret-stdin: %v", err)
	}
	if err, _ := add("s\n", "corp", "--issuer", company.URL, "--client-id", "x", "--client-secret-stdin"); !berth.IsCode(err, berth.CodeConflict) {
		t.Fatalf("same name: %v", err)
	}
	if err, _ := add("s\n", "ext", "--issuer", "http://idp.example.com", "--client-id", "x", "--client-secret-stdin"); !berth.IsCode(err, berth.CodeInvalid) {
		t.Fatalf("plain http off loopback: %v", err)
	}

	code, out, stderr := runCLI(t, vars, "idp", "show", "corp", "-o", "json")
	if code != 0 || !strings.Contains(out, `"scopes": [`) || strings.Contains(out, "upstream-secret") {
		t.Fatalf("idp show: %d %s %s", code, out, stderr)
	}
	if code, out, _ = runCLI(t, vars, "idp", "list"); code != 0 || !strings.Contains(out, "corp") {
		t.Fatalf("idp list: %d %s", code, out)
	}
	if code, _, stderr = runCLI(t, vars, "idp", "show", "nope"); code != 1 || !strings.Contains(stderr, "[idp_unknown]") {
		t.Fatalf("idp show nope: %d %s", code, stderr)
	}

	// Roles for a group of the provider; a group of an unknown provider
	// is refused.
	if code, out, stderr = runCLI(t, vars, "role", "assign", "--group", "corp:devs", "--role", "push", "--scope", "team/*"); code != 0 || !strings.Contains(out, "the members of corp:devs") {
		t.Fatalf("role assign --group: %d %s %s", code, out, stderr)
	}
	if code, _, stderr = runCLI(t, vars, "role", "assign", "--group", "other:devs", "--role", "push", "--scope", "team/*"); code != 1 || !strings.Contains(stderr, "[idp_unknown]") {
		t.Fatalf("group of an unknown provider: %d %s", code, stderr)
	}
	if code, _, stderr = runCLI(t, vars, "role", "assign", "--group", "corp:devs", "--principal", "admin", "--role", "push", "--scope", "team/*"); code != 1 || !strings.Contains(stderr, "[invalid]") {
		t.Fatalf("--group and --principal: %d %s", code, stderr)
	}
	if code, out, _ = runCLI(t, vars, "role", "list"); code != 0 || !strings.Contains(out, "group corp:devs") {
		t.Fatalf("role list: %d %s", code, out)
	}

	// A person signs in; principal list --kind user lists only people.
	if _, page := newBrowser(t).get(s.url + "/login/corp"); !strings.Contains(page, "Signed in as <strong>ada</strong>") {
		t.Fatalf("sign-in: %s", page)
	}
	code, out, _ = runCLI(t, vars, "principal", "list", "--kind", "user", "-o", "json")
	var people []berth.Principal
	if code != 0 || json.Unmarshal([]byte(out), &people) != nil || len(people) != 1 || people[0].Name != "ada" || people[0].Kind != berth.PrincipalUser {
		t.Fatalf("principal list --kind user: %d %s", code, out)
	}
	if code, out, stderr = runCLI(t, vars, "access", "check", "--principal", "ada", "--action", "push", "--repository", "team/app", "-o", "json"); code != 0 || !strings.Contains(out, `"group": "corp:devs"`) {
		t.Fatalf("access check: %d %s %s", code, out, stderr)
	}
	if code, out, stderr = runCLI(t, vars, "principal", "show", "ada"); code != 0 || !strings.Contains(out, "signs in:   through corp") ||
		!strings.Contains(out, "groups:     corp:devs") || !strings.Contains(out, "push on team/*, through corp:devs") {
		t.Fatalf("principal show of a person: %d %s %s", code, out, stderr)
	}

	if code, _, stderr = runCLI(t, vars, "role", "revoke", "--group", "corp:devs", "--role", "push", "--scope", "team/*"); code != 0 {
		t.Fatalf("role revoke --group: %d %s", code, stderr)
	}
	if code, _, stderr = runCLI(t, vars, "idp", "remove", "corp"); code != 0 {
		t.Fatalf("idp remove: %d %s", code, stderr)
	}
	if code, _, stderr = runCLI(t, vars, "idp", "remove", "corp"); code != 1 || !strings.Contains(stderr, "[idp_unknown]") {
		t.Fatalf("idp remove twice: %d %s", code, stderr)
	}
}

// Providers and owner groups from the configuration file: added at start,
// brought up to date at the next, their people kept.
func TestIdentityProvidersFromConfig(t *testing.T) {
	company := oidctest.NewCompany(t, "berth-app", "upstream-secret")
	company.SetPerson(oidctest.Person{Subject: "00u-ada", Username: "ada", Groups: []string{"registry-admins"}})
	secretFile := filepath.Join(t.TempDir(), "corp-secret")
	if err := os.WriteFile(secretFile, []byte("upstream-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := func(scopes string) string {
		return writeConfig(t, `
auth:
  owner_groups: [corp:registry-admins]
identity_providers:
  - name: corp
    issuer: `+company.URL+`
    client_id: berth-app
    client_secret_file: `+secretFile+`
    scopes: [`+scopes+`]
`)
	}
	dir := t.TempDir()
	s := startServe(t, dir, "--config", config("openid, profile, groups"))
	if _, page := newBrowser(t).get(s.url + "/login/corp"); !strings.Contains(page, "Signed in as <strong>ada</strong>") {
		t.Fatalf("sign-in through the configured provider: %s", page)
	}
	// The owner group holds owner on registry from the start.
	check := s.apiJSON(t, http.MethodGet, "/api/v1/access/check?principal=ada&action=role:assign", nil, http.StatusOK)
	if check["allowed"] != true || check["allowing"].(map[string]any)["group"] != "corp:registry-admins" {
		t.Fatalf("owner through auth.owner_groups: %v", check)
	}
	s.stop(t)
	wantConfigured(t, dir, berth.AuditRoleAssign, "corp:registry-admins")
	wantConfigured(t, dir, berth.AuditIdPAdd, "corp:false")

	s = startServe(t, dir, "--config", config("openid, groups"))
	idp := s.apiJSON(t, http.MethodGet, "/api/v1/idps/corp", nil, http.StatusOK)
	if scopes := idp["scopes"].([]any); len(scopes) != 2 {
		t.Fatalf("the provider was not brought up to date: %v", idp)
	}
	if _, page := newBrowser(t).get(s.url + "/login/corp"); !strings.Contains(page, "Signed in as <strong>ada</strong>") {
		t.Fatalf("the person is not the same principal after the update: %s", page)
	}
	s.stop(t)
	// A start that changes nothing records nothing.
	s = startServe(t, dir, "--config", config("openid, groups"))
	s.stop(t)
	wantConfigured(t, dir, berth.AuditRoleAssign, "corp:registry-admins")
	wantConfigured(t, dir, berth.AuditIdPAdd, "corp:false", "corp:true")

	// A provider without a secret source is refused at start.
	bad := writeConfig(t, "identity_providers:\n  - {name: corp, issuer: "+company.URL+", client_id: x}\n")
	if code, _, stderr := runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--config", bad); code != 1 || !strings.Contains(stderr, "[invalid]") {
		t.Fatalf("a provider without its secret: %d %s", code, stderr)
	}
}

// wantConfigured checks the audit events of action that berth serve
// recorded for its configuration, oldest first, as TARGET (and
// TARGET:UPDATED for a provider), reading the audit log of the data folder
// dir once the server stopped: the log is written asynchronously, and a
// stopped server has written all of it.
func wantConfigured(t *testing.T, dir string, action berth.AuditAction, want ...string) {
	t.Helper()
	_, events, _ := runAuditJSON(t, dir, "--action", string(action))
	var got []string
	for _, ev := range events {
		if ev.Actor != "configuration" {
			continue
		}
		if u, ok := ev.Detail["updated"]; ok {
			got = append(got, ev.Target+":"+u)
		} else {
			got = append(got, ev.Target)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s events of the configuration: %q, want %q", action, got, want)
	}
}

// Two replicas on PostgreSQL: a person signs in on one and is signed in on
// the other (the session is the database's, the sign-in's state the
// browser's); a device login started on the second is approved there and
// gets the person's group role.
func TestPeopleOnPostgresReplicas(t *testing.T) {
	env := pgEnv(pgSchema(t))
	a, _ := peopleServerEnv(t, env)
	b := startServeEnv(t, env, t.TempDir())
	a.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:devs", "role": "push", "scope": "team/*"}, http.StatusCreated)

	ada := newBrowser(t)
	if _, page := ada.get(a.url + "/login/corp"); !strings.Contains(page, "Signed in as <strong>ada.lovelace</strong>") {
		t.Fatalf("sign-in on the first replica: %s", page)
	}
	if _, page := ada.get(b.url + "/login"); !strings.Contains(page, "Signed in as <strong>ada.lovelace</strong>") {
		t.Fatalf("the session on the second replica: %s", page)
	}

	home := t.TempDir()
	cliEnv := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, "config"), "DOCKER_CONFIG": filepath.Join(home, "docker")}
	cli := startDeviceLogin(t, cliEnv, strings.TrimPrefix(b.url, "http://"))
	cli.wait()
	approve(t, ada, cli.stdout.String(), "approve")
	cli.poll()
	if code := cli.exit(); code != 0 {
		t.Fatalf("device login on the second replica: %d %s", code, cli.stderr.String())
	}
	id, secret := a.admin(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	resp, body := b.do(t, http.MethodGet, "/api/v1/access/check?principal=ada.lovelace&action=push&repository=team/app", map[string]string{"Authorization": basic}, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"allowed":true`) {
		t.Fatalf("the group's role on the second replica: %s %s", resp.Status, body)
	}
}
