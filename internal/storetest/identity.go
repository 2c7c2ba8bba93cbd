package storetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

// The IdentityStore tests: principals and client secrets, as the contracts in
// principal.go and secret.go of package berth state them. The values are made
// up but shaped like the real ones (UUIDs, 32-byte hashes); a store must keep
// them as given, deciding nothing. Where a contract leaves a choice open, the
// suite settles it:
//   - FindPrincipals and FindSecrets return an empty result, not an error, when
//     nothing matches (FindSecrets still returns not_found for an unknown
//     principal);
//   - a Secret reads back exactly as created: Hash byte for byte, Description,
//     nil LastUsed and Revoked as nil.

// principalN returns a principal whose ID and ClientID are made from n, so
// that distinct n give distinct principals.
func principalN(n int, name string, created int) berth.Principal {
	return berth.Principal{
		ID:       fmt.Sprintf("00000000-0000-4000-8000-%012d", n),
		Name:     name,
		ClientID: fmt.Sprintf("c0000000-0000-4000-8000-%012d", n),
		Kind:     berth.PrincipalService,
		Created:  at(created),
	}
}

// secretN returns a secret of principal p whose ID and Hash are made from n.
func secretN(n int, p berth.Principal, created, lifetime int) berth.Secret {
	h := sha256.Sum256(fmt.Appendf(nil, "secret %d", n))
	return berth.Secret{
		ID:          fmt.Sprintf("50000000-0000-4000-8000-%012d", n),
		PrincipalID: p.ID,
		Hint:        fmt.Sprintf("brt_%04d", n),
		Hash:        h[:],
		Description: fmt.Sprintf("secret %d of %s", n, p.Name),
		Created:     at(created),
		Expires:     at(created + lifetime),
	}
}

func createPrincipal(t *testing.T, s berth.MetadataStore, p berth.Principal) berth.Principal {
	t.Helper()
	must(t, s.CreatePrincipal(ctx(t), p))
	return p
}

func createSecret(t *testing.T, s berth.MetadataStore, sec berth.Secret) berth.Secret {
	t.Helper()
	must(t, s.CreateSecret(ctx(t), sec))
	return sec
}

func wantPrincipal(t *testing.T, what string, got, want berth.Principal) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.ClientID != want.ClientID ||
		got.Kind != want.Kind || got.Disabled != want.Disabled || !got.Created.Equal(want.Created) {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
}

func wantTimePtr(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s: got %v, want %v", what, got, want)
	default:
		wantTime(t, what, *got, *want)
	}
}

func wantSecret(t *testing.T, what string, got, want berth.Secret) {
	t.Helper()
	if got.ID != want.ID || got.PrincipalID != want.PrincipalID || got.Hint != want.Hint ||
		!bytes.Equal(got.Hash, want.Hash) || got.Description != want.Description {
		t.Errorf("%s: got id %s of %s, hint %q, description %q, hash equal %v; want id %s of %s, hint %q, description %q",
			what, got.ID, got.PrincipalID, got.Hint, got.Description, bytes.Equal(got.Hash, want.Hash),
			want.ID, want.PrincipalID, want.Hint, want.Description)
	}
	wantTime(t, what+": Created", got.Created, want.Created)
	wantTime(t, what+": Expires", got.Expires, want.Expires)
	wantTimePtr(t, what+": LastUsed", got.LastUsed, want.LastUsed)
	wantTimePtr(t, what+": Revoked", got.Revoked, want.Revoked)
}

// secretIDs returns the ids of the principal's secrets in the store's order.
func secretIDs(t *testing.T, s berth.MetadataStore, principalID string) []string {
	t.Helper()
	secrets, err := s.FindSecrets(ctx(t), principalID)
	must(t, err)
	var ids []string
	for _, sec := range secrets {
		ids = append(ids, sec.ID)
	}
	return ids
}

