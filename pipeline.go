package berth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A pipeline is a CI workload identity that berth trusts: the OIDC issuer of a
// CI system and conditions on the ID tokens it mints. A token that comes from
// Issuer, whose sub matches Subject, whose aud holds Audience and whose other
// claims match Claims is that pipeline. A pipeline proves nothing by itself; it
// acts through a service connection that permits it.
type Pipeline struct {
	ID   string `json:"id"`   // a UUID
	Name string `json:"name"` // see ValidatePipelineName
	// Issuer is the token's iss, exactly: an https URL (http on loopback).
	Issuer string `json:"issuer"`
	// Subject is a pattern on the token's sub; see MatchPattern.
	Subject string `json:"subject"`
	// Audience is the aud the token must hold; "" means the registry's service
	// name, the one its /v2/ Bearer challenge announces.
	Audience string `json:"audience,omitempty"`
	// Claims are further conditions: claim name → pattern on its value.
	Claims map[string]string `json:"claims,omitempty"`
	// JWKS, when set, is the issuer's key set (a JSON Web Key Set), used
	// instead of fetching it through the issuer's discovery document: for
	// issuers berth cannot reach, such as an air-gapped cluster.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// Preset names the CI system a preset filled Issuer and Subject for
	// ("github", "gitlab", "azure-devops", "kubernetes"); informative.
	Preset  string    `json:"preset,omitempty"`
	Created time.Time `json:"created_at"`
}

// Well-known issuers of the CI presets.
const (
	GitHubActionsIssuer = "https://token.actions.githubusercontent.com"
	GitLabIssuer        = "https://gitlab.com"
)

// Presets of NewPipeline: which CI system fills Issuer and Subject.
const (
	PresetGitHub      = "github"
	PresetGitLab      = "gitlab"
	PresetAzureDevOps = "azure-devops"
	PresetKubernetes  = "kubernetes"
	// PresetKubernetesNamespace is every service account of one namespace.
	PresetKubernetesNamespace = "kubernetes-namespace"
)

// Bounds on what a pipeline holds.
const (
	MaxPipelinePatternLength = 512
	MaxPipelineClaims        = 16
	MaxPipelineJWKSSize      = 64 << 10
)

// AssertionLeeway is the clock skew tolerated between a CI issuer and berth
// when checking an ID token's exp, nbf and iat.
const AssertionLeeway = time.Minute

// ValidatePipelineName returns invalid unless name follows the rules of a
// principal name (ValidatePrincipalName), which share its alphabet.
func ValidatePipelineName(name string) error { return validateName("pipeline", name) }

// PipelineSpec is what a pipeline is created from: either Issuer and Subject
// given outright, or a Preset and its Spec (and Issuer where the preset needs
// one), which NewPipeline expands.
type PipelineSpec struct {
	Name     string
	Issuer   string
	Subject  string
	Audience string
	Claims   map[string]string
	JWKS     json.RawMessage
	// Preset is one of the Preset constants; Spec is its argument:
	//   github        OWNER/REPO, OWNER/REPO@REF or OWNER/REPO:environment:ENV
	//   gitlab        GROUP/PROJECT or GROUP/PROJECT@REF (Issuer: the GitLab URL, default https://gitlab.com)
	//   azure-devops  ORG/PROJECT/CONNECTION (Issuer required)
	//   kubernetes    NAMESPACE/SERVICEACCOUNT (Issuer required)
	//   kubernetes-namespace NAMESPACE (Issuer required)
	//   entra         TENANT/APP_OR_OBJECT_ID (Issuer: default EntraIssuer(TENANT))
	Preset string
	Spec   string
}

