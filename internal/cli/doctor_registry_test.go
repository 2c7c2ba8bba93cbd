package cli

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// These tests run berth doctor against loopback stand-ins of other
// registries, written from their public documentation: Azure Container
// Registry's token flow (https://azure.github.io/acr/AAD-OAuth.html, the
// Docker token specification) and Docker Hub's (https://docs.docker.com/reference/api/registry/auth/),
// with the challenges and error bodies they send.

// standIn is a loopback registry answering as another registry does.
type standIn struct {
	t   *testing.T
	srv *httptest.Server
	// grants decides what a token request authenticated as user (""
	// anonymous) gets of repo: the actions, or ok false for a refused
	// credential.
	grants func(user, pass, repo string, asked []string) (actions []string, ok bool)
	// refuse is the body and status of a refused token request.
	refuseStatus int
	refuseBody   string
	// denyStatus and denyBody answer a registry request the token does not
	// cover; rateLimited repositories answer 429.
	denyStatus  int
	denyBody    string
	rateLimited string
	challenge   func(base string) string
	tokenPath   string
}

func (s *standIn) host() string { return strings.TrimPrefix(s.srv.URL, "http://") }

func (s *standIn) start() {
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.t.Cleanup(s.srv.Close)
}

// token answers a token request: GET with Basic credentials, or the OAuth
// refresh_token grant (an identity token).
func (s *standIn) token(w http.ResponseWriter, r *http.Request) {
	user, pass, _ := r.BasicAuth()
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		_ = r.ParseForm()
		q = r.PostForm
		if q.Get("grant_type") == "refresh_token" {
			user, pass = "<token>", q.Get("refresh_token")
		}
	}
	var access []map[string]any
	ok := true
	for _, sc := range strings.Fields(strings.Join(q["scope"], " ")) {
		parts := strings.Split(sc, ":")
		if len(parts) != 3 {
			continue
		}
		var acts []string
		acts, ok = s.grants(user, pass, parts[1], strings.Split(parts[2], ","))
		if len(acts) > 0 {
			access = append(access, map[string]any{"type": "repository", "name": parts[1], "actions": acts})
		}
	}
	if q["scope"] == nil {
		_, ok = s.grants(user, pass, "", nil)
	}
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.refuseStatus)
		_, _ = w.Write([]byte(s.refuseBody))
		return
	}
	now := time.Now()
	tok := fakeIDToken(s.t, map[string]any{"iss": "stand-in", "exp": now.Add(75 * time.Minute).Unix(), "iat": now.Unix(), "access": access})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
}

// allowed reports whether the request's bearer token grants action on repo.
func allowed(r *http.Request, repo, action string) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	c, jwt := decodeJWT(tok)
	return ok && jwt && (berth.AccessClaims{Access: c.Access}).Allows("repository", repo, action)
}

