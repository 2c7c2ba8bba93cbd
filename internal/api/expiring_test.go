package api_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// secretConnection creates a secret service connection of p that
// authenticates with secret id.
func secretConnection(t *testing.T, s *apitest.Server, name string, p berth.Principal, id string) {
	t.Helper()
	ctx := context.Background()
	c, err := berth.NewConnection(rand.Reader, name, p.ID, berth.ConnectionSecret, nil, s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.UpdateConnection(ctx, c.ID, berth.ConnectionUpdate{SecretID: &id}); err != nil {
		t.Fatal(err)
	}
}

// TestListExpiringSecrets: across principals, only active secrets within the
// window, soonest first, with the connections that depend on each.
func TestListExpiringSecrets(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	web, _ := s.AddPrincipal(t, "ci-web")
	s.AddPrincipal(t, "ci-api")
	add := func(principal, expiresIn string) api.NewSecret {
		t.Helper()
		var ns api.NewSecret
		call(t, s, admin, "POST", "/api/v1/principals/"+principal+"/secrets", api.AddSecretRequest{ExpiresIn: expiresIn}).ok(t, http.StatusCreated, &ns)
		return ns
	}
	web10 := add("ci-web", "10d")
	api3 := add("ci-api", "3d12h")
	web40 := add("ci-web", "40d") // outside the window
	gone := add("ci-api", "5d")   // removed
	call(t, s, admin, "DELETE", "/api/v1/principals/ci-api/secrets/"+gone.ID, nil).ok(t, http.StatusOK, nil)
	lapsed := add("ci-api", "1h") // expired by then
	s.Clock.Advance(2 * time.Hour)
	secretConnection(t, s, "web-deploy", web, web10.ID)
	secretConnection(t, s, "web-build", web, web10.ID)
	secretConnection(t, s, "web-later", web, web40.ID)

	r := call(t, s, admin, "GET", "/api/v1/secrets?expiring_within=30d", nil)
	var list api.ExpiringSecretList
	r.ok(t, http.StatusOK, &list)
	first := fields(t, r.body)["secrets"].([]any)[0].(map[string]any)
	hasFields(t, "an expiring secret", first, "principal", "id", "hint", "expires_at", "days_left", "connections", "created_at", "last_used_at", "description")
	if list.ExpiringWithin != "30d" {
		t.Errorf("expiring_within %q, want 30d", list.ExpiringWithin)
	}
	var got []string
	for _, sec := range list.Secrets {
		got = append(got, sec.ID)
	}
	if len(got) != 2 || got[0] != api3.ID || got[1] != web10.ID {
		t.Fatalf("listed %v, want [%s (ci-api, 3d) %s (ci-web, 10d)]: %s", got, api3.ID, web10.ID, r.body)
	}
	a, w := list.Secrets[0], list.Secrets[1]
	if a.Principal != "ci-api" || a.Hint != api3.Hint || !a.Expires.Equal(api3.Expires) || a.DaysLeft != 3 || len(a.Connections) != 0 || a.Connections == nil {
		t.Errorf("ci-api's secret: %+v", a)
	}
	if w.Principal != "ci-web" || w.DaysLeft != 9 || strings.Join(w.Connections, ",") != "web-build,web-deploy" {
		t.Errorf("ci-web's secret: %+v, want 9 days left and connections web-build, web-deploy", w)
	}
	for _, v := range []string{web10.Value, api3.Value, web40.Value, lapsed.Value} {
		if strings.Contains(string(r.body), v) {
			t.Fatal("the list holds a secret's value")
		}
	}

	// Without a window: every active secret, the admin's and the test's included.
	list = api.ExpiringSecretList{}
	call(t, s, admin, "GET", "/api/v1/secrets", nil).ok(t, http.StatusOK, &list)
	if n := len(list.Secrets); n != 6 || list.Secrets[0].ID != api3.ID || list.ExpiringWithin != "" {
		t.Errorf("every active secret: %d listed, first %s: %+v", n, list.Secrets[0].ID, list)
	}
	// One principal.
	call(t, s, admin, "GET", "/api/v1/secrets?expiring_within=60d&principal=ci-web", nil).ok(t, http.StatusOK, &list)
	if len(list.Secrets) != 2 || list.Secrets[1].ID != web40.ID || list.Secrets[1].Connections[0] != "web-later" {
		t.Errorf("ci-web within 60d: %+v", list.Secrets)
	}
	call(t, s, admin, "GET", "/api/v1/secrets?principal=nobody", nil).fails(t, berth.CodeNotFound)

	for _, bad := range []string{"soon", "-3d", "0d", "200000d"} {
		e := call(t, s, admin, "GET", "/api/v1/secrets?expiring_within="+url.QueryEscape(bad), nil).fails(t, berth.CodeInvalid)
		if !strings.Contains(hint(e), "30d") {
			t.Errorf("window %q: hint %q", bad, hint(e))
		}
	}
	// Owner on registry only: a principal sees its own with
	// berth secret list NAME, not everyone's.
	_, sec := s.AddPrincipal(t, "reader", apitest.Role{Role: "pull", Scope: "registry"})
	call(t, s, creds{"reader", sec}, "GET", "/api/v1/secrets", nil).fails(t, berth.CodeRoleMissing)
}

// TestQueryCredentialRefused: a secret or refresh token in the query string
// of any API request is refused with invalid, before authentication, and is
// never echoed or logged.
func TestQueryCredentialRefused(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	refresh := "brr_" + strings.Repeat("Zq9", 12)
	for _, tt := range []struct {
		c           creds
		path, value string
	}{
		{admin, "/api/v1/principals?client_secret=", s.AdminSecret},
		{creds{}, "/api/v1/principals/admin?secret=", s.AdminSecret},
		{admin, "/api/v1/secrets?expiring_within=", s.AdminSecret},
		{admin, "/api/v1/audit?since=1d&refresh=", refresh},
		{admin, "/api/v1/nowhere?x=", refresh},
	} {
		r := call(t, s, tt.c, "GET", tt.path+url.QueryEscape(tt.value), nil)
		e := r.fails(t, berth.CodeInvalid)
		if strings.Contains(string(r.body), tt.value) || strings.Contains(string(r.body), tt.value[8:]) {
			t.Errorf("%s: the answer repeats the credential: %s", tt.path, r.body)
		}
		if msg, _ := e["message"].(string); !strings.Contains(msg, "query string") || !strings.Contains(hint(e), "Basic") {
			t.Errorf("%s: the answer does not say why or what to do: %s", tt.path, r.body)
		}
	}
	s.NoSecretsLogged(t, s.AdminSecret, refresh)
}
