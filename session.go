package berth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

// A person's session: one sign-in through an identity provider, in a browser
// (a cookie holding SessionValue) or in the CLI (a refresh token bound to the
// session, issued when a device login is approved). Every session of a person
// ends at once when their principal is disabled, when the provider refuses to
// refresh their sign-in, or when it reaches its expiry.

// UserSession is what berth stores of a person's session: never the cookie's
// value, only its hash.
type UserSession struct {
	ID          string `json:"id"`
	PrincipalID string `json:"principal_id"`
	ProviderID  string `json:"idp_id"`
	// Hash is SessionValueHash of the browser cookie; "" for a session held
	// by the CLI, which proves it with a refresh token bound to
	// SessionCredentialID(ID).
	Hash    string     `json:"-"`
	Created time.Time  `json:"created_at"`
	Expires time.Time  `json:"expires_at"`
	Ended   *time.Time `json:"ended_at,omitempty"`
}

// SessionCredentialPrefix starts the credential id of tokens a session
// issued (RefreshToken.CredentialID, AccessClaims.CredentialID).
const SessionCredentialPrefix = "session:"

// SessionCredentialID is the credential id of the tokens issued to session id.
func SessionCredentialID(id string) string { return SessionCredentialPrefix + id }

// SessionIDOf returns the session a credential id names, and whether it
// names one.
func SessionIDOf(credentialID string) (string, bool) {
	return strings.CutPrefix(credentialID, SessionCredentialPrefix)
}

// SignInCredentialPrefix starts the ProviderID of a session signed in with a
// credential (the console's break-glass sign-in with a client secret) rather
// than through an identity provider: such a session lives only as long as
// that credential does.
const SignInCredentialPrefix = "credential:"

// SignInCredentialOf returns the credential a session was signed in with,
// from its ProviderID, and whether it was signed in with one.
func SignInCredentialOf(providerID string) (string, bool) {
	return strings.CutPrefix(providerID, SignInCredentialPrefix)
}

// NewUserSession returns a session of principalID signed in through
// providerID at now, lasting lifetime (DefaultUserSessionLifetime when not
// positive), with a fresh ID; hash is the cookie's, or "" for the CLI.
func NewUserSession(rand io.Reader, principalID, providerID, hash string, now time.Time, lifetime time.Duration) (UserSession, error) {
	if lifetime <= 0 {
		lifetime = DefaultUserSessionLifetime
	}
	id, err := newUUID(rand)
	if err != nil {
		return UserSession{}, fmt.Errorf("new session: %w", err)
	}
	return UserSession{ID: id, PrincipalID: principalID, ProviderID: providerID, Hash: hash, Created: now, Expires: now.Add(lifetime)}, nil
}

// Check returns session_ended when s ended or expired at now, saying when.
func (s UserSession) Check(now time.Time) error {
	const hint = "sign in again: berth login HOST, or /login in the browser"
	if s.Ended != nil {
		return Errorf(CodeSessionEnded, "the session signed in at %s ended at %s", formatTime(s.Created), formatTime(*s.Ended)).
			WithHint(hint).WithDetail("ended_at", formatTime(*s.Ended))
	}
	if !now.Before(s.Expires) {
		return Errorf(CodeSessionEnded, "the session signed in at %s expired at %s, %s ago", formatTime(s.Created), formatTime(s.Expires), ago(now.Sub(s.Expires))).
			WithHint(hint).WithDetail("expired_at", formatTime(s.Expires))
	}
	return nil
}

// The session cookie's value, "brs_" BODY CHECKSUM like every berth
// credential: a scanner finds one in a pasted header.
const (
	SessionValuePrefix = "brs_"
	sessionBodyLength  = 32
)

// NewSessionValue draws a cookie value from rand.
func NewSessionValue(rand io.Reader) (string, error) {
	return newCredentialValue(rand, SessionValuePrefix, sessionBodyLength)
}

// IsSessionValue reports whether s has the shape and checksum of a session
// cookie's value: what berth scan confirms offline.
func IsSessionValue(s string) bool {
	return hasCredentialShape(s, SessionValuePrefix, len(SessionValuePrefix)+sessionBodyLength+credentialChecksumLength)
}

