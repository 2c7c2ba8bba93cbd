package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// Where berth login --connection finds the CI job's OIDC ID token, in this
// order (idTokenFinder.find):
//
//  1. --id-token-file FILE
//  2. BERTH_ID_TOKEN: the token itself (GitLab CI: id_tokens: BERTH_ID_TOKEN;
//     any CI that can put a token in the environment)
//  3. BERTH_ID_TOKEN_FILE: a file holding it (a Kubernetes projected
//     service-account token, or any file)
//  4. GitHub Actions: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD with
//     Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN; the job needs
//     permissions: id-token: write
//  5. Azure Pipelines: POST $SYSTEM_OIDCREQUESTURI?api-version=7.1
//     [&serviceConnectionId=$BERTH_AZURE_SERVICE_CONNECTION_ID] with
//     Authorization: Bearer $SYSTEM_ACCESSTOKEN (mapped into the step's env)
//  6. the Kubernetes projected token at /var/run/secrets/tokens/berth, when
//     that file exists
//
// The explicit sources (the flag and the BERTH_ variables) come before the
// ones detected from the CI system, so a job can always say which token to
// use. The token is a credential: it is never printed, logged or stored.
const (
	envIDToken                = "BERTH_ID_TOKEN"
	envIDTokenFile            = "BERTH_ID_TOKEN_FILE"
	envAzureServiceConnection = "BERTH_AZURE_SERVICE_CONNECTION_ID"

	envGitHubRequestURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	envGitHubRequestToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
	envAzureRequestURI    = "SYSTEM_OIDCREQUESTURI"
	envAzureAccessToken   = "SYSTEM_ACCESSTOKEN"

	// defaultIDTokenFile is where a Kubernetes pod mounts a projected
	// service-account token for berth (a serviceAccountToken volume source
	// with path "berth" mounted at /var/run/secrets/tokens).
	defaultIDTokenFile = "/var/run/secrets/tokens/berth"

	// azureAudience is the only audience Azure Pipelines mints ID tokens
	// for; it cannot be chosen.
	azureAudience = "api://AzureADTokenExchange"

	// azureOIDCAPIVersion is the api-version of Azure DevOps' Oidctoken -
	// Create (https://learn.microsoft.com/rest/api/azure/devops/distributedtask/oidctoken/create).
	azureOIDCAPIVersion = "7.1"

	// maxIDTokenSize bounds what is read from a file or an endpoint; CI ID
	// tokens are a few kilobytes.
	maxIDTokenSize = 64 << 10
)

// ciToken is a CI job's ID token and where it came from.
type ciToken struct {
	value string
	// source says where the token came from, for messages: "--id-token-file
	// /path", "BERTH_ID_TOKEN", "GitHub Actions", …; never the token.
	source string
	// issuer, subject, audience and expires are read from the token's payload
	// without verifying it (the server verifies), for messages only.
	issuer, subject string
	audience        []string
	expires         time.Time
}

// String never shows the token.
func (t ciToken) String() string { return "ID token from " + t.source }

// idTokenFinder finds the CI job's ID token. Its environment, HTTP client and
// file reads are injected so that every source can be tested.
type idTokenFinder struct {
	getenv      func(string) string
	http        *http.Client
	readFile    func(string) ([]byte, error) // os.ReadFile when nil
	defaultFile string                       // defaultIDTokenFile when ""
}

func (f *idTokenFinder) read(path string) ([]byte, error) {
	if f.readFile != nil {
		return f.readFile(path)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, maxIDTokenSize+1))
}

func (f *idTokenFinder) env(name string) string { return strings.TrimSpace(f.getenv(name)) }

// find returns the ID token of the first source that is present, requested
// for audience where the source lets berth choose it (GitHub Actions; the
// other sources carry the audience they were configured with).
//
// It returns credentials_missing when no source is present, with a hint for
// the CI system the environment shows, and invalid or assertion_invalid
// when a present source fails (a file that cannot be read, an endpoint that
// refuses, an answer that is not a JWT), saying which source and why.
func (f *idTokenFinder) find(ctx context.Context, file, audience string) (ciToken, error) {
	switch {
	case file != "":
		return f.fromFile(file, "--id-token-file "+file)
	case f.env(envIDToken) != "":
		return parseCIToken(f.env(envIDToken), envIDToken)
	case f.env(envIDTokenFile) != "":
		p := f.env(envIDTokenFile)
		return f.fromFile(p, envIDTokenFile+"="+p)
	case f.env(envGitHubRequestURL) != "" || f.env(envGitHubRequestToken) != "":
		return f.fromGitHub(ctx, audience)
	case f.env(envAzureRequestURI) != "" && f.env(envAzureAccessToken) != "":
		return f.fromAzure(ctx)
	}
	def := f.defaultFile
	if def == "" {
		def = defaultIDTokenFile
	}
	if _, err := f.read(def); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return f.fromFile(def, "the Kubernetes projected token "+def)
	}
	return ciToken{}, f.missing(audience)
}

