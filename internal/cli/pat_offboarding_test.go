package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oidctest"
)

// A person's personal access token asks the provider about the person when
// the sign-in's refresh is due, as a session does: once the provider
// refuses the person (offboarded), the token stops at once, every other
// token of theirs is revoked, and the groups of the last sign-in no longer
// count. The token is used alone, without any session being checked first,
// so nothing but the token itself can have asked the provider.
func TestPATStopsWhenTheProviderRefusesThePerson(t *testing.T) {
	offset := moveServeClock(t)
	s, company := peopleServer(t)
	company.Now = serveNow
	s.apiJSON(t, http.MethodPost, "/api/v1/roles", map[string]string{"group": "corp:devs", "role": "push", "scope": "team/*"}, http.StatusCreated)
	env := loginPerson(t, s)
	var tokens []string
	for range 2 {
		code, out, stderr := runCLI(t, env, "token", "create", "--scope", "repository:team/app:pull,push", "--expires-in", "90d", "-o", "json")
		var tok struct{ Value string }
		if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || !berth.IsPATValue(tok.Value) {
			t.Fatalf("token create: %d %s %s", code, out, stderr)
		}
		tokens = append(tokens, tok.Value)
	}
	exchange := func(pat string) (int, berth.Code, string) {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/oauth2/token?service=berth&scope=repository:team/app:pull,push", nil)
		req.SetBasicAuth("ada.lovelace", pat)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var answer struct {
			Token  string     `json:"token"`
			Reason berth.Code `json:"reason"`
		}
		_ = json.Unmarshal(b, &answer)
		return resp.StatusCode, answer.Reason, answer.Token
	}

	// Still confirmed an hour on: the refresh is due, the provider answers.
	offset.Add(int64(61 * time.Minute))
	if status, reason, tok := exchange(tokens[0]); status != http.StatusOK || !grants(t, tok, "team/app", "push") {
		t.Fatalf("the token of a confirmed person: %d %s", status, reason)
	}

	// Offboarded upstream: out of the group, and refused.
	company.SetPerson(oidctest.Person{Subject: "00u-ada", Username: "ada", Groups: []string{"others"}})
	company.RefuseRefresh(true)
	offset.Add(int64(61 * time.Minute))
	if status, reason, _ := exchange(tokens[0]); status == http.StatusOK || reason != berth.CodeSessionEnded {
		t.Fatalf("the token once the provider refused the person: %d %s, want session_ended", status, reason)
	}
	// The other token was revoked with it, and stays so, though the
	// provider is no longer asked (the refresh token is gone).
	for i, pat := range tokens {
		if status, reason, _ := exchange(pat); status == http.StatusOK || reason != berth.CodeSecretRevoked {
			t.Fatalf("token %d after the refusal: %d %s, want secret_revoked", i, status, reason)
		}
	}
	check := s.apiJSON(t, http.MethodGet, "/api/v1/access/check?principal=ada.lovelace&action=push&repository=team/app", nil, http.StatusOK)
	if check["allowed"] != false {
		t.Fatalf("access check after the provider refused the person: %v", check)
	}
	if strings.Contains(s.stderr.String(), tokens[0]) {
		t.Fatal("a token's value reached the log")
	}
}