// NewPipeline returns the pipeline spec describes, with a fresh ID drawn from
// rand, created at now. It returns invalid, saying which part is wrong and how
// to write it, for a bad name, issuer URL, pattern, claim condition or key set,
// or a preset spec that does not have its form.
func NewPipeline(rand io.Reader, spec PipelineSpec, now time.Time) (Pipeline, error) {
	if err := ValidatePipelineName(spec.Name); err != nil {
		return Pipeline{}, err
	}
	p := Pipeline{Name: spec.Name, Issuer: spec.Issuer, Subject: spec.Subject, Audience: spec.Audience,
		Claims: spec.Claims, JWKS: spec.JWKS, Preset: spec.Preset, Created: now}
	if spec.Preset != "" {
		if spec.Subject != "" {
			return Pipeline{}, Errorf(CodeInvalid, "a %s preset sets the subject; --subject cannot be given with it", spec.Preset).
				WithHint("drop --subject, or drop the preset and give --issuer and --subject")
		}
		issuer, subject, err := expandPreset(spec.Preset, spec.Spec, spec.Issuer)
		if err != nil {
			return Pipeline{}, err
		}
		p.Issuer, p.Subject = issuer, subject
		if p.Claims, err = withPresetClaims(spec.Preset, spec.Spec, spec.Claims); err != nil {
			return Pipeline{}, err
		}
	}
	if err := p.Validate(); err != nil {
		return Pipeline{}, err
	}
	id, err := newUUID(rand)
	if err != nil {
		return Pipeline{}, fmt.Errorf("new pipeline %s: %w", spec.Name, err)
	}
	p.ID = id
	return p, nil
}

// Validate returns invalid when p's fields break the rules NewPipeline checks.
func (p Pipeline) Validate() error {
	if err := ValidatePipelineName(p.Name); err != nil {
		return err
	}
	if err := ValidateOutboundURL("issuer", p.Issuer); err != nil {
		return err
	}
	if err := validatePattern("subject", p.Subject); err != nil {
		return err
	}
	if len(p.Audience) > MaxPipelinePatternLength {
		return Errorf(CodeInvalid, "the audience is %d characters long; the limit is %d", len(p.Audience), MaxPipelinePatternLength)
	}
	if len(p.Claims) > MaxPipelineClaims {
		return Errorf(CodeInvalid, "the pipeline has %d claim conditions; the limit is %d", len(p.Claims), MaxPipelineClaims)
	}
	for k, v := range p.Claims {
		if err := validateClaimKey(k, v); err != nil {
			return err
		}
		if err := validatePattern("claim "+k, v); err != nil {
			return err
		}
	}
	if p.JWKS != nil {
		if len(p.JWKS) > MaxPipelineJWKSSize {
			return Errorf(CodeInvalid, "the key set is %d bytes; the limit is %d", len(p.JWKS), MaxPipelineJWKSSize)
		}
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(p.JWKS, &set); err != nil || len(set.Keys) == 0 {
			return Errorf(CodeInvalid, "the key set is not a JSON Web Key Set with at least one key").
				WithHint("pass the issuer's JWKS document, {\"keys\":[…]}, as served at its jwks_uri")
		}
	}
	return nil
}

// reservedClaims are checked by berth on every token; conditions on them would
// be ignored or contradict --issuer, --subject and --audience.
var reservedClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat"}

func validatePattern(what, pattern string) error {
	switch {
	case pattern == "":
		return Errorf(CodeInvalid, "the %s pattern is empty", what).
			WithHint("give the exact value, or a pattern with *, such as 'repo:org/app:ref:refs/heads/*'")
	case len(pattern) > MaxPipelinePatternLength:
		return Errorf(CodeInvalid, "the %s pattern is %d characters long; the limit is %d", what, len(pattern), MaxPipelinePatternLength)
	case strings.ContainsAny(pattern, "\x00\n\r"):
		return Errorf(CodeInvalid, "the %s pattern holds a control character", what)
	}
	return nil
}

// ValidateOutboundURL returns invalid unless s is an absolute https URL, or an
// http URL whose host is loopback (127.0.0.0/8, ::1, localhost), with no user
// information, query or fragment. It is the rule for every URL berth calls out
// to: OIDC issuers and webhooks.
func ValidateOutboundURL(what, s string) error {
	u, err := url.Parse(s)
	hint := fmt.Sprintf("give the %s as an https URL, such as %s", what, outboundExample(what))
	switch {
	case s == "":
		return Errorf(CodeInvalid, "the %s URL is empty", what).WithHint("%s", hint)
	case err != nil || u.Host == "" || !u.IsAbs():
		return Errorf(CodeInvalid, "the %s %q is not an absolute URL", what, shownURL(s)).WithHint("%s", hint)
	case u.User != nil:
		return Errorf(CodeInvalid, "the %s URL holds user information; credentials never go in a URL", what).WithHint("%s", hint)
	case u.RawQuery != "" || u.Fragment != "":
		return Errorf(CodeInvalid, "the %s %q has a query or fragment", what, shownURL(s)).WithHint("%s", hint)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return Errorf(CodeInvalid, "the %s %q is plain http; berth calls out over https only, except on loopback", what, shownURL(s)).WithHint("%s", hint)
	}
	return Errorf(CodeInvalid, "the %s %q has the scheme %q; it must be https", what, shownURL(s), u.Scheme).WithHint("%s", hint)
}

