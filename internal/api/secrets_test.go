package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

func TestSecretLifecycle(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	call(t, s, admin, "POST", "/api/v1/principals", map[string]string{"name": "ci"}).ok(t, http.StatusCreated, nil)

	// Add: the value is shown here, once.
	r := call(t, s, admin, "POST", "/api/v1/principals/ci/secrets", api.AddSecretRequest{ExpiresIn: "30d", Description: "deploy pipeline"})
	var ns api.NewSecret
	r.ok(t, http.StatusCreated, &ns)
	hasFields(t, "a new secret", fields(t, r.body), "id", "hint", "value", "expires_at", "created_at", "description")
	if err := berth.CheckSecretFormat(ns.Value); err != nil {
		t.Fatalf("value: %v", err)
	}
	if !strings.HasPrefix(ns.Value, ns.Hint) || !ns.Expires.Equal(apitest.Epoch.Add(30*24*time.Hour)) || ns.Description != "deploy pipeline" {
		t.Errorf("new secret %+v", ns)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on the answer holding a secret, want no-store", cc)
	}

	// The default lifetime is 90 days.
	var second api.NewSecret
	call(t, s, admin, "POST", "/api/v1/principals/ci/secrets", map[string]string{}).ok(t, http.StatusCreated, &second)
	if !second.Expires.Equal(apitest.Epoch.Add(berth.DefaultSecretLifetime)) {
		t.Errorf("default lifetime: expires %v", second.Expires)
	}

	// It authenticates, and its use is recorded.
	ci := creds{"ci", ns.Value}
	call(t, s, ci, "GET", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, nil)

	// The list never holds a value.
	r = call(t, s, admin, "GET", "/api/v1/principals/ci/secrets", nil)
	var list api.SecretList
	r.ok(t, http.StatusOK, &list)
	if strings.Contains(string(r.body), ns.Value) || strings.Contains(string(r.body), second.Value) || strings.Contains(string(r.body), `"value"`) {
		t.Fatalf("the secret list holds a value: %s", r.body)
	}
	if len(list.Secrets) != 2 {
		t.Fatalf("list: %+v", list)
	}
	first := fields(t, r.body)["secrets"].([]any)[0].(map[string]any)
	hasFields(t, "a listed secret", first, "id", "hint", "state", "created_at", "expires_at", "last_used_at", "description")
	for _, sec := range list.Secrets {
		if sec.State != berth.SecretActive {
			t.Errorf("secret %s: state %s, want active", sec.ID, sec.State)
		}
		if used := sec.LastUsed != nil; used != (sec.ID == ns.ID) {
			t.Errorf("secret %s: last used %v", sec.ID, sec.LastUsed)
		}
	}
	// A principal may list its own secrets.
	call(t, s, ci, "GET", "/api/v1/principals/ci/secrets", nil).ok(t, http.StatusOK, nil)

	// Remove: the secret and its refresh tokens stop at once, and its later use
	// is reported as revoked.
	caller, err := s.Provider.AuthenticateClient(context.Background(), "ci", ns.Value, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	refresh, _, err := s.Provider.IssueRefreshToken(context.Background(), caller)
	if err != nil {
		t.Fatal(err)
	}
	var removed api.RemovedSecret
	call(t, s, admin, "DELETE", "/api/v1/principals/ci/secrets/"+ns.ID, nil).ok(t, http.StatusOK, &removed)
	if removed.State != berth.SecretRevoked || removed.Revoked == nil || removed.RefreshTokensRevoked != 1 {
		t.Errorf("removed %+v", removed)
	}
	call(t, s, ci, "GET", "/api/v1/principals/ci", nil).fails(t, berth.CodeSecretRevoked)
	if _, err := s.Provider.RedeemRefreshToken(context.Background(), refresh.Reveal(), "127.0.0.1"); !berth.IsCode(err, berth.CodeRefreshTokenInvalid) {
		t.Errorf("refresh token of a removed secret: %v, want refresh_token_invalid", err)
	}
	// Removing it again changes nothing.
	call(t, s, admin, "DELETE", "/api/v1/principals/ci/secrets/"+ns.ID, nil).ok(t, http.StatusOK, &removed)
	if !removed.Revoked.Equal(apitest.Epoch) {
		t.Errorf("removed again: revoked at %v", removed.Revoked)
	}

	// States: revoked, expired, active.
	s.Clock.Advance(91 * 24 * time.Hour)
	call(t, s, admin, "GET", "/api/v1/principals/ci/secrets", nil).ok(t, http.StatusOK, &list)
	states := map[string]berth.SecretState{}
	for _, sec := range list.Secrets {
		states[sec.ID] = sec.State
	}
	if states[ns.ID] != berth.SecretRevoked || states[second.ID] != berth.SecretExpired {
		t.Errorf("states %v", states)
	}
	call(t, s, creds{"ci", second.Value}, "GET", "/api/v1/principals/ci", nil).fails(t, berth.CodeSecretExpired)

	s.NoSecretsLogged(t, s.AdminSecret, ns.Value, second.Value)
}

func TestSecretRefusals(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	p, puller := s.AddPrincipal(t, "puller", apitest.Role{Role: "pull", Scope: "registry"})
	secrets, err := s.Store.FindSecrets(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	pullerSecretID := secrets[0].ID

	for _, tc := range []struct {
		name   string
		c      creds
		method string
		path   string
		body   any
		code   berth.Code
		hint   string
	}{
		{"lifetime over the maximum", admin, "POST", "/api/v1/principals/puller/secrets", api.AddSecretRequest{ExpiresIn: "400d"}, berth.CodeInvalid, "365d"},
		{"lifetime malformed", admin, "POST", "/api/v1/principals/puller/secrets", api.AddSecretRequest{ExpiresIn: "soon"}, berth.CodeInvalid, ""},
		{"lifetime negative", admin, "POST", "/api/v1/principals/puller/secrets", api.AddSecretRequest{ExpiresIn: "-1h"}, berth.CodeInvalid, ""},
		{"description too long", admin, "POST", "/api/v1/principals/puller/secrets", api.AddSecretRequest{Description: strings.Repeat("x", 300)}, berth.CodeInvalid, ""},
		{"unknown principal", admin, "POST", "/api/v1/principals/nobody/secrets", api.AddSecretRequest{}, berth.CodeNotFound, ""},
		{"not owner adds", creds{"puller", puller}, "POST", "/api/v1/principals/puller/secrets", api.AddSecretRequest{}, berth.CodeRoleMissing, ""},
		{"not owner lists another's", creds{"puller", puller}, "GET", "/api/v1/principals/admin/secrets", nil, berth.CodeRoleMissing, ""},
		{"not owner removes", creds{"puller", puller}, "DELETE", "/api/v1/principals/puller/secrets/" + pullerSecretID, nil, berth.CodeRoleMissing, ""},
		{"unknown secret", admin, "DELETE", "/api/v1/principals/puller/secrets/0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70", nil, berth.CodeNotFound, "berth secret list puller"},
		{"secret of another principal", admin, "DELETE", "/api/v1/principals/admin/secrets/" + pullerSecretID, nil, berth.CodeNotFound, ""},
		{"secret id malformed", admin, "DELETE", "/api/v1/principals/puller/secrets/abc", nil, berth.CodeInvalid, ""},
		{"secret value for its id", admin, "DELETE", "/api/v1/principals/puller/secrets/" + puller, nil, berth.CodeInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := call(t, s, tc.c, tc.method, tc.path, tc.body).fails(t, tc.code)
			if tc.hint != "" && !strings.Contains(hint(e), tc.hint) {
				t.Errorf("hint %q does not hold %q", hint(e), tc.hint)
			}
			if strings.Contains(e["message"].(string), puller) {
				t.Errorf("the message repeats a secret value")
			}
		})
	}
	secrets, err = s.Store.FindSecrets(context.Background(), p.ID)
	if err != nil || len(secrets) != 1 || secrets[0].Revoked != nil {
		t.Errorf("secrets after refusals: %v, %v", secrets, err)
	}
	s.NoSecretsLogged(t, s.AdminSecret, puller)
}
