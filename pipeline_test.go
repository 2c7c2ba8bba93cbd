package berth_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestMatchPattern(t *testing.T) {
	const sub = "repo:org/app:ref:refs/heads/main"
	tests := []struct {
		pattern, s string
		want       bool
	}{
		// No star: the whole string, exactly and case-sensitively.
		{sub, sub, true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"abc", "abcd", false},
		{"repo:org/app:ref:refs/heads/Main", sub, false},
		{"", "", true},
		{"", "a", false},
		{"a", "", false},
		// One star, at the end, the start or in the middle.
		{"repo:org/app:*", sub, true},
		{"repo:org/app:*", "repo:org/app:", true},
		{"repo:org/app:*", "repo:org/app", false},
		{"repo:org/app:*", "repo:org/app-other:ref:refs/heads/main", false},
		{"*:ref:refs/heads/main", sub, true},
		{"*:ref:refs/heads/main", "repo:org/app:ref:refs/heads/main2", false},
		{"repo:org/*:ref:refs/heads/main", sub, true},
		{"repo:org/*:ref:refs/heads/main", "repo:org/app:ref:refs/heads/dev", false},
		{"repo:org/*:ref:refs/heads/main", "repo:org/team/app:ref:refs/heads/main", true}, // '*' spans slashes
		{"*", "", true},
		{"*", "anything/with:colons", true},
		// Several stars, and patterns that need backtracking.
		{"repo:*:ref:refs/heads/*", sub, true},
		{"repo:*:ref:refs/tags/*", sub, false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbY", false},
		{"a**b", "ab", true},
		{"**", "x", true},
		{"*a*", "bab", true},
		{"*a*", "bbb", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"*ab", "aab", true},
		{"*aab", "aaab", true},
		{"a*b*b", "abbb", true},
		{"a*b*b", "ab", false},
	}
	for _, tt := range tests {
		if got := berth.MatchPattern(tt.pattern, tt.s); got != tt.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestMatchPatternIsNotExponential(t *testing.T) {
	pattern := strings.Repeat("a*", 30) + "b"
	s := strings.Repeat("a", 500)
	start := time.Now()
	if berth.MatchPattern(pattern, s) {
		t.Fatal("matched a string without b")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("MatchPattern took %v", d)
	}
}

func TestPipelinePresets(t *testing.T) {
	const (
		k8sIssuer = "https://kubernetes.default.svc.cluster.local"
		adoIssuer = "https://vstoken.dev.azure.com/00000000-0000-0000-0000-000000000001"
		ghes      = "https://ghe.example.com/_services/token"
		gitlab    = "https://gitlab.example.com"
	)
	tests := []struct {
		preset, spec, issuer string
		wantIssuer, wantSub  string // wantSub "" means invalid
	}{
		{berth.PresetGitHub, "org/app", "", berth.GitHubActionsIssuer, "repo:org/app:*"},
		{berth.PresetGitHub, "org/app@main", "", berth.GitHubActionsIssuer, "repo:org/app:ref:refs/heads/main"},
		{berth.PresetGitHub, "org/app@release/*", "", berth.GitHubActionsIssuer, "repo:org/app:ref:refs/heads/release/*"},
		{berth.PresetGitHub, "org/app@refs/tags/v1", "", berth.GitHubActionsIssuer, "repo:org/app:ref:refs/tags/v1"},
		{berth.PresetGitHub, "org/app:environment:prod", "", berth.GitHubActionsIssuer, "repo:org/app:environment:prod"},
		{berth.PresetGitHub, "org/app@main", ghes, ghes, "repo:org/app:ref:refs/heads/main"},
		{berth.PresetGitHub, "org", "", "", ""},
		{berth.PresetGitHub, "org/app/extra", "", "", ""},
		{berth.PresetGitHub, "org//app", "", "", ""},
		{berth.PresetGitHub, "/app", "", "", ""},
		{berth.PresetGitHub, "org/app@", "", "", ""},
		{berth.PresetGitHub, "org/app:environment:", "", "", ""},
		{berth.PresetGitHub, "org/app@main:environment:prod", "", "", ""},
		{berth.PresetGitHub, "org/*", "", "", ""},
		{berth.PresetGitHub, "org/my app", "", "", ""},
		{berth.PresetGitHub, "", "", "", ""},

		{berth.PresetGitLab, "group/app", "", berth.GitLabIssuer, "project_path:group/app:*"},
		{berth.PresetGitLab, "group/sub/deeper/app", "", berth.GitLabIssuer, "project_path:group/sub/deeper/app:*"},
		{berth.PresetGitLab, "group/app@main", "", berth.GitLabIssuer, "project_path:group/app:ref_type:*:ref:main"},
		{berth.PresetGitLab, "group/sub/app@refs/heads/main", "", berth.GitLabIssuer, "project_path:group/sub/app:ref_type:*:ref:main"},
		{berth.PresetGitLab, "group/app@refs/tags/v1", "", berth.GitLabIssuer, "project_path:group/app:ref_type:*:ref:v1"},
		{berth.PresetGitLab, "group/app", gitlab, gitlab, "project_path:group/app:*"},
		{berth.PresetGitLab, "app", "", "", ""},
		{berth.PresetGitLab, "group/app@", "", "", ""},
		{berth.PresetGitLab, "group//app", "", "", ""},

		{berth.PresetAzureDevOps, "contoso/web/berth", adoIssuer, adoIssuer, "sc://contoso/web/berth"},
		{berth.PresetAzureDevOps, "contoso/web/berth", "", "", ""}, // needs --issuer
		{berth.PresetAzureDevOps, "contoso/web", adoIssuer, "", ""},
		{berth.PresetAzureDevOps, "contoso/web/berth/x", adoIssuer, "", ""},

		{berth.PresetKubernetes, "ci/builder", k8sIssuer, k8sIssuer, "system:serviceaccount:ci:builder"},
		{berth.PresetKubernetes, "ci/builder", "", "", ""}, // needs --issuer
		{berth.PresetKubernetes, "ci", k8sIssuer, "", ""},
		{berth.PresetKubernetes, "ci/builder/x", k8sIssuer, "", ""},
		{berth.PresetKubernetes, "/builder", k8sIssuer, "", ""},
		{berth.PresetKubernetes, "ci/", k8sIssuer, "", ""},
		{berth.PresetKubernetes, "CI/builder", k8sIssuer, "", ""},
		{berth.PresetKubernetes, "ci/builder:x", k8sIssuer, "", ""},
		{berth.PresetKubernetes, "ci/build.er", k8sIssuer, k8sIssuer, "system:serviceaccount:ci:build.er"},
		{berth.PresetKubernetesNamespace, "ci", k8sIssuer, k8sIssuer, "system:serviceaccount:ci:*"},
		{berth.PresetKubernetesNamespace, "ci", "", "", ""}, // needs --issuer
		{berth.PresetKubernetesNamespace, "ci/builder", k8sIssuer, "", ""},
		{berth.PresetKubernetesNamespace, "c*", k8sIssuer, "", ""},
		{berth.PresetKubernetesNamespace, "ci.x", k8sIssuer, "", ""},
		{berth.PresetKubernetesNamespace, "-ci", k8sIssuer, "", ""},
		{berth.PresetKubernetesNamespace, "", k8sIssuer, "", ""},

		{"jenkins", "org/app", berth.GitHubActionsIssuer, "", ""},
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		name := fmt.Sprintf("%s %q issuer %q", tt.preset, tt.spec, tt.issuer)
		p, err := berth.NewPipeline(rand.Reader, berth.PipelineSpec{Name: "web", Preset: tt.preset, Spec: tt.spec, Issuer: tt.issuer}, now)
		if tt.wantSub == "" {
			if !berth.IsCode(err, berth.CodeInvalid) {
				t.Errorf("%s: got %+v, %v; want invalid", name, p, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if p.Issuer != tt.wantIssuer || p.Subject != tt.wantSub || p.Preset != tt.preset {
			t.Errorf("%s: got issuer %q subject %q preset %q, want %q %q %q", name, p.Issuer, p.Subject, p.Preset, tt.wantIssuer, tt.wantSub, tt.preset)
		}
	}
}

// kubeletToken is the assertion of a service-account token the API server
// mints when the kubelet asks for one for an image credential provider:
// bound to the pod, with the kubernetes.io claim
// (https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/#bound-service-account-tokens).
func kubeletToken(issuer, ns, sa, aud string, now time.Time) berth.Assertion {
	return berth.Assertion{
		Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":" + sa, Audience: []string{aud},
		IssuedAt: now, NotBefore: now, Expires: now.Add(time.Hour),
		Claims: map[string]any{
			"kubernetes.io": map[string]any{
				"namespace":      ns,
				"serviceaccount": map[string]any{"name": sa, "uid": "4d2a1e0c-6b8f-4c1e-9a57-0e3c2b1d9f10"},
				"pod":            map[string]any{"name": "web-7d9c", "uid": "a1b2c3d4-0000-4000-8000-000000000001"},
				"node":           map[string]any{"name": "node-1", "uid": "a1b2c3d4-0000-4000-8000-000000000002"},
			},
		},
	}
}

// TestKubernetesPresetsMatchKubeletTokens: the Kubernetes presets accept the
// token the API server mints for the kubelet for the service accounts they
// name, with their conditions on the kubernetes.io claim, and refuse the
// others; a condition on a nested claim (the service account's uid) works.
func TestKubernetesPresetsMatchKubeletTokens(t *testing.T) {
	const iss, aud = "https://kubernetes.default.svc.cluster.local", "registry.example.com"
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	newPipeline := func(name, preset, spec string, claims map[string]string) berth.Pipeline {
		t.Helper()
		p, err := berth.NewPipeline(rand.Reader, berth.PipelineSpec{Name: name, Preset: preset, Spec: spec, Issuer: iss, Claims: claims}, now)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	sa := newPipeline("ci-builder", berth.PresetKubernetes, "ci/builder", nil)
	if sa.Claims[berth.ClaimKubernetesNamespace] != "ci" || sa.Claims[berth.ClaimKubernetesServiceAccount] != "builder" {
		t.Errorf("--kubernetes ci/builder conditions: %v", sa.Claims)
	}
	ns := newPipeline("ci-all", berth.PresetKubernetesNamespace, "ci", nil)
	if len(ns.Claims) != 1 || ns.Claims[berth.ClaimKubernetesNamespace] != "ci" {
		t.Errorf("--kubernetes-namespace ci conditions: %v", ns.Claims)
	}
	pinned := newPipeline("ci-pinned", berth.PresetKubernetes, "ci/pinned", map[string]string{"kubernetes.io.serviceaccount.uid": "4d2a1e0c-6b8f-4c1e-9a57-0e3c2b1d9f10"})
	stale := newPipeline("ci-stale", berth.PresetKubernetes, "ci/stale", map[string]string{"kubernetes.io.serviceaccount.uid": "00000000-0000-4000-8000-000000000000"})

	// A token whose subject names the namespace but whose kubernetes.io
	// claim does not, as no API server mints, matches neither preset.
	forged := kubeletToken(iss, "ci", "builder", aud, now)
	forged.Claims = map[string]any{"kubernetes.io": map[string]any{"namespace": "other"}}
	tests := []struct {
		name      string
		pipelines []berth.Pipeline
		token     berth.Assertion
		want      string // the pipeline, or "" for pipeline_unknown
	}{
		{"service account", []berth.Pipeline{sa}, kubeletToken(iss, "ci", "builder", aud, now), "ci-builder"},
		{"other service account", []berth.Pipeline{sa}, kubeletToken(iss, "ci", "deployer", aud, now), ""},
		{"namespace", []berth.Pipeline{ns}, kubeletToken(iss, "ci", "deployer", aud, now), "ci-all"},
		{"other namespace", []berth.Pipeline{ns}, kubeletToken(iss, "cix", "builder", aud, now), ""},
		{"uid pinned", []berth.Pipeline{pinned}, kubeletToken(iss, "ci", "pinned", aud, now), "ci-pinned"},
		{"recreated service account", []berth.Pipeline{stale}, kubeletToken(iss, "ci", "stale", aud, now), ""},
		{"claims disagree with subject", []berth.Pipeline{sa, ns}, forged, ""},
	}
	for _, tt := range tests {
		p, err := berth.MatchPipeline(tt.pipelines, tt.token, aud)
		switch {
		case tt.want == "" && !berth.IsCode(err, berth.CodePipelineUnknown):
			t.Errorf("%s: matched %q, %v; want pipeline_unknown", tt.name, p.Name, err)
		case tt.want != "" && (err != nil || p.Name != tt.want):
			t.Errorf("%s: matched %q, %v; want %s", tt.name, p.Name, err, tt.want)
		}
	}

	_, err := berth.NewPipeline(rand.Reader, berth.PipelineSpec{Name: "x", Preset: berth.PresetKubernetesNamespace, Spec: "ci", Issuer: iss,
		Claims: map[string]string{berth.ClaimKubernetesNamespace: "*"}}, now)
	if !berth.IsCode(err, berth.CodeInvalid) {
		t.Errorf("--kubernetes-namespace with --claim %s: %v, want invalid", berth.ClaimKubernetesNamespace, err)
	}
}

func TestPresetWithSubjectIsInvalid(t *testing.T) {
	_, err := berth.NewPipeline(rand.Reader, berth.PipelineSpec{Name: "web", Preset: berth.PresetGitHub, Spec: "org/app",
		Subject: "repo:org/app:*"}, time.Now())
	if !berth.IsCode(err, berth.CodeInvalid) {
		t.Errorf("a preset with a subject: got %v, want invalid", err)
	}
}

func TestValidateOutboundURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://token.actions.githubusercontent.com", true},
		{"https://gitlab.example.com:8443/path", true},
		{"https://vstoken.dev.azure.com/00000000-0000-0000-0000-000000000001", true},
		{"http://127.0.0.1:8080", true},
		{"http://127.5.6.7/issuer", true},
		{"http://[::1]:9000", true},
		{"http://[::1]", true},
		{"http://localhost:3000/oidc", true},
		{"http://LOCALHOST", true},

		{"http://example.com", false},
		{"http://10.0.0.1", false},
		{"http://[::2]", false},
		{"http://localhost.example.com", false},
		{"http://127.0.0.1.nip.io", false},
		{"https://user:pass@example.com", false},
		{"https://user@example.com", false},
		{"http://user@localhost", false},
		{"https://example.com?tenant=1", false},
		{"https://example.com/#frag", false},
		{"", false},
		{"example.com", false},
		{"/issuer", false},
		{"https://", false},
		{"ftp://example.com", false},
		{"HTTPS://example.com", true}, // url.Parse lower-cases the scheme
		{"https://exa mple.com", false},
	}
	for _, tt := range tests {
		err := berth.ValidateOutboundURL("issuer", tt.url)
		switch {
		case tt.ok && err != nil:
			t.Errorf("ValidateOutboundURL(%q) = %v, want nil", tt.url, err)
		case !tt.ok && !berth.IsCode(err, berth.CodeInvalid):
			t.Errorf("ValidateOutboundURL(%q) = %v, want invalid", tt.url, err)
		}
	}
	// The hint's example is a URL of the kind asked for.
	for what, want := range map[string]string{"upstream": "https://registry-1.docker.io", "webhook": "https://hooks.example.com/",
		"issuer": berth.GitHubActionsIssuer, "issuer of identity provider corp": "https://login.microsoftonline.com/"} {
		if err := berth.AsError(berth.ValidateOutboundURL(what, "http://10.0.0.1:5100")); err == nil || !strings.Contains(err.Hint, want) {
			t.Errorf("the %s hint: %v, want it to name %s", what, err, want)
		}
	}
}

func validPipelineSpec() berth.PipelineSpec {
	return berth.PipelineSpec{Name: "web", Issuer: berth.GitHubActionsIssuer, Subject: "repo:org/app:ref:refs/heads/main"}
}

func TestNewPipeline(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	spec := validPipelineSpec()
	spec.Audience = "registry.example.com"
	spec.Claims = map[string]string{"ref_protected": "true", "workflow": "deploy*"}
	spec.JWKS = json.RawMessage(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`)
	p, err := berth.NewPipeline(rand.Reader, spec, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != spec.Name || p.Issuer != spec.Issuer || p.Subject != spec.Subject || p.Audience != spec.Audience ||
		len(p.Claims) != 2 || string(p.JWKS) != string(spec.JWKS) || !p.Created.Equal(now) || p.Preset != "" {
		t.Errorf("NewPipeline = %+v", p)
	}
	if len(p.ID) != 36 {
		t.Errorf("ID %q is not a UUID", p.ID)
	}
	other, err := berth.NewPipeline(rand.Reader, spec, now)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == p.ID {
		t.Errorf("two pipelines share the ID %s", p.ID)
	}
}

func TestNewPipelineInvalid(t *testing.T) {
	manyClaims := map[string]string{}
	for i := range berth.MaxPipelineClaims + 1 {
		manyClaims[fmt.Sprintf("c%d", i)] = "x"
	}
	tests := []struct {
		name   string
		change func(*berth.PipelineSpec)
	}{
		{"empty name", func(s *berth.PipelineSpec) { s.Name = "" }},
		{"upper-case name", func(s *berth.PipelineSpec) { s.Name = "Web" }},
		{"name with a space", func(s *berth.PipelineSpec) { s.Name = "my web" }},
		{"no issuer", func(s *berth.PipelineSpec) { s.Issuer = "" }},
		{"plain http issuer", func(s *berth.PipelineSpec) { s.Issuer = "http://token.example.com" }},
		{"empty subject", func(s *berth.PipelineSpec) { s.Subject = "" }},
		{"subject too long", func(s *berth.PipelineSpec) { s.Subject = strings.Repeat("a", berth.MaxPipelinePatternLength+1) }},
		{"subject with a newline", func(s *berth.PipelineSpec) { s.Subject = "repo:org/app\n:*" }},
		{"audience too long", func(s *berth.PipelineSpec) { s.Audience = strings.Repeat("a", berth.MaxPipelinePatternLength+1) }},
		{"claim iss", func(s *berth.PipelineSpec) { s.Claims = map[string]string{"iss": "https://x"} }},
		{"claim sub", func(s *berth.PipelineSpec) { s.Claims = map[string]string{"sub": "*"} }},
		{"claim aud", func(s *berth.PipelineSpec) { s.Claims = map[string]string{"aud": "registry"} }},
		{"claim exp", func(s *berth.PipelineSpec) { s.Claims = map[string]string{"exp": "1"} }},
		{"claim nbf", func(s *berth.PipelineSpec) { s.Claims = map[string]string{"nbf": "1"} }},
		{"claim iat", func(s *berth.PipelineSpec) { s.Claims = map[string]string{"iat": "1"} }},
		{"claim without a name", func(s *berth.PipelineSpec) { s.Claims = map[string]string{"": "x"} }},
		{"claim name with '='", func(s *berth.PipelineSpec) { s.Claims = map[string]string{"a=b": "x"} }},
		{"claim name with a space", func(s *berth.PipelineSpec) { s.Claims = map[string]string{"a b": "x"} }},
		{"claim with an empty pattern", func(s *berth.PipelineSpec) { s.Claims = map[string]string{"ref": ""} }},
		{"too many claims", func(s *berth.PipelineSpec) { s.Claims = manyClaims }},
		{"JWKS not JSON", func(s *berth.PipelineSpec) { s.JWKS = json.RawMessage(`not json`) }},
		{"JWKS empty", func(s *berth.PipelineSpec) { s.JWKS = json.RawMessage(``) }},
		{"JWKS without keys", func(s *berth.PipelineSpec) { s.JWKS = json.RawMessage(`{"keys":[]}`) }},
		{"JWKS an object without keys", func(s *berth.PipelineSpec) { s.JWKS = json.RawMessage(`{}`) }},
		{"JWKS a single key", func(s *berth.PipelineSpec) { s.JWKS = json.RawMessage(`{"kty":"RSA","n":"x","e":"AQAB"}`) }},
		{"JWKS an array", func(s *berth.PipelineSpec) { s.JWKS = json.RawMessage(`[{}]`) }},
		{"JWKS too large", func(s *berth.PipelineSpec) {
			s.JWKS = json.RawMessage(`{"keys":[{"x":"` + strings.Repeat("a", berth.MaxPipelineJWKSSize) + `"}]}`)
		}},
	}
	for _, tt := range tests {
		spec := validPipelineSpec()
		tt.change(&spec)
		if p, err := berth.NewPipeline(rand.Reader, spec, time.Now()); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("%s: got %+v, %v; want invalid", tt.name, p, err)
		}
	}
}

// ghAssertion is a verified GitHub Actions ID token of org/app on main, for
// the audience registry.example.com.
func ghAssertion() berth.Assertion {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	return berth.Assertion{
		Issuer:    berth.GitHubActionsIssuer,
		Subject:   "repo:org/app:ref:refs/heads/main",
		Audience:  []string{"registry.example.com"},
		IssuedAt:  now,
		NotBefore: now,
		Expires:   now.Add(5 * time.Minute),
		Claims: map[string]any{
			"ref":           "refs/heads/main",
			"ref_protected": true,
			"repository":    "org/app",
			"run_id":        "4242",
			"run_attempt":   "1",
			"workflow":      "deploy",
			"runner_count":  float64(2),
		},
	}
}

const testService = "registry.example.com"

func testPipeline(name, subject string) berth.Pipeline {
	return berth.Pipeline{ID: "id-" + name, Name: name, Issuer: berth.GitHubActionsIssuer, Subject: subject}
}

func TestMatchPipeline(t *testing.T) {
	main := testPipeline("web-main", "repo:org/app:ref:refs/heads/main")
	anyRef := testPipeline("web-any", "repo:org/app:*")
	prod := testPipeline("web-prod", "repo:org/app:environment:prod")
	gitlab := berth.Pipeline{ID: "id-gl", Name: "gl", Issuer: berth.GitLabIssuer, Subject: "*"}
	protected := testPipeline("protected", "repo:org/*")
	protected.Claims = map[string]string{"ref_protected": "true", "runner_count": "2", "workflow": "dep*"}
	unprotected := testPipeline("a-unprotected", "repo:org/*")
	unprotected.Claims = map[string]string{"ref_protected": "false"}
	missingClaim := testPipeline("a-env", "repo:org/*")
	missingClaim.Claims = map[string]string{"environment": "*"}
	custom := testPipeline("custom", "repo:org/app:*")
	custom.Audience = "sts.example.com"
	lateCustom := custom
	lateCustom.Name = "x-custom" // sorts after web-main
	customToken := ghAssertion()
	customToken.Audience = []string{"other", "sts.example.com"}

	tests := []struct {
		name      string
		pipelines []berth.Pipeline
		a         berth.Assertion
		want      string // the pipeline's name; "" for an error
		code      berth.Code
	}{
		{"exact subject", []berth.Pipeline{prod, main, gitlab}, ghAssertion(), "web-main", ""},
		{"first by name wins", []berth.Pipeline{main, anyRef}, ghAssertion(), "web-any", ""},
		{"first by name wins, whatever the order given", []berth.Pipeline{anyRef, main}, ghAssertion(), "web-any", ""},
		{"claims as bool and number", []berth.Pipeline{protected, prod}, ghAssertion(), "protected", ""},
		{"a claim that differs", []berth.Pipeline{unprotected}, ghAssertion(), "", berth.CodePipelineUnknown},
		{"a claim the token lacks", []berth.Pipeline{missingClaim}, ghAssertion(), "", berth.CodePipelineUnknown},
		{"claims skip a pipeline", []berth.Pipeline{unprotected, missingClaim, main}, ghAssertion(), "web-main", ""},
		{"environment subject refuses a branch token", []berth.Pipeline{prod}, ghAssertion(), "", berth.CodePipelineUnknown},
		{"another issuer", []berth.Pipeline{gitlab}, ghAssertion(), "", berth.CodePipelineUnknown},
		{"none registered", nil, ghAssertion(), "", berth.CodePipelineUnknown},
		{"audience defaults to the service", []berth.Pipeline{main}, customToken, "", berth.CodeAudienceMismatch},
		{"an audience of its own", []berth.Pipeline{custom}, customToken, "custom", ""},
		{"an audience of its own refuses the service", []berth.Pipeline{custom}, ghAssertion(), "", berth.CodeAudienceMismatch},
		// A pipeline that accepts the token wins over an earlier one that
		// only misses the audience.
		{"audience mismatch does not hide a match", []berth.Pipeline{custom, anyRef}, ghAssertion(), "web-any", ""},
		{"audience mismatch does not hide a later match", []berth.Pipeline{main, lateCustom}, customToken, "x-custom", ""},
	}
	for _, tt := range tests {
		p, err := berth.MatchPipeline(tt.pipelines, tt.a, testService)
		switch {
		case tt.want != "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && p.Name != tt.want:
			t.Errorf("%s: matched %s, want %s", tt.name, p.Name, tt.want)
		case tt.want == "" && !berth.IsCode(err, tt.code):
			t.Errorf("%s: got %s, %v; want %s", tt.name, p.Name, err, tt.code)
		}
	}
}

func TestMatchPipelineAudienceMismatchDetail(t *testing.T) {
	a := ghAssertion()
	a.Audience = []string{"other"}
	_, err := berth.MatchPipeline([]berth.Pipeline{testPipeline("web-deploy", "repo:org/*")}, a, testService)
	e := berth.AsError(err)
	if e == nil || e.Code != berth.CodeAudienceMismatch {
		t.Fatalf("got %v, want audience_mismatch", err)
	}
	if e.Detail["expected_audience"] != testService || e.Detail["token_audience"] != "other" {
		t.Errorf("detail %v", e.Detail)
	}
	// Whoever mints a token learns the audience to ask for, not which
	// pipeline it nearly matched: that is for the audit log.
	if e.Private["pipeline"] != "web-deploy" {
		t.Errorf("private detail %v", e.Private)
	}
	if shown := e.Error() + fmt.Sprint(e.Detail); strings.Contains(shown, "web-deploy") || strings.Contains(shown, "repo:org/*") {
		t.Errorf("the refusal names the pipeline: %s", shown)
	}
}

func TestMatchPipelineUnknownKeepsClosestPrivate(t *testing.T) {
	a := ghAssertion()
	a.Subject = "repo:org/app:environment:prod"
	pipelines := []berth.Pipeline{
		testPipeline("branch-main", "repo:org/app:ref:refs/heads/main"),
		testPipeline("branch-dev", "repo:org/app:ref:refs/heads/dev"),
		testPipeline("other-repo", "repo:org/zzz:*"),
		testPipeline("elsewhere", "repo:acme/x:*"),
		{ID: "id-gl", Name: "gitlab-far", Issuer: berth.GitLabIssuer, Subject: "repo:org/app:environment:prod"},
	}
	_, err := berth.MatchPipeline(pipelines, a, testService)
	e := berth.AsError(err)
	if e == nil || e.Code != berth.CodePipelineUnknown {
		t.Fatalf("got %v, want pipeline_unknown", err)
	}
	if e.Detail["issuer"] != a.Issuer || e.Detail["subject"] != a.Subject || e.Detail["audience"] != testService {
		t.Errorf("detail %v", e.Detail)
	}
	// The audit log's detail names the three closest by issuer and subject,
	// not the rest; the caller sees none of them: anyone can mint a token.
	closest := e.Private["closest"]
	for _, name := range []string{"branch-main", "branch-dev", "other-repo"} {
		if !strings.Contains(closest, name) {
			t.Errorf("the private detail does not name the close pipeline %s: %s", name, closest)
		}
	}
	for _, p := range pipelines {
		if strings.Contains(closest, p.Name) != slices.Contains([]string{"branch-main", "branch-dev", "other-repo"}, p.Name) {
			t.Errorf("the private detail and pipeline %s: %s", p.Name, closest)
		}
		if shown := e.Error() + fmt.Sprint(e.Detail); strings.Contains(shown, p.Name) {
			t.Errorf("the refusal names pipeline %s: %s", p.Name, shown)
		}
	}
	if !strings.Contains(e.Hint, "berth pipeline create NAME --issuer '"+a.Issuer+"' --subject 'repo:org/app:environment:prod'") {
		t.Errorf("hint %q", e.Hint)
	}
}

// An Entra ID token that matches nothing: the hint registers it with the
// --entra preset (and the v1.0 issuer when the token has it), not with a
// subject pattern.
func TestMatchPipelineUnknownEntraHint(t *testing.T) {
	const tid, oid = "72f988bf-86f1-41af-91ab-2d7cd011db47", "5b7ab2c1-0e1c-4a7e-9d4a-2c6f0f0e1a11"
	for issuer, want := range map[string]string{
		berth.EntraIssuer(tid):                 "berth pipeline create NAME --entra " + tid + "/" + oid + ")",
		"https://sts.windows.net/" + tid + "/": "berth pipeline create NAME --entra " + tid + "/" + oid + " --issuer https://sts.windows.net/" + tid + "/)",
	} {
		a := berth.Assertion{Issuer: issuer, Subject: oid, Audience: []string{testService}, Claims: map[string]any{"tid": tid, "oid": oid}}
		_, err := berth.MatchPipeline(nil, a, testService)
		if e := berth.AsError(err); e == nil || e.Code != berth.CodePipelineUnknown || !strings.Contains(e.Hint, want) {
			t.Errorf("%s: %v, want a hint with %q", issuer, err, want)
		}
	}
}

func TestAssertionCheckTime(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	lw := berth.AssertionLeeway
	tests := []struct {
		name          string
		iat, nbf, exp time.Time
		code          berth.Code // "" for valid
	}{
		{"valid", now.Add(-time.Minute), now.Add(-time.Minute), now.Add(4 * time.Minute), ""},
		{"expired within the leeway", now.Add(-10 * time.Minute), time.Time{}, now.Add(-lw / 2), ""},
		{"expired exactly the leeway ago", now.Add(-10 * time.Minute), time.Time{}, now.Add(-lw), ""},
		{"expired beyond the leeway", now.Add(-10 * time.Minute), time.Time{}, now.Add(-lw - time.Second), berth.CodeAssertionExpired},
		{"expired long ago", time.Time{}, time.Time{}, now.Add(-24 * time.Hour), berth.CodeAssertionExpired},
		{"no exp", now, now, time.Time{}, berth.CodeAssertionInvalid},
		{"not yet valid within the leeway", now.Add(lw / 2), now.Add(lw / 2), now.Add(5 * time.Minute), ""},
		{"not yet valid beyond the leeway", now.Add(2 * lw), now.Add(2 * lw), now.Add(5 * time.Minute), berth.CodeAssertionExpired},
		{"issued in the future without nbf", now.Add(2 * lw), time.Time{}, now.Add(5 * time.Minute), berth.CodeAssertionExpired},
		{"issued in the future within the leeway", now.Add(lw / 2), time.Time{}, now.Add(5 * time.Minute), ""},
		{"nbf passed, iat ignored", now.Add(2 * lw), now.Add(-time.Minute), now.Add(5 * time.Minute), ""},
	}
	for _, tt := range tests {
		a := berth.Assertion{IssuedAt: tt.iat, NotBefore: tt.nbf, Expires: tt.exp}
		err := a.CheckTime(now)
		switch {
		case tt.code == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.code != "" && !berth.IsCode(err, tt.code):
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.code)
		}
	}
}

func TestAssertionRun(t *testing.T) {
	tests := []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"github", map[string]any{"run_id": "4242", "run_attempt": "1", "workflow": "deploy"}, "deploy run 4242"},
		{"github retried", map[string]any{"run_id": "4242", "run_attempt": "3", "workflow": "deploy"}, "deploy run 4242 attempt 3"},
		{"github without workflow", map[string]any{"run_id": "4242"}, "run 4242"},
		{"github numbers", map[string]any{"run_id": float64(4242), "run_attempt": float64(2)}, "run 4242 attempt 2"},
		{"gitlab", map[string]any{"pipeline_id": "1001", "job_id": "2002", "project_path": "group/app"}, "pipeline 1001 job 2002"},
		{"gitlab without job", map[string]any{"pipeline_id": "1001"}, "pipeline 1001"},
		{"jti", map[string]any{"jti": "abc-123"}, "token abc-123"},
		{"github wins over jti", map[string]any{"run_id": "1", "jti": "abc"}, "run 1"},
		{"none", map[string]any{"ref": "refs/heads/main"}, ""},
		{"no claims", nil, ""},
		{"an object is not a run", map[string]any{"run_id": map[string]any{"x": 1}}, ""},
	}
	for _, tt := range tests {
		if got := (berth.Assertion{Claims: tt.claims}).Run(); got != tt.want {
			t.Errorf("%s: Run() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestAssertionClaimString(t *testing.T) {
	a := berth.Assertion{Claims: map[string]any{
		"s": "text", "t": true, "f": false, "n": float64(42), "x": 1.5, "num": json.Number("7"),
		"obj": map[string]any{}, "arr": []any{"a"}, "null": nil,
		"kubernetes.io": map[string]any{"namespace": "ci", "serviceaccount": map[string]any{"name": "builder", "n": float64(3)}},
		"a.b":           "flat", "a": map[string]any{"b": "nested", "c": map[string]any{"d": "deep"}},
	}}
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"s", "text", true}, {"t", "true", true}, {"f", "false", true}, {"n", "42", true}, {"x", "1.5", true},
		{"num", "7", true}, {"obj", "", false}, {"arr", "", false}, {"null", "", false}, {"missing", "", false},
		{"kubernetes.io.namespace", "ci", true}, {"kubernetes.io.serviceaccount.name", "builder", true},
		{"kubernetes.io.serviceaccount.n", "3", true}, {"kubernetes.io.serviceaccount", "", false},
		{"kubernetes.io.pod.name", "", false}, {"kubernetes.io.", "", false}, {".kubernetes.io", "", false},
		{"a.b", "flat", true}, {"a.c.d", "deep", true}, {"s.x", "", false},
	}
	for _, tt := range tests {
		if got, ok := a.ClaimString(tt.name); got != tt.want || ok != tt.ok {
			t.Errorf("ClaimString(%s) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

// TestShellQuote: a hint quoting a subject from a token stays one shell word
// whatever the subject holds.
func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"repo:acme/app:ref:refs/heads/main": `'repo:acme/app:ref:refs/heads/main'`,
		"":                                  `''`,
		"x'; rm -rf ~; echo '":              `'x'\''; rm -rf ~; echo '\'''`,
		"$(id)":                             `'$(id)'`,
	} {
		if got := berth.ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAssertionRunURL(t *testing.T) {
	gh := "https://token.actions.githubusercontent.com"
	for _, c := range []struct {
		issuer string
		claims map[string]any
		want   string
	}{
		{gh, map[string]any{"repository": "org/app", "run_id": "4242", "run_attempt": "1"}, "https://github.com/org/app/actions/runs/4242"},
		{gh, map[string]any{"repository": "org/app", "run_id": "4242", "run_attempt": "3"}, "https://github.com/org/app/actions/runs/4242/attempts/3"},
		{"https://ghe.corp.example/_services/token", map[string]any{"repository": "org/app", "run_id": "7"}, "https://ghe.corp.example/org/app/actions/runs/7"},
		{"https://gitlab.com", map[string]any{"project_path": "group/sub/app", "pipeline_id": "55", "job_id": "66"}, "https://gitlab.com/group/sub/app/-/jobs/66"},
		{"https://gitlab.corp.example/gitlab", map[string]any{"project_path": "group/app", "pipeline_id": "55"}, "https://gitlab.corp.example/gitlab/group/app/-/pipelines/55"},
		// No run page, or claims that would not make a plain path: no link.
		{"https://login.microsoftonline.com/tenant/v2.0", map[string]any{"sub": "x"}, ""},
		{gh, map[string]any{"repository": "org/app", "run_id": "42; drop"}, ""},
		{gh, map[string]any{"repository": "org/../evil", "run_id": "42"}, ""},
		{gh, map[string]any{"repository": "https://evil.example/x", "run_id": "42"}, ""},
		{"https://other.example", map[string]any{"repository": "org/app", "run_id": "42"}, ""},
		{"http://gitlab.local", map[string]any{"project_path": "g/app", "job_id": "1"}, ""},
	} {
		a := berth.Assertion{Issuer: c.issuer, Claims: c.claims}
		if got := a.RunURL(); got != c.want {
			t.Errorf("%s %v: RunURL %q, want %q", c.issuer, c.claims, got, c.want)
		}
	}
}

// A refused URL is quoted without what may be a credential in it.
func TestValidateOutboundURLQuotesNoCredential(t *testing.T) {
	for _, u := range []string{"user:s3cr3t-value@ghcr.io", "http://ghcr.example/v2?token=s3cr3t-value", "ftp://bot:s3cr3t-value@x.example/", "https://x.example/#s3cr3t-value"} {
		err := berth.ValidateOutboundURL("upstream", u)
		e := berth.AsError(err)
		if e == nil || e.Code != berth.CodeInvalid || strings.Contains(e.Message+e.Hint, "s3cr3t-value") {
			t.Errorf("%q: %v", u, err)
		}
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "LOCALHOST": true, "127.0.0.2": true, "::1": true, "[::1]": true, "example.com": false, "10.0.0.1": false, "": false} {
		if got := berth.IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v", host, got)
		}
	}
}
