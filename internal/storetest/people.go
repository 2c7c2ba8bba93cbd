package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

var peopleTests = []test{
	{"IdentityProviders", testIdentityProviders},
	{"Users", testUsers},
	{"GroupRoleAssignments", testGroupRoleAssignments},
	{"Sessions", testSessions},
	{"DeviceAuthorizations", testDeviceAuthorizations},
	{"PersonalAccessTokens", testPATs},
}

func idpN(n int, name string) berth.IdentityProvider {
	return berth.IdentityProvider{
		ID: principalN(n+100, "x", 0).ID, Name: name, Issuer: "https://idp.example.com/" + name, ClientID: "berth-" + name,
		GroupsClaim: "groups", UsernameClaim: "preferred_username", Scopes: []string{"openid", "profile", "groups"},
		SealedSecret: []byte{1, 2, 3, byte(n)}, Created: at(n),
	}
}

func testIdentityProviders(t *testing.T, s berth.MetadataStore) {
	corp, dev := idpN(1, "corp"), idpN(2, "dev")
	must(t, s.CreateIdentityProvider(ctx(t), dev))
	must(t, s.CreateIdentityProvider(ctx(t), corp))
	dup := idpN(3, "corp")
	wantCode(t, "same name", s.CreateIdentityProvider(ctx(t), dup), berth.CodeConflict)

	got, err := s.FindIdentityProviderByName(ctx(t), "corp")
	must(t, err)
	if got.ID != corp.ID || got.Issuer != corp.Issuer || got.ClientID != corp.ClientID || !slices.Equal(got.Scopes, corp.Scopes) ||
		!slices.Equal(got.SealedSecret, corp.SealedSecret) || got.GroupsClaim != "groups" || got.UsernameClaim != "preferred_username" {
		t.Fatalf("read back %+v, want %+v", got, corp)
	}
	wantTime(t, "created", got.Created, corp.Created)
	if byID, err := s.FindIdentityProviderByID(ctx(t), dev.ID); err != nil || byID.Name != "dev" {
		t.Fatalf("by id: %+v %v", byID, err)
	}
	all, err := s.FindIdentityProviders(ctx(t))
	must(t, err)
	if len(all) != 2 || all[0].Name != "corp" || all[1].Name != "dev" {
		t.Fatalf("list: %+v", all)
	}
	_, err = s.FindIdentityProviderByName(ctx(t), "nope")
	wantCode(t, "unknown", err, berth.CodeNotFound)
	changed := corp
	changed.Issuer, changed.ClientID, changed.Scopes, changed.SealedSecret = "https://idp2.example.com", "other", []string{"openid"}, []byte{9}
	must(t, s.UpdateIdentityProvider(ctx(t), changed))
	got, _ = s.FindIdentityProviderByID(ctx(t), corp.ID)
	if got.Issuer != changed.Issuer || got.ClientID != "other" || !slices.Equal(got.Scopes, []string{"openid"}) || !slices.Equal(got.SealedSecret, []byte{9}) || got.Name != "corp" {
		t.Fatalf("updated: %+v", got)
	}
	wantCode(t, "update unknown", s.UpdateIdentityProvider(ctx(t), idpN(9, "x")), berth.CodeNotFound)

	// Removing a provider removes its people's links and sessions.
	p := principalN(1, "ada", 1)
	p.Kind = berth.PrincipalUser
	must(t, s.CreateUser(ctx(t), p, berth.UserLink{PrincipalID: p.ID, ProviderID: corp.ID, Issuer: corp.Issuer, Subject: "s1", Refreshed: at(1)}))
	sess := berth.UserSession{ID: principalN(50, "x", 0).ID, PrincipalID: p.ID, ProviderID: corp.ID, Hash: "h1", Created: at(1), Expires: at(100)}
	must(t, s.CreateSession(ctx(t), sess))
	must(t, s.DeleteIdentityProvider(ctx(t), corp.ID))
	wantCode(t, "again", s.DeleteIdentityProvider(ctx(t), corp.ID), berth.CodeNotFound)
	_, err = s.FindUserLink(ctx(t), corp.Issuer, "s1")
	wantCode(t, "link after removal", err, berth.CodeNotFound)
	_, err = s.FindSessionByID(ctx(t), sess.ID)
	wantCode(t, "session after removal", err, berth.CodeNotFound)
	if _, err := s.FindPrincipalByID(ctx(t), p.ID); err != nil {
		t.Fatalf("the principal stays: %v", err)
	}
}