func (s *standIn) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	if r.URL.Path == s.tokenPath {
		s.token(w, r)
		return
	}
	deny := func(scope string) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("WWW-Authenticate", s.challenge(s.srv.URL)+`,scope="`+scope+`",error="insufficient_scope"`)
		w.WriteHeader(s.denyStatus)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(s.denyBody))
		}
	}
	if r.URL.Path == "/v2/" {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", s.challenge(s.srv.URL))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}`))
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/v2/")
	switch {
	case strings.Contains(rest, "/manifests/"):
		repo, _, _ := strings.Cut(rest, "/manifests/")
		switch {
		case repo == s.rateLimited:
			w.Header().Set("ratelimit-limit", "100;w=21600")
			w.Header().Set("ratelimit-remaining", "0;w=21600")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			if r.Method != http.MethodHead {
				_, _ = w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit"}]}`))
			}
		case !allowed(r, repo, "pull"):
			deny("repository:" + repo + ":pull")
		default:
			w.Header().Set("ratelimit-limit", "100;w=21600")
			w.Header().Set("ratelimit-remaining", "99;w=21600")
			w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("ab", 32))
			w.WriteHeader(http.StatusOK)
		}
	case strings.HasSuffix(rest, "/blobs/uploads/") && r.Method == http.MethodPost:
		repo := strings.TrimSuffix(rest, "/blobs/uploads/")
		if !allowed(r, repo, "push") {
			deny("repository:" + repo + ":pull,push")
			return
		}
		w.Header().Set("Location", "/v2/"+repo+"/blobs/uploads/7c1d6e2a")
		w.WriteHeader(http.StatusAccepted)
	case strings.Contains(rest, "/blobs/uploads/") && r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// acrUnauthorized is the body ACR answers a refused request with.
const acrUnauthorized = `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required, visit https://aka.ms/acr/authorization for more information.","detail":[{"Type":"repository","Name":"team/app","Action":"push"}]}]}`

// newACRStandIn answers as Azure Container Registry: realm /oauth2/token and
// service REGISTRY.azurecr.io; a refresh token (the password of user
// 00000000-0000-0000-0000-000000000000, or an identity token) that may pull
// team/app.
func newACRStandIn(t *testing.T, refresh string) *standIn {
	s := &standIn{t: t, tokenPath: "/oauth2/token", refuseStatus: http.StatusUnauthorized, refuseBody: acrUnauthorized,
		denyStatus: http.StatusUnauthorized, denyBody: acrUnauthorized,
		challenge: func(base string) string {
			return `Bearer realm="` + base + `/oauth2/token",service="contoso.azurecr.io"`
		}}
	s.grants = func(user, pass, repo string, asked []string) ([]string, bool) {
		if !(user == berth.NullClientID || user == "<token>") || pass != refresh {
			return nil, false
		}
		if repo == "team/app" && slices.Contains(asked, "pull") {
			return []string{"pull"}, true
		}
		return nil, true
	}
	s.start()
	return s
}

// newDockerHubStandIn answers as Docker Hub: realm /token, service
// registry.docker.io; anonymous pulls of library/*, user dev (password
// right) pulls of anything, no pushes to library/*.
func newDockerHubStandIn(t *testing.T) *standIn {
	s := &standIn{t: t, tokenPath: "/token", refuseStatus: http.StatusUnauthorized, refuseBody: `{"details":"incorrect username or password"}`,
		denyStatus: http.StatusForbidden, denyBody: `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`,
		rateLimited: "library/busy",
		challenge: func(base string) string {
			return `Bearer realm="` + base + `/token",service="registry.docker.io"`
		}}
	s.grants = func(user, pass, repo string, asked []string) ([]string, bool) {
		switch {
		case user == "" && strings.HasPrefix(repo, "library/"):
			return []string{"pull"}, true
		case user == "":
			return nil, true
		case user != "dev" || pass != "right":
			return nil, false
		case strings.HasPrefix(repo, "library/"):
			return []string{"pull"}, true
		}
		return asked, true
	}
	s.start()
	return s
}

// dockerConfigEnv writes config as $DOCKER_CONFIG/config.json of a new
// environment for doctor.
func dockerConfigEnv(t *testing.T, config map[string]any, extra map[string]string) map[string]string {
	t.Helper()
	env := doctorEnv(t, extra)
	b, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(env["DOCKER_CONFIG"], "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return env
}

// basicAuth is a docker config auths entry.
func basicAuth(user, pass string) map[string]any {
	return map[string]any{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
}

func TestDoctorACRStandIn(t *testing.T) {
	refresh := fakeIDToken(t, map[string]any{"exp": time.Now().Add(2 * time.Hour).Unix(), "grant_type": "refresh_token", "tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47"})
	acr := newACRStandIn(t, refresh)
	env := dockerConfigEnv(t, map[string]any{"auths": map[string]any{acr.host(): basicAuth(berth.NullClientID, refresh)}}, nil)

	code, rep := runDoctor(t, env, acr.host(), "--repository", "team/app")
	if code != 0 || rep.Registry != registryACR {
		t.Errorf("exit %d, registry %q", code, rep.Registry)
	}
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "token:ok", "expiry:ok", "access:ok", "manifest:ok", "clock:ok", "berth-only:skip")
	if c := findDoctorCheck(t, rep, doctorCheckChallenge); !strings.Contains(c.Message, "Azure Container Registry") {
		t.Errorf("challenge: %+v", c)
	}
	if c := findDoctorCheck(t, rep, doctorCheckCredential); !strings.Contains(c.Message, berth.NullClientID) || strings.Contains(c.Message, refresh) {
		t.Errorf("credential: %+v", c)
	}
	if c := findDoctorCheck(t, rep, doctorCheckExpiry); c.ExpiresAt == nil || c.ExpiresAt.Sub(time.Now()) < 110*time.Minute {
		t.Errorf("expiry: %+v", c)
	}

	// Push: the token grants pull only, and ACR refuses the upload.
	code, rep = runDoctor(t, env, acr.host(), "--repository", "team/app", "--action", "push")
	if code != 1 {
		t.Errorf("push: exit %d", code)
	}
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "token:ok", "expiry:ok", "access:fail", "manifest:ok", "upload:fail", "clock:ok", "berth-only:skip")
	access := findDoctorCheck(t, rep, doctorCheckAccess)
	if !slices.Equal(access.Granted, []string{"repository:team/app:pull"}) || !slices.Equal(access.Needed, []string{"repository:team/app:pull,push"}) ||
		access.Explain != "insufficient_scope" || !strings.Contains(access.Hint, "AcrPush") {
		t.Errorf("access: %+v", access)
	}
	if up := findDoctorCheck(t, rep, doctorCheckUpload); up.Explain != "acr-unauthorized" || !strings.Contains(up.Message, "aka.ms/acr/authorization") {
		t.Errorf("upload: %+v", up)
	}

	// The same refresh token as an identity token: the OAuth refresh grant.
	idEnv := dockerConfigEnv(t, map[string]any{"auths": map[string]any{acr.host(): map[string]any{"identitytoken": refresh}}}, nil)
	if code, rep := runDoctor(t, idEnv, acr.host(), "--repository", "team/app"); code != 0 {
		t.Errorf("identity token: exit %d: %+v", code, rep.Checks)
	}

	// A refresh token ACR does not take (an expired one): the token request
	// is refused with ACR's body, which the catalogue explains.
	stale := fakeIDToken(t, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()})
	staleEnv := dockerConfigEnv(t, map[string]any{"auths": map[string]any{acr.host(): basicAuth(berth.NullClientID, stale)}}, nil)
	code, rep = runDoctor(t, staleEnv, acr.host(), "--repository", "team/app")
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "token:fail", "expiry:skip", "access:skip", "clock:ok", "berth-only:skip")
	if tok := findDoctorCheck(t, rep, doctorCheckToken); code != 1 || tok.Explain != "acr-unauthorized" || !strings.Contains(tok.Hint, "berth explain acr-unauthorized") {
		t.Errorf("stale token: exit %d, %+v", code, tok)
	}

	// Text: ✓, ✗ and the fix lines.
	_, stdout, _ := runCLI(t, env, "doctor", acr.host(), "--repository", "team/app", "--action", "push")
	t.Logf("berth doctor --action push:\n%s", stdout)
	for _, want := range []string{"✓ challenge", "✗ access", "✗ upload", "- berth-only", "fix: az role assignment create"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestDoctorDockerHubStandIn(t *testing.T) {
	hub := newDockerHubStandIn(t)

	// Anonymous pulls of library/alpine, with the rate limit shown.
	env := doctorEnv(t, nil)
	code, rep := runDoctor(t, env, hub.host(), "--repository", "library/alpine")
	if code != 0 || rep.Registry != registryDockerHub {
		t.Errorf("anonymous: exit %d, registry %q", code, rep.Registry)
	}
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:warn", "token:ok", "expiry:skip", "access:ok", "manifest:ok", "clock:ok", "berth-only:skip")
	if m := findDoctorCheck(t, rep, doctorCheckManifest); !strings.Contains(m.Message, "remaining 99") {
		t.Errorf("manifest: %+v", m)
	}

	// Over the rate limit.
	code, rep = runDoctor(t, env, hub.host(), "--repository", "library/busy")
	if m := findDoctorCheck(t, rep, doctorCheckManifest); code != 1 || m.Status != doctorStatusFail || m.Explain != "toomanyrequests" || !strings.Contains(m.Message, "remaining 0") {
		t.Errorf("rate limited: exit %d, %+v", code, m)
	}

	// A wrong password: Docker Hub's token endpoint body.
	wrong := dockerConfigEnv(t, map[string]any{"auths": map[string]any{hub.host(): basicAuth("dev", "wrong")}}, nil)
	code, rep = runDoctor(t, wrong, hub.host(), "--repository", "dev/app")
	if tok := findDoctorCheck(t, rep, doctorCheckToken); code != 1 || tok.Explain != "dockerhub-incorrect-password" {
		t.Errorf("wrong password: exit %d, %+v", code, tok)
	}

	// A push to library/*, which the user may not do: Docker Hub's denied.
	right := dockerConfigEnv(t, map[string]any{"auths": map[string]any{hub.host(): basicAuth("dev", "right")}}, nil)
	code, rep = runDoctor(t, right, hub.host(), "--repository", "library/alpine", "--action", "push")
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "token:ok", "expiry:skip", "access:fail", "manifest:ok", "upload:fail", "clock:ok", "berth-only:skip")
	if up := findDoctorCheck(t, rep, doctorCheckUpload); code != 1 || up.Explain != "registry-denied" {
		t.Errorf("denied push: exit %d, %+v", code, up)
	}
	// The user's own repository: pushes.
	if code, rep := runDoctor(t, right, hub.host(), "--repository", "dev/app", "--action", "push"); code == 1 && findDoctorCheck(t, rep, doctorCheckUpload).Status != doctorStatusOK {
		t.Errorf("push to dev/app: %+v", rep.Checks)
	}
}