// missing is the refusal when no source holds a token, with the fix for the
// CI system the environment shows.
func (f *idTokenFinder) missing(audience string) error {
	aud := audience
	if aud == "" {
		aud = "REGISTRY"
	}
	const msg = "berth login --connection found no CI ID token: no --id-token-file, " + envIDToken + " or " + envIDTokenFile +
		", no GitHub Actions or Azure Pipelines token endpoint, and no " + defaultIDTokenFile
	switch {
	case f.env("GITHUB_ACTIONS") == "true":
		return berth.Errorf(berth.CodeCredentialsMissing, "%s; this is a GitHub Actions job, and GitHub gives it %s only when the workflow may request an ID token", msg, envGitHubRequestURL).
			WithHint("add 'permissions: id-token: write' to the workflow or job (a pull request from a fork never gets an ID token)")
	case f.env("GITLAB_CI") == "true":
		return berth.Errorf(berth.CodeCredentialsMissing, "%s; this is a GitLab CI job, and GitLab exposes an ID token only under the name its id_tokens: section gives", msg).
			WithHint("add to the job: 'id_tokens: { %s: { aud: %s } }'", envIDToken, aud)
	case f.env("TF_BUILD") == "True" || f.env("TF_BUILD") == "true" || f.env(envAzureRequestURI) != "":
		return berth.Errorf(berth.CodeCredentialsMissing, "%s; this is an Azure Pipelines job, and the step does not see %s", msg, envAzureAccessToken).
			WithHint("map the job's access token into the step: 'env: { %s: $(System.AccessToken) }'", envAzureAccessToken)
	case f.env("KUBERNETES_SERVICE_HOST") != "":
		return berth.Errorf(berth.CodeCredentialsMissing, "%s; this is a Kubernetes pod without a projected token for berth", msg).
			WithHint("mount a serviceAccountToken volume (audience %s, path berth) at /var/run/secrets/tokens, or set %s to the token's path", aud, envIDTokenFile)
	}
	return berth.Errorf(berth.CodeCredentialsMissing, "%s", msg).
		WithHint("run berth login --connection inside the CI job, or pass the job's ID token with --id-token-file FILE or %s", envIDToken)
}

func (f *idTokenFinder) fromFile(path, source string) (ciToken, error) {
	b, err := f.read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ciToken{}, berth.Errorf(berth.CodeCredentialsMissing, "the ID token file %s (%s) does not exist", path, source).
			WithHint("check the path; a Kubernetes projected token needs a serviceAccountToken volume mounted there")
	case err != nil:
		return ciToken{}, berth.Errorf(berth.CodeInvalid, "cannot read the ID token file %s (%s): %v", path, source, errors.Unwrap(err)).
			WithHint("make %s readable by this user", path)
	case len(b) > maxIDTokenSize:
		return ciToken{}, berth.Errorf(berth.CodeAssertionInvalid, "the ID token file %s (%s) is over %d bytes; it is not an ID token", path, source, maxIDTokenSize)
	}
	return parseCIToken(string(b), source)
}

