package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/berth-dev/berth/internal/client"
)

func wantCode(t *testing.T, what string, err error, code berth.Code) *berth.Error {
	t.Helper()
	e := berth.AsError(err)
	if e == nil || e.Code != code {
		t.Fatalf("%s: error %v, want a *berth.Error with code %s", what, err, code)
	}
	return e
}

func TestClient(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	c := client.New(s.URL+"/", s.Admin.ClientID, s.AdminSecret, nil)

	p, err := c.CreatePrincipal(ctx, "ci")
	if err != nil || p.Name != "ci" || p.ClientID == "" {
		t.Fatalf("CreatePrincipal: %+v, %v", p, err)
	}
	e := wantCode(t, "CreatePrincipal again", func() error { _, err := c.CreatePrincipal(ctx, "ci"); return err }(), berth.CodeConflict)
	if e.Hint != "berth principal show ci" || e.Detail["request_id"] == nil {
		t.Errorf("conflict: %#v", e)
	}

	ps, err := c.ListPrincipals(ctx)
	if err != nil || len(ps) != 2 {
		t.Fatalf("ListPrincipals: %+v, %v", ps, err)
	}
	if p, err := c.DisablePrincipal(ctx, "ci"); err != nil || !p.Disabled {
		t.Errorf("DisablePrincipal: %+v, %v", p, err)
	}
	if p, err := c.EnablePrincipal(ctx, "ci"); err != nil || p.Disabled {
		t.Errorf("EnablePrincipal: %+v, %v", p, err)
	}

	ns, err := c.AddSecret(ctx, "ci", api.AddSecretRequest{ExpiresIn: "12h", Description: "test"})
	if err != nil || berth.CheckSecretFormat(ns.Value) != nil {
		t.Fatalf("AddSecret: %v", err)
	}
	_, err = c.AddSecret(ctx, "ci", api.AddSecretRequest{ExpiresIn: "400d"})
	if e := wantCode(t, "AddSecret 400d", err, berth.CodeInvalid); !strings.Contains(e.Message, "365d") {
		t.Errorf("message %q does not name the maximum", e.Message)
	}
	ss, err := c.ListSecrets(ctx, "ci")
	if err != nil || len(ss) != 1 || ss[0].ID != ns.ID || ss[0].State != berth.SecretActive {
		t.Errorf("ListSecrets: %+v, %v", ss, err)
	}

	a, err := c.AssignRole(ctx, "ci", "push", "team/*")
	if err != nil || a.Principal != "ci" || a.Scope != "team/*" {
		t.Errorf("AssignRole: %+v, %v", a, err)
	}
	roles, err := c.ListRoles(ctx, "ci")
	if err != nil || len(roles) != 1 {
		t.Errorf("ListRoles: %+v, %v", roles, err)
	}
	detail, err := c.GetPrincipal(ctx, "ci")
	if err != nil || len(detail.Roles) != 1 {
		t.Errorf("GetPrincipal: %+v, %v", detail, err)
	}

	// The new principal checks itself with its new secret.
	ci := client.New(s.URL, "ci", ns.Value, nil)
	d, err := ci.CheckAccess(ctx, "", "push", "team/web")
	if err != nil || !d.Allowed || d.Actor.Name != "ci" || d.Allowing == nil || d.RequestedAction != "push" {
		t.Errorf("CheckAccess allowed: %+v, %v", d, err)
	}
	d, err = ci.CheckAccess(ctx, "ci", "delete", "team/web")
	if err != nil || d.Allowed || d.Reason != berth.CodeRoleMissing || d.Missing != berth.RoleDelete || d.MissingScope.String() != "team/web" {
		t.Errorf("CheckAccess denied: %+v, %v", d, err)
	}
	_, err = ci.CreatePrincipal(ctx, "x")
	wantCode(t, "CreatePrincipal as ci", err, berth.CodeRoleMissing)

	if _, err := c.RevokeRole(ctx, "ci", "push", "team/*"); err != nil {
		t.Errorf("RevokeRole: %v", err)
	}
	rs, err := c.RemoveSecret(ctx, "ci", ns.ID)
	if err != nil || rs.State != berth.SecretRevoked {
		t.Errorf("RemoveSecret: %+v, %v", rs, err)
	}
	_, err = ci.ListSecrets(ctx, "ci")
	wantCode(t, "a removed secret", err, berth.CodeSecretRevoked)

	dp, err := c.DeletePrincipal(ctx, "ci")
	if err != nil || dp.Name != "ci" {
		t.Errorf("DeletePrincipal: %+v, %v", dp, err)
	}
	_, err = c.GetPrincipal(ctx, "ci")
	wantCode(t, "GetPrincipal after delete", err, berth.CodeNotFound)
	s.NoSecretsLogged(t, s.AdminSecret, ns.Value)
}

func TestClientOtherServers(t *testing.T) {
	ctx := context.Background()
	const secret = "brt_notARealSecretButLongEnoughToSpot000"

	// A server that is not berth.
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not here", http.StatusNotFound)
	}))
	defer hs.Close()
	_, err := client.New(hs.URL, "admin", secret, nil).ListPrincipals(ctx)
	if e := wantCode(t, "not berth", err, berth.CodeInvalid); !strings.Contains(e.Hint, "BERTH_URL") {
		t.Errorf("hint %q does not name BERTH_URL", e.Hint)
	}

	// No server at all: the error names the URL, never the secret.
	hs.Close()
	_, err = client.New(hs.URL, "admin", secret, nil).ListPrincipals(ctx)
	if err == nil || !strings.Contains(err.Error(), hs.URL) || strings.Contains(err.Error(), secret) {
		t.Errorf("unreachable: %v", err)
	}
}