// outboundExample is a URL of the kind what names, for a refusal's hint.
func outboundExample(what string) string {
	switch {
	case strings.HasPrefix(what, "upstream"):
		return "https://registry-1.docker.io"
	case strings.HasPrefix(what, "webhook"):
		return "https://hooks.example.com/berth"
	case strings.Contains(what, "identity provider"):
		return "https://login.microsoftonline.com/TENANT/v2.0"
	case strings.HasPrefix(what, "issuer"):
		return GitHubActionsIssuer
	}
	return "https://" + what + ".example.com"
}

// shownURL is how a refusal quotes a URL it was given: without what may be a
// credential (anything before an '@', a query or fragment), shortened.
func shownURL(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = "…@" + s[i+1:]
	}
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?…"
	}
	return Truncate(s, 120)
}

// IsLoopbackHost reports whether host (without port) is localhost or a
// loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// MatchPattern reports whether s matches pattern, where '*' stands for any run
// of characters (slashes and colons included) and every other character
// stands for itself; the comparison is exact and case-sensitive.
func MatchPattern(pattern, s string) bool {
	// Greedy matching with backtracking to the last star: linear in practice
	// and never exponential.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// expandPreset returns the issuer and subject pattern a CI preset stands for.
func expandPreset(preset, spec, issuer string) (string, string, error) {
	bad := func(form, example string) (string, string, error) {
		return "", "", Errorf(CodeInvalid, "the %s preset %q does not have the form %s", preset, Truncate(spec, 120), form).
			WithHint("such as --%s %s", preset, example)
	}
	needIssuer := func(example string) (string, string, error) {
		return "", "", Errorf(CodeInvalid, "the %s preset needs --issuer: the issuer URL differs per organisation or cluster", preset).
			WithHint("add --issuer %s", example)
	}
	switch preset {
	case PresetGitHub:
		// https://docs.github.com/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect
		repo, env, hasEnv := strings.Cut(spec, ":environment:")
		repo, ref, hasRef := strings.Cut(repo, "@")
		if segments(repo) != 2 || hasEnv && (env == "" || hasRef) || hasRef && ref == "" {
			return bad("OWNER/REPO[@REF|:environment:ENV]", "org/app@main")
		}
		if issuer == "" {
			issuer = GitHubActionsIssuer
		}
		switch {
		case hasEnv:
			return issuer, "repo:" + repo + ":environment:" + env, nil
		case hasRef:
			return issuer, "repo:" + repo + ":ref:" + qualifyRef(ref), nil
		}
		return issuer, "repo:" + repo + ":*", nil
	case PresetGitLab:
		// https://docs.gitlab.com/ci/secrets/id_token_authentication/
		project, ref, hasRef := strings.Cut(spec, "@")
		if segments(project) < 2 || hasRef && ref == "" {
			return bad("GROUP/PROJECT[@REF]", "group/app@main")
		}
		if issuer == "" {
			issuer = GitLabIssuer
		}
		if hasRef {
			return issuer, "project_path:" + project + ":ref_type:*:ref:" + strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "refs/tags/"), nil
		}
		return issuer, "project_path:" + project + ":*", nil
	case PresetAzureDevOps:
		// https://learn.microsoft.com/azure/devops/pipelines/release/configure-workload-identity
		if segments(spec) != 3 {
			return bad("ORG/PROJECT/CONNECTION", "contoso/web/berth")
		}
		if issuer == "" {
			return needIssuer("https://vstoken.dev.azure.com/ORGANIZATION_ID")
		}
		return issuer, "sc://" + spec, nil
	case PresetKubernetes:
		// https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/#bound-service-account-tokens
		ns, name, ok := strings.Cut(spec, "/")
		if !ok || !ValidKubernetesName(ns, false) || !ValidKubernetesName(name, true) {
			return bad("NAMESPACE/SERVICEACCOUNT", "ci/builder")
		}
		if issuer == "" {
			return needIssuer("https://kubernetes.default.svc.cluster.local")
		}
		return issuer, "system:serviceaccount:" + ns + ":" + name, nil
	case PresetKubernetesNamespace:
		if !ValidKubernetesName(spec, false) {
			return bad("NAMESPACE", "ci")
		}
		if issuer == "" {
			return needIssuer("https://kubernetes.default.svc.cluster.local")
		}
		return issuer, "system:serviceaccount:" + spec + ":*", nil
	case PresetEntra:
		issuer, subject, _, err := expandEntra(spec, issuer)
		return issuer, subject, err
	}
	return "", "", Errorf(CodeInvalid, "the preset %q is unknown; berth knows %s, %s, %s, %s, %s and %s",
		Truncate(preset, 40), PresetGitHub, PresetGitLab, PresetAzureDevOps, PresetKubernetes, PresetKubernetesNamespace, PresetEntra)
}

