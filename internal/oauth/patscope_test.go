package oauth_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// noPeople lets the Provider take personal access tokens (it needs People
// for them) in a test that signs no one in.
type noPeople struct{}

func (noPeople) CheckSession(context.Context, string) (berth.UserSession, error) {
	return berth.UserSession{}, berth.Errorf(berth.CodeSessionEnded, "no sessions here")
}

func (noPeople) SessionByCookie(context.Context, string) (berth.UserSession, error) {
	return berth.UserSession{}, berth.Errorf(berth.CodeSessionEnded, "no sessions here")
}

func (noPeople) GroupAssignments(context.Context, berth.Principal) ([]berth.RoleAssignment, []berth.GroupRoleAssignment, error) {
	return nil, nil, nil
}

func (noPeople) EndSession(context.Context, string) error { return nil }

// ConfirmPerson confirms everyone: no provider signs them in here.
func (noPeople) ConfirmPerson(context.Context, string) error { return nil }

func (noPeople) RedeemDeviceCode(context.Context, string) (berth.UserSession, error) {
	return berth.UserSession{}, berth.Errorf(berth.CodeDeviceCodeExpired, "no device logins here")
}

// pat stores a personal access token of p limited to scopes and returns its
// value.
func (e *tokenEnv) pat(p berth.Principal, scopes ...string) string {
	e.t.Helper()
	ras, err := berth.ParsePATScopes(scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, value, err := berth.NewPAT(e.rand, p.ID, ras, "test", e.clock.Now(), 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.CreatePAT(context.Background(), tok); err != nil {
		e.t.Fatal(err)
	}
	return value
}

// TestPATStaysWithinItsScopes: a personal access token used as a password
// at the token endpoint gets access tokens for its scopes only and no
// refresh token. And naming the closest repositories to a refused one is
// listing them: a token created for one repository, not for the catalog,
// must not learn other repositories' names that way, whatever its person's
// roles let them list, as for an access token issued without
// registry:catalog:*.
func TestPATStaysWithinItsScopes(t *testing.T) {
	e := newTokenEnv(t)
	e.p.People = noPeople{}
	e.p.Repositories = e.db
	ctx := context.Background()
	for _, repo := range []string{"team/app", "secret/db"} {
		d := berth.Digest("sha256:" + strings.Repeat("a", 64))
		if err := e.db.LinkBlob(ctx, berth.BlobLink{Repository: repo, Digest: d, Size: 1, Created: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	dev := e.client("dev", 90*24*time.Hour, "catalog registry", "pull team/*", "pull secret/*")
	narrow := e.pat(dev.Principal, "repository:team/app:pull")
	wide := e.pat(dev.Principal, "repository:team/app:pull", "registry:catalog:*")

	// The token works for what it was created for, and for no more: a wider
	// scope asked for is cut to it, and no refresh token, which the token's
	// scopes would not bind, is issued for it.
	d := e.dockerToken(t, e.get(url.Values{"service": {audience}, "scope": {"repository:team/app:pull,push registry:catalog:* registry:api:*"}, "offline_token": {"true"}}, "dev", narrow))
	wantAccess(t, e.verify(t, d.Token), "repository:team/app:pull")
	if d.RefreshToken != "" {
		t.Error("a personal access token was given a refresh token")
	}
	o := e.oauthToken(t, e.post(url.Values{"grant_type": {"password"}, "username": {"dev"}, "password": {narrow}, "service": {audience},
		"scope": {"repository:team/app:pull registry:api:*"}, "access_type": {"offline"}}))
	wantAccess(t, e.verify(t, o.AccessToken), "repository:team/app:pull")
	if o.RefreshToken != "" {
		t.Error("a personal access token was given a refresh token by the password grant")
	}

	// A typo of a repository the person may list: the refusal must not
	// name secret/db to a token that may not list.
	r := e.get(url.Values{"service": {audience}, "scope": {"repository:secrt/db:pull"}}, "dev", narrow)
	wantRefusal(t, r, http.StatusForbidden, "invalid_scope", berth.CodeRoleMissing)
	if strings.Contains(string(r.Body), "secret/db") {
		t.Errorf("a personal access token without registry:catalog:* learnt the name secret/db: %s", r.Body)
	}

	// With the catalog in its scopes, it may be told that the name is
	// unknown and which is closest (the catalog lists it anyway).
	r = e.get(url.Values{"service": {audience}, "scope": {"repository:secrt/db:pull"}}, "dev", wide)
	wantRefusal(t, r, http.StatusNotFound, "invalid_request", berth.CodeNameUnknown)
	if !strings.Contains(string(r.Body), "secret/db") {
		t.Errorf("a personal access token with registry:catalog:* was not pointed at secret/db: %s", r.Body)
	}
}

// A personal access token whose stored scopes are empty (a damaged or
// hand-edited row: creation needs one) allows nothing: a caller without a
// limit is unlimited, so its limit must not vanish with its scopes.
func TestPATWithoutScopesAllowsNothing(t *testing.T) {
	e := newTokenEnv(t)
	e.p.People = noPeople{}
	dev := e.client("dev", 90*24*time.Hour, "pull team/*")
	tok, value, err := berth.NewPAT(e.rand, dev.Principal.ID, []berth.ResourceActions{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}, "test", e.clock.Now(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok.Scopes = nil
	if err := e.db.CreatePAT(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	c, err := e.p.AuthenticateClient(context.Background(), "dev", value, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if c.LimitAllows("repository", "team/app", "pull") || !c.ViaPAT() {
		t.Errorf("a token without scopes: limit %v, allows pull: %v", c.Limit, c.LimitAllows("repository", "team/app", "pull"))
	}
	wantRefusal(t, e.get(url.Values{"service": {audience}, "scope": {"repository:team/app:pull"}}, "dev", value), http.StatusForbidden, "invalid_request", berth.CodeScopeNotGranted)
}