// SessionValueHash is what is stored of a cookie value (hex SHA-256), or ""
// when v does not have the shape of one, which no stored session matches.
func SessionValueHash(v string) string {
	if !IsSessionValue(v) {
		return ""
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// SessionCSRF is the value the session's forms carry in their csrf field:
// derived from the cookie's secret value, so another site, which cannot read
// the cookie, cannot forge it, and it needs no storage.
func SessionCSRF(cookieValue string) string {
	sum := sha256.Sum256([]byte("berth csrf\x00" + cookieValue))
	return hex.EncodeToString(sum[:16])
}

// SessionStore persists sessions.
type SessionStore interface {
	// CreateSession stores s; conflict when its ID or a non-empty Hash exists.
	CreateSession(ctx context.Context, s UserSession) error
	// FindSessionByID returns the session, ended and expired ones included,
	// or not_found.
	FindSessionByID(ctx context.Context, id string) (UserSession, error)
	// FindSessionByHash returns the browser session whose Hash is hash, or
	// not_found.
	FindSessionByHash(ctx context.Context, hash string) (UserSession, error)
	// EndSession marks the session ended at the given time, or returns
	// not_found; ending an ended session keeps its first time.
	EndSession(ctx context.Context, id string, at time.Time) error
	// EndSessionsOfPrincipal ends every session of the principal that has
	// not ended, and returns how many.
	EndSessionsOfPrincipal(ctx context.Context, principalID string, at time.Time) (int, error)
}

// UpstreamRefreshInterval is how often a person's sign-in is refreshed at
// the identity provider, re-reading their groups: removing someone from a
// group upstream removes their rights within it.
const UpstreamRefreshInterval = time.Hour

// DeviceStatus is where a device login stands.
type DeviceStatus string

const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceDenied   DeviceStatus = "denied"
	// DeviceRedeemed is an approved login whose tokens the client collected:
	// a device code is good for one login.
	DeviceRedeemed DeviceStatus = "redeemed"
)

// Device authorization grant (RFC 8628) defaults.
const (
	DeviceCodeLifetime = 10 * time.Minute
	// DevicePollInterval is the least time between two polls (section 3.2's
	// interval); each slow_down adds DeviceSlowDownStep (section 3.5).
	DevicePollInterval = 5 * time.Second
	DeviceSlowDownStep = 5 * time.Second
	DeviceCodePrefix   = "brd_"
	deviceBodyLength   = 32
	// userCodeAlphabet is RFC 8628 section 6.1's: consonants only, so no
	// word is spelt, and no 0/O or 1/I to confuse.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
)

// DeviceAuthorization is a device login in progress: the device code the
// client polls with (stored as its hash), the user code the person types or
// follows, and what the person decided.
type DeviceAuthorization struct {
	ID         string
	DeviceHash string
	UserCode   string // XXXX-XXXX
	// Client names the program asking, as it said (client_id), for the
	// approval page.
	Client string
	// Source is the address the login was started from, as the registry
	// saw it, for the approval page ("" for a login stored before berth
	// recorded it).
	Source   string
	Created  time.Time
	Expires  time.Time
	Interval time.Duration
	LastPoll time.Time
	Status   DeviceStatus
	// PrincipalID and SessionID are set on approval: who approved, and the
	// session the client's refresh token is bound to.
	PrincipalID string
	SessionID   string
}

// NewDeviceAuthorization starts a device login for client at now, drawing
// the device code, the user code and the ID from rand. It returns the
// authorization and the device code's value, which only the client sees.
func NewDeviceAuthorization(rand io.Reader, client string, now time.Time) (DeviceAuthorization, string, error) {
	value, err := newCredentialValue(rand, DeviceCodePrefix, deviceBodyLength)
	if err != nil {
		return DeviceAuthorization{}, "", fmt.Errorf("new device code: %w", err)
	}
	code, err := newUserCode(rand)
	if err != nil {
		return DeviceAuthorization{}, "", err
	}
	id, err := newUUID(rand)
	if err != nil {
		return DeviceAuthorization{}, "", fmt.Errorf("new device code: %w", err)
	}
	if client == "" || len(client) > 64 || !claimName(client) {
		client = "unnamed client"
	}
	return DeviceAuthorization{ID: id, DeviceHash: DeviceCodeHash(value), UserCode: code, Client: client,
		Created: now, Expires: now.Add(DeviceCodeLifetime), Interval: DevicePollInterval, Status: DevicePending}, value, nil
}

func newUserCode(rand io.Reader) (string, error) {
	var b [userCodeLength]byte
	out := make([]byte, 0, userCodeLength+1)
	for len(out) < userCodeLength+1 {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return "", fmt.Errorf("new user code: %w", err)
		}
		for _, c := range b {
			if c >= 240 || len(out) == userCodeLength+1 { // 240 = 12 × 20: uniform
				continue
			}
			if len(out) == 4 {
				out = append(out, '-')
			}
			out = append(out, userCodeAlphabet[c%20])
		}
	}
	return string(out), nil
}