// Claims of the kubernetes.io claim of a service-account token, as the API
// server writes it: {"namespace": NS, "serviceaccount": {"name", "uid"},
// "pod": {"name", "uid"}, "node": {"name", "uid"}}; pod and node are there
// when the token is bound to a pod, as the tokens the kubelet requests for
// image credential providers are. Conditions name them by their path
// (Assertion.ClaimString).
const (
	ClaimKubernetesNamespace      = "kubernetes.io.namespace"
	ClaimKubernetesServiceAccount = "kubernetes.io.serviceaccount.name"
)

// withPresetClaims returns claims with the conditions the preset adds: the
// Kubernetes presets check the namespace and service account in the token's
// kubernetes.io claim as well as in its subject, so that the pipeline holds
// only tokens the API server minted for a service account. A condition the
// caller gave on one of those claims is invalid.
func withPresetClaims(preset, spec string, claims map[string]string) (map[string]string, error) {
	var add map[string]string
	switch preset {
	case PresetKubernetes:
		ns, name, _ := strings.Cut(spec, "/")
		add = map[string]string{ClaimKubernetesNamespace: ns, ClaimKubernetesServiceAccount: name}
	case PresetKubernetesNamespace:
		add = map[string]string{ClaimKubernetesNamespace: spec}
	case PresetEntra:
		_, _, add, _ = expandEntra(spec, "")
	default:
		return claims, nil
	}
	out := make(map[string]string, len(claims)+len(add))
	for k, v := range claims {
		if _, ok := add[k]; ok {
			return nil, Errorf(CodeInvalid, "the %s preset sets the condition %s=%s; --claim %s cannot be given with it", preset, k, add[k], k).
				WithHint("drop --claim %s", k)
		}
		out[k] = v
	}
	for k, v := range add {
		out[k] = v
	}
	return out, nil
}

// ValidKubernetesName reports whether s is a Kubernetes object name: a DNS
// label (a namespace) or, with dots set, a DNS subdomain (a service account, a
// secret).
func ValidKubernetesName(s string, dots bool) bool {
	if s == "" || len(s) > 253 || !dots && len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '-' || dots && c == '.') && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

// segments returns how many '/'-separated parts s has, or 0 when a part is
// empty or holds a space, '*', ':' or '@'.
func segments(s string) int {
	parts := strings.Split(s, "/")
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, " *:@\t") {
			return 0
		}
	}
	return len(parts)
}

// qualifyRef turns a branch name into its full ref ("main" → "refs/heads/main");
// a full ref or a pattern starting with "refs/" stays as it is.
func qualifyRef(ref string) string {
	if strings.HasPrefix(ref, "refs/") {
		return ref
	}
	return "refs/heads/" + ref
}

// Assertion is what berth reads from a CI job's ID token once its signature
// and issuer are verified: the registered claims, and every claim for the
// pipeline's conditions.
type Assertion struct {
	Issuer    string
	Subject   string
	Audience  []string
	IssuedAt  time.Time
	NotBefore time.Time
	Expires   time.Time
	// Claims holds every claim of the token, as decoded from JSON.
	Claims map[string]any
}

