package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// This file is berth doctor for a registry that is not berth: it checks what
// a client can see from outside (the challenge, the credential docker and
// podman would use, the token and what it grants, the manifest and an upload)
// and explains each refusal through berth explain's catalogue of other
// systems' errors (berth.ForeignErrors). The checks host, tls and clock are
// doctor.go's, shared with berth's own.

// Kinds of registry doctor recognises, for the report and the explanations.
const (
	registryBerth        = "berth"
	registryACR          = "acr"
	registryDockerHub    = "docker-hub"
	registryGHCR         = "ghcr"
	registryECR          = "ecr"
	registryGitLab       = "gitlab"
	registryHarbor       = "harbor"
	registryDistribution = "distribution"
)

// registryNames are the kinds as a person names them.
var registryNames = map[string]string{
	registryACR: berth.SystemACR, registryDockerHub: berth.SystemDockerHub, registryGHCR: berth.SystemGHCR,
	registryECR: berth.SystemECR, registryGitLab: berth.SystemGitLab, registryHarbor: berth.SystemHarbor,
	registryDistribution: "a distribution-compatible registry",
}

// helperTimeout bounds one run of a docker credential helper.
const helperTimeout = 10 * time.Second

// tokenExpiryWarn is when a registry credential that is a token (an ACR
// refresh token, an ECR password) is close enough to its end to warn: such
// tokens live hours by design.
const tokenExpiryWarn = 15 * time.Minute

// registryDoctor holds what the checks of a registry that is not berth learn.
type registryDoctor struct {
	kind    string
	scheme  string // "bearer", "basic" or "" (anonymous)
	realm   string
	service string
	cred    *registryCredential
	token   string // the bearer token, once obtained
	granted []berth.ResourceActions
	jwt     bool // token is a JWT whose access claim was read
}

// registryCredential is the credential a client would send: a user name and
// password, or an identity token (a refresh token, docker's "<token>" user).
type registryCredential struct {
	source        string // for the report: where it was found
	user, secret  string
	identityToken string
}