// DeviceCodeHash is what is stored of a device code's value (hex SHA-256).
func DeviceCodeHash(v string) string { return sha256Hex(v) }

// NormalizeUserCode returns a user code as stored (XXXX-XXXX, upper case)
// from what a person typed (any case, with or without '-' or spaces), or
// invalid.
func NormalizeUserCode(s string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-' || r == ' ':
		case strings.ContainsRune(userCodeAlphabet, r) && b.Len() < userCodeLength:
			b.WriteRune(r)
		default:
			return "", Errorf(CodeInvalid, "the code is 8 letters such as BCDF-GHJK; it holds %q", Truncate(string(r), 4)).
				WithHint("type the code berth login printed, or open the link it printed")
		}
	}
	if b.Len() != userCodeLength {
		return "", Errorf(CodeInvalid, "the code is 8 letters such as BCDF-GHJK").
			WithHint("type the code berth login printed, or open the link it printed")
	}
	c := b.String()
	return c[:4] + "-" + c[4:], nil
}

// DevicePoll is the answer to one poll of a device code that is not yet
// redeemable: RFC 8628 section 3.5's authorization_pending, or slow_down
// when the client polled sooner than the interval allows.
type DevicePoll struct {
	SlowDown bool
	// Interval is the interval the client must keep from now on.
	Interval time.Duration
}

// Poll judges a poll of d at now: nil error and approved true when d was
// approved (the caller marks it redeemed and issues tokens); a DevicePoll
// while it is pending (with slow_down, and the new interval to store, when
// the poll came sooner than d.Interval after the last); and
// device_code_expired, device_code_denied, or refresh_token_invalid for a
// code already redeemed.
func (d DeviceAuthorization) Poll(now time.Time) (approved bool, poll DevicePoll, err error) {
	switch {
	case d.Status == DeviceRedeemed:
		return false, poll, Errorf(CodeDeviceCodeExpired, "this device code was already used for a login at %s; a code is good for one login", formatTime(d.LastPoll)).
			WithHint("run berth login HOST again")
	case d.Status == DeviceDenied:
		return false, poll, Errorf(CodeDeviceCodeDenied, "the login with code %s was denied in the browser", d.UserCode).
			WithHint("run berth login HOST again and approve the new code, if it is yours")
	case !now.Before(d.Expires):
		return false, poll, Errorf(CodeDeviceCodeExpired, "the code %s expired at %s, %s ago, before it was approved", d.UserCode, formatTime(d.Expires), ago(now.Sub(d.Expires))).
			WithHint("run berth login HOST again and approve the new code within %d minutes", int(DeviceCodeLifetime/time.Minute))
	case d.Status == DeviceApproved:
		return true, poll, nil
	}
	poll.Interval = d.Interval
	if !d.LastPoll.IsZero() && now.Sub(d.LastPoll) < d.Interval {
		poll.SlowDown = true
		poll.Interval = d.Interval + DeviceSlowDownStep
	}
	return false, poll, nil
}

// DeviceAuthorizationStore persists device logins.
type DeviceAuthorizationStore interface {
	// CreateDeviceAuthorization stores d; conflict when its ID, DeviceHash
	// or UserCode exists.
	CreateDeviceAuthorization(ctx context.Context, d DeviceAuthorization) error
	// FindDeviceAuthorizationByHash returns the login of a device code's
	// hash, or not_found.
	FindDeviceAuthorizationByHash(ctx context.Context, hash string) (DeviceAuthorization, error)
	// FindDeviceAuthorizationByUserCode returns the login of a user code
	// (as NormalizeUserCode writes it), or not_found.
	FindDeviceAuthorizationByUserCode(ctx context.Context, code string) (DeviceAuthorization, error)
	// UpdateDeviceAuthorization writes d's Status, Interval, LastPoll,
	// PrincipalID and SessionID when its stored status is from; conflict
	// when it is not (another poll or decision came first), not_found when
	// it does not exist.
	UpdateDeviceAuthorization(ctx context.Context, d DeviceAuthorization, from DeviceStatus) error
	// DeleteExpiredDeviceAuthorizations removes logins that expired before
	// the given time, and returns how many.
	DeleteExpiredDeviceAuthorizations(ctx context.Context, before time.Time) (int, error)
}
