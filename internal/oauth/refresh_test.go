package oauth_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
	"github.com/berth-dev/berth/internal/sqlite"
)

const (
	principalID = "0b5c7e3a-8f0e-4c56-9d6e-2f4b1a9c3d70"
	secretID    = "5e1d2c3b-4a59-4876-9a5b-4c3d2e1f0a9b"
)

func newRefreshTokens(t *testing.T) (*oauth.RefreshTokens, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &oauth.RefreshTokens{Store: db, Rand: seeded(1)}, db
}

func TestRefreshIssueAndRedeem(t *testing.T) {
	rt, db := newRefreshTokens(t)
	value, rec, err := rt.Issue(t.Context(), principalID, secretID, t0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(value.Reveal(), berth.RefreshTokenPrefix) {
		t.Errorf("value %s lacks the prefix", value.Reveal())
	}
	if rec.Hash != value.Hash() || rec.PrincipalID != principalID || rec.CredentialID != secretID ||
		!rec.Created.Equal(t0) || !rec.Expires.Equal(t0.Add(berth.DefaultRefreshTokenLifetime)) || rec.ID == "" {
		t.Errorf("record %+v", rec)
	}
	// Only the hash is stored.
	stored, err := db.FindRefreshTokenByHash(t.Context(), value.Hash())
	if err != nil || stored.ID != rec.ID {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	got, err := rt.Redeem(t.Context(), value.Reveal(), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != rec.ID || got.PrincipalID != principalID || got.CredentialID != secretID {
		t.Errorf("Redeem = %+v, want %+v", got, rec)
	}
	// Redeeming does not use the token up: docker sends the same one again.
	if _, err := rt.Redeem(t.Context(), value.Reveal(), t0.Add(25*time.Hour)); err != nil {
		t.Errorf("a second redemption: %v", err)
	}
}

func TestRefreshIssueBoundedByCredential(t *testing.T) {
	rt, _ := newRefreshTokens(t)
	rt.Lifetime = 48 * time.Hour
	secretExpires := t0.Add(3 * time.Hour)
	value, rec, err := rt.Issue(t.Context(), principalID, secretID, t0, secretExpires)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Expires.Equal(secretExpires) {
		t.Errorf("the token expires at %v, want the secret's expiry %v", rec.Expires, secretExpires)
	}
	_, err = rt.Redeem(t.Context(), value.Reveal(), secretExpires)
	wantCode(t, "redeem when the secret expires", err, berth.CodeRefreshTokenInvalid)

	// A later credential expiry leaves the configured lifetime.
	_, rec, err = rt.Issue(t.Context(), principalID, secretID, t0, t0.Add(1000*time.Hour))
	if err != nil || !rec.Expires.Equal(t0.Add(48*time.Hour)) {
		t.Errorf("Expires %v (%v), want the 48-hour lifetime", rec.Expires, err)
	}
	// A credential already expired gets no token.
	if _, _, err := rt.Issue(t.Context(), principalID, secretID, t0, t0); err == nil {
		t.Error("Issue for a credential expiring now succeeded")
	}
}

func TestRefreshRedeemRefusals(t *testing.T) {
	rt, db := newRefreshTokens(t)
	issue := func() berth.RefreshTokenValue {
		v, _, err := rt.Issue(t.Context(), principalID, secretID, t0, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	live := issue()
	revoked := issue()
	byCredential := issue()
	unknown, err := berth.NewRefreshTokenValue(seeded(99)) // well-formed, never issued
	if err != nil {
		t.Fatal(err)
	}
	rec, err := db.FindRefreshTokenByHash(t.Context(), revoked.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeRefreshToken(t.Context(), rec.ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(2 * time.Hour)

	for name, tc := range map[string]struct {
		value string
		now   time.Time
		says  string
	}{
		"unknown":       {unknown.Reveal(), now, "unknown"},
		"revoked":       {revoked.Reveal(), now, "revoked at 2026-03-14T16:09:26Z"},
		"expired":       {live.Reveal(), t0.Add(berth.DefaultRefreshTokenLifetime + time.Hour), "expired at 2026-04-13T15:09:26Z"},
		"malformed":     {"brr_short", now, "characters long"},
		"a secret":      {"brt_" + live.Reveal()[4:], now, "does not start with"},
		"an access JWT": {"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", now, "access token"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := rt.Redeem(t.Context(), tc.value, tc.now)
			wantCode(t, name, err, berth.CodeRefreshTokenInvalid)
			e := berth.AsError(err)
			if !strings.Contains(e.Message, tc.says) {
				t.Errorf("message %q does not say %q", e.Message, tc.says)
			}
			if len(tc.value) > 8 && strings.Contains(e.Error(), tc.value[4:]) {
				t.Errorf("the error quotes the value: %v", e)
			}
		})
	}

	// Removing the secret revokes the tokens it produced.
	if n, err := db.RevokeRefreshTokensByCredential(t.Context(), secretID, t0.Add(90*time.Minute)); err != nil || n != 2 {
		t.Fatalf("RevokeRefreshTokensByCredential: %d, %v; want the 2 live tokens", n, err)
	}
	for _, v := range []berth.RefreshTokenValue{live, byCredential} {
		_, err := rt.Redeem(t.Context(), v.Reveal(), now)
		wantCode(t, "a token of a removed secret", err, berth.CodeRefreshTokenInvalid)
	}
}