func testUsers(t *testing.T, s berth.MetadataStore) {
	p := principalN(1, "ada", 1)
	p.Kind = berth.PrincipalUser
	l := berth.UserLink{PrincipalID: p.ID, ProviderID: "idp1", Issuer: "https://idp", Subject: "sub-ada",
		Groups: []berth.Group{"corp:devs", "corp:ops"}, SealedRefresh: []byte("sealed"), Refreshed: at(1)}
	must(t, s.CreateUser(ctx(t), p, l))
	got, err := s.FindUserLink(ctx(t), "https://idp", "sub-ada")
	must(t, err)
	if got.PrincipalID != p.ID || !slices.Equal(got.Groups, l.Groups) || string(got.SealedRefresh) != "sealed" {
		t.Fatalf("link: %+v", got)
	}
	wantTime(t, "refreshed", got.Refreshed, at(1))
	pr, err := s.FindPrincipalByID(ctx(t), p.ID)
	must(t, err)
	if pr.Kind != berth.PrincipalUser || pr.Name != "ada" {
		t.Fatalf("principal: %+v", pr)
	}

	// The same person again, or the same name: conflict, nothing written.
	q := principalN(2, "bob", 2)
	wantCode(t, "same subject", s.CreateUser(ctx(t), q, berth.UserLink{PrincipalID: q.ID, Issuer: "https://idp", Subject: "sub-ada", Refreshed: at(2)}), berth.CodeConflict)
	_, err = s.FindPrincipalByID(ctx(t), q.ID)
	wantCode(t, "principal of a refused user", err, berth.CodeNotFound)
	r := principalN(3, "ada", 3)
	wantCode(t, "same name", s.CreateUser(ctx(t), r, berth.UserLink{PrincipalID: r.ID, Issuer: "https://idp", Subject: "sub-other", Refreshed: at(3)}), berth.CodeConflict)

	got.Groups, got.SealedRefresh, got.Refreshed = []berth.Group{"corp:devs"}, nil, at(5)
	must(t, s.UpdateUserLink(ctx(t), got))
	again, err := s.FindUserLinkByPrincipal(ctx(t), p.ID)
	must(t, err)
	if !slices.Equal(again.Groups, []berth.Group{"corp:devs"}) || again.SealedRefresh != nil {
		t.Fatalf("updated: %+v", again)
	}
	wantTime(t, "refreshed after update", again.Refreshed, at(5))
	wantCode(t, "update unknown", s.UpdateUserLink(ctx(t), berth.UserLink{PrincipalID: q.ID}), berth.CodeNotFound)

	// Deleting the principal deletes the person's link, sessions and
	// tokens; the person's next sign-in is a new principal.
	sess := berth.UserSession{ID: principalN(40, "x", 0).ID, PrincipalID: p.ID, ProviderID: "idp1", Created: at(1), Expires: at(100)}
	must(t, s.CreateSession(ctx(t), sess))
	pat := berth.PersonalAccessToken{ID: principalN(41, "x", 0).ID, PrincipalID: p.ID, Hint: "brp_x", Hash: "ph", Created: at(1), Expires: at(100)}
	must(t, s.CreatePAT(ctx(t), pat))
	must(t, s.DeletePrincipal(ctx(t), p.ID))
	_, err = s.FindUserLinkByPrincipal(ctx(t), p.ID)
	wantCode(t, "link of a deleted principal", err, berth.CodeNotFound)
	_, err = s.FindSessionByID(ctx(t), sess.ID)
	wantCode(t, "session of a deleted principal", err, berth.CodeNotFound)
	_, err = s.FindPATByID(ctx(t), pat.ID)
	wantCode(t, "token of a deleted principal", err, berth.CodeNotFound)
	must(t, s.CreateUser(ctx(t), q, berth.UserLink{PrincipalID: q.ID, Issuer: "https://idp", Subject: "sub-ada", Refreshed: at(6)}))
	if l, err := s.FindUserLink(ctx(t), "https://idp", "sub-ada"); err != nil || l.PrincipalID != q.ID || len(l.Groups) != 0 {
		t.Fatalf("relinked: %+v %v", l, err)
	}
}

func testGroupRoleAssignments(t *testing.T, s berth.MetadataStore) {
	team, err := berth.ParseScope("team/*")
	must(t, err)
	a := berth.GroupRoleAssignment{Group: "corp:devs", Role: berth.RolePush, Scope: team, Created: at(1), CreatedBy: "p0"}
	b := berth.GroupRoleAssignment{Group: "corp:admins", Role: berth.RoleOwner, Scope: berth.RegistryScope, Created: at(2)}
	must(t, s.CreateGroupRoleAssignment(ctx(t), a))
	must(t, s.CreateGroupRoleAssignment(ctx(t), b))
	wantCode(t, "twice", s.CreateGroupRoleAssignment(ctx(t), a), berth.CodeConflict)
	all, err := s.FindGroupRoleAssignments(ctx(t))
	must(t, err)
	if len(all) != 2 || all[0].Group != "corp:admins" || all[1].Scope != team || all[1].Role != berth.RolePush || all[1].CreatedBy != "p0" {
		t.Fatalf("list: %+v", all)
	}
	wantTime(t, "created", all[1].Created, at(1))
	wantCode(t, "revoke unknown", s.DeleteGroupRoleAssignment(ctx(t), "corp:devs", berth.RolePull, team), berth.CodeNotFound)
	must(t, s.DeleteGroupRoleAssignment(ctx(t), "corp:devs", berth.RolePush, team))
	all, _ = s.FindGroupRoleAssignments(ctx(t))
	if len(all) != 1 {
		t.Fatalf("after revoke: %+v", all)
	}
}