// isBerth reports whether /v2/ answered as berth does: an OCI error whose
// detail carries a berth reason code. A stored berth login of the host, or
// BERTH_URL naming it, counts too (an anonymous berth answers 200).
func (d *doctor) isBerth() bool {
	var body struct {
		Errors []struct {
			Detail map[string]any `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(d.v2Body, &body) == nil && len(body.Errors) > 0 {
		if r, ok := body.Errors[0].Detail["reason"].(string); ok && berth.LookupCode(berth.Code(r)).Code == berth.Code(r) {
			return true
		}
	}
	if d.v2.StatusCode != http.StatusOK {
		return false
	}
	if _, ok := d.logins[d.hostKey]; ok {
		return true
	}
	base := strings.TrimSpace(d.e.getenv(envURL))
	return base != "" && hostKey(base) == d.hostKey
}

// runRegistry runs the checks of a registry that is not berth, after host
// and tls.
func (d *doctor) runRegistry(ctx context.Context) {
	r := &registryDoctor{}
	d.other = r
	d.checkRegistryChallenge(r)
	d.checkRegistryCredential(ctx, r)
	needs := d.repository != ""
	switch {
	case r.scheme == "bearer" && d.checkRegistryToken(ctx, r):
		d.checkRegistryExpiry(r)
		if needs {
			d.checkRegistryAccess(r)
		}
	case r.scheme == "bearer":
		d.skip("no token was issued", doctorCheckExpiry)
		if needs {
			d.skip("no token was issued", doctorCheckAccess)
		}
	case r.scheme == "basic":
		if d.checkRegistryLogin(ctx, r) {
			d.checkRegistryExpiry(r)
		}
	}
	if needs && (r.scheme != "bearer" || r.token != "") {
		d.checkManifest(ctx, r)
		if d.action == berth.DockerActionPush {
			d.checkUpload(ctx, r)
		}
	}
	d.checkClock()
	d.add(doctorCheckBerthOnly, doctorStatusSkip, "",
		"%s is not berth, so some answers are not to be had from outside: when the credential's secret expires on the server, which role is missing behind a refusal, which pipeline and service connection a login came through, and the audit record of this attempt; berth answers each with a reason code",
		d.base.Host)
}

// registryKind tells which registry answered, from its host, its challenge and
// its headers.
func registryKind(host, realm, service string, h http.Header) string {
	host = strings.ToLower(host)
	realmPath := ""
	if u, err := url.Parse(realm); err == nil {
		realmPath = u.Path
	}
	switch {
	case strings.HasSuffix(host, ".azurecr.io") || strings.HasSuffix(service, ".azurecr.io") || realmPath == "/oauth2/token" && strings.Contains(service, "azurecr"):
		return registryACR
	case isDockerHub(host) || service == "registry.docker.io":
		return registryDockerHub
	case host == "ghcr.io" || strings.HasSuffix(realm, "ghcr.io/token"):
		return registryGHCR
	case strings.Contains(host, ".dkr.ecr.") || service == "ecr.amazonaws.com":
		return registryECR
	case strings.HasSuffix(realmPath, "/jwt/auth") || service == "container_registry":
		return registryGitLab
	case strings.HasSuffix(realmPath, "/service/token") || service == "harbor-registry":
		return registryHarbor
	}
	return registryDistribution
}

// isDockerHub reports whether host is one of Docker Hub's names.
func isDockerHub(host string) bool {
	switch strings.ToLower(host) {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return true
	}
	return false
}

// checkRegistryChallenge reads /v2/'s answer: 200 (anonymous), or a Bearer
// or Basic challenge.
func (d *doctor) checkRegistryChallenge(r *registryDoctor) {
	values := d.v2.Header.Values("WWW-Authenticate")
	ch, bearer := parseBearerChallenge(values)
	r.realm, r.service = ch.realm, ch.service
	r.kind = registryKind(d.base.Host, r.realm, r.service, d.v2.Header)
	name := registryNames[r.kind]
	switch {
	case d.v2.StatusCode == http.StatusOK:
		d.add(doctorCheckChallenge, doctorStatusOK, "", "GET /v2/ answered 200 without asking for credentials: %s serves anonymous requests (%s)", d.base.Host, name)
	case d.v2.StatusCode != http.StatusUnauthorized:
		d.add(doctorCheckChallenge, doctorStatusFail, fmt.Sprintf("check that %s is a registry's address (the host clients push to)", d.base.Host),
			"GET /v2/ answered %s, not 200 or 401 with a challenge: this is not a registry's /v2/ endpoint", d.v2.Status)
	case bearer && r.realm != "":
		r.scheme = "bearer"
		u, err := url.Parse(r.realm)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			d.add(doctorCheckChallenge, doctorStatusFail, "", "the Bearer challenge names the realm %q, which is not a URL clients can call", r.realm)
			r.scheme = ""
		case u.Scheme == "http" && !berth.IsLoopbackHost(u.Hostname()):
			d.add(doctorCheckChallenge, doctorStatusWarn, "ask the registry's operator to serve the token endpoint over https",
				"Bearer realm=%q service=%q (%s): the token endpoint is plain http off loopback, so credentials travel unencrypted", r.realm, r.service, name)
		default:
			d.add(doctorCheckChallenge, doctorStatusOK, "", "Bearer realm=%q service=%q (%s)", r.realm, r.service, name)
		}
	case basicChallenge(values):
		r.scheme = "basic"
		d.add(doctorCheckChallenge, doctorStatusOK, "", "Basic challenge (%s): clients send the user name and password with every request, and no token is issued", name)
	default:
		d.add(doctorCheckChallenge, doctorStatusFail, "", "GET /v2/ answered 401 with WWW-Authenticate %q, neither a Bearer challenge naming a realm nor a Basic one", d.v2.Header.Get("WWW-Authenticate"))
	}
}

// basicChallenge reports whether a WWW-Authenticate value is a Basic one.
func basicChallenge(values []string) bool {
	for _, v := range values {
		if scheme, _, _ := strings.Cut(strings.TrimSpace(v), " "); strings.EqualFold(scheme, "Basic") {
			return true
		}
	}
	return false
}

// configKeys are the keys the docker configuration may file the registry
// under: its host, or for Docker Hub the legacy index URL docker uses.
func (d *doctor) configKeys() []string {
	if isDockerHub(d.base.Host) {
		return []string{"https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"}
	}
	return []string{d.hostKey}
}

// helperServer is what a credential helper is asked for: the key docker
// filed the registry under.
func (d *doctor) helperServer() string { return d.configKeys()[0] }

// checkRegistryCredential finds the credential docker would send (credHelpers,
// then credsStore, then auths), running each helper with get, and podman's,
// and reports both; the first found is the one the next checks use.
func (d *doctor) checkRegistryCredential(ctx context.Context, r *registryDoctor) {
	var facts []string
	status, hint := doctorStatusOK, ""
	fail := func(h, format string, args ...any) {
		status, hint = doctorStatusFail, h
		facts = append(facts, fmt.Sprintf(format, args...))
	}
	keys := d.configKeys()
	helper, helperKey := "", ""
	for _, k := range keys {
		if h := d.docker.CredHelpers[k]; h != "" {
			helper, helperKey = h, fmt.Sprintf("credHelpers[%q]", k)
			break
		}
	}
	if helper == "" && d.docker.CredsStore != "" {
		helper, helperKey = d.docker.CredsStore, "credsStore"
	}
	switch {
	case helper != "":
		c, err := runCredentialHelper(ctx, d.e.getenv, helper, d.helperServer())
		switch {
		case errors.Is(err, errHelperMissing):
			fail(fmt.Sprintf("install docker-credential-%s, or remove %s from %s", helper, helperKey, d.dockerAt),
				"docker uses %s = %q in %s, but docker-credential-%s is not on PATH: every docker, crane and skopeo command fails with \"error getting credentials\"", helperKey, helper, d.dockerAt, helper)
		case errors.Is(err, errHelperNotFound):
			facts = append(facts, fmt.Sprintf("docker asks docker-credential-%s (%s), which holds no credential for %s, so docker goes anonymous", helper, helperKey, d.helperServer()))
			if status == doctorStatusOK {
				status, hint = doctorStatusWarn, fmt.Sprintf("docker login %s", d.base.Host)
			}
		case err != nil:
			fail(fmt.Sprintf("run echo %s | docker-credential-%s get, and fix what it says", d.helperServer(), helper),
				"docker asks docker-credential-%s (%s), which fails: %v", helper, helperKey, err)
		default:
			c.source = fmt.Sprintf("docker-credential-%s (%s)", helper, helperKey)
			r.cred = c
			facts = append(facts, fmt.Sprintf("docker uses docker-credential-%s (%s in %s), which answers get with %s", helper, helperKey, d.dockerAt, c.describe()))
		}
	default:
		if c, key, ok := d.dockerAuths(d.docker.Auths); ok {
			c.source = fmt.Sprintf("docker auths[%q]", key)
			r.cred = c
			facts = append(facts, fmt.Sprintf("docker uses auths[%q] in %s: %s", key, d.dockerAt, c.describe()))
		} else {
			facts = append(facts, fmt.Sprintf("docker has no credential for %s in %s", d.base.Host, orUnknown(d.dockerAt)))
		}
	}
	// podman and skopeo read their own auth file first.
	if path, auths := d.podmanAuths(); path != "" {
		if c, key, ok := d.dockerAuths(auths); ok {
			c.source = fmt.Sprintf("podman's %s auths[%q]", path, key)
			facts = append(facts, fmt.Sprintf("podman and skopeo use auths[%q] in %s: %s", key, path, c.describe()))
			if r.cred == nil && status != doctorStatusFail {
				r.cred = c
			}
		}
	}
	if v := strings.TrimSpace(d.e.getenv("DOCKER_AUTH_CONFIG")); v != "" {
		var cfg doctorDockerConfig
		if json.Unmarshal([]byte(v), &cfg) != nil {
			facts = append(facts, "DOCKER_AUTH_CONFIG (GitLab Runner's) is set but is not JSON")
		} else if c, key, ok := d.dockerAuths(cfg.Auths); ok {
			c.source = fmt.Sprintf("DOCKER_AUTH_CONFIG auths[%q]", key)
			facts = append(facts, fmt.Sprintf("DOCKER_AUTH_CONFIG, which GitLab Runner uses to pull job images, holds auths[%q]: %s", key, c.describe()))
			if r.cred == nil && status != doctorStatusFail {
				r.cred = c
			}
		}
	}
	if r.cred == nil && status == doctorStatusOK {
		status = doctorStatusWarn
		hint = fmt.Sprintf("docker login %s (or crane auth login, podman login), if the registry needs credentials", d.base.Host)
		facts = append(facts, "clients go anonymous")
	}
	if r.cred != nil && status == doctorStatusOK {
		facts = append(facts, "doctor checks with the "+r.cred.source+" credential")
	}
	d.add(doctorCheckCredential, status, hint, "%s", strings.Join(facts, "; "))
}

// describe says what kind of credential c is, never its value.
func (c *registryCredential) describe() string {
	switch {
	case c.identityToken != "":
		return "an identity token (a refresh token)"
	case c.user == berth.NullClientID:
		return fmt.Sprintf("user %s, whose password is a refresh token (ACR's convention)", c.user)
	}
	return fmt.Sprintf("user %s and a password", c.user)
}

// dockerAuths finds the registry in an auths map, by any key docker files it
// under (a host, or a URL of it).
func (d *doctor) dockerAuths(auths map[string]doctorDockerAuth) (*registryCredential, string, bool) {
	keys := d.configKeys()
	for k, a := range auths {
		if !slices.Contains(keys, k) && !slices.Contains(keys, hostKey(k)) {
			continue
		}
		if a.IdentityToken != "" {
			return &registryCredential{identityToken: a.IdentityToken}, k, true
		}
		if user, pass, ok := a.basic(); ok {
			if user == "<token>" {
				return &registryCredential{identityToken: pass}, k, true
			}
			return &registryCredential{user: user, secret: pass}, k, true
		}
	}
	return nil, "", false
}

// podmanAuths reads podman's auth file: REGISTRY_AUTH_FILE, else
// $XDG_RUNTIME_DIR/containers/auth.json, else
// $XDG_CONFIG_HOME/containers/auth.json; "" when there is none.
func (d *doctor) podmanAuths() (string, map[string]doctorDockerAuth) {
	var paths []string
	if p := d.e.getenv("REGISTRY_AUTH_FILE"); p != "" {
		paths = append(paths, p)
	}
	if dir := d.e.getenv("XDG_RUNTIME_DIR"); dir != "" {
		paths = append(paths, filepath.Join(dir, "containers", "auth.json"))
	}
	if dir := d.e.getenv("XDG_CONFIG_HOME"); dir != "" {
		paths = append(paths, filepath.Join(dir, "containers", "auth.json"))
	}
	for _, p := range paths {
		if p == d.dockerAt {
			continue // the docker configuration, reported already
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var cfg doctorDockerConfig
		if json.Unmarshal(b, &cfg) == nil {
			return p, cfg.Auths
		}
	}
	return "", nil
}

// Failures of a credential helper.
var (
	errHelperMissing  = errors.New("the helper is not installed")
	errHelperNotFound = errors.New("the helper holds no credential for the server")
)

// runCredentialHelper runs docker-credential-NAME get for server, as docker
// does (https://github.com/docker/docker-credential-helpers: the server on
// stdin, {"ServerURL","Username","Secret"} on stdout), finding the program on
// getenv's PATH. It returns errHelperMissing when the program is not there,
// errHelperNotFound when it answers "credentials not found", and otherwise
// the helper's own first line of output, with no secret in it.
func runCredentialHelper(ctx context.Context, getenv func(string) string, name, server string) (*registryCredential, error) {
	prog := "docker-credential-" + name
	path := ""
	for _, dir := range filepath.SplitList(getenv("PATH")) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, prog)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			path = p
			break
		}
	}
	if path == "" {
		return nil, errHelperMissing
	}
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "get")
	cmd.Env = helperEnv(getenv)
	cmd.Stdin = strings.NewReader(server)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		out := strings.TrimSpace(stdout.String() + "\n" + stderr.String())
		if strings.Contains(strings.ToLower(out), "credentials not found") {
			return nil, errHelperNotFound
		}
		line, _, _ := strings.Cut(out, "\n")
		if line == "" {
			line = err.Error()
		}
		return nil, fmt.Errorf("%s", berth.RedactCredential(truncateArg(line)))
	}
	var answer struct {
		Username string `json:"Username"`
		Secret   string `json:"Secret"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &answer); err != nil || answer.Secret == "" {
		return nil, fmt.Errorf("%s get answered something that is not {\"Username\",\"Secret\"} JSON", prog)
	}
	if answer.Username == "<token>" {
		return &registryCredential{identityToken: answer.Secret}, nil
	}
	return &registryCredential{user: answer.Username, secret: answer.Secret}, nil
}

// helperEnv is the environment a credential helper runs in: the process's,
// with the variables it reads taken from getenv.
func helperEnv(getenv func(string) string) []string {
	env := os.Environ()
	for _, k := range []string{"PATH", "HOME", "DOCKER_CONFIG", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", envURL} {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// checkRegistryToken asks the realm for a token with the credential, as
// docker does: GET with Basic credentials (or none), or for an identity
// token POST grant_type=refresh_token (the Docker OAuth flow). It asks for
// the scope of --repository and --action, so that the token's access can be
// compared with it.
func (d *doctor) checkRegistryToken(ctx context.Context, r *registryDoctor) bool {
	scope := ""
	if d.repository != "" {
		scope = fmt.Sprintf("repository:%s:%s", d.repository, strings.Join(dockerNeeds(d.action), ","))
	}
	var req *http.Request
	var err error
	who := "anonymously"
	if r.cred != nil && r.cred.identityToken != "" {
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.cred.identityToken}, "client_id": {"berth-doctor"}, "service": {r.service}}
		if scope != "" {
			f.Set("scope", scope)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, r.realm, strings.NewReader(f.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		who = "with the identity token of the " + r.cred.source + " credential"
	} else {
		q := url.Values{"service": {r.service}, "client_id": {"berth-doctor"}}
		if scope != "" {
			q.Set("scope", scope)
		}
		sep := "?"
		if strings.Contains(r.realm, "?") {
			sep = "&"
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, r.realm+sep+q.Encode(), nil)
		if err == nil && r.cred != nil {
			req.SetBasicAuth(r.cred.user, r.cred.secret)
			who = "with the " + r.cred.source + " credential"
		}
	}
	if err != nil {
		d.add(doctorCheckToken, doctorStatusFail, "", "the token request cannot be made: %v", err)
		return false
	}
	resp, body, err := d.send(req)
	if err != nil {
		d.add(doctorCheckToken, doctorStatusFail, fmt.Sprintf("check that this machine reaches %s (proxy, firewall, DNS)", req.URL.Host),
			"the token endpoint %s does not answer: %v", r.realm, errors.Unwrap(err))
		return false
	}
	if resp.StatusCode != http.StatusOK {
		d.addRefusal(doctorCheckToken, r, resp, body, fmt.Sprintf("the token endpoint refused the request made %s", who))
		return false
	}
	var tok tokenAnswer
	if json.Unmarshal(body, &tok) != nil || tok.access() == "" {
		d.add(doctorCheckToken, doctorStatusFail, "", "the token endpoint answered 200 without a token")
		return false
	}
	r.token = tok.access()
	lifetime := ""
	if tok.ExpiresIn > 0 {
		lifetime = fmt.Sprintf(", valid for %s", time.Duration(tok.ExpiresIn)*time.Second)
	}
	d.add(doctorCheckToken, doctorStatusOK, "", "the token endpoint issued a token %s%s", who, lifetime)
	return true
}

// dockerNeeds is the token actions a Docker action needs.
func dockerNeeds(action string) []string {
	switch action {
	case berth.DockerActionPush:
		return []string{"pull", "push"}
	case berth.DockerActionDelete:
		return []string{"delete"}
	}
	return []string{"pull"}
}

// send sends req, and returns the answer and its body (at most 1 MiB).
func (d *doctor) send(req *http.Request) (*http.Response, []byte, error) {
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, nil
}

// jwtClaims are what doctor reads of a JWT it did not issue: it is decoded,
// not verified.
type jwtClaims struct {
	Expires  int64                   `json:"exp"`
	IssuedAt int64                   `json:"iat"`
	Access   []berth.ResourceActions `json:"access"`
	Tenant   string                  `json:"tenant"`
}

// decodeJWT returns the claims of token, and false when it is not a JWT.
func decodeJWT(token string) (jwtClaims, bool) {
	var c jwtClaims
	return c, jwtPayload(token, &c)
}

// jwtPayload decodes the claims of a compact JWT into v, unverified, and
// reports whether token was one: for tokens the CLI reads but never trusts.
func jwtPayload(token string, v any) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

// ecrExpiry returns the expiry written in an ECR password (base64 of a JSON
// document whose expiration is in Unix seconds), and false when password is
// not one.
func ecrExpiry(password string) (time.Time, bool) {
	b, err := base64.StdEncoding.DecodeString(password)
	if err != nil {
		return time.Time{}, false
	}
	var doc struct {
		Expiration json.Number `json:"expiration"`
		Payload    string      `json:"payload"`
	}
	if json.Unmarshal(b, &doc) != nil || doc.Payload == "" {
		return time.Time{}, false
	}
	n, err := doc.Expiration.Int64()
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}

// checkRegistryExpiry reports when the credential ends, where the credential
// says: a password or identity token that is a JWT (an ACR refresh token), or
// an ECR password; and the access token's own expiry.
func (d *doctor) checkRegistryExpiry(r *registryDoctor) {
	now := d.now()
	var at time.Time
	what := ""
	if c := r.cred; c != nil {
		value := c.secret
		if c.identityToken != "" {
			value = c.identityToken
		}
		if claims, ok := decodeJWT(value); ok && claims.Expires > 0 {
			at, what = time.Unix(claims.Expires, 0).UTC(), "the "+c.source+" credential (a token)"
		} else if exp, ok := ecrExpiry(value); ok {
			at, what = exp, "the "+c.source+" credential (an ECR password)"
		}
	}
	if what == "" {
		msg := "the registry does not say when the credential expires (a password or an opaque token)"
		if claims, ok := decodeJWT(r.token); ok && claims.Expires > 0 {
			exp := time.Unix(claims.Expires, 0).UTC()
			msg += fmt.Sprintf("; the access token expires at %s, and clients ask for a new one with the credential", formatTime(exp))
		}
		d.add(doctorCheckExpiry, doctorStatusSkip, "", "%s", msg)
		return
	}
	c := doctorCheck{Name: doctorCheckExpiry, ExpiresAt: &at}
	fix := fmt.Sprintf("log in again: docker login %s", d.base.Host)
	switch r.kind {
	case registryACR:
		fix = "TOKEN=$(az acr login -n REGISTRY --expose-token --query accessToken -o tsv), then docker login " + d.base.Host + " -u 00000000-0000-0000-0000-000000000000 --password-stdin"
	case registryECR:
		fix = "aws ecr get-login-password --region REGION | docker login --username AWS --password-stdin " + d.base.Host
	}
	switch left := at.Sub(now); {
	case left <= 0:
		c.Status, c.Hint = doctorStatusFail, fix
		c.Message = fmt.Sprintf("%s expired on %s, %s ago", what, formatTime(at), (-left).Round(time.Second))
		if f := berth.MatchForeign("your authorization token has expired"); r.kind == registryECR && len(f) > 0 {
			c.Explain = f[0].ID
		}
	case left < tokenExpiryWarn:
		c.Status, c.Hint = doctorStatusWarn, fix
		c.Message = fmt.Sprintf("%s expires on %s, in %s", what, formatTime(at), left.Round(time.Second))
	default:
		c.Status = doctorStatusOK
		c.Message = fmt.Sprintf("%s expires on %s, in %s", what, formatTime(at), left.Round(time.Minute))
	}
	d.checks = append(d.checks, c)
}

// checkRegistryAccess compares the access the token grants (its access claim,
// as the Docker token spec writes it) with what --action needs on
// --repository.
func (d *doctor) checkRegistryAccess(r *registryDoctor) {
	needed := dockerNeeds(d.action)
	neededScope := []string{fmt.Sprintf("repository:%s:%s", d.repository, strings.Join(needed, ","))}
	claims, ok := decodeJWT(r.token)
	if !ok {
		d.checks = append(d.checks, doctorCheck{Name: doctorCheckAccess, Status: doctorStatusSkip, Needed: neededScope,
			Message: "the token is not a JWT, so what it grants is not readable; the manifest check tells"})
		return
	}
	r.jwt, r.granted = true, claims.Access
	var granted []string
	for _, ra := range claims.Access {
		granted = append(granted, ra.String())
	}
	var lacking []string
	for _, a := range needed {
		if !(berth.AccessClaims{Access: claims.Access}).Allows("repository", d.repository, a) {
			lacking = append(lacking, a)
		}
	}
	c := doctorCheck{Name: doctorCheckAccess, Granted: granted, Needed: neededScope}
	if granted == nil {
		c.Granted = []string{}
	}
	shown := strings.Join(granted, " ")
	if shown == "" {
		shown = "nothing"
	}
	if len(lacking) == 0 {
		c.Status = doctorStatusOK
		c.Message = fmt.Sprintf("the token grants %s, which covers %s %s", shown, d.action, d.repository)
	} else {
		c.Status = doctorStatusFail
		c.Message = fmt.Sprintf("the token grants %s; %s %s needs %s, and %s was not granted: the registry granted the intersection of what was asked and what the credential may do",
			shown, d.action, d.repository, neededScope[0], strings.Join(lacking, ","))
		c.Hint = accessFix(r.kind, d.repository, d.action)
		if f := berth.MatchForeign("insufficient_scope"); len(f) > 0 {
			c.Explain = f[0].ID
		}
	}
	d.checks = append(d.checks, c)
}

// accessFix names the fix for missing rights on each registry.
func accessFix(kind, repository, action string) string {
	switch kind {
	case registryACR:
		role := "AcrPull"
		if action != berth.DockerActionPull {
			role = "AcrPush"
		}
		return fmt.Sprintf("az role assignment create --assignee APP_ID --role %s --scope $(az acr show -n REGISTRY --query id -o tsv)", role)
	case registryGHCR:
		return "give the workflow permissions: packages: write, and the repository access in the package's settings"
	case registryDockerHub:
		return fmt.Sprintf("push under your own namespace (USER/%s), or use an access token with read-write rights", repository[strings.LastIndex(repository, "/")+1:])
	case registryECR:
		return "attach an IAM policy allowing the ECR actions of a " + action + " on the repository"
	case registryHarbor:
		return "give the robot account or member a role with " + action + " in the project"
	case registryGitLab:
		return "use a token with read_registry and write_registry, or CI_REGISTRY_USER/CI_REGISTRY_PASSWORD in CI"
	}
	return "ask the registry's operator for " + action + " rights on " + repository
}

// authorize sets the credential of a request to the registry: the bearer
// token, or Basic.
func (r *registryDoctor) authorize(req *http.Request) {
	switch {
	case r.token != "":
		req.Header.Set("Authorization", "Bearer "+r.token)
	case r.scheme == "basic" && r.cred != nil && r.cred.identityToken == "":
		req.SetBasicAuth(r.cred.user, r.cred.secret)
	}
}

// checkRegistryLogin sends GET /v2/ with the Basic credential, which is how a
// Basic registry checks a login.
func (d *doctor) checkRegistryLogin(ctx context.Context, r *registryDoctor) bool {
	if r.cred == nil || r.cred.identityToken != "" {
		d.add(doctorCheckLogin, doctorStatusFail, fmt.Sprintf("docker login %s", d.base.Host),
			"the registry asks for Basic credentials and no user name and password were found for it")
		return false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base.String()+"/v2/", nil)
	if err != nil {
		d.add(doctorCheckLogin, doctorStatusFail, "", "GET /v2/: %v", err)
		return false
	}
	r.authorize(req)
	resp, body, err := d.send(req)
	if err != nil {
		d.add(doctorCheckLogin, doctorStatusFail, "", "GET /v2/ with the credential: %v", errors.Unwrap(err))
		return false
	}
	if resp.StatusCode != http.StatusOK {
		d.addRefusal(doctorCheckLogin, r, resp, body, "GET /v2/ with the "+r.cred.source+" credential was refused")
		return false
	}
	d.add(doctorCheckLogin, doctorStatusOK, "", "GET /v2/ with the %s credential answered 200: the user name and password are accepted", r.cred.source)
	return true
}

// manifestTypes are the manifest media types docker and containerd accept.
var manifestTypes = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// checkManifest sends HEAD /v2/REPOSITORY/manifests/REFERENCE, as a pull
// starts; on a refusal it sends GET to read the error body HEAD lacks.
func (d *doctor) checkManifest(ctx context.Context, r *registryDoctor) {
	ref := d.reference
	if ref == "" {
		ref = "latest"
	}
	u := fmt.Sprintf("%s/v2/%s/manifests/%s", d.base, d.repository, ref)
	do := func(method string) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Accept", manifestTypes)
		r.authorize(req)
		return d.send(req)
	}
	resp, _, err := do(http.MethodHead)
	if err != nil {
		d.add(doctorCheckManifest, doctorStatusFail, "", "HEAD %s: %v", u, errors.Unwrap(err))
		return
	}
	limits := rateLimit(resp.Header)
	if resp.StatusCode == http.StatusOK {
		d.add(doctorCheckManifest, doctorStatusOK, "", "HEAD %s:%s answered 200, digest %s%s", d.repository, ref, orUnknown(resp.Header.Get("Docker-Content-Digest")), limits)
		return
	}
	gresp, body, gerr := do(http.MethodGet)
	if gerr == nil && gresp.StatusCode == resp.StatusCode {
		resp = gresp
	}
	what := fmt.Sprintf("HEAD %s:%s answered %s%s", d.repository, ref, resp.Status, limits)
	if resp.StatusCode == http.StatusNotFound {
		c := d.refusal(doctorCheckManifest, r, resp, body, what)
		c.Status = doctorStatusWarn
		c.Message += "; the credential was accepted, and the repository or the tag is not there"
		c.Hint = fmt.Sprintf("push the tag, or check another with --reference TAG (crane ls %s/%s lists them)", d.base.Host, d.repository)
		d.checks = append(d.checks, c)
		return
	}
	d.addRefusal(doctorCheckManifest, r, resp, body, what)
}

// rateLimit quotes Docker Hub's rate limit headers, if any.
func rateLimit(h http.Header) string {
	limit, left := h.Get("ratelimit-limit"), h.Get("ratelimit-remaining")
	if limit == "" && left == "" {
		return ""
	}
	return fmt.Sprintf(" (rate limit %s, remaining %s)", orUnknown(limit), orUnknown(left))
}

// checkUpload starts a blob upload and cancels it, as a push starts: the one
// way to see push rights on a registry whose token says nothing.
func (d *doctor) checkUpload(ctx context.Context, r *registryDoctor) {
	u := fmt.Sprintf("%s/v2/%s/blobs/uploads/", d.base, d.repository)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		d.add(doctorCheckUpload, doctorStatusFail, "", "POST %s: %v", u, err)
		return
	}
	r.authorize(req)
	resp, body, err := d.send(req)
	if err != nil {
		d.add(doctorCheckUpload, doctorStatusFail, "", "POST %s: %v", u, errors.Unwrap(err))
		return
	}
	if resp.StatusCode != http.StatusAccepted {
		d.addRefusal(doctorCheckUpload, r, resp, body, fmt.Sprintf("starting an upload to %s answered %s", d.repository, resp.Status))
		return
	}
	cancelled := "and it could not be cancelled (the registry collects it later)"
	if loc := resp.Header.Get("Location"); loc != "" {
		if lu, err := d.base.Parse(loc); err == nil {
			if dreq, err := http.NewRequestWithContext(ctx, http.MethodDelete, lu.String(), nil); err == nil {
				r.authorize(dreq)
				if dresp, _, err := d.send(dreq); err == nil && dresp.StatusCode/100 == 2 {
					cancelled = "and was cancelled"
				}
			}
		}
	}
	d.add(doctorCheckUpload, doctorStatusOK, "", "an upload to %s was started (202), %s: the credential may push", d.repository, cancelled)
}

// registryError is a refusal as registries write it.
type registryError struct {
	code, message string
	reason        berth.Code // a berth server's detail.reason
	hint          string     // a berth server's detail.hint
}

// readRegistryError reads a refusal's body in the forms registries use: the
// distribution spec's {"errors":[{code,message,detail}]} (ACR, GHCR, Harbor,
// GitLab, ECR, distribution, berth), Docker Hub's token endpoint {"details"},
// OAuth 2.0's {"error","error_description"}, {"message"}, or plain text; and
// the error attribute of a Bearer challenge.
func readRegistryError(resp *http.Response, body []byte) registryError {
	var b struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Detail  any    `json:"detail"`
		} `json:"errors"`
		Details     string `json:"details"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
	}
	var e registryError
	if json.Unmarshal(body, &b) == nil {
		switch {
		case len(b.Errors) > 0:
			e.code, e.message = b.Errors[0].Code, b.Errors[0].Message
			if detail, ok := b.Errors[0].Detail.(map[string]any); ok {
				if r, ok := detail["reason"].(string); ok {
					e.reason = berth.Code(r)
				}
				e.hint, _ = detail["hint"].(string)
			}
		case b.Details != "":
			e.message = b.Details
		case b.Error != "":
			e.code, e.message = b.Error, b.Description
		case b.Message != "":
			e.message = b.Message
		}
	} else if text := strings.TrimSpace(string(body)); text != "" && len(text) < 500 && !strings.HasPrefix(text, "<") {
		e.message = text
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if i := strings.Index(v, `error="`); i >= 0 {
			attr := v[i+len(`error="`):]
			if j := strings.IndexByte(attr, '"'); j >= 0 && e.code == "" {
				e.code = attr[:j]
			}
		}
	}
	return e
}

