package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// dockerConfig decodes the .dockerconfigjson of a pull secret's manifest.
func dockerConfig(t *testing.T, m api.KubernetesSecret) map[string]map[string]string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(m.Data[".dockerconfigjson"])
	if err != nil {
		t.Fatalf(".dockerconfigjson is not base64: %v", err)
	}
	var cfg struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf(".dockerconfigjson %s: %v", b, err)
	}
	return cfg.Auths
}

// TestPullSecret: a pull secret through a connection holds a new client
// secret of its principal, for the registry's public host, in a
// kubernetes.io/dockerconfigjson Secret annotated with its expiry; the
// secret authenticates, is listed among the expiring secrets with a
// description naming the pull secret, and the change is in the connection's
// history.
func TestPullSecret(t *testing.T) {
	s := apitest.NewWith(t, apitest.Options{Audit: true})
	admin := adminCreds(s)
	puller, _ := s.AddPrincipal(t, "ci-puller", apitest.Role{Role: "pull", Scope: "team/*"})
	call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "cluster", Principal: "ci-puller"}).ok(t, http.StatusCreated, nil)

	var ps api.PullSecret
	r := call(t, s, admin, "POST", "/api/v1/pull-secrets", api.PullSecretRequest{Name: "berth-pull", Namespace: "apps", Connection: "cluster", ExpiresIn: "30d"})
	r.ok(t, http.StatusCreated, &ps)
	hasFields(t, "a pull secret", fields(t, r.body), "secret", "client_id", "connection", "registry", "manifest")
	host := strings.TrimPrefix(s.URL, "http://")
	m := ps.Manifest
	if m.APIVersion != "v1" || m.Kind != "Secret" || m.Type != "kubernetes.io/dockerconfigjson" || m.Metadata.Name != "berth-pull" || m.Metadata.Namespace != "apps" {
		t.Errorf("manifest %+v", m)
	}
	wantExpiry := s.Clock.Now().Add(30 * 24 * time.Hour)
	if !ps.Secret.Expires.Equal(wantExpiry) || ps.Secret.Principal != "ci-puller" || ps.Registry != host || ps.ClientID != puller.ClientID {
		t.Errorf("secret %+v, registry %q, client id %q", ps.Secret, ps.Registry, ps.ClientID)
	}
	for k, want := range map[string]string{
		api.AnnotationExpiresAt: wantExpiry.UTC().Format(time.RFC3339), api.AnnotationSecretID: ps.Secret.ID,
		api.AnnotationPrincipal: "ci-puller", api.AnnotationConnection: "cluster",
	} {
		if got := m.Metadata.Annotations[k]; got != want {
			t.Errorf("annotation %s = %q, want %q", k, got, want)
		}
	}
	auths := dockerConfig(t, m)
	a, ok := auths[host]
	if !ok || len(auths) != 1 || a["username"] != puller.ClientID || !strings.HasPrefix(a["password"], berth.SecretPrefix) ||
		a["auth"] != base64.StdEncoding.EncodeToString([]byte(puller.ClientID+":"+a["password"])) {
		t.Fatalf("auths %v", auths)
	}
	if strings.Contains(string(r.body), `"value"`) {
		t.Errorf("the answer shows the value outside the manifest: %s", r.body)
	}
	if c, err := s.Provider.AuthenticateClient(context.Background(), a["username"], a["password"], "192.0.2.1"); err != nil || c.Actor.Name != "ci-puller" {
		t.Fatalf("the pull secret's credential does not authenticate: %v", err)
	}

	var list api.ExpiringSecretList
	call(t, s, admin, "GET", "/api/v1/secrets?expiring_within=31d", nil).ok(t, http.StatusOK, &list)
	if len(list.Secrets) != 1 || list.Secrets[0].ID != ps.Secret.ID || list.Secrets[0].Description != "Kubernetes pull secret apps/berth-pull (connection cluster)" {
		t.Errorf("expiring within 31 days: %+v", list.Secrets)
	}
	var h api.ConnectionHistory
	call(t, s, admin, "GET", "/api/v1/connections/cluster/history", nil).ok(t, http.StatusOK, &h)
	if last := h.Events[len(h.Events)-1]; last.Action != berth.AuditSecretAdd || last.Target != "ci-puller" || last.Result != berth.AuditAllowed {
		t.Errorf("the connection's history ends with %+v, want the secret added for the pull secret", last)
	}

	// Through a principal, for another registry host, in no namespace.
	ps = api.PullSecret{}
	call(t, s, admin, "POST", "/api/v1/pull-secrets", api.PullSecretRequest{Name: "ci.pull", Principal: "ci-puller", Registry: "registry.example.com:5000"}).
		ok(t, http.StatusCreated, &ps)
	if _, ok := dockerConfig(t, ps.Manifest)["registry.example.com:5000"]; !ok || ps.Manifest.Metadata.Namespace != "" ||
		ps.Manifest.Metadata.Annotations[api.AnnotationConnection] != "" || ps.Secret.Description != "Kubernetes pull secret ci.pull" {
		t.Errorf("pull secret of a principal: %+v", ps)
	}
	s.NoSecretsLogged(t, a["password"], dockerConfig(t, ps.Manifest)["registry.example.com:5000"]["password"])
}

