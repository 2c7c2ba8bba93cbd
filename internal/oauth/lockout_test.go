package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// from sends a client_credentials request as if from address addr.
func (e *tokenEnv) from(addr, user, secret string) tokenResp {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/oauth2/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(testSourceHeader, addr)
	req.SetBasicAuth(user, secret)
	e.noteSent(secret)
	return e.do(req)
}

// TestStrangerCannotLockOutAClient: wrong secrets for a client from one
// address limit that address (and that client from it), never the client:
// its correct secret from a clean address goes through. Changing the case of
// the client id, or naming the principal instead, is the same client.
func TestStrangerCannotLockOutAClient(t *testing.T) {
	e := newTokenEnvWith(t, tokenEnvOptions{clientLimit: 5, addrLimit: 50})
	c := e.client("ci-web", 90*day, "pull team/app")
	wrong := e.client("other", 90*day).Value
	const attacker, clean = "203.0.113.9", "198.51.100.7"
	for range 5 {
		wantRefusal(t, e.from(attacker, c.ClientID, wrong), http.StatusUnauthorized, "invalid_client", berth.CodeSecretInvalid)
	}
	e.oauthToken(t, e.from(clean, c.ClientID, c.Value))
	e.oauthToken(t, e.from(clean, strings.ToUpper(c.ClientID), c.Value))
	for _, user := range []string{strings.ToUpper(c.ClientID), c.Name, c.ClientID} {
		wantRefusal(t, e.from(attacker, user, wrong), http.StatusTooManyRequests, "temporarily_unavailable", berth.CodeTooManyAttempts)
	}

	// The attacker's address, past its own limit, is refused whatever it sends.
	for range 45 {
		e.from(attacker, "nobody-"+strings.Repeat("x", 3), wrong)
	}
	wantRefusal(t, e.from(attacker, "other", wrong), http.StatusTooManyRequests, "temporarily_unavailable", berth.CodeTooManyAttempts)
	e.oauthToken(t, e.from(clean, c.ClientID, c.Value))
	e.clock.Advance(time.Minute)
	e.oauthToken(t, e.from(attacker, c.ClientID, c.Value))
}

// TestUnknownNameLooksLikeWrongSecret: whoever guesses principal names learns
// nothing: an unknown name gets the very answer a wrong secret of an existing
// principal gets, and a client id's refusal does not name its principal. The
// audit log keeps the real cause.
func TestUnknownNameLooksLikeWrongSecret(t *testing.T) {
	e := newTokenEnv(t)
	audit := &memAudit{}
	e.h.Audit = audit
	c := e.client("ci-web", 90*day)
	wrong := e.client("other", 90*day).Value
	malformed := "brt_tooshort"
	for _, secret := range []string{wrong, malformed} {
		known := wantRefusal(t, e.from("192.0.2.1", "ci-web", secret), http.StatusUnauthorized, "invalid_client", berth.CodeSecretInvalid)
		unknown := wantRefusal(t, e.from("192.0.2.1", "ci-wbe", secret), http.StatusUnauthorized, "invalid_client", berth.CodeSecretInvalid)
		if known.Description != unknown.Description || known.Hint != unknown.Hint {
			t.Errorf("an unknown name is told apart from a wrong secret:\n%q / %q\n%q / %q", known.Description, known.Hint, unknown.Description, unknown.Hint)
		}
		ev, _ := audit.last(berth.AuditAuthToken)
		if !strings.Contains(ev.Detail["cause"], "no principal is named ci-wbe") {
			t.Errorf("the audit event does not keep the cause: %v", ev.Detail)
		}
	}
	byID := wantRefusal(t, e.from("192.0.2.1", c.ClientID, wrong), http.StatusUnauthorized, "invalid_client", berth.CodeSecretInvalid)
	if strings.Contains(byID.Description+byID.Hint, "ci-web") {
		t.Errorf("a wrong secret sent with the client id names the principal: %q %q", byID.Description, byID.Hint)
	}
	if ev, _ := audit.last(berth.AuditAuthToken); ev.Detail["principal"] != "ci-web" {
		t.Errorf("the audit event does not name the principal: %v", ev.Detail)
	}
}

// TestPastedSecretIsNotEchoed: a secret pasted into the scope (or service)
// field is refused as invalid without being repeated in the answer or the
// log (the log records refusals at INFO). checkNoLeaks looks at both.
func TestPastedSecretIsNotEchoed(t *testing.T) {
	e := newTokenEnv(t)
	c := e.client("ci-web", 90*day, "pull team/app")
	for _, scope := range []string{c.Value, "repository:" + c.Value + ":pull", "repository:team/app:pull " + c.Value} {
		wantRefusal(t, e.post(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, c.ClientID, c.Value),
			http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
		wantRefusal(t, e.get(url.Values{"scope": {scope}}, c.ClientID, c.Value), http.StatusBadRequest, "invalid_request", berth.CodeInvalid)
	}
	if strings.Contains(e.logs.String(), c.Value) {
		t.Error("the log holds the secret")
	}
}
