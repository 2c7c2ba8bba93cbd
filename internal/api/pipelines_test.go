package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// testJWKS returns a JSON Web Key Set holding one fresh P-256 public key.
func testJWKS(t *testing.T) json.RawMessage {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	set := map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "test-1", "alg": "ES256", "use": "sig",
		"x": enc(b[1:33]), "y": enc(b[33:]),
	}}}
	j, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestPipelines(t *testing.T) {
	s := apitest.NewWith(t, apitest.Options{Audit: true})
	admin := adminCreds(s)

	r := call(t, s, admin, "POST", "/api/v1/pipelines", api.CreatePipelineRequest{Name: "deploy",
		Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:org/app:ref:refs/heads/main",
		Audience: "berth", Claims: map[string]string{"workflow": "deploy*"}})
	var p berth.Pipeline
	r.ok(t, http.StatusCreated, &p)
	hasFields(t, "a new pipeline", fields(t, r.body), "id", "name", "issuer", "subject", "audience", "claims", "created_at")
	if p.Name != "deploy" || p.ID == "" || !p.Created.Equal(apitest.Epoch) || p.Claims["workflow"] != "deploy*" {
		t.Errorf("created %+v", p)
	}

	// Presets fill issuer and subject.
	var gh berth.Pipeline
	call(t, s, admin, "POST", "/api/v1/pipelines", api.CreatePipelineRequest{Name: "gh", Preset: berth.PresetGitHub, Spec: "org/app@main"}).
		ok(t, http.StatusCreated, &gh)
	if gh.Issuer != berth.GitHubActionsIssuer || gh.Subject != "repo:org/app:ref:refs/heads/main" || gh.Preset != "github" {
		t.Errorf("github preset: %+v", gh)
	}
	var gl berth.Pipeline
	call(t, s, admin, "POST", "/api/v1/pipelines", api.CreatePipelineRequest{Name: "gl", Preset: berth.PresetGitLab, Spec: "group/app",
		Issuer: "https://gitlab.example.com"}).ok(t, http.StatusCreated, &gl)
	if gl.Issuer != "https://gitlab.example.com" || gl.Subject != "project_path:group/app:*" {
		t.Errorf("gitlab preset: %+v", gl)
	}
	// An air-gapped issuer: the key set comes with the pipeline.
	var k8s berth.Pipeline
	call(t, s, admin, "POST", "/api/v1/pipelines", api.CreatePipelineRequest{Name: "k8s", Preset: berth.PresetKubernetes, Spec: "ci/builder",
		Issuer: "https://kubernetes.default.svc", JWKS: testJWKS(t)}).ok(t, http.StatusCreated, &k8s)
	if k8s.Subject != "system:serviceaccount:ci:builder" || len(k8s.JWKS) == 0 {
		t.Errorf("kubernetes preset: %+v", k8s)
	}

	for _, tc := range []struct {
		what string
		req  any
		code berth.Code
	}{
		{"a taken name", api.CreatePipelineRequest{Name: "deploy", Issuer: "https://a.example", Subject: "x"}, berth.CodeConflict},
		{"plain http off loopback", api.CreatePipelineRequest{Name: "p1", Issuer: "http://ci.example.com", Subject: "x"}, berth.CodeInvalid},
		{"no subject", api.CreatePipelineRequest{Name: "p1", Issuer: "https://ci.example.com"}, berth.CodeInvalid},
		{"a preset and a subject", api.CreatePipelineRequest{Name: "p1", Preset: "github", Spec: "o/r", Subject: "x"}, berth.CodeInvalid},
		{"a malformed preset spec", api.CreatePipelineRequest{Name: "p1", Preset: "github", Spec: "just-a-name"}, berth.CodeInvalid},
		{"azure without an issuer", api.CreatePipelineRequest{Name: "p1", Preset: "azure-devops", Spec: "o/p/c"}, berth.CodeInvalid},
		{"an unknown preset", api.CreatePipelineRequest{Name: "p1", Preset: "jenkins", Spec: "x"}, berth.CodeInvalid},
		{"a key set that is not one", api.CreatePipelineRequest{Name: "p1", Issuer: "https://ci.example.com", Subject: "x", JWKS: json.RawMessage(`{"keys":[]}`)}, berth.CodeInvalid},
		{"a bad name", api.CreatePipelineRequest{Name: "Bad Name", Issuer: "https://ci.example.com", Subject: "x"}, berth.CodeInvalid},
		{"an unknown field", `{"name":"p1","issuer":"https://ci.example.com","subject":"x","subjcet":"y"}`, berth.CodeInvalid},
	} {
		e := call(t, s, admin, "POST", "/api/v1/pipelines", tc.req).fails(t, tc.code)
		if tc.code == berth.CodeInvalid && tc.what != "an unknown field" && tc.what != "a bad name" && tc.what != "an unknown preset" && hint(e) == "" {
			t.Errorf("%s: no hint in %v", tc.what, e)
		}
	}

	var list api.PipelineList
	call(t, s, admin, "GET", "/api/v1/pipelines", nil).ok(t, http.StatusOK, &list)
	if len(list.Pipelines) != 4 || list.Pipelines[0].Name != "deploy" || list.Pipelines[3].Name != "k8s" {
		t.Errorf("list: %+v", list)
	}

	// show names the connections that permit it.
	s.AddPrincipal(t, "ci")
	call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "web", Principal: "ci"}).ok(t, http.StatusCreated, nil)
	call(t, s, admin, "POST", "/api/v1/connections/web/authorize", api.PermissionChange{Pipeline: "gh"}).ok(t, http.StatusOK, nil)
	var detail api.PipelineDetail
	r = call(t, s, admin, "GET", "/api/v1/pipelines/gh", nil)
	r.ok(t, http.StatusOK, &detail)
	if detail.Name != "gh" || len(detail.Connections) != 1 || detail.Connections[0] != "web" {
		t.Errorf("show: %s", r.body)
	}
	call(t, s, admin, "GET", "/api/v1/pipelines/nope", nil).fails(t, berth.CodeNotFound)

	// Deleting it withdraws its permissions.
	var deleted api.PipelineDetail
	call(t, s, admin, "DELETE", "/api/v1/pipelines/gh", nil).ok(t, http.StatusOK, &deleted)
	if deleted.Name != "gh" || len(deleted.Connections) != 1 {
		t.Errorf("deleted: %+v", deleted)
	}
	call(t, s, admin, "GET", "/api/v1/pipelines/gh", nil).fails(t, berth.CodeNotFound)
	call(t, s, admin, "DELETE", "/api/v1/pipelines/gh", nil).fails(t, berth.CodeNotFound)
	var conn api.ConnectionDetail
	call(t, s, admin, "GET", "/api/v1/connections/web", nil).ok(t, http.StatusOK, &conn)
	if len(conn.Pipelines) != 0 {
		t.Errorf("web still permits %v after the pipeline was deleted", conn.Pipelines)
	}

	// Managing pipelines needs owner on registry.
	_, secret := s.AddPrincipal(t, "dev", apitest.Role{Role: "push", Scope: "team/*"})
	dev := creds{"dev", secret}
	call(t, s, dev, "GET", "/api/v1/pipelines", nil).fails(t, berth.CodeRoleMissing)
	call(t, s, dev, "POST", "/api/v1/pipelines", api.CreatePipelineRequest{Name: "x", Issuer: "https://a.example", Subject: "x"}).fails(t, berth.CodeRoleMissing)
	call(t, s, dev, "DELETE", "/api/v1/pipelines/deploy", nil).fails(t, berth.CodeRoleMissing)
	call(t, s, creds{}, "GET", "/api/v1/pipelines", nil).fails(t, berth.CodeCredentialsMissing)

	// Each change is audited, made or refused, with the pipeline as target.
	events, err := s.Store.FindAuditEvents(context.Background(), berth.AuditFilter{Action: berth.AuditPipelineCreate})
	if err != nil {
		t.Fatal(err)
	}
	allowed, denied := 0, 0
	for _, e := range events {
		if e.Result == berth.AuditAllowed {
			allowed++
			if e.Target == "" {
				t.Errorf("pipeline.create without a target: %+v", e)
			}
		} else {
			denied++
		}
	}
	if allowed != 4 || denied != 11 {
		t.Errorf("pipeline.create events: %d allowed, %d denied; want 4 and 11", allowed, denied)
	}
	events, _ = s.Store.FindAuditEvents(context.Background(), berth.AuditFilter{Action: berth.AuditPipelineDelete, Result: berth.AuditAllowed})
	if len(events) != 1 || events[0].Target != "gh" {
		t.Errorf("pipeline.delete events: %+v", events)
	}
}