// TestPullSecretRefusals: each wrong request is refused with its code and
// nothing is created.
func TestPullSecretRefusals(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	s.AddPrincipal(t, "ci-puller")
	s.AddPrincipal(t, "off")
	other, otherSecret := s.AddPrincipal(t, "viewer", apitest.Role{Role: "pull", Scope: "team/*"})
	call(t, s, admin, "POST", "/api/v1/connections", api.CreateConnectionRequest{Name: "cluster", Principal: "ci-puller"}).ok(t, http.StatusCreated, nil)
	call(t, s, admin, "POST", "/api/v1/connections/cluster/disable", nil).ok(t, http.StatusOK, nil)
	call(t, s, admin, "POST", "/api/v1/principals/off/disable", nil).ok(t, http.StatusOK, nil)

	for _, tt := range []struct {
		name string
		req  api.PullSecretRequest
		as   creds
		code berth.Code
	}{
		{"not a Kubernetes name", api.PullSecretRequest{Name: "Berth_Pull", Principal: "ci-puller"}, admin, berth.CodeInvalid},
		{"not a namespace", api.PullSecretRequest{Name: "p", Namespace: "a.b", Principal: "ci-puller"}, admin, berth.CodeInvalid},
		{"neither", api.PullSecretRequest{Name: "p"}, admin, berth.CodeInvalid},
		{"both", api.PullSecretRequest{Name: "p", Principal: "ci-puller", Connection: "cluster"}, admin, berth.CodeInvalid},
		{"not a registry host", api.PullSecretRequest{Name: "p", Principal: "ci-puller", Registry: "https://r.example.com/v2/"}, admin, berth.CodeInvalid},
		{"too long", api.PullSecretRequest{Name: "p", Principal: "ci-puller", ExpiresIn: "400d"}, admin, berth.CodeInvalid},
		{"unknown connection", api.PullSecretRequest{Name: "p", Connection: "nope"}, admin, berth.CodeNotFound},
		{"unknown principal", api.PullSecretRequest{Name: "p", Principal: "nope"}, admin, berth.CodeNotFound},
		{"disabled connection", api.PullSecretRequest{Name: "p", Connection: "cluster"}, admin, berth.CodeConnectionDisabled},
		{"disabled principal", api.PullSecretRequest{Name: "p", Principal: "off"}, admin, berth.CodePrincipalDisabled},
		{"not an owner", api.PullSecretRequest{Name: "p", Principal: "viewer"}, creds{other.ClientID, otherSecret}, berth.CodeRoleMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := call(t, s, tt.as, "POST", "/api/v1/pull-secrets", tt.req).fails(t, tt.code)
			if hint(e) == "" {
				t.Errorf("no hint: %v", e)
			}
		})
	}
	for _, p := range []string{"ci-puller", "off", "viewer"} {
		var l api.SecretList
		call(t, s, admin, "GET", "/api/v1/principals/"+p+"/secrets", nil).ok(t, http.StatusOK, &l)
		if len(l.Secrets) != 1 {
			t.Errorf("principal %s holds %d secrets after the refusals, want its first only", p, len(l.Secrets))
		}
	}
}
