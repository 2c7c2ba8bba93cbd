package api_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

func TestRevokeLeakedSecret(t *testing.T) {
	s := apitest.NewWith(t, apitest.Options{Audit: true})
	admin := adminCreds(s)
	_, value := s.AddPrincipal(t, "ci", apitest.Role{Role: "pull", Scope: "registry"})
	caller, err := s.Provider.AuthenticateClient(context.Background(), "ci", value, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	refresh, _, err := s.Provider.IssueRefreshToken(context.Background(), caller)
	if err != nil {
		t.Fatal(err)
	}

	// Only an owner may revoke, and a refusal says nothing of the value.
	call(t, s, creds{"ci", value}, "POST", "/api/v1/secrets/revoke-leaked", api.RevokeLeakedRequest{Value: value}).fails(t, berth.CodeRoleMissing)
	call(t, s, creds{"ci", value}, "GET", "/api/v1/principals/ci", nil).ok(t, http.StatusOK, nil)

	var got api.RevokedLeaked
	r := call(t, s, admin, "POST", "/api/v1/secrets/revoke-leaked", api.RevokeLeakedRequest{Value: value})
	r.ok(t, http.StatusOK, &got)
	hasFields(t, "a revoked leaked secret", fields(t, r.body), "principal", "secret_id", "hint", "already_revoked", "revoked_at", "refresh_tokens_revoked")
	if got.Principal != "ci" || got.SecretID != caller.CredentialID || got.AlreadyRevoked || got.RefreshTokensRevoked != 1 ||
		got.Hint != value[:berth.SecretHintLength] || !got.Revoked.Equal(apitest.Epoch) {
		t.Errorf("revoked %+v", got)
	}
	if strings.Contains(string(r.body), value) {
		t.Errorf("the answer holds the value: %s", r.body)
	}
	// The secret and its refresh token stop at once.
	call(t, s, creds{"ci", value}, "GET", "/api/v1/principals/ci", nil).fails(t, berth.CodeSecretRevoked)
	if _, err := s.Provider.RedeemRefreshToken(context.Background(), refresh.Reveal(), "127.0.0.1"); !berth.IsCode(err, berth.CodeRefreshTokenInvalid) {
		t.Errorf("refresh token of a revoked leaked secret: %v", err)
	}
	// Again: already revoked, at the first time.
	call(t, s, admin, "POST", "/api/v1/secrets/revoke-leaked", api.RevokeLeakedRequest{Value: value}).ok(t, http.StatusOK, &got)
	if !got.AlreadyRevoked || got.Principal != "ci" || !got.Revoked.Equal(apitest.Epoch) {
		t.Errorf("revoked again %+v", got)
	}

	// A well-formed value berth does not know: not_found, and nothing more.
	other, err := berth.NewSecretValue(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := call(t, s, admin, "POST", "/api/v1/secrets/revoke-leaked", api.RevokeLeakedRequest{Value: other.Reveal()}).fails(t, berth.CodeNotFound)
	if msg := e["message"].(string); strings.Contains(msg, "ci") || strings.Contains(msg, other.Hint()) {
		t.Errorf("not_found says too much: %q", msg)
	}
	// Not a client secret at all.
	bad := value[:len(value)-1] + "x"
	if bad == value {
		bad = value[:len(value)-1] + "y"
	}
	for _, v := range []string{"", "hunter2", bad} {
		e := call(t, s, admin, "POST", "/api/v1/secrets/revoke-leaked", api.RevokeLeakedRequest{Value: v}).fails(t, berth.CodeInvalid)
		if v != "" && strings.Contains(e["message"].(string), v) {
			t.Errorf("invalid quotes the value: %v", e)
		}
	}
	call(t, s, admin, "POST", "/api/v1/secrets/revoke-leaked", `{"value": "x", "principal": "ci"}`).fails(t, berth.CodeInvalid)

	// Audited: who revoked which secret of which principal, never the value.
	events, err := s.Store.FindAuditEvents(context.Background(), berth.AuditFilter{Action: berth.AuditSecretRevokeLeaked})
	if err != nil {
		t.Fatal(err)
	}
	var allowed, denied int
	for _, ev := range events {
		if ev.Result == berth.AuditAllowed {
			allowed++
			if ev.Target != "ci" || ev.Actor != "admin" || ev.Detail["secret_id"] != caller.CredentialID {
				t.Errorf("event %+v", ev)
			}
		} else {
			denied++
		}
	}
	if allowed != 2 || denied < 3 {
		t.Errorf("%d allowed and %d denied events, want 2 and at least 3: %+v", allowed, denied, events)
	}
	s.NoSecretsLogged(t, value, other.Reveal())
}

// The credential a request is made with is not revoked as leaked through that
// request: berth scan --revoke, finding its own login's secret in a backup
// file, had revoked it first and failed every revocation after it, leaving
// an only owner locked out. The refusal says how to replace it; the secret
// stays valid.
func TestRevokeLeakedKeepsTheCallersCredential(t *testing.T) {
	s := apitest.New(t)
	admin := adminCreds(s)
	e := call(t, s, admin, "POST", "/api/v1/secrets/revoke-leaked", api.RevokeLeakedRequest{Value: s.AdminSecret}).fails(t, berth.CodeConflict)
	if hint, _ := e["hint"].(string); !strings.Contains(hint, "berth secret add admin") || !strings.Contains(hint, "berth secret remove admin ") {
		t.Errorf("hint %q", e["hint"])
	}
	call(t, s, admin, "GET", "/api/v1/principals/admin", nil).ok(t, http.StatusOK, nil)

	// Another owner's request revokes it.
	_, other := s.AddPrincipal(t, "owner2", apitest.Role{Role: "owner", Scope: "registry"})
	call(t, s, creds{"owner2", other}, "POST", "/api/v1/secrets/revoke-leaked", api.RevokeLeakedRequest{Value: s.AdminSecret}).ok(t, http.StatusOK, nil)
	call(t, s, admin, "GET", "/api/v1/principals/admin", nil).fails(t, berth.CodeSecretRevoked)
}