// writeHelper writes docker-credential-NAME, a shell script, into dir.
func writeHelper(t *testing.T, dir, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestDoctorCredentialHelpers(t *testing.T) {
	refresh := fakeIDToken(t, map[string]any{"exp": time.Now().Add(2 * time.Hour).Unix()})
	acr := newACRStandIn(t, refresh)
	bin := t.TempDir()
	writeHelper(t, bin, "failing", "echo 'error: the keychain is locked' >&2\nexit 1\n")
	writeHelper(t, bin, "empty", "echo 'credentials not found in native keychain'\nexit 1\n")
	// A helper answers get with the server it was asked for: it must be the host.
	writeHelper(t, bin, "good", `read server
[ "$server" = "`+acr.host()+`" ] || { echo "credentials not found in native keychain"; exit 1; }
printf '{"ServerURL":"%s","Username":"`+berth.NullClientID+`","Secret":"`+refresh+`"}' "$server"
`)
	path := map[string]string{"PATH": bin + string(os.PathListSeparator) + "/usr/bin:/bin"}

	tests := []struct {
		name   string
		config map[string]any
		status doctorStatus
		want   string
		token  doctorStatus
	}{
		{"missing", map[string]any{"credHelpers": map[string]any{acr.host(): "nosuch"}}, doctorStatusFail, "docker-credential-nosuch is not on PATH", ""},
		{"failing", map[string]any{"credHelpers": map[string]any{acr.host(): "failing"}}, doctorStatusFail, "the keychain is locked", ""},
		{"no credential", map[string]any{"credHelpers": map[string]any{acr.host(): "empty"}}, doctorStatusWarn, "holds no credential", doctorStatusFail},
		{"credHelpers", map[string]any{"credHelpers": map[string]any{acr.host(): "good"}, "auths": map[string]any{acr.host(): basicAuth("stale", "x")}}, doctorStatusOK, "docker-credential-good", doctorStatusOK},
		{"credsStore", map[string]any{"credsStore": "good"}, doctorStatusOK, "docker-credential-good (credsStore)", doctorStatusOK},
		{"credsStore missing", map[string]any{"credsStore": "desktop"}, doctorStatusFail, "docker-credential-desktop is not on PATH", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, rep := runDoctor(t, dockerConfigEnv(t, tt.config, path), acr.host(), "--repository", "team/app")
			c := findDoctorCheck(t, rep, doctorCheckCredential)
			if c.Status != tt.status || !strings.Contains(c.Message, tt.want) {
				t.Errorf("credential check %+v; want %s with %q", c, tt.status, tt.want)
			}
			if tt.status == doctorStatusFail && (code != 1 || c.Hint == "") {
				t.Errorf("exit %d, hint %q", code, c.Hint)
			}
			if tt.token != "" {
				if tok := findDoctorCheck(t, rep, doctorCheckToken); tok.Status != tt.token {
					t.Errorf("token check %+v; want %s", tok, tt.token)
				}
			}
			if strings.Contains(c.Message, refresh) {
				t.Errorf("the credential check shows the secret")
			}
		})
	}

	// podman's auth file, when docker has nothing.
	auth := filepath.Join(t.TempDir(), "auth.json")
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{acr.host(): basicAuth(berth.NullClientID, refresh)}})
	if err := os.WriteFile(auth, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, rep := runDoctor(t, doctorEnv(t, map[string]string{"REGISTRY_AUTH_FILE": auth}), acr.host(), "--repository", "team/app")
	if c := findDoctorCheck(t, rep, doctorCheckCredential); code != 0 || !strings.Contains(c.Message, "podman") || c.Status != doctorStatusOK {
		t.Errorf("podman auth file: exit %d, %+v", code, c)
	}
}