// CheckTime returns assertion_expired when the token expired more than
// AssertionLeeway before now, or is not valid yet by more than that, giving
// the current time and the token's validity window.
func (a Assertion) CheckTime(now time.Time) error {
	window := func() string {
		from := a.NotBefore
		if from.IsZero() {
			from = a.IssuedAt
		}
		if from.IsZero() {
			return "until " + formatTime(a.Expires)
		}
		return "from " + formatTime(from) + " to " + formatTime(a.Expires)
	}
	switch {
	case a.Expires.IsZero():
		return Errorf(CodeAssertionInvalid, "the ID token has no exp claim; berth accepts only tokens that expire").
			WithHint("use the ID token the CI system issues for the job")
	case now.After(a.Expires.Add(AssertionLeeway)):
		return Errorf(CodeAssertionExpired, "the ID token expired at %s, %s ago; it was valid %s, and it is now %s",
			formatTime(a.Expires), ago(now.Sub(a.Expires)), window(), formatTime(now)).
			WithHint("request the ID token right before the exchange: berth login HOST --connection NAME fetches a fresh one").
			WithDetail("expired_at", formatTime(a.Expires)).WithDetail("now", formatTime(now))
	case !a.NotBefore.IsZero() && now.Add(AssertionLeeway).Before(a.NotBefore),
		a.NotBefore.IsZero() && !a.IssuedAt.IsZero() && now.Add(AssertionLeeway).Before(a.IssuedAt):
		return Errorf(CodeAssertionExpired, "the ID token is not valid yet: it is valid %s, and it is now %s; the clocks of the CI runner's issuer and this server disagree",
			window(), formatTime(now)).
			WithHint("synchronise the server's clock (NTP)").WithDetail("now", formatTime(now))
	}
	return nil
}

// ClaimString returns the claim's value as text: a string as it is, a number
// or boolean in its JSON form; ok is false when the claim is absent or an
// object or array. A name that is not a claim of its own is a path into
// nested objects, dot-separated: "kubernetes.io.serviceaccount.uid" is the
// uid of the serviceaccount of the kubernetes.io claim. Where a dot could
// separate levels or belong to a name, the shorter name is tried first.
func (a Assertion) ClaimString(name string) (string, bool) {
	return claimString(a.Claims, name)
}

func claimString(claims map[string]any, name string) (string, bool) {
	v, ok := claims[name]
	for i := 0; !ok && i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		if inner, isObj := claims[name[:i]].(map[string]any); isObj {
			if s, found := claimString(inner, name[i+1:]); found {
				return s, true
			}
		}
	}
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// Run returns what identifies the CI run that minted the token, for the audit
// log and connection history: GitHub Actions' run_id (and attempt), GitLab's
// pipeline and job ids, Azure Pipelines' and Kubernetes' token id; "" when the
// token carries none of these.
func (a Assertion) Run() string {
	get := func(k string) string { v, _ := a.ClaimString(k); return v }
	switch {
	case get("run_id") != "":
		r := "run " + get("run_id")
		if at := get("run_attempt"); at != "" && at != "1" {
			r += " attempt " + at
		}
		if wf := get("workflow"); wf != "" {
			r = wf + " " + r
		}
		return Truncate(r, 200)
	case get("pipeline_id") != "":
		r := "pipeline " + get("pipeline_id")
		if j := get("job_id"); j != "" {
			r += " job " + j
		}
		return Truncate(r, 200)
	case get("jti") != "":
		return "token " + Truncate(get("jti"), 100)
	}
	return ""
}

// RunURL is the web page of the CI run a's claims name, when they name one
// on a CI system whose run pages berth knows: a GitHub Actions run
// (https://github.com/REPO/actions/runs/ID[/attempts/N], or the GitHub
// Enterprise Server host the issuer is on) or a GitLab CI job
// (ISSUER/PROJECT/-/jobs/ID, else its pipeline). "" otherwise, and for
// claims that would not make a plain https path.
func (a Assertion) RunURL() string {
	get := func(k string) string { v, _ := a.ClaimString(k); return v }
	u, err := url.Parse(a.Issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return ""
	}
	switch repo, run := get("repository"), get("run_id"); {
	case repo != "" && run != "":
		base := "https://" + u.Host
		switch {
		case u.Host == "token.actions.githubusercontent.com" && u.Path == "":
			base = "https://github.com"
		case u.Path != "/_services/token":
			return "" // not an issuer of GitHub's
		}
		if !isRunPath(repo) || !runID.MatchString(run) {
			return ""
		}
		out := base + "/" + repo + "/actions/runs/" + run
		if at := get("run_attempt"); runID.MatchString(at) && at != "1" {
			out += "/attempts/" + at
		}
		return out
	}
	project := get("project_path")
	if !isRunPath(project) {
		return ""
	}
	base := "https://" + u.Host + strings.TrimSuffix(u.Path, "/") + "/" + project
	if job := get("job_id"); runID.MatchString(job) {
		return base + "/-/jobs/" + job
	}
	if p := get("pipeline_id"); runID.MatchString(p) {
		return base + "/-/pipelines/" + p
	}
	return ""
}

