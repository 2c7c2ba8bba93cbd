package berth_test

import (
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestPAT(t *testing.T) {
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	scopes, err := berth.ParsePATScopes([]string{"repository:team/app:pull", "registry:catalog:*"})
	if err != nil {
		t.Fatal(err)
	}
	tok, value, err := berth.NewPAT(rand.Reader, "p1", scopes, "laptop", now, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !berth.IsPATValue(value) || !regexp.MustCompile(berth.PATPattern).MatchString(value) || tok.Hash != berth.PATHash(value) || tok.Hint != value[:8] {
		t.Fatalf("value %q, token %+v", value, tok)
	}
	if !tok.Expires.Equal(now.Add(30 * 24 * time.Hour)) {
		t.Fatalf("default lifetime: %s", tok.Expires)
	}
	if id, ok := berth.PATIDOf(tok.CredentialID()); !ok || id != tok.ID {
		t.Fatal("credential id round trip")
	}
	// The last character changed (to one it is not: the value is random).
	other := "x"
	if strings.HasSuffix(value, "x") {
		other = "y"
	}
	if berth.IsPATValue(value[:len(value)-1]+other) || berth.IsPATValue("brt_"+value[4:]) {
		t.Fatal("a damaged value passes")
	}
	if _, _, err := berth.NewPAT(rand.Reader, "p1", scopes, "", now, 91*24*time.Hour, 90*24*time.Hour); !berth.IsCode(err, berth.CodeInvalid) {
		t.Fatalf("past the cap: %v", err)
	}
	if err := tok.Check(now); err != nil {
		t.Fatal(err)
	}
	if err := tok.Check(tok.Expires); !berth.IsCode(err, berth.CodeSecretExpired) {
		t.Fatalf("expired: %v", err)
	}
	tok.Revoked = &now
	if err := tok.Check(now); !berth.IsCode(err, berth.CodeSecretRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	for _, bad := range [][]string{nil, {"registry:api:*"}, {"repository:Team:pull"}, {"repository:team/app:write"}} {
		if _, err := berth.ParsePATScopes(bad); !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("ParsePATScopes(%q): %v", bad, err)
		}
	}
}