// TestDoctorSecondBerth: berth doctor of a berth server other than the one
// BERTH_URL names uses the docker configuration's credential for it, and
// keeps berth's own checks and reason codes.
func TestDoctorSecondBerth(t *testing.T) {
	a, b := startServe(t, t.TempDir()), startServe(t, t.TempDir())
	aID, aSecret := a.admin(t)
	bID, bSecret := b.admin(t)
	bHost := strings.TrimPrefix(b.url, "http://")
	env := dockerConfigEnv(t, map[string]any{"auths": map[string]any{bHost: basicAuth(bID, bSecret)}},
		map[string]string{envURL: a.url, envClientID: aID, envClientSecret: aSecret})
	code, rep := runDoctor(t, env, bHost, "--repository", "team/app", "--action", "push")
	if code != 0 || rep.Registry != registryBerth {
		t.Errorf("exit %d, registry %q", code, rep.Registry)
	}
	wantDoctorChecks(t, rep, "host:ok", "tls:ok", "challenge:ok", "credential:ok", "token:ok", "expiry:ok", "access:ok", "clock:ok")

	// A's secret filed for B: B's own refusal, with its reason code.
	wrong := dockerConfigEnv(t, map[string]any{"auths": map[string]any{bHost: basicAuth(bID, aSecret)}},
		map[string]string{envURL: a.url, envClientID: aID, envClientSecret: aSecret})
	code, rep = runDoctor(t, wrong, bHost)
	if tok := findDoctorCheck(t, rep, doctorCheckToken); code != 1 || tok.Reason != berth.CodeSecretInvalid {
		t.Errorf("wrong secret: exit %d, %+v", code, tok)
	}
}