// runPath and runID are what RunURL puts into a path: a repository or
// project path (names of letters, digits and ._- under slashes) and a number.
var (
	runPath = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
	runID   = regexp.MustCompile(`^[0-9]{1,20}$`)
)

// isRunPath reports whether p is a repository or project path RunURL may
// put into a URL: runPath, and no segment "." or "..".
func isRunPath(p string) bool {
	return len(p) <= 300 && runPath.MatchString(p) && !slices.ContainsFunc(strings.Split(p, "/"), func(s string) bool { return s == "." || s == ".." })
}

// mismatch says why p does not accept a, or "" when it does. audience is set
// when everything but the audience matched.
func (p Pipeline) mismatch(a Assertion, service string) (why string, audience bool) {
	if a.Issuer != p.Issuer {
		return fmt.Sprintf("issuer is %s, not %s", p.Issuer, a.Issuer), false
	}
	if !MatchPattern(p.Subject, a.Subject) {
		return fmt.Sprintf("subject pattern %q does not match", p.Subject), false
	}
	keys := make([]string, 0, len(p.Claims))
	for k := range p.Claims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if why := a.matchClaim(k, p.Claims[k]); why != "" {
			return why, false
		}
	}
	want := p.Audience
	if want == "" {
		want = service
	}
	if !slices.Contains(a.Audience, want) {
		return fmt.Sprintf("audience %q is not among the token's %q", want, a.Audience), true
	}
	return "", false
}

// MatchPipeline returns the pipeline, among those registered, that accepts
// the verified token a; service is the registry's service name, the audience
// of pipelines registered without one. When several accept it, the first by
// name wins.
//
// When none accepts it, it returns audience_mismatch when a pipeline matches
// issuer, subject and claims but not the audience (the first such by name),
// and pipeline_unknown otherwise, quoting the token's issuer, subject and
// audience. Neither names a registered pipeline to the caller, whose token
// anyone with an account at the CI system can mint: the pipeline (or the
// closest ones and why each refused, so that a branch-versus-environment
// subject is plain to see) is in the error's Private detail, for the audit
// log.
func MatchPipeline(pipelines []Pipeline, a Assertion, service string) (Pipeline, error) {
	sorted := slices.Clone(pipelines)
	slices.SortFunc(sorted, func(x, y Pipeline) int { return strings.Compare(x.Name, y.Name) })
	type near struct {
		p     Pipeline
		why   string
		score int
	}
	var nears []near
	// The first pipeline missing only the audience is the refusal, unless a
	// later one accepts the token.
	var audErr error
	for _, p := range sorted {
		why, aud := p.mismatch(a, service)
		if why == "" {
			return p, nil
		}
		if aud {
			if audErr != nil {
				continue
			}
			want := p.Audience
			if want == "" {
				want = service
			}
			audErr = Errorf(CodeAudienceMismatch, "the ID token from %s for %s is for the audience %q; the pipeline that matches its issuer and subject expects %q",
				a.Issuer, a.Subject, a.Audience, want).
				WithHint("request the ID token for the audience %s (berth login --connection does so), or ask an owner to register the audience the job sends (berth pipeline create NAME --issuer %s --subject %s --audience AUDIENCE)", want, ShellQuote(a.Issuer), ShellQuote(a.Subject)).
				WithDetail("expected_audience", want).WithDetail("token_audience", strings.Join(a.Audience, " ")).
				WithPrivate("pipeline", p.Name)
			continue
		}
		score := commonPrefix(p.Subject, a.Subject)
		if p.Issuer == a.Issuer {
			score += 1000
		}
		nears = append(nears, near{p, why, score})
	}
	if audErr != nil {
		return Pipeline{}, audErr
	}
	sort.SliceStable(nears, func(i, j int) bool { return nears[i].score > nears[j].score })
	if len(nears) > 3 {
		nears = nears[:3]
	}
	// The closest pipelines name the organisation's repositories: they go to
	// the audit log, where an owner reads them, never to the caller.
	var b strings.Builder
	for _, n := range nears {
		fmt.Fprintf(&b, "%s (subject %q: %s); ", n.p.Name, n.p.Subject, n.why)
	}
	closest := strings.TrimSuffix(b.String(), "; ")
	if closest == "" {
		closest = "no pipeline is registered"
	}
	register := fmt.Sprintf("berth pipeline create NAME --issuer %s --subject %s", ShellQuote(a.Issuer), ShellQuote(a.Subject))
	if tenant, id, ok := entraIdentity(a); ok {
		register = fmt.Sprintf("berth pipeline create NAME --entra %s/%s", tenant, id)
		if a.Issuer != EntraIssuer(tenant) {
			register += " --issuer " + a.Issuer // a v1.0 token
		}
	}
	return Pipeline{}, Errorf(CodePipelineUnknown, "no registered pipeline matches the ID token with issuer %s, subject %q and audience %q", a.Issuer, a.Subject, a.Audience).
		WithHint("ask an owner of the registry to register this job (%s); berth audit --code pipeline_unknown shows them the closest pipelines", register).
		WithDetail("issuer", a.Issuer).WithDetail("subject", a.Subject).WithDetail("audience", strings.Join(a.Audience, " ")).
		WithPrivate("closest", closest)
}

