package oidctest_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/berth-dev/berth/internal/oidctest"
)

func get(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func claims(t *testing.T, token string) (kid string, c map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	var h struct {
		Kid, Alg, Typ string
	}
	for i, v := range []any{&h, &c} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	if h.Alg != "RS256" || h.Typ != "JWT" {
		t.Errorf("header alg %q typ %q", h.Alg, h.Typ)
	}
	return h.Kid, c
}

// verify checks token against the issuer's published keys, as a relying
// party would.
func verify(i *oidctest.Issuer, token string) error {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(i.JWKS(), &set); err != nil {
		return err
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return err
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		return io.EOF
	}
	_, err = jws.Verify(keys[0])
	return err
}

func TestDiscoveryAndRotation(t *testing.T) {
	i := oidctest.New(t)
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	get(t, i.URL+"/.well-known/openid-configuration", &doc)
	if doc.Issuer != i.URL || doc.JWKSURI != i.URL+"/jwks" || !strings.HasPrefix(i.URL, "http://127.0.0.1:") {
		t.Fatalf("discovery %+v at %s", doc, i.URL)
	}
	var set struct{ Keys []map[string]any }
	get(t, doc.JWKSURI, &set)
	if len(set.Keys) != 1 || set.Keys[0]["kid"] != i.Kid() || i.JWKSFetches() != 1 || i.DiscoveryFetches() != 1 {
		t.Fatalf("JWKS %v, fetches %d", set.Keys, i.JWKSFetches())
	}

	old := i.Mint(map[string]any{"sub": "x"})
	kid := i.RotateKey(true)
	if k, _ := claims(t, i.Mint(map[string]any{"sub": "x"})); k != kid {
		t.Errorf("signed with %s after rotation to %s", k, kid)
	}
	if err := verify(i, old); err != nil {
		t.Errorf("old token with the old key kept: %v", err)
	}
	i.RotateKey(false)
	if err := verify(i, old); err == nil {
		t.Error("old token verifies after its key was dropped")
	}

	if err := verify(i, i.Mint(nil, oidctest.WithOtherKey())); err == nil {
		t.Error("a token signed by another key verifies")
	}
	if k, _ := claims(t, i.Mint(nil, oidctest.WithUnknownKid())); k == i.Kid() {
		t.Error("WithUnknownKid kept the current kid")
	}

	i.SetStatus(http.StatusServiceUnavailable)
	resp, err := http.Get(doc.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("SetStatus: %s", resp.Status)
	}
}

func TestCIShapes(t *testing.T) {
	i := oidctest.New(t)
	now := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	i.Now = func() time.Time { return now }

	_, gh := claims(t, i.GitHub(oidctest.GitHubJob{Repository: "org/app", Audience: "registry.test"}))
	for k, want := range map[string]any{
		"iss": i.URL, "sub": "repo:org/app:ref:refs/heads/main", "aud": "registry.test", "ref": "refs/heads/main",
		"repository": "org/app", "repository_owner": "org", "run_id": "4242", "run_attempt": "1", "workflow": "build",
		"job_workflow_ref": "org/app/.github/workflows/build.yml@refs/heads/main", "actor": "octocat", "event_name": "push",
		"iat": float64(now.Unix()), "exp": float64(now.Add(5 * time.Minute).Unix()),
	} {
		if gh[k] != want {
			t.Errorf("GitHub %s = %v, want %v", k, gh[k], want)
		}
	}
	if _, ok := gh["environment"]; ok || gh["jti"] == "" {
		t.Errorf("GitHub claims %v", gh)
	}
	_, env := claims(t, i.GitHub(oidctest.GitHubJob{Environment: "prod"}))
	if env["sub"] != "repo:org/app:environment:prod" || env["environment"] != "prod" {
		t.Errorf("GitHub environment: %v", env)
	}

	_, gl := claims(t, i.GitLab(oidctest.GitLabJob{Project: "group/sub/app"}))
	for k, want := range map[string]any{
		"sub": "project_path:group/sub/app:ref_type:branch:ref:main", "project_path": "group/sub/app",
		"namespace_path": "group/sub", "pipeline_id": "574", "job_id": "302", "ref": "main", "ref_type": "branch",
		"ref_protected": "false",
	} {
		if gl[k] != want {
			t.Errorf("GitLab %s = %v, want %v", k, gl[k], want)
		}
	}

	_, az := claims(t, i.Azure(oidctest.AzureJob{}))
	if az["sub"] != "sc://contoso/web/berth" || az["aud"] != oidctest.AzureAudience || az["iss"] != i.URL {
		t.Errorf("Azure claims %v", az)
	}

	_, k8s := claims(t, i.Kubernetes(oidctest.KubernetesPod{Namespace: "ci", ServiceAccount: "builder", Pod: "web-1", Audience: "registry.test"}))
	kio, _ := k8s["kubernetes.io"].(map[string]any)
	sa, _ := kio["serviceaccount"].(map[string]any)
	pod, _ := kio["pod"].(map[string]any)
	aud, _ := k8s["aud"].([]any)
	if k8s["sub"] != "system:serviceaccount:ci:builder" || len(aud) != 1 || aud[0] != "registry.test" ||
		k8s["exp"] != float64(now.Add(time.Hour).Unix()) || kio["namespace"] != "ci" || sa["name"] != "builder" ||
		sa["uid"] != oidctest.KubernetesUID("ServiceAccount", "ci", "builder") || pod["name"] != "web-1" || kio["node"] == nil {
		t.Errorf("Kubernetes claims %v", k8s)
	}
	if uid, _ := sa["uid"].(string); len(uid) != 36 || uid[14] != '4' || uid == oidctest.KubernetesUID("ServiceAccount", "ci", "other") {
		t.Errorf("service account uid %q", uid)
	}
	_, unbound := claims(t, i.Kubernetes(oidctest.KubernetesPod{Unbound: true}))
	if kio, _ := unbound["kubernetes.io"].(map[string]any); kio["pod"] != nil || kio["node"] != nil || kio["namespace"] != "default" {
		t.Errorf("unbound Kubernetes claims %v", unbound)
	}

	_, exp := claims(t, i.GitHub(oidctest.GitHubJob{}, oidctest.Expired(time.Hour), oidctest.WithAudience("a", "b")))
	if exp["exp"] != float64(now.Add(-time.Hour).Unix()) {
		t.Errorf("Expired: exp %v, now %d", exp["exp"], now.Unix())
	}
	if aud, _ := exp["aud"].([]any); len(aud) != 2 {
		t.Errorf("aud %v", exp["aud"])
	}
}