// fromGitHub requests an ID token for audience from GitHub Actions' token
// request endpoint
// (https://docs.github.com/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect#updating-your-actions-for-oidc).
func (f *idTokenFinder) fromGitHub(ctx context.Context, audience string) (ciToken, error) {
	const source = "GitHub Actions"
	raw, bearer := f.env(envGitHubRequestURL), f.env(envGitHubRequestToken)
	if raw == "" || bearer == "" {
		set, unset := envGitHubRequestURL, envGitHubRequestToken
		if raw == "" {
			set, unset = envGitHubRequestToken, envGitHubRequestURL
		}
		return ciToken{}, berth.Errorf(berth.CodeCredentialsMissing, "%s is set and %s is not; GitHub Actions sets both when the job may request an ID token", set, unset).
			WithHint("add 'permissions: id-token: write' to the workflow or job, and do not override these variables")
	}
	u, err := requestURL(envGitHubRequestURL, raw)
	if err != nil {
		return ciToken{}, err
	}
	if audience != "" {
		q := u.Query()
		q.Set("audience", audience)
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return ciToken{}, fmt.Errorf("GitHub ID token request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/json; api-version=2.0")
	var answer struct {
		Value string `json:"value"`
	}
	if err := f.fetch(req, source, &answer,
		"the job's "+envGitHubRequestToken+" is valid only while the job runs; run berth login in the job itself, with 'permissions: id-token: write'"); err != nil {
		return ciToken{}, err
	}
	return parseCIToken(answer.Value, source)
}

// fromAzure requests an ID token from Azure DevOps' Oidctoken - Create
// (https://learn.microsoft.com/rest/api/azure/devops/distributedtask/oidctoken/create),
// for the service connection BERTH_AZURE_SERVICE_CONNECTION_ID when it is
// set (subject sc://ORG/PROJECT/CONNECTION), else for the pipeline itself
// (subject p://ORG/PROJECT/PIPELINE). The audience is always
// api://AzureADTokenExchange.
func (f *idTokenFinder) fromAzure(ctx context.Context) (ciToken, error) {
	const source = "Azure Pipelines"
	u, err := requestURL(envAzureRequestURI, f.env(envAzureRequestURI))
	if err != nil {
		return ciToken{}, err
	}
	q := u.Query()
	q.Set("api-version", azureOIDCAPIVersion)
	if id := f.env(envAzureServiceConnection); id != "" {
		q.Set("serviceConnectionId", id)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader("{}"))
	if err != nil {
		return ciToken{}, fmt.Errorf("Azure Pipelines ID token request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+f.env(envAzureAccessToken))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	// Without it, Azure DevOps answers an unauthenticated request with a
	// redirect to a sign-in page instead of 401.
	req.Header.Set("X-TFS-FedAuthRedirect", "Suppress")
	var answer struct {
		OIDCToken string `json:"oidcToken"`
	}
	hint := fmt.Sprintf("map the job's access token into the step ('env: { %s: $(System.AccessToken) }')", envAzureAccessToken)
	if f.env(envAzureServiceConnection) != "" {
		hint += fmt.Sprintf(", and check that %s is the id of a service connection this pipeline may use", envAzureServiceConnection)
	}
	if err := f.fetch(req, source, &answer, hint); err != nil {
		return ciToken{}, err
	}
	return parseCIToken(answer.OIDCToken, source)
}

// requestURL parses a CI token endpoint from the environment: https, or
// http on loopback only, since the job's bearer token travels with it.
func requestURL(name, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || !(u.Scheme == "https" || u.Scheme == "http" && berth.IsLoopbackHost(u.Hostname())) {
		return nil, berth.Errorf(berth.CodeInvalid, "%s is not an https URL (or http on loopback), so berth does not send the job's token there", name).
			WithHint("leave %s as the CI system sets it", name)
	}
	return u, nil
}

// fetch sends a CI token request and decodes its JSON answer into v. The
// endpoint's error body is not quoted: it might echo the request.
func (f *idTokenFinder) fetch(req *http.Request, source string, v any, hint string) error {
	hc := f.http
	if hc == nil {
		hc = &http.Client{Timeout: loginTimeout}
	}
	endpoint := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
	resp, err := hc.Do(req)
	if err != nil {
		return berth.Errorf(berth.CodeInvalid, "cannot reach the %s ID token endpoint %s: %v", source, endpoint, errors.Unwrap(err)).
			WithHint("check the runner's network; the endpoint is set by %s", source)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxIDTokenSize+1))
	if err != nil {
		return fmt.Errorf("read the answer of the %s ID token endpoint: %w", source, err)
	}
	if resp.StatusCode != http.StatusOK {
		return berth.Errorf(berth.CodeCredentialsMissing, "the %s ID token endpoint %s refused to issue an ID token: %s", source, endpoint, resp.Status).
			WithHint("%s", hint)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return berth.Errorf(berth.CodeAssertionInvalid, "the %s ID token endpoint %s answered 200 with something other than a JSON token answer", source, endpoint).
			WithHint("%s", hint)
	}
	return nil
}

// parseCIToken checks that s is a compact JWS and reads, without verifying
// it, the claims messages quote: the server verifies the token.
func parseCIToken(s, source string) (ciToken, error) {
	s = strings.TrimSpace(s)
	t := ciToken{value: s, source: source}
	bad := func(why string) (ciToken, error) {
		return ciToken{}, berth.Errorf(berth.CodeAssertionInvalid, "the ID token from %s is not a JWT: %s", source, why).
			WithHint("pass the CI system's OIDC ID token itself, a string of three base64url parts joined by dots")
	}
	if s == "" {
		return bad("it is empty")
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return bad(fmt.Sprintf("it has %d dot-separated parts, not 3", len(parts)))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return bad("its payload is not base64url")
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp json.Number     `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return bad("its payload is not a JSON object")
	}
	t.issuer, t.subject = c.Iss, c.Sub
	var one string
	if json.Unmarshal(c.Aud, &one) == nil && one != "" {
		t.audience = []string{one}
	} else {
		_ = json.Unmarshal(c.Aud, &t.audience)
	}
	if n, err := c.Exp.Int64(); err == nil && n > 0 {
		t.expires = time.Unix(n, 0).UTC()
	}
	return t, nil
}

// describe says what the token claims to be, for messages: issuer, subject,
// audience and expiry, which are not secret.
func (t ciToken) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the ID token from %s", t.source)
	if t.issuer != "" {
		fmt.Fprintf(&b, " (issuer %s, subject %q, audience %q", t.issuer, t.subject, strings.Join(t.audience, " "))
		if !t.expires.IsZero() {
			fmt.Fprintf(&b, ", expires %s", t.expires.Format(time.RFC3339))
		}
		b.WriteString(")")
	}
	return b.String()
}