func testSessions(t *testing.T, s berth.MetadataStore) {
	browser := berth.UserSession{ID: principalN(1, "x", 0).ID, PrincipalID: "p1", ProviderID: "i1", Hash: "cookiehash", Created: at(1), Expires: at(100)}
	cli1 := berth.UserSession{ID: principalN(2, "x", 0).ID, PrincipalID: "p1", ProviderID: "i1", Created: at(2), Expires: at(100)}
	cli2 := berth.UserSession{ID: principalN(3, "x", 0).ID, PrincipalID: "p1", ProviderID: "i1", Created: at(3), Expires: at(100)}
	for _, x := range []berth.UserSession{browser, cli1, cli2} {
		must(t, s.CreateSession(ctx(t), x))
	}
	wantCode(t, "same hash", s.CreateSession(ctx(t), berth.UserSession{ID: principalN(4, "x", 0).ID, Hash: "cookiehash", Created: at(1), Expires: at(2)}), berth.CodeConflict)
	got, err := s.FindSessionByHash(ctx(t), "cookiehash")
	must(t, err)
	if got.ID != browser.ID || got.PrincipalID != "p1" || got.Ended != nil {
		t.Fatalf("by hash: %+v", got)
	}
	wantTime(t, "expires", got.Expires, at(100))
	_, err = s.FindSessionByHash(ctx(t), "")
	wantCode(t, "empty hash (a CLI session)", err, berth.CodeNotFound)

	must(t, s.EndSession(ctx(t), cli1.ID, at(10)))
	must(t, s.EndSession(ctx(t), cli1.ID, at(20)))
	got, _ = s.FindSessionByID(ctx(t), cli1.ID)
	if got.Ended == nil || !got.Ended.Equal(at(10)) {
		t.Fatalf("ended keeps its first time: %+v", got.Ended)
	}
	n, err := s.EndSessionsOfPrincipal(ctx(t), "p1", at(30))
	must(t, err)
	if n != 2 {
		t.Fatalf("ended %d sessions, want 2 (one had ended)", n)
	}
	got, _ = s.FindSessionByID(ctx(t), browser.ID)
	if got.Ended == nil || !got.Ended.Equal(at(30)) {
		t.Fatalf("browser session: %+v", got.Ended)
	}
	wantCode(t, "end unknown", s.EndSession(ctx(t), principalN(9, "x", 0).ID, at(1)), berth.CodeNotFound)
}

func testDeviceAuthorizations(t *testing.T, s berth.MetadataStore) {
	d := berth.DeviceAuthorization{ID: principalN(1, "x", 0).ID, DeviceHash: "dh", UserCode: "BCDF-GHJK", Client: "berth-cli",
		Source: "2001:db8::7", Created: at(1), Expires: at(601), Interval: 5 * time.Second, Status: berth.DevicePending}
	must(t, s.CreateDeviceAuthorization(ctx(t), d))
	same := d
	same.ID, same.DeviceHash = principalN(2, "x", 0).ID, "other"
	wantCode(t, "same user code", s.CreateDeviceAuthorization(ctx(t), same), berth.CodeConflict)

	got, err := s.FindDeviceAuthorizationByUserCode(ctx(t), "BCDF-GHJK")
	must(t, err)
	if got.ID != d.ID || got.Interval != 5*time.Second || !got.LastPoll.IsZero() || got.Status != berth.DevicePending || got.Client != "berth-cli" || got.Source != "2001:db8::7" {
		t.Fatalf("read back: %+v", got)
	}
	got.LastPoll, got.Interval = at(2), 10*time.Second
	must(t, s.UpdateDeviceAuthorization(ctx(t), got, berth.DevicePending))
	got.Status, got.PrincipalID, got.SessionID = berth.DeviceApproved, "p1", "s1"
	must(t, s.UpdateDeviceAuthorization(ctx(t), got, berth.DevicePending))
	// A second decision from pending loses: the first one stands.
	got.Status = berth.DeviceDenied
	wantCode(t, "stale status", s.UpdateDeviceAuthorization(ctx(t), got, berth.DevicePending), berth.CodeConflict)
	byHash, err := s.FindDeviceAuthorizationByHash(ctx(t), "dh")
	must(t, err)
	if byHash.Status != berth.DeviceApproved || byHash.SessionID != "s1" || byHash.Interval != 10*time.Second {
		t.Fatalf("by hash: %+v", byHash)
	}
	wantTime(t, "last poll", byHash.LastPoll, at(2))
	wantCode(t, "update unknown", s.UpdateDeviceAuthorization(ctx(t), same, berth.DevicePending), berth.CodeNotFound)

	n, err := s.DeleteExpiredDeviceAuthorizations(ctx(t), at(601))
	must(t, err)
	if n != 0 {
		t.Fatalf("deleted %d at its expiry", n)
	}
	n, _ = s.DeleteExpiredDeviceAuthorizations(ctx(t), at(602))
	if n != 1 {
		t.Fatalf("deleted %d after its expiry", n)
	}
}