func TestReadRegistryError(t *testing.T) {
	for _, tt := range []struct {
		body, header, want string
	}{
		{acrUnauthorized, "", "unauthorized: authentication required, visit https://aka.ms/acr/authorization for more information."},
		{`{"details":"incorrect username or password"}`, "", "incorrect username or password"},
		{`{"error":"invalid_grant","error_description":"bad token"}`, "", "invalid_grant: bad token"},
		{`{"message":"Bad credentials"}`, "", "Bad credentials"},
		{"denied: requested access to the resource is denied\n", "", "denied: requested access to the resource is denied"},
		{"", `Bearer realm="x",error="insufficient_scope"`, "insufficient_scope"},
		{"<html>502</html>", "", ""},
	} {
		resp := &http.Response{Header: http.Header{}}
		if tt.header != "" {
			resp.Header.Set("WWW-Authenticate", tt.header)
		}
		if got := readRegistryError(resp, []byte(tt.body)).text(); got != tt.want {
			t.Errorf("readRegistryError(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestECRExpiry(t *testing.T) {
	doc := `{"payload":"p","datakey":"d","version":"2","type":"DATA_KEY","expiration":1767225600}`
	at, ok := ecrExpiry(base64.StdEncoding.EncodeToString([]byte(doc)))
	if !ok || !at.Equal(time.Unix(1767225600, 0)) {
		t.Errorf("ecrExpiry = %v, %v", at, ok)
	}
	for _, p := range []string{"", "password", base64.StdEncoding.EncodeToString([]byte(`{"a":1}`))} {
		if _, ok := ecrExpiry(p); ok {
			t.Errorf("ecrExpiry(%q) found an expiry", p)
		}
	}
}

func TestRegistryKind(t *testing.T) {
	for _, tt := range []struct{ host, realm, service, want string }{
		{"contoso.azurecr.io", "https://contoso.azurecr.io/oauth2/token", "contoso.azurecr.io", registryACR},
		{"registry-1.docker.io", "https://auth.docker.io/token", "registry.docker.io", registryDockerHub},
		{"ghcr.io", "https://ghcr.io/token", "ghcr.io", registryGHCR},
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com", "", "", registryECR},
		{"registry.gitlab.com", "https://gitlab.com/jwt/auth", "container_registry", registryGitLab},
		{"harbor.example.com", "https://harbor.example.com/service/token", "harbor-registry", registryHarbor},
		{"127.0.0.1:5000", "", "", registryDistribution},
	} {
		if got := registryKind(tt.host, tt.realm, tt.service, http.Header{}); got != tt.want {
			t.Errorf("registryKind(%s) = %s, want %s", tt.host, got, tt.want)
		}
	}
}

// TestDoctorTargetDockerHub: docker.io is checked at its registry API host,
// and its credential is the one docker files under its legacy index URL.
func TestDoctorTargetDockerHub(t *testing.T) {
	for _, arg := range []string{"docker.io", "index.docker.io", "https://docker.io"} {
		d := &doctor{e: &env{getenv: mapEnv(nil)}, arg: arg, logins: map[string]storedLogin{}}
		u, err := d.target()
		if err != nil || u.String() != "https://registry-1.docker.io" {
			t.Errorf("target(%q) = %v, %v", arg, u, err)
			continue
		}
		d.base, d.hostKey = u, hostKey(u.String())
		c, key, ok := d.dockerAuths(map[string]doctorDockerAuth{"https://index.docker.io/v1/": {Auth: base64.StdEncoding.EncodeToString([]byte("dev:pw"))}})
		if !ok || key != "https://index.docker.io/v1/" || c.user != "dev" || d.helperServer() != "https://index.docker.io/v1/" {
			t.Errorf("%s: docker's credential not found: %+v %q %v", arg, c, key, ok)
		}
	}
}