// text is the refusal as a client prints it: "code: message".
func (e registryError) text() string {
	code, msg := strings.ToLower(e.code), e.message
	switch {
	case code == "" && msg == "":
		return ""
	case code == "":
		return msg
	case msg == "":
		return code
	}
	return code + ": " + msg
}

// refusal builds the check of a refused request: the status, the registry's
// own words, and the catalogue entry that explains them, whose first fix
// becomes the hint.
func (d *doctor) refusal(name string, r *registryDoctor, resp *http.Response, body []byte, what string) doctorCheck {
	e := readRegistryError(resp, body)
	c := doctorCheck{Name: name, Status: doctorStatusFail, Message: what}
	if t := e.text(); t != "" {
		if len(t) > 300 {
			t = t[:300] + "…"
		}
		c.Message += ": " + strconv.Quote(t)
	}
	if e.reason != "" {
		c.Reason, c.Hint = e.reason, e.hint
		return c
	}
	text := e.text()
	if resp.StatusCode == http.StatusTooManyRequests && !strings.Contains(strings.ToLower(text), "toomanyrequests") {
		text += " toomanyrequests"
	}
	if f := explainRefusal(text, r.kind); f != nil {
		c.Explain = f.ID
		c.Hint = f.Fixes[0] + " (berth explain " + f.ID + ")"
	}
	// A repository request refused with a credential that was accepted is a
	// question of rights, whose fix is the registry's own.
	if (name == doctorCheckManifest || name == doctorCheckUpload) && r.cred != nil &&
		(resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		action := berth.DockerActionPull
		if name == doctorCheckUpload {
			action = berth.DockerActionPush
		}
		c.Hint = accessFix(r.kind, d.repository, action)
		if c.Explain != "" {
			c.Hint += " (berth explain " + c.Explain + ")"
		}
	}
	return c
}

func (d *doctor) addRefusal(name string, r *registryDoctor, resp *http.Response, body []byte, what string) {
	d.checks = append(d.checks, d.refusal(name, r, resp, body, what))
}

// explainRefusal finds the catalogue entry of a refusal's text, preferring
// one of the registry's own system when several match equally.
func explainRefusal(text, kind string) *berth.ForeignError {
	found := berth.MatchForeign(text)
	if len(found) == 0 {
		return nil
	}
	system := registryNames[kind]
	best := found[0]
	for _, f := range found[1:] {
		if f.System == system && best.System != system && longestMatch(f, text) == longestMatch(best, text) {
			best = f
		}
	}
	return &best
}

// longestMatch is the length of f's longest fragment in text.
func longestMatch(f berth.ForeignError, text string) int {
	n := 0
	t := strings.ToLower(text)
	for _, m := range f.Match {
		if strings.Contains(t, m) {
			n = max(n, len(m))
		}
	}
	return n
}