func testPATs(t *testing.T, s berth.MetadataStore) {
	scopes, err := berth.ParsePATScopes([]string{"repository:team/app:pull,push", "registry:catalog:*"})
	must(t, err)
	a := berth.PersonalAccessToken{ID: principalN(1, "x", 0).ID, PrincipalID: "p1", Hint: "brp_abcd", Hash: "h1", Scopes: scopes,
		Description: "laptop", Created: at(1), Expires: at(100)}
	b := berth.PersonalAccessToken{ID: principalN(2, "x", 0).ID, PrincipalID: "p1", Hint: "brp_efgh", Hash: "h2", Scopes: scopes[:1], Created: at(2), Expires: at(100)}
	must(t, s.CreatePAT(ctx(t), a))
	must(t, s.CreatePAT(ctx(t), b))
	dup := b
	dup.ID = principalN(3, "x", 0).ID
	wantCode(t, "same hash", s.CreatePAT(ctx(t), dup), berth.CodeConflict)
	got, err := s.FindPATByHash(ctx(t), "h1")
	must(t, err)
	if got.ID != a.ID || len(got.Scopes) != 2 || got.Scopes[0].String() != "repository:team/app:pull,push" || got.Description != "laptop" || got.LastUsed != nil || got.Revoked != nil {
		t.Fatalf("read back: %+v", got)
	}
	wantTime(t, "expires", got.Expires, at(100))
	_, err = s.FindPATByHash(ctx(t), "nope")
	wantCode(t, "unknown hash", err, berth.CodeNotFound)
	must(t, s.TouchPAT(ctx(t), a.ID, at(5)))
	must(t, s.TouchPAT(ctx(t), a.ID, at(4))) // a use recorded late never moves last used back
	must(t, s.RevokePAT(ctx(t), a.ID, at(6)))
	must(t, s.RevokePAT(ctx(t), a.ID, at(7)))
	got, _ = s.FindPATByID(ctx(t), a.ID)
	wantTimePtr(t, "last used", got.LastUsed, ptr(at(5)))
	wantTimePtr(t, "revoked keeps its first time", got.Revoked, ptr(at(6)))
	list, err := s.FindPATs(ctx(t), "p1")
	must(t, err)
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Fatalf("list: %+v", list)
	}
	if list, _ := s.FindPATs(ctx(t), "p2"); len(list) != 0 {
		t.Fatalf("another principal's: %+v", list)
	}
	wantCode(t, "revoke unknown", s.RevokePAT(ctx(t), principalN(9, "x", 0).ID, at(1)), berth.CodeNotFound)

	// All of a principal's at once: b (a is revoked already, and keeps its
	// time), not another principal's.
	other := berth.PersonalAccessToken{ID: principalN(4, "x", 0).ID, PrincipalID: "p2", Hint: "brp_ijkl", Hash: "h4", Scopes: scopes[:1], Created: at(2), Expires: at(100)}
	must(t, s.CreatePAT(ctx(t), other))
	n, err := s.RevokePATsOf(ctx(t), "p1", at(8))
	must(t, err)
	if n != 1 {
		t.Fatalf("RevokePATsOf revoked %d, want 1", n)
	}
	got, err = s.FindPATByID(ctx(t), a.ID)
	must(t, err)
	wantTimePtr(t, "a's revocation", got.Revoked, ptr(at(6)))
	got, err = s.FindPATByID(ctx(t), b.ID)
	must(t, err)
	wantTimePtr(t, "b's revocation", got.Revoked, ptr(at(8)))
	got, err = s.FindPATByID(ctx(t), other.ID)
	must(t, err)
	if got.Revoked != nil {
		t.Fatalf("another principal's token was revoked: %+v", got)
	}
}
