package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/berth-dev/berth"
)

// refreshToken returns a live refresh token record named n: its id and hash
// derive from n, and it is bound to the given principal and credential.
func refreshToken(n, principalID, credentialID string) berth.RefreshToken {
	return berth.RefreshToken{
		ID:           "rt-" + n,
		Hash:         fmt.Sprintf("%064x", n), // 64 hex digits, as a SHA-256 is
		PrincipalID:  principalID,
		CredentialID: credentialID,
		Created:      at(0),
		Expires:      at(3600),
	}
}

func wantRefreshToken(t *testing.T, what string, got, want berth.RefreshToken) {
	t.Helper()
	if got.ID != want.ID || got.Hash != want.Hash || got.PrincipalID != want.PrincipalID || got.CredentialID != want.CredentialID ||
		got.PipelineID != want.PipelineID || got.Run != want.Run {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
	wantTime(t, what+" Created", got.Created, want.Created)
	wantTime(t, what+" Expires", got.Expires, want.Expires)
	switch {
	case want.Revoked == nil && got.Revoked != nil:
		t.Errorf("%s: Revoked = %v, want nil", what, *got.Revoked)
	case want.Revoked != nil && got.Revoked == nil:
		t.Errorf("%s: Revoked = nil, want %v", what, *want.Revoked)
	case want.Revoked != nil:
		wantTime(t, what+" Revoked", *got.Revoked, *want.Revoked)
	}
}

func findRefreshToken(t *testing.T, s berth.MetadataStore, hash string) berth.RefreshToken {
	t.Helper()
	got, err := s.FindRefreshTokenByHash(ctx(t), hash)
	must(t, err)
	return got
}

var refreshTokenTests = []test{
	{"CreateAndFind", func(t *testing.T, s berth.MetadataStore) {
		tok := refreshToken("a", "p1", "s1")
		must(t, s.CreateRefreshToken(ctx(t), tok))
		wantRefreshToken(t, "FindRefreshTokenByHash", findRefreshToken(t, s, tok.Hash), tok)
	}},
	{"CreateRevoked", func(t *testing.T, s berth.MetadataStore) {
		tok := refreshToken("a", "p1", "s1")
		revoked := at(5)
		tok.Revoked = &revoked
		must(t, s.CreateRefreshToken(ctx(t), tok))
		wantRefreshToken(t, "FindRefreshTokenByHash", findRefreshToken(t, s, tok.Hash), tok)
	}},
	{"FederatedRoundTrip", func(t *testing.T, s berth.MetadataStore) {
		// A federated login records the pipeline and CI run it came from.
		tok := refreshToken("a", "p1", "connection:c1")
		tok.PipelineID = "91000000-0000-4000-8000-000000000001"
		tok.Run = "deploy run 4242 attempt 2"
		must(t, s.CreateRefreshToken(ctx(t), tok))
		plain := refreshToken("b", "p1", "s1")
		must(t, s.CreateRefreshToken(ctx(t), plain))
		wantRefreshToken(t, "a federated token", findRefreshToken(t, s, tok.Hash), tok)
		wantRefreshToken(t, "a token of a client secret", findRefreshToken(t, s, plain.Hash), plain)
	}},
	{"FindUnknownIsNotFound", func(t *testing.T, s berth.MetadataStore) {
		_, err := s.FindRefreshTokenByHash(ctx(t), fmt.Sprintf("%064x", "nothing"))
		wantCode(t, "FindRefreshTokenByHash of an unknown hash", err, berth.CodeNotFound)
	}},
	{"FindReturnsExpired", func(t *testing.T, s berth.MetadataStore) {
		// Judging expiry is the domain's: the store returns what it holds.
		tok := refreshToken("a", "p1", "s1")
		tok.Expires = at(-10)
		must(t, s.CreateRefreshToken(ctx(t), tok))
		wantRefreshToken(t, "FindRefreshTokenByHash of an expired token", findRefreshToken(t, s, tok.Hash), tok)
	}},
	{"DuplicateIsConflict", func(t *testing.T, s berth.MetadataStore) {
		tok := refreshToken("a", "p1", "s1")
		must(t, s.CreateRefreshToken(ctx(t), tok))

		sameID := refreshToken("b", "p2", "s2")
		sameID.ID = tok.ID
		wantCode(t, "CreateRefreshToken with an existing id", s.CreateRefreshToken(ctx(t), sameID), berth.CodeConflict)
		_, err := s.FindRefreshTokenByHash(ctx(t), sameID.Hash)
		wantCode(t, "the refused token", err, berth.CodeNotFound)

		sameHash := refreshToken("c", "p2", "s2")
		sameHash.Hash = tok.Hash
		wantCode(t, "CreateRefreshToken with an existing hash", s.CreateRefreshToken(ctx(t), sameHash), berth.CodeConflict)
		wantRefreshToken(t, "the first token after the refused ones", findRefreshToken(t, s, tok.Hash), tok)
	}},
	{"Revoke", func(t *testing.T, s berth.MetadataStore) {
		tok := refreshToken("a", "p1", "s1")
		other := refreshToken("b", "p1", "s1")
		must(t, s.CreateRefreshToken(ctx(t), tok))
		must(t, s.CreateRefreshToken(ctx(t), other))
		must(t, s.RevokeRefreshToken(ctx(t), tok.ID, at(10)))
		revoked := at(10)
		tok.Revoked = &revoked
		wantRefreshToken(t, "after RevokeRefreshToken", findRefreshToken(t, s, tok.Hash), tok)
		wantRefreshToken(t, "another token of the same credential", findRefreshToken(t, s, other.Hash), other)

		// Revoking again keeps the first time.
		must(t, s.RevokeRefreshToken(ctx(t), tok.ID, at(20)))
		wantRefreshToken(t, "after revoking twice", findRefreshToken(t, s, tok.Hash), tok)
	}},
	{"RevokeUnknownIsNotFound", func(t *testing.T, s berth.MetadataStore) {
		wantCode(t, "RevokeRefreshToken of an unknown id", s.RevokeRefreshToken(ctx(t), "rt-nothing", at(0)), berth.CodeNotFound)
	}},
	{"RevokeByCredential", func(t *testing.T, s berth.MetadataStore) {
		a1 := refreshToken("a1", "p1", "s1")
		a2 := refreshToken("a2", "p1", "s1")
		earlier := refreshToken("a3", "p1", "s1")
		b := refreshToken("b", "p1", "s2")
		c := refreshToken("c", "p2", "conn-1")
		for _, tok := range []berth.RefreshToken{a1, a2, earlier, b, c} {
			must(t, s.CreateRefreshToken(ctx(t), tok))
		}
		must(t, s.RevokeRefreshToken(ctx(t), earlier.ID, at(5)))

		n, err := s.RevokeRefreshTokensByCredential(ctx(t), "s1", at(10))
		must(t, err)
		if n != 2 {
			t.Errorf("RevokeRefreshTokensByCredential revoked %d tokens, want 2 (the third was revoked already)", n)
		}
		r5, r10 := at(5), at(10)
		a1.Revoked, a2.Revoked, earlier.Revoked = &r10, &r10, &r5
		for _, tok := range []berth.RefreshToken{a1, a2, earlier, b, c} {
			wantRefreshToken(t, "token "+tok.ID, findRefreshToken(t, s, tok.Hash), tok)
		}

		n, err = s.RevokeRefreshTokensByCredential(ctx(t), "s-unknown", at(10))
		must(t, err)
		if n != 0 {
			t.Errorf("RevokeRefreshTokensByCredential of an unknown credential revoked %d", n)
		}
	}},
	{"RevokeByPrincipal", func(t *testing.T, s berth.MetadataStore) {
		a := refreshToken("a", "p1", "s1")
		b := refreshToken("b", "p1", "conn-1")
		c := refreshToken("c", "p2", "s1") // another principal, even with the same credential id
		for _, tok := range []berth.RefreshToken{a, b, c} {
			must(t, s.CreateRefreshToken(ctx(t), tok))
		}
		n, err := s.RevokeRefreshTokensByPrincipal(ctx(t), "p1", at(10))
		must(t, err)
		if n != 2 {
			t.Errorf("RevokeRefreshTokensByPrincipal revoked %d tokens, want 2", n)
		}
		r := at(10)
		a.Revoked, b.Revoked = &r, &r
		for _, tok := range []berth.RefreshToken{a, b, c} {
			wantRefreshToken(t, "token "+tok.ID, findRefreshToken(t, s, tok.Hash), tok)
		}
		n, err = s.RevokeRefreshTokensByPrincipal(ctx(t), "p1", at(20))
		must(t, err)
		if n != 0 {
			t.Errorf("revoking the principal's tokens again revoked %d", n)
		}
		wantRefreshToken(t, "token a after revoking again", findRefreshToken(t, s, a.Hash), a)
	}},
	{"DeleteExpired", func(t *testing.T, s berth.MetadataStore) {
		old := refreshToken("old", "p1", "s1")
		old.Expires = at(100)
		oldRevoked := refreshToken("old-revoked", "p1", "s1")
		oldRevoked.Expires = at(50)
		edge := refreshToken("edge", "p1", "s1")
		edge.Expires = at(200) // expires exactly at the cutoff: not before it
		live := refreshToken("live", "p1", "s1")
		live.Expires = at(300)
		for _, tok := range []berth.RefreshToken{old, oldRevoked, edge, live} {
			must(t, s.CreateRefreshToken(ctx(t), tok))
		}
		must(t, s.RevokeRefreshToken(ctx(t), oldRevoked.ID, at(10)))

		n, err := s.DeleteExpiredRefreshTokens(ctx(t), at(200))
		must(t, err)
		if n != 2 {
			t.Errorf("DeleteExpiredRefreshTokens deleted %d, want 2", n)
		}
		var left []string
		for _, tok := range []berth.RefreshToken{old, oldRevoked, edge, live} {
			_, err := s.FindRefreshTokenByHash(ctx(t), tok.Hash)
			switch {
			case err == nil:
				left = append(left, tok.ID)
			case !berth.IsCode(err, berth.CodeNotFound):
				t.Fatal(err)
			}
		}
		wantStrings(t, "tokens left", left, []string{"rt-edge", "rt-live"})
		n, err = s.DeleteExpiredRefreshTokens(ctx(t), at(200))
		must(t, err)
		if n != 0 {
			t.Errorf("DeleteExpiredRefreshTokens again deleted %d", n)
		}
	}},
	{"ConcurrentRevokeAndCreate", func(t *testing.T, s berth.MetadataStore) {
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 20 {
			wg.Go(func() {
				errs <- s.CreateRefreshToken(ctx(t), refreshToken(fmt.Sprint(i), "p1", "s1"))
			})
			wg.Go(func() {
				_, err := s.RevokeRefreshTokensByCredential(ctx(t), "s1", at(10))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err)
		}
		// Whatever the interleaving, every token exists, and one more
		// revocation leaves none live.
		_, err := s.RevokeRefreshTokensByCredential(ctx(t), "s1", at(20))
		must(t, err)
		for i := range 20 {
			tok := findRefreshToken(t, s, refreshToken(fmt.Sprint(i), "p1", "s1").Hash)
			if tok.Revoked == nil {
				t.Errorf("token %s is live after the last revocation", tok.ID)
			}
		}
	}},
}
