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

// TestCredentialAllows: what a caller presented allows an action only when
// both its access token and its personal access token's scopes do; a
// caller with neither (Basic credentials, a session) is not limited here.
func TestCredentialAllows(t *testing.T) {
	appPull := []berth.ResourceActions{{Type: berth.ResourceRepository, Name: "team/app", Actions: []string{"pull"}}}
	catalog := []berth.ResourceActions{{Type: berth.ResourceRegistry, Name: berth.ResourceCatalog, Actions: []string{"*"}}}
	both := append(append([]berth.ResourceActions{}, appPull...), catalog...)
	for _, tc := range []struct {
		what         string
		token, limit []berth.ResourceActions
		want         bool
	}{
		{"no limit at all", nil, nil, true},
		{"a token for the catalog", catalog, nil, true},
		{"a token for one repository", appPull, nil, false},
		{"a personal token for one repository", nil, appPull, false},
		{"a personal token for the catalog", nil, catalog, true},
		{"a wide token, a narrow personal token", both, appPull, false},
		{"a narrow token, a wide personal token", appPull, both, false},
		{"both for the catalog", both, both, true},
	} {
		c := &berth.Caller{Limit: tc.limit}
		if tc.token != nil {
			c.Token = &berth.AccessClaims{Access: tc.token}
		}
		if got := c.CredentialAllows(berth.ResourceRegistry, berth.ResourceCatalog, "*"); got != tc.want {
			t.Errorf("%s: CredentialAllows(catalog) = %v, want %v", tc.what, got, tc.want)
		}
	}
}

// TestMayCreatePATs: only a person acting as themselves creates personal
// access tokens.
func TestMayCreatePATs(t *testing.T) {
	person := &berth.Principal{Name: "ada", Kind: berth.PrincipalUser}
	service := &berth.Principal{Name: "ci", Kind: berth.PrincipalService}
	for _, tc := range []struct {
		what string
		c    berth.Caller
		want berth.Code
	}{
		{"a person", berth.Caller{Principal: person}, ""},
		{"a service principal", berth.Caller{Principal: service}, berth.CodeInvalid},
		{"a pipeline acting as a person", berth.Caller{Principal: person, Connection: "web"}, berth.CodeScopeNotGranted},
		{"a person's personal access token", berth.Caller{Principal: person, CredentialID: berth.PATCredentialPrefix + "x"}, berth.CodeScopeNotGranted},
		{"the anonymous caller", berth.Caller{}, berth.CodeInvalid},
	} {
		err := tc.c.MayCreatePATs()
		if tc.want == "" && err != nil || tc.want != "" && !berth.IsCode(err, tc.want) {
			t.Errorf("%s: %v, want %q", tc.what, err, tc.want)
		}
	}
}

// TestMintingAndRevokingOwnCredentials: a pipeline makes no client secrets,
// and no caller revokes as leaked the credential it is making the request
// with; the hint fits a person (sign in) or a service principal (a new
// secret).
func TestMintingAndRevokingOwnCredentials(t *testing.T) {
	person := &berth.Principal{Name: "ada", Kind: berth.PrincipalUser}
	service := &berth.Principal{Name: "ci", Kind: berth.PrincipalService}
	if err := (&berth.Caller{Principal: service}).MayMintSecrets("ci"); err != nil {
		t.Errorf("an owner's client secret may not mint: %v", err)
	}
	if err := (&berth.Caller{Principal: service, Connection: "deploy"}).MayMintSecrets("ci"); !berth.IsCode(err, berth.CodeScopeNotGranted) ||
		!strings.Contains(berth.AsError(err).Hint, "berth secret add ci --expires-in 90d") {
		t.Errorf("a pipeline mints secrets: %v", err)
	}
	svc := &berth.Caller{Actor: berth.Actor{Name: "ci"}, Principal: service, CredentialID: "s-1"}
	if err := svc.MayRevokeAsLeaked("s-2", "client secret", "berth secret remove ci s-2"); err != nil {
		t.Errorf("revoking another secret: %v", err)
	}
	e := berth.AsError(svc.MayRevokeAsLeaked("s-1", "client secret", "berth secret remove ci s-1"))
	if e == nil || e.Code != berth.CodeConflict || !strings.Contains(e.Hint, "berth secret add ci") || !strings.Contains(e.Hint, "berth secret remove ci s-1") {
		t.Errorf("revoking one's own secret: %v", e)
	}
	ada := &berth.Caller{Actor: berth.Actor{Name: "ada"}, Principal: person, CredentialID: berth.PATCredentialPrefix + "t-1"}
	e = berth.AsError(ada.MayRevokeAsLeaked(berth.PATCredentialPrefix+"t-1", "personal access token", "berth token revoke t-1"))
	if e == nil || e.Code != berth.CodeConflict || strings.Contains(e.Hint, "secret add") {
		t.Errorf("a person revoking the token in use: %v", e)
	}
}
