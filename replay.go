package berth

import (
	"context"
	"time"
)

// AssertionStore remembers the CI ID tokens exchanged for a login, for as
// long as each is valid, so that a token copied from a job (a log, an
// artifact, a compromised step) cannot start a second session. It decides
// nothing: AssertionReplayed says what a replay is.
type AssertionStore interface {
	// RememberAssertion records key until expires and reports true, unless
	// key is recorded with an expiry after now: then it records nothing and
	// reports false. Two callers racing with one key get one true.
	RememberAssertion(ctx context.Context, key string, expires, now time.Time) (bool, error)
	// AssertionRemembered reports whether key is recorded with an expiry
	// after now, recording nothing.
	AssertionRemembered(ctx context.Context, key string, now time.Time) (bool, error)
	// DeleteExpiredAssertions removes the keys that expired strictly before
	// the given time, and returns how many.
	DeleteExpiredAssertions(ctx context.Context, before time.Time) (int, error)
}

// AssertionKey is what an AssertionStore keeps of an ID token: the hex
// SHA-256 of the token as it was presented, never the token.
func AssertionKey(token string) string { return sha256Hex(token) }

// AssertionSourceKey is what an AssertionStore keeps of an Entra access
// token exchanged from the address source: the hex SHA-256 of both. The
// ACR-shaped exchange accepts such a token again from that address only
// (see AssertionReusable).
func AssertionSourceKey(token, source string) string {
	return sha256Hex("source\x00" + source + "\x00" + token)
}

// AssertionReusable reports whether a token that matched pl may be
// exchanged again at the ACR-shaped endpoint from the address that first
// exchanged it: an Entra access token is a bearer token its holder presents
// for as long as it lives (az acr login sends the one the Azure CLI cached,
// once per step), unlike a CI job's ID token, which starts one session.
func AssertionReusable(pl Pipeline) bool { return pl.Preset == PresetEntra }

// AssertionRememberedUntil is how long a is remembered: until it can no
// longer pass Assertion.CheckTime, at most MaxAssertionMemory.
func AssertionRememberedUntil(a Assertion, now time.Time) time.Time {
	until := a.Expires.Add(AssertionLeeway)
	if a.Expires.IsZero() || until.After(now.Add(MaxAssertionMemory)) {
		until = now.Add(MaxAssertionMemory)
	}
	return until
}

// MaxAssertionMemory bounds how long an exchanged ID token is remembered;
// a token living longer (a Kubernetes service account token may live a year)
// is refused as replayed that long.
const MaxAssertionMemory = 7 * 24 * time.Hour

// AssertionReplayed is the refusal of an ID token that was already exchanged
// for a login: one ID token starts one session.
func AssertionReplayed(a Assertion) *Error {
	return Errorf(CodeAssertionReplayed, "this ID token (issuer %s, subject %q) was already exchanged for a login; an ID token starts one session", a.Issuer, a.Subject).
		WithHint("use the login the first exchange stored (docker-credential-berth refreshes it), or present a fresh ID token; if no one in this job logged in before, treat the token as stolen: berth audit --code assertion_replayed").
		WithDetail("issuer", a.Issuer).WithDetail("subject", a.Subject)
}

// AssertionReplayedElsewhere is the refusal of an Entra access token that
// was exchanged before, but not at the ACR-shaped exchange from source: it
// accepts such a token again only from the address that first exchanged it
// there (AssertionReusable). The first address is not said: whoever presents a
// copied token learns nothing of its holder.
func AssertionReplayedElsewhere(a Assertion, source string) *Error {
	return Errorf(CodeAssertionReplayed, "this Entra access token (issuer %s, subject %q) was exchanged before, but not at this endpoint from %s, the address this exchange came from; berth accepts such a token again only from the address that first exchanged it here", a.Issuer, a.Subject, source).
		WithHint("request a fresh token (az account get-access-token, or az acr login again) on the machine that logs in; behind a proxy or NAT every client shares the address berth sees, so the rule holds per egress address; if no one logged in with this token, treat it as stolen: berth audit --code assertion_replayed").
		WithDetail("issuer", a.Issuer).WithDetail("subject", a.Subject).WithDetail("source", source)
}
