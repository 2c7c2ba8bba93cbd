package console

import (
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

// TestSecretRow: a secret's place on the expiry timeline, in words and as
// the meter's value of its lifetime.
func TestSecretRow(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, c := range []struct {
		created, expires time.Duration // from now
		state            berth.SecretState
		left             string
		days, span       int
	}{
		{-60 * day, 30*day + time.Hour, berth.SecretActive, "30 days left", 30, 90},
		{-day, day + time.Minute, berth.SecretActive, "1 day left", 1, 2},
		{-time.Minute, 7*day - time.Minute, berth.SecretActive, "7 days left", 7, 7},
		{-day, time.Hour, berth.SecretActive, "expires today", 0, 1},
		{-2 * day, -time.Hour, berth.SecretExpired, "expired today", 0, 1},
		{-90 * day, -3*day - time.Hour, berth.SecretExpired, "expired 3 days ago", 0, 86},
		{-day, 89 * day, berth.SecretRevoked, "revoked", 0, 90},
	} {
		r := newSecretRow(api.Secret{Created: now.Add(c.created), Expires: now.Add(c.expires), State: c.state}, now)
		if r.Left != c.left || r.Days != c.days || r.Span != c.span {
			t.Errorf("created %s, expires %s, %s: %q %d/%d, want %q %d/%d", c.created, c.expires, c.state, r.Left, r.Days, r.Span, c.left, c.days, c.span)
		}
	}
}