// findSecret returns the secret with this id among the principal's.
func findSecret(t *testing.T, s berth.MetadataStore, principalID, id string) berth.Secret {
	t.Helper()
	secrets, err := s.FindSecrets(ctx(t), principalID)
	must(t, err)
	for _, sec := range secrets {
		if sec.ID == id {
			return sec
		}
	}
	t.Fatalf("FindSecrets(%s) lacks secret %s", principalID, id)
	return berth.Secret{}
}

func principalNames(t *testing.T, s berth.MetadataStore, f berth.PrincipalFilter) []string {
	t.Helper()
	ps, err := s.FindPrincipals(ctx(t), f)
	must(t, err)
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names
}

func ptr[T any](v T) *T { return &v }

var identityTests = []test{
	{"CreateAndFindPrincipal", func(t *testing.T, s berth.MetadataStore) {
		web := principalN(1, "ci-web", 0)
		admin := principalN(2, "admin", 5)
		admin.Kind = berth.PrincipalUser
		admin.Disabled = true
		createPrincipal(t, s, web)
		createPrincipal(t, s, admin)
		for _, want := range []berth.Principal{web, admin} {
			got, err := s.FindPrincipalByID(ctx(t), want.ID)
			must(t, err)
			wantPrincipal(t, "FindPrincipalByID", got, want)
			got, err = s.FindPrincipalByName(ctx(t), want.Name)
			must(t, err)
			wantPrincipal(t, "FindPrincipalByName", got, want)
			got, err = s.FindPrincipalByClientID(ctx(t), want.ClientID)
			must(t, err)
			wantPrincipal(t, "FindPrincipalByClientID", got, want)
		}
	}},
	{"FindUnknownPrincipalIsNotFound", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		_, err := s.FindPrincipalByID(ctx(t), principalN(2, "x", 0).ID)
		wantCode(t, "FindPrincipalByID", err, berth.CodeNotFound)
		_, err = s.FindPrincipalByName(ctx(t), "ci-api")
		wantCode(t, "FindPrincipalByName", err, berth.CodeNotFound)
		_, err = s.FindPrincipalByClientID(ctx(t), principalN(2, "x", 0).ClientID)
		wantCode(t, "FindPrincipalByClientID", err, berth.CodeNotFound)
		// Each lookup uses its own key: an ID is not a client id, nor a name.
		_, err = s.FindPrincipalByClientID(ctx(t), web.ID)
		wantCode(t, "FindPrincipalByClientID with the principal's ID", err, berth.CodeNotFound)
		_, err = s.FindPrincipalByID(ctx(t), web.ClientID)
		wantCode(t, "FindPrincipalByID with the client id", err, berth.CodeNotFound)
		_, err = s.FindPrincipalByName(ctx(t), web.ID)
		wantCode(t, "FindPrincipalByName with the ID", err, berth.CodeNotFound)
		// Names are compared exactly.
		_, err = s.FindPrincipalByName(ctx(t), "CI-WEB")
		wantCode(t, "FindPrincipalByName in another case", err, berth.CodeNotFound)
	}},
	{"DuplicatePrincipalIsConflict", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		sameName := principalN(2, "ci-web", 5)
		sameID := principalN(3, "ci-api", 5)
		sameID.ID = web.ID
		sameClientID := principalN(4, "ci-db", 5)
		sameClientID.ClientID = web.ClientID
		for what, p := range map[string]berth.Principal{"name": sameName, "ID": sameID, "client id": sameClientID} {
			wantCode(t, "CreatePrincipal with an existing "+what, s.CreatePrincipal(ctx(t), p), berth.CodeConflict)
		}
		wantStrings(t, "principals after the refused creates", principalNames(t, s, berth.PrincipalFilter{}), []string{"ci-web"})
		got, err := s.FindPrincipalByName(ctx(t), "ci-web")
		must(t, err)
		wantPrincipal(t, "the first principal after the refused creates", got, web)
	}},
	{"FindPrincipals", func(t *testing.T, s berth.MetadataStore) {
		wantStrings(t, "FindPrincipals of an empty store", principalNames(t, s, berth.PrincipalFilter{}), nil)
		// Created out of name order; byte order puts '-' before '.' before digits.
		names := []string{"ci-web", "admin", "ci.api", "ci-db", "alice", "0ps"}
		for i, n := range names {
			p := principalN(i+1, n, i)
			if n == "admin" || n == "alice" {
				p.Kind = berth.PrincipalUser
			}
			if n == "ci-db" || n == "alice" {
				p.Disabled = true
			}
			createPrincipal(t, s, p)
		}
		all := []string{"0ps", "admin", "alice", "ci-db", "ci-web", "ci.api"}
		wantStrings(t, "all", principalNames(t, s, berth.PrincipalFilter{}), all)
		wantStrings(t, "users", principalNames(t, s, berth.PrincipalFilter{Kind: berth.PrincipalUser}), []string{"admin", "alice"})
		wantStrings(t, "services", principalNames(t, s, berth.PrincipalFilter{Kind: berth.PrincipalService}), []string{"0ps", "ci-db", "ci-web", "ci.api"})
		wantStrings(t, "disabled", principalNames(t, s, berth.PrincipalFilter{Disabled: ptr(true)}), []string{"alice", "ci-db"})
		wantStrings(t, "enabled", principalNames(t, s, berth.PrincipalFilter{Disabled: ptr(false)}), []string{"0ps", "admin", "ci-web", "ci.api"})
		wantStrings(t, "enabled services", principalNames(t, s, berth.PrincipalFilter{Kind: berth.PrincipalService, Disabled: ptr(false)}), []string{"0ps", "ci-web", "ci.api"})

		// Paging by the last name seen returns every principal once.
		var paged []string
		after := ""
		for range len(all) + 1 {
			page := principalNames(t, s, berth.PrincipalFilter{After: after, Limit: 4})
			if len(page) > 4 {
				t.Fatalf("a page of limit 4 holds %d", len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1]
		}
		wantStrings(t, "paged by 4", paged, all)
		wantStrings(t, "after a name that does not exist", principalNames(t, s, berth.PrincipalFilter{After: "b"}), []string{"ci-db", "ci-web", "ci.api"})
		wantStrings(t, "limit 1", principalNames(t, s, berth.PrincipalFilter{Limit: 1}), []string{"0ps"})
		wantStrings(t, "disabled after alice", principalNames(t, s, berth.PrincipalFilter{Disabled: ptr(true), After: "alice"}), []string{"ci-db"})
		wantStrings(t, "after the last", principalNames(t, s, berth.PrincipalFilter{After: "ci.api"}), nil)

		ps, err := s.FindPrincipals(ctx(t), berth.PrincipalFilter{Kind: berth.PrincipalUser, Disabled: ptr(true)})
		must(t, err)
		if len(ps) != 1 {
			t.Fatalf("disabled users: %d, want 1", len(ps))
		}
		want := principalN(5, "alice", 4)
		want.Kind, want.Disabled = berth.PrincipalUser, true
		wantPrincipal(t, "FindPrincipals", ps[0], want)
	}},
	{"UpdatePrincipal", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		api := createPrincipal(t, s, principalN(2, "ci-api", 0))

		got, err := s.UpdatePrincipal(ctx(t), web.ID, berth.PrincipalUpdate{Disabled: ptr(true)})
		must(t, err)
		web.Disabled = true
		wantPrincipal(t, "UpdatePrincipal's result", got, web)
		got, err = s.FindPrincipalByClientID(ctx(t), web.ClientID)
		must(t, err)
		wantPrincipal(t, "after disabling", got, web)
		got, err = s.FindPrincipalByID(ctx(t), api.ID)
		must(t, err)
		wantPrincipal(t, "another principal after disabling one", got, api)

		got, err = s.UpdatePrincipal(ctx(t), web.ID, berth.PrincipalUpdate{})
		must(t, err)
		wantPrincipal(t, "an empty update", got, web)

		got, err = s.UpdatePrincipal(ctx(t), web.ID, berth.PrincipalUpdate{Disabled: ptr(false)})
		must(t, err)
		web.Disabled = false
		wantPrincipal(t, "after enabling", got, web)
		got, err = s.FindPrincipalByName(ctx(t), "ci-web")
		must(t, err)
		wantPrincipal(t, "found after enabling", got, web)
	}},
	{"UpdateUnknownPrincipalIsNotFound", func(t *testing.T, s berth.MetadataStore) {
		createPrincipal(t, s, principalN(1, "ci-web", 0))
		_, err := s.UpdatePrincipal(ctx(t), principalN(2, "x", 0).ID, berth.PrincipalUpdate{Disabled: ptr(true)})
		wantCode(t, "UpdatePrincipal", err, berth.CodeNotFound)
		_, err = s.UpdatePrincipal(ctx(t), principalN(2, "x", 0).ID, berth.PrincipalUpdate{})
		wantCode(t, "an empty UpdatePrincipal", err, berth.CodeNotFound)
		wantStrings(t, "disabled after the refused update", principalNames(t, s, berth.PrincipalFilter{Disabled: ptr(true)}), nil)
	}},
	{"DeletePrincipalDeletesItsSecrets", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		api := createPrincipal(t, s, principalN(2, "ci-api", 0))
		live := createSecret(t, s, secretN(1, web, 0, 3600))
		dead := createSecret(t, s, secretN(2, web, 1, 3600))
		must(t, s.RevokeSecret(ctx(t), dead.ID, at(10)))
		kept := createSecret(t, s, secretN(3, api, 2, 3600))

		must(t, s.DeletePrincipal(ctx(t), web.ID))
		_, err := s.FindPrincipalByID(ctx(t), web.ID)
		wantCode(t, "FindPrincipalByID after delete", err, berth.CodeNotFound)
		_, err = s.FindPrincipalByName(ctx(t), web.Name)
		wantCode(t, "FindPrincipalByName after delete", err, berth.CodeNotFound)
		_, err = s.FindPrincipalByClientID(ctx(t), web.ClientID)
		wantCode(t, "FindPrincipalByClientID after delete", err, berth.CodeNotFound)
		_, err = s.FindSecrets(ctx(t), web.ID)
		wantCode(t, "FindSecrets after delete", err, berth.CodeNotFound)
		// The secrets went, the tombstone too: their ids and hashes are free.
		wantCode(t, "RevokeSecret of a deleted principal's secret", s.RevokeSecret(ctx(t), live.ID, at(20)), berth.CodeNotFound)
		wantCode(t, "TouchSecret of a deleted principal's tombstone", s.TouchSecret(ctx(t), dead.ID, at(20)), berth.CodeNotFound)
		reborn := createPrincipal(t, s, principalN(3, "ci-web", 30))
		live.PrincipalID = reborn.ID
		createSecret(t, s, live)
		createSecret(t, s, secretN(2, reborn, 1, 3600))
		wantStrings(t, "secrets of the new principal of the same name", secretIDs(t, s, reborn.ID), []string{live.ID, dead.ID})

		wantStrings(t, "principals", principalNames(t, s, berth.PrincipalFilter{}), []string{"ci-api", "ci-web"})
		wantSecret(t, "another principal's secret", findSecret(t, s, api.ID, kept.ID), kept)

		wantCode(t, "DeletePrincipal twice", s.DeletePrincipal(ctx(t), web.ID), berth.CodeNotFound)
	}},
	{"CreateAndFindSecrets", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		api := createPrincipal(t, s, principalN(2, "ci-api", 0))
		got, err := s.FindSecrets(ctx(t), web.ID)
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("FindSecrets of a principal with none: %d secrets", len(got))
		}

		// Ordered by Created, then by ID: 3 and 1 share a creation time.
		second := createSecret(t, s, secretN(2, web, 20, 90*86400))
		third := createSecret(t, s, secretN(3, web, 10, 30))
		first := createSecret(t, s, secretN(1, web, 10, 365*86400))
		must(t, s.CreateSecret(ctx(t), secretN(4, api, 0, 60)))
		wantStrings(t, "FindSecrets order", secretIDs(t, s, web.ID), []string{first.ID, third.ID, second.ID})

		// Pre-set LastUsed and Revoked are kept as given.
		used, removed := at(40), at(50)
		fifth := secretN(5, api, 30, 60)
		fifth.LastUsed, fifth.Revoked = &used, &removed
		createSecret(t, s, fifth)

		secrets, err := s.FindSecrets(ctx(t), web.ID)
		must(t, err)
		if len(secrets) != 3 {
			t.Fatalf("FindSecrets: %d secrets, want 3", len(secrets))
		}
		wantSecret(t, "first", secrets[0], secretN(1, web, 10, 365*86400))
		wantSecret(t, "third", secrets[1], third)
		wantSecret(t, "second", secrets[2], secretN(2, web, 20, 90*86400))
		wantSecret(t, "a secret created used and revoked", findSecret(t, s, api.ID, fifth.ID), fifth)
		wantStrings(t, "the other principal's secrets", secretIDs(t, s, api.ID), []string{secretN(4, api, 0, 60).ID, fifth.ID})
	}},
	{"SecretFieldsRoundTrip", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		sec := secretN(1, web, 0, 60)
		sec.Description = "deploys web — production 🚀 'quoted' \"too\""
		// A hash is bytes, zero bytes and high bytes included.
		sec.Hash = append([]byte{0, 0xff, 0}, bytes.Repeat([]byte{0x80}, 29)...)
		sec.Created = base.Add(123 * time.Millisecond)
		sec.Expires = base.AddDate(1, 0, 0)
		createSecret(t, s, sec)
		wantSecret(t, "round trip", findSecret(t, s, web.ID, sec.ID), sec)
	}},
	{"CreateSecretForUnknownPrincipalIsNotFound", func(t *testing.T, s berth.MetadataStore) {
		createPrincipal(t, s, principalN(1, "ci-web", 0))
		ghost := principalN(2, "ghost", 0)
		wantCode(t, "CreateSecret", s.CreateSecret(ctx(t), secretN(1, ghost, 0, 60)), berth.CodeNotFound)
		_, err := s.FindSecrets(ctx(t), ghost.ID)
		wantCode(t, "FindSecrets of an unknown principal", err, berth.CodeNotFound)
		// Nothing was stored: the id and hash are still free.
		web, err := s.FindPrincipalByName(ctx(t), "ci-web")
		must(t, err)
		createSecret(t, s, secretN(1, web, 0, 60))
	}},
	{"DuplicateSecretIsConflict", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		api := createPrincipal(t, s, principalN(2, "ci-api", 0))
		first := createSecret(t, s, secretN(1, web, 0, 60))

		sameID := secretN(2, api, 5, 60)
		sameID.ID = first.ID
		wantCode(t, "CreateSecret with an existing id", s.CreateSecret(ctx(t), sameID), berth.CodeConflict)
		sameHash := secretN(3, api, 5, 60)
		sameHash.Hash = first.Hash
		wantCode(t, "CreateSecret with an existing hash", s.CreateSecret(ctx(t), sameHash), berth.CodeConflict)
		// A tombstone keeps its hash taken.
		must(t, s.RevokeSecret(ctx(t), first.ID, at(10)))
		sameHash.ID = secretN(4, api, 0, 0).ID
		wantCode(t, "CreateSecret with the hash of a tombstone", s.CreateSecret(ctx(t), sameHash), berth.CodeConflict)

		wantStrings(t, "secrets of the other principal", secretIDs(t, s, api.ID), nil)
		first.Revoked = ptr(at(10))
		wantSecret(t, "the first secret after the refused creates", findSecret(t, s, web.ID, first.ID), first)
	}},
	{"RevokeSecretLeavesTombstone", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		old := createSecret(t, s, secretN(1, web, 0, 3600))
		current := createSecret(t, s, secretN(2, web, 5, 3600))

		must(t, s.RevokeSecret(ctx(t), old.ID, at(100)))
		old.Revoked = ptr(at(100))
		wantStrings(t, "FindSecrets lists the tombstone", secretIDs(t, s, web.ID), []string{old.ID, current.ID})
		wantSecret(t, "the tombstone keeps its hash", findSecret(t, s, web.ID, old.ID), old)
		wantSecret(t, "the other secret", findSecret(t, s, web.ID, current.ID), current)

		// Revoking again keeps the first time, earlier or later.
		must(t, s.RevokeSecret(ctx(t), old.ID, at(200)))
		must(t, s.RevokeSecret(ctx(t), old.ID, at(50)))
		wantSecret(t, "revoked again", findSecret(t, s, web.ID, old.ID), old)

		wantCode(t, "RevokeSecret of an unknown id", s.RevokeSecret(ctx(t), secretN(9, web, 0, 0).ID, at(100)), berth.CodeNotFound)
	}},
	{"TouchSecret", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		sec := createSecret(t, s, secretN(1, web, 0, 3600))
		other := createSecret(t, s, secretN(2, web, 0, 3600))

		must(t, s.TouchSecret(ctx(t), sec.ID, at(100)))
		sec.LastUsed = ptr(at(100))
		wantSecret(t, "after a touch", findSecret(t, s, web.ID, sec.ID), sec)
		wantSecret(t, "another secret", findSecret(t, s, web.ID, other.ID), other)

		must(t, s.TouchSecret(ctx(t), sec.ID, at(300)))
		sec.LastUsed = ptr(at(300))
		wantSecret(t, "after a later touch", findSecret(t, s, web.ID, sec.ID), sec)
		// A use reported late never moves LastUsed back.
		must(t, s.TouchSecret(ctx(t), sec.ID, at(200)))
		wantSecret(t, "after an earlier touch", findSecret(t, s, web.ID, sec.ID), sec)

		// Touching a tombstone is recorded as given: the store decides nothing.
		must(t, s.RevokeSecret(ctx(t), other.ID, at(400)))
		must(t, s.TouchSecret(ctx(t), other.ID, at(500)))
		other.Revoked, other.LastUsed = ptr(at(400)), ptr(at(500))
		wantSecret(t, "a touched tombstone", findSecret(t, s, web.ID, other.ID), other)

		wantCode(t, "TouchSecret of an unknown id", s.TouchSecret(ctx(t), secretN(9, web, 0, 0).ID, at(100)), berth.CodeNotFound)
	}},
	{"ExpireSecretOnlyMovesEarlier", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		sec := createSecret(t, s, secretN(1, web, 0, 3600))
		other := createSecret(t, s, secretN(2, web, 0, 3600))

		must(t, s.ExpireSecret(ctx(t), sec.ID, at(600)))
		sec.Expires = at(600)
		wantSecret(t, "expired earlier", findSecret(t, s, web.ID, sec.ID), sec)
		// A later time changes nothing, the original expiry included.
		must(t, s.ExpireSecret(ctx(t), sec.ID, at(3600)))
		must(t, s.ExpireSecret(ctx(t), sec.ID, at(900)))
		wantSecret(t, "after later times", findSecret(t, s, web.ID, sec.ID), sec)
		must(t, s.ExpireSecret(ctx(t), sec.ID, at(-10)))
		sec.Expires = at(-10)
		wantSecret(t, "expired in the past", findSecret(t, s, web.ID, sec.ID), sec)
		wantSecret(t, "another secret", findSecret(t, s, web.ID, other.ID), other)

		// A tombstone's expiry moves too: the store decides nothing.
		must(t, s.RevokeSecret(ctx(t), other.ID, at(50)))
		must(t, s.ExpireSecret(ctx(t), other.ID, at(100)))
		other.Revoked, other.Expires = ptr(at(50)), at(100)
		wantSecret(t, "an expired tombstone", findSecret(t, s, web.ID, other.ID), other)

		wantCode(t, "ExpireSecret of an unknown id", s.ExpireSecret(ctx(t), secretN(9, web, 0, 0).ID, at(100)), berth.CodeNotFound)
	}},
	{"FindSecretByHash", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		api := createPrincipal(t, s, principalN(2, "ci-api", 0))
		sec := createSecret(t, s, secretN(1, web, 0, 3600))
		dead := createSecret(t, s, secretN(2, api, 5, 3600))
		must(t, s.TouchSecret(ctx(t), sec.ID, at(20)))
		sec.LastUsed = ptr(at(20))
		must(t, s.RevokeSecret(ctx(t), dead.ID, at(30)))
		dead.Revoked = ptr(at(30))

		for _, want := range []berth.Secret{sec, dead} {
			got, err := s.FindSecretByHash(ctx(t), want.Hash)
			must(t, err)
			wantSecret(t, "FindSecretByHash "+want.ID, got, want)
		}
		unknown := secretN(9, web, 0, 0)
		_, err := s.FindSecretByHash(ctx(t), unknown.Hash)
		wantCode(t, "FindSecretByHash of an unknown hash", err, berth.CodeNotFound)
		_, err = s.FindSecretByHash(ctx(t), nil)
		wantCode(t, "FindSecretByHash of no hash", err, berth.CodeNotFound)
		// A prefix of a hash is another hash.
		_, err = s.FindSecretByHash(ctx(t), sec.Hash[:16])
		wantCode(t, "FindSecretByHash of a prefix", err, berth.CodeNotFound)
	}},
	{"ConcurrentCreatePrincipalSameName", func(t *testing.T, s berth.MetadataStore) {
		const workers = 8
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for i := range workers {
			wg.Go(func() { errs <- s.CreatePrincipal(ctx(t), principalN(i+1, "ci-web", i)) })
		}
		wg.Wait()
		close(errs)
		created := 0
		for err := range errs {
			switch berth.ErrorCode(err) {
			case "":
				created++
			case berth.CodeConflict:
			default:
				t.Errorf("CreatePrincipal: %v", err)
			}
		}
		if created != 1 {
			t.Errorf("%d concurrent creates of one name succeeded, want 1", created)
		}
		wantStrings(t, "principals", principalNames(t, s, berth.PrincipalFilter{}), []string{"ci-web"})
	}},
	{"ConcurrentTouchesAndAuthentications", func(t *testing.T, s berth.MetadataStore) {
		web := createPrincipal(t, s, principalN(1, "ci-web", 0))
		sec := createSecret(t, s, secretN(1, web, 0, 3600))
		const workers, touches = 8, 20
		var wg sync.WaitGroup
		errs := make(chan error, workers*touches*2)
		for w := range workers {
			wg.Go(func() {
				for i := range touches {
					if err := s.TouchSecret(ctx(t), sec.ID, at(w*touches+i)); err != nil {
						errs <- fmt.Errorf("TouchSecret: %w", err)
						return
					}
					if _, err := s.FindSecrets(ctx(t), web.ID); err != nil {
						errs <- fmt.Errorf("FindSecrets: %w", err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// The latest use wins, whatever order the touches landed in.
		sec.LastUsed = ptr(at(workers*touches - 1))
		wantSecret(t, "after concurrent touches", findSecret(t, s, web.ID, sec.ID), sec)
	}},
}