// entraIdentity returns the tenant and object id of an Entra ID token (v2.0
// or v1.0 issuer, tid and oid claims), for a hint naming --entra.
func entraIdentity(a Assertion) (tenant, oid string, ok bool) {
	tid, _ := a.Claims["tid"].(string)
	oid, _ = a.Claims["oid"].(string)
	if tid == "" || oid == "" || (a.Issuer != EntraIssuer(tid) && a.Issuer != "https://sts.windows.net/"+tid+"/") {
		return "", "", false
	}
	if _, err := parseUUID(tid); err != nil {
		return "", "", false
	}
	if _, err := parseUUID(oid); err != nil {
		return "", "", false
	}
	return tid, oid, true
}

func commonPrefix(x, y string) int {
	n := 0
	for n < len(x) && n < len(y) && x[n] == y[n] {
		n++
	}
	return n
}

// PipelineStore persists pipelines. It decides nothing: pipelines arrive
// validated.
type PipelineStore interface {
	// CreatePipeline stores p; conflict when a pipeline with its ID or Name
	// exists, and then nothing changes.
	CreatePipeline(ctx context.Context, p Pipeline) error
	// FindPipelineByID returns the pipeline with this ID, or not_found.
	FindPipelineByID(ctx context.Context, id string) (Pipeline, error)
	// FindPipelineByName returns the pipeline with this name, or not_found.
	FindPipelineByName(ctx context.Context, name string) (Pipeline, error)
	// FindPipelines returns the pipelines that f selects, ordered by name.
	FindPipelines(ctx context.Context, f PipelineFilter) ([]Pipeline, error)
	// UpdatePipelineKeys sets the key set the pipeline pins (nil: none, the
	// issuer's published keys), keeping everything else, its permissions
	// included, or returns not_found.
	UpdatePipelineKeys(ctx context.Context, id string, jwks json.RawMessage) error
	// DeletePipeline removes the pipeline, its permissions on every connection
	// and its pending permission requests, in one transaction, or returns
	// not_found.
	DeletePipeline(ctx context.Context, id string) error
}

// PipelineFilter selects pipelines; the zero filter selects all of them.
type PipelineFilter struct {
	// Issuer, when set, selects pipelines whose Issuer equals it.
	Issuer string
}

// IssuerChecker loads the signing keys of a pipeline's issuer, as an exchange
// would: for berth connection verify.
type IssuerChecker interface {
	// CheckIssuer fetches p's issuer discovery document and key set (or reads
	// p.JWKS) and returns how many keys it holds, or assertion_invalid saying
	// what could not be reached or read.
	CheckIssuer(ctx context.Context, p Pipeline) (keys int, err error)
}

// ShellQuote returns s as one single-quoted POSIX shell word, so that a hint
// quoting a value taken from a token (a subject naming a branch, say) is a
// command that runs as written, whatever characters the value holds.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
