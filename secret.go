package berth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// The client secret format, written once here: every secret berth issues is
//
//	brt_ BODY CHECKSUM
//
// BODY is 32 characters drawn uniformly from the 62 letters and digits
// (32 × log2 62 ≈ 190.5 bits of entropy); CHECKSUM is the CRC-32 (IEEE) of
// "brt_" + BODY, written as 6 base-62 digits, most significant first and padded
// with '0'. The prefix lets a scanner find a secret in a log or a repository with
// SecretPattern, and the checksum lets it confirm the match offline, with no false
// positives and without asking the server; it also tells a mistyped or truncated
// secret from a wrong one. The alphabet is 0-9, A-Z, a-z in that order, so the
// value survives URLs, shells, YAML and double-click selection unquoted.
const (
	// SecretPrefix starts every client secret.
	SecretPrefix = "brt_"
	// SecretLength is the length of a client secret: the prefix, the body and
	// the checksum.
	SecretLength = len(SecretPrefix) + secretBodyLength + secretChecksumLength
	// SecretHintLength is how many leading characters of a secret its hint
	// keeps: the prefix and 4 characters of the body (about 24 of its 190 bits),
	// enough to tell a principal's secrets apart and nothing an attacker can use.
	SecretHintLength = 8
	// SecretPattern is a regular expression (RE2 syntax) that matches candidate
	// client secrets in text; CheckSecretFormat confirms a candidate.
	SecretPattern = `\bbrt_[0-9A-Za-z]{38}\b`

	secretBodyLength     = 32
	secretChecksumLength = credentialChecksumLength
)

// Secret lifetimes.
const (
	// DefaultSecretLifetime is how long a new secret lives when no lifetime is
	// asked for.
	DefaultSecretLifetime = 90 * 24 * time.Hour
	// DefaultMaxSecretLifetime is the longest lifetime a secret may be given
	// unless the server is configured otherwise.
	DefaultMaxSecretLifetime = 365 * 24 * time.Hour
	// SecretTouchInterval is how stale a secret's LastUsed may grow before a use
	// records it again: it spares the store a write on every authentication.
	SecretTouchInterval = time.Minute
	// MaxSecretDescriptionLength bounds a secret's description, in bytes.
	MaxSecretDescriptionLength = 256
)

// Secret is a client secret of a principal as berth keeps it: never the value,
// only its hash and its hint. A principal may hold several at once, so a new one
// can be rolled out before the old one is removed.
//
// Removing a secret does not delete it: it becomes a tombstone (Revoked set, hash
// kept), so that a later use of the value is reported as secret_revoked, saying
// when, rather than as an unknown secret.
type Secret struct {
	ID          string     `json:"id"` // a UUID
	PrincipalID string     `json:"principal_id"`
	Hint        string     `json:"hint"` // the value's first SecretHintLength characters
	Hash        SecretHash `json:"-"`
	Description string     `json:"description,omitempty"`
	Created     time.Time  `json:"created_at"`
	// Expires is the first instant at which the secret no longer authenticates.
	Expires  time.Time  `json:"expires_at"`
	LastUsed *time.Time `json:"last_used_at,omitempty"`
	// Revoked is when the secret was removed; nil while it is not.
	Revoked *time.Time `json:"revoked_at,omitempty"`
}

// SecretState is what a secret is at a given time.
type SecretState string

const (
	SecretActive  SecretState = "active"
	SecretExpired SecretState = "expired"
	SecretRevoked SecretState = "revoked"
)

// State returns revoked for a tombstone, expired once now has reached Expires,
// and active otherwise.
func (s Secret) State(now time.Time) SecretState {
	switch {
	case s.Revoked != nil:
		return SecretRevoked
	case !now.Before(s.Expires):
		return SecretExpired
	}
	return SecretActive
}

// NeedsTouch reports whether a use at now should be recorded with TouchSecret:
// when the secret was never used, or last used SecretTouchInterval or more ago.
func (s Secret) NeedsTouch(now time.Time) bool {
	return s.LastUsed == nil || now.Sub(*s.LastUsed) >= SecretTouchInterval
}

// SecretStore persists client secrets. It keeps what it is given and decides
// nothing: expiry, matching and revocation rules are the functions of this file.
type SecretStore interface {
	// CreateSecret stores s. It returns not_found when no principal has
	// s.PrincipalID, and conflict when a secret with the same ID or Hash exists;
	// either way nothing changes.
	CreateSecret(ctx context.Context, s Secret) error
	// FindSecrets returns every secret of the principal, tombstones included,
	// ordered by Created then ID; not_found when no principal has this id.
	FindSecrets(ctx context.Context, principalID string) ([]Secret, error)
	// RevokeSecret makes the secret a tombstone removed at the given time,
	// keeping its hash. Revoking a tombstone again keeps the first time. It
	// returns not_found when no secret has this id.
	RevokeSecret(ctx context.Context, id string, at time.Time) error
	// TouchSecret records a use at lastUsed. It never moves LastUsed back: a
	// time before the recorded one is ignored (replicas may report out of
	// order). It returns not_found when no secret has this id.
	TouchSecret(ctx context.Context, id string, lastUsed time.Time) error
	// ExpireSecret moves the secret's Expires to at when at is earlier; a
	// later at changes nothing. It returns not_found when no secret has this
	// id. Renewing a connection's secret ends the previous one this way, after
	// a grace period.
	ExpireSecret(ctx context.Context, id string, at time.Time) error
	// FindSecretByHash returns the secret, tombstones included, whose Hash
	// equals hash, or not_found.
	FindSecretByHash(ctx context.Context, hash SecretHash) (Secret, error)
}

// SecretValue is a client secret's value, held only between its creation and
// the one response that shows it, or between a request and its authentication.
//
// Every way of printing it redacts it to its hint ("brt_3kXa…"): String,
// GoString, every fmt verb, MarshalJSON, MarshalText and slog's LogValue. The
// value sits behind a pointer, so even fmt's reflection into an unexported
// struct field prints an address, not the value. Reveal is the one way out;
// call it where the value must leave (the response of secret creation).
type SecretValue struct{ v *string }

// NewSecretValue returns a fresh client secret drawn from rand (crypto/rand's
// Reader in production). Bytes from rand are used by rejection sampling, so each
// body character is uniform over the 62 letters and digits.
func NewSecretValue(rand io.Reader) (SecretValue, error) {
	s, err := newCredentialValue(rand, SecretPrefix, secretBodyLength)
	if err != nil {
		return SecretValue{}, fmt.Errorf("new client secret: %w", err)
	}
	return SecretValue{v: &s}, nil
}

// CheckSecretFormat returns secret_invalid unless s has the client secret
// format: the prefix, 38 letters and digits, and a checksum that matches. Its
// message states what is wrong and never contains s.
func CheckSecretFormat(s string) error {
	const hint = "use the whole value that berth secret add printed when the secret was created; if it is lost, add a new secret"
	if !strings.HasPrefix(s, SecretPrefix) {
		return Errorf(CodeSecretInvalid, "the client secret does not start with %q, as every berth client secret does", SecretPrefix).WithHint(hint)
	}
	if len(s) != SecretLength {
		return Errorf(CodeSecretInvalid, "the client secret is %d characters long; a berth client secret has %d", len(s), SecretLength).WithHint(hint)
	}
	for i := len(SecretPrefix); i < len(s); i++ {
		if !isBase62(s[i]) {
			return Errorf(CodeSecretInvalid, "the client secret holds a character other than a letter or digit at position %d", i+1).WithHint(hint)
		}
	}
	split := len(s) - secretChecksumLength
	if subtle.ConstantTimeCompare([]byte(credentialChecksum(s[:split])), []byte(s[split:])) != 1 {
		return Errorf(CodeSecretInvalid, "the client secret's checksum does not match: it was mistyped, truncated or altered").WithHint(hint)
	}
	return nil
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// Reveal returns the value itself.
func (v SecretValue) Reveal() string {
	if v.v == nil {
		return ""
	}
	return *v.v
}

// IsZero reports whether v holds no value.
func (v SecretValue) IsZero() bool { return v.v == nil }

// Hint returns the value's first SecretHintLength characters: what Secret.Hint
// records and what messages quote.
func (v SecretValue) Hint() string { return secretHint(v.Reveal()) }

// String returns the redacted form "brt_3kXa…", or "" for the zero value.
func (v SecretValue) String() string {
	if v.v == nil {
		return ""
	}
	return v.Hint() + "…"
}

// GoString redacts like String.
func (v SecretValue) GoString() string { return "berth.SecretValue(" + strconv.Quote(v.String()) + ")" }

// Format redacts for every verb, including those fmt would not route to String.
func (v SecretValue) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, v.String(), v.GoString())
}

// MarshalJSON writes the redacted form: a response that must show the value
// puts Reveal() in a field of its own.
func (v SecretValue) MarshalJSON() ([]byte, error) { return json.Marshal(v.String()) }

// MarshalText writes the redacted form.
func (v SecretValue) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// LogValue makes log/slog record the redacted form.
func (v SecretValue) LogValue() slog.Value { return slog.StringValue(v.String()) }

func secretHint(s string) string {
	if len(s) > SecretHintLength {
		return s[:SecretHintLength]
	}
	return s
}

// quoteHint returns 'brt_3kXa…', how messages name a secret.
func quoteHint(hint string) string { return "'" + hint + "…'" }

// SecretHash is the keyed hash of a secret's value. It is not a credential, but
// it is treated like one: every way of printing it writes "[redacted]".
type SecretHash []byte

const redacted = "[redacted]"

func (h SecretHash) String() string                { return redacted }
func (h SecretHash) GoString() string              { return "berth.SecretHash(" + redacted + ")" }
func (h SecretHash) Format(f fmt.State, verb rune) { io.WriteString(f, redacted) }
func (h SecretHash) MarshalJSON() ([]byte, error)  { return json.Marshal(redacted) }
func (h SecretHash) MarshalText() ([]byte, error)  { return []byte(redacted), nil }
func (h SecretHash) LogValue() slog.Value          { return slog.StringValue(redacted) }

// SecretPepperSize is the size of a SecretHasher's key, in bytes.
const SecretPepperSize = 32

// SecretHasher hashes client secret values with HMAC-SHA256 keyed with a server
// pepper, a random key kept apart from the metadata store (in the data folder or
// the configuration, shared by every replica).
//
// Why not a slow password hash (bcrypt, scrypt, Argon2): those exist to make
// guessing a low-entropy password from its hash expensive. A berth secret is 190
// random bits: a single fast hash already puts it beyond any search (2^189
// guesses on average, at any speed), so a slow hash would only cost CPU on every
// token request and open a denial-of-service lever, and it would forbid the
// lookups a fast hash allows. The pepper adds that a copy of the database alone
// (a backup, a replica) cannot confirm a guessed or leaked value.
type SecretHasher struct{ key []byte }

// NewSecretHasher returns a hasher keyed with pepper, which must hold at least
// SecretPepperSize bytes (else invalid). Changing the pepper makes every stored
// secret unusable.
func NewSecretHasher(pepper []byte) (*SecretHasher, error) {
	if len(pepper) < SecretPepperSize {
		return nil, Errorf(CodeInvalid, "the secret pepper is %d bytes long; it needs at least %d random bytes", len(pepper), SecretPepperSize)
	}
	return &SecretHasher{key: append([]byte(nil), pepper...)}, nil
}

// Hash returns HMAC-SHA256(pepper, value).
func (h *SecretHasher) Hash(value string) SecretHash {
	m := hmac.New(sha256.New, h.key)
	io.WriteString(m, value)
	return m.Sum(nil)
}

// Match reports whether value hashes to hash, comparing in constant time.
func (h *SecretHasher) Match(value string, hash SecretHash) bool {
	return subtle.ConstantTimeCompare(h.Hash(value), hash) == 1
}

// NewSecret makes a secret of the principal with id principalID, created at now
// and expiring lifetime later: a fresh value from rand, its hint and its hash.
// The Secret is what the store keeps; the value is shown once and dropped. It
// returns invalid for a lifetime that is not positive (ParseLifetime applies the
// maximum) and for a description longer than MaxSecretDescriptionLength bytes or
// holding control characters.
func NewSecret(rand io.Reader, h *SecretHasher, principalID string, now time.Time, lifetime time.Duration, description string) (Secret, SecretValue, error) {
	if lifetime <= 0 {
		return Secret{}, SecretValue{}, Errorf(CodeInvalid, "a secret's lifetime must be positive, not %s", FormatLifetime(lifetime)).
			WithHint("ask for a lifetime such as --expires-in 90d")
	}
	if err := validateSecretDescription(description); err != nil {
		return Secret{}, SecretValue{}, err
	}
	id, err := newUUID(rand)
	if err != nil {
		return Secret{}, SecretValue{}, fmt.Errorf("new client secret: %w", err)
	}
	v, err := NewSecretValue(rand)
	if err != nil {
		return Secret{}, SecretValue{}, err
	}
	s := Secret{
		ID:          id,
		PrincipalID: principalID,
		Hint:        v.Hint(),
		Hash:        h.Hash(v.Reveal()),
		Description: description,
		Created:     now,
		Expires:     now.Add(lifetime),
	}
	return s, v, nil
}

func validateSecretDescription(d string) error {
	return validateLine("the secret's description", d, MaxSecretDescriptionLength)
}

// ParseLifetime parses a secret lifetime such as --expires-in takes: a Go
// duration ("30s", "12h", "1h30m"), optionally led by whole days ("90d",
// "1d12h"). The empty string means DefaultSecretLifetime, or max when that is
// shorter. max <= 0 means DefaultMaxSecretLifetime. It returns invalid, with the
// facts and a hint, for a malformed value, one that is not positive, and one
// longer than max ("requested 400d; the maximum is 365d").
func ParseLifetime(s string, max time.Duration) (time.Duration, error) {
	if max <= 0 {
		max = DefaultMaxSecretLifetime
	}
	if s == "" {
		return min(DefaultSecretLifetime, max), nil
	}
	const hint = "give a positive duration such as 30s, 12h or 90d"
	malformed := func() error {
		return Errorf(CodeInvalid, "lifetime %q is not a duration", Truncate(s, 40)).WithHint(hint)
	}
	tooLong := func() error {
		return Errorf(CodeInvalid, "requested %s; the maximum is %s", Truncate(s, 40), FormatLifetime(max)).
			WithHint("ask for at most %s (--expires-in %s), and replace the credential before it expires; the maximum is part of the server's configuration",
				FormatLifetime(max), FormatLifetime(max))
	}
	if strings.HasPrefix(s, "-") {
		return 0, Errorf(CodeInvalid, "lifetime %s is negative; it must be positive", Truncate(s, 40)).WithHint(hint)
	}
	const day = 24 * time.Hour
	var d time.Duration
	rest := s
	if days, after, ok := strings.Cut(s, "d"); ok {
		if days == "" || strings.TrimLeft(days, "0123456789") != "" {
			return 0, malformed()
		}
		// Only digits are left, so the one possible error is a range error.
		n, err := strconv.ParseUint(days, 10, 64)
		if err != nil || n > uint64(max/day) {
			return 0, tooLong()
		}
		d = time.Duration(n) * day
		rest = after
	}
	if rest != "" {
		if rest[0] == '+' || rest[0] == '-' {
			return 0, malformed()
		}
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, malformed()
		}
		if r > max || d > max-r {
			return 0, tooLong()
		}
		d += r
	}
	if d <= 0 {
		return 0, Errorf(CodeInvalid, "lifetime %s is zero; it must be positive", Truncate(s, 40)).WithHint(hint)
	}
	return d, nil
}

// FormatLifetime writes d as ParseLifetime reads it, with whole days as "d":
// 90d, 1d12h, 12h, 1h30m, 30s.
func FormatLifetime(d time.Duration) string {
	if d < 0 {
		return "-" + FormatLifetime(-d)
	}
	if d == 0 {
		return "0s"
	}
	const day = 24 * time.Hour
	var b strings.Builder
	if days := d / day; days > 0 {
		fmt.Fprintf(&b, "%dd", days)
	}
	if rest := d % day; rest > 0 {
		// Duration.String writes 12h0m0s, 1h30m0s, 1m0s, 30s, 1.5s, 500ms.
		t := rest.String()
		if strings.HasSuffix(t, "m0s") {
			t = t[:len(t)-2] // 12h0m, 1h30m, 1m
		}
		if strings.HasSuffix(t, "h0m") {
			t = t[:len(t)-2] // 12h
		}
		b.WriteString(t)
	}
	return b.String()
}

// AuthenticateSecret decides whether presented, the password of Basic
// credentials or an OAuth 2.0 client_secret, authenticates principal p at now,
// given all of p's secrets (FindSecrets, tombstones included; secrets of other
// principals are ignored). It returns the matching secret, whose NeedsTouch says
// whether to record the use, or an *Error with one of these codes:
//
//   - secret_id_sent: presented is the id of one of p's secrets, not its value;
//   - secret_invalid: presented does not have the secret format (a typo, a
//     truncation, another credential), or matches none of p's secrets;
//   - principal_disabled: presented matches a secret of p, and p is disabled;
//   - secret_revoked: presented matches a removed secret; the message says when;
//   - secret_expired: presented matches an expired secret; the message names its
//     hint, when it expired and how long ago, and the hint the command that makes
//     a new one.
//
// principal_disabled is reported only to a caller who presented one of the
// principal's secrets, so the state of a principal is not disclosed to whoever
// knows its client id. Until a secret matches, no message names the
// principal (the client id does not tell its name) and the hints name it
// PRINCIPAL: the name goes to Private, for the audit log. Hashes are compared
// in constant time, against every secret. No message contains presented or a
// hash.
func AuthenticateSecret(now time.Time, h *SecretHasher, p Principal, secrets []Secret, presented string) (Secret, error) {
	newHint := fmt.Sprintf("berth secret add %s --expires-in 90d", p.Name)
	refuse := func(e *Error) (Secret, error) {
		if p.Name != "" {
			e.WithPrivate("principal", p.Name)
		}
		return Secret{}, e
	}
	if id, err := parseUUID(presented); err == nil {
		for _, s := range secrets {
			if s.PrincipalID == p.ID && s.ID == id {
				return refuse(Errorf(CodeSecretIDSent,
					"the password sent is the id of the principal's secret %s, not the secret's value", quoteHint(s.Hint)).
					WithHint("send the value that berth secret add printed once; if it is lost, add a new secret: %s", newHint).
					WithDetail("secret_id", s.ID))
			}
		}
		if id == p.ClientID {
			return refuse(Errorf(CodeSecretInvalid, "the password sent is the client id, not one of the principal's secrets").
				WithHint("send a client secret as the password; berth secret add PRINCIPAL prints a new one"))
		}
	}
	if err := CheckSecretFormat(presented); err != nil {
		e := AsError(err)
		e.Hint += ": berth secret add PRINCIPAL --expires-in 90d (berth principal list shows the principal of each client id)"
		return refuse(e)
	}

	hash := h.Hash(presented)
	match := -1
	for i, s := range secrets {
		if subtle.ConstantTimeCompare(hash, s.Hash) == 1 && s.PrincipalID == p.ID && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return refuse(Errorf(CodeSecretInvalid, "the client secret matches none of the principal's secrets").
			WithHint("check the client id and secret (berth doctor); berth secret list PRINCIPAL shows the hints of its secrets, berth secret add PRINCIPAL --expires-in 90d adds one"))
	}
	s := secrets[match]
	switch {
	case p.Disabled:
		return Secret{}, Errorf(CodePrincipalDisabled, "principal %s is disabled", p.Name).
			WithHint("berth principal enable %s", p.Name)
	case s.Revoked != nil:
		return Secret{}, Errorf(CodeSecretRevoked, "secret %s of principal %s was removed on %s, %s ago",
			quoteHint(s.Hint), p.Name, formatTime(*s.Revoked), ago(now.Sub(*s.Revoked))).
			WithHint("use another of its secrets (berth secret list %s) or add one: %s", p.Name, newHint).
			WithDetail("secret_id", s.ID).
			WithDetail("revoked_at", formatTime(*s.Revoked))
	case !now.Before(s.Expires):
		return Secret{}, Errorf(CodeSecretExpired, "secret %s of principal %s expired on %s, %s ago",
			quoteHint(s.Hint), p.Name, formatTime(s.Expires), ago(now.Sub(s.Expires))).
			WithHint("%s (or let the pipeline use federation, which needs no secret: berth connection create NAME --principal %s --auth federated)",
				newHint, p.Name).
			WithDetail("secret_id", s.ID).
			WithDetail("expired_at", formatTime(s.Expires))
	}
	return s, nil
}

// formatTime writes t as messages show times: RFC 3339 in UTC.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// RoundDays returns d in days, rounded to the nearest whole day: how many
// days a person is told a credential has left (a 7-day secret just added
// has 7, not 6 and some hours). The API's days_left counts whole days
// instead, 0 on the last one.
func RoundDays(d time.Duration) int { return int(math.Round(d.Hours() / 24)) }

// ago writes an elapsed time roughly, in the largest unit that keeps it
// readable, for messages: "40 seconds", "105 minutes", "5 hours", "55 days".
// A negative d (clocks out of step) counts as none.
func ago(d time.Duration) string {
	switch {
	case d < 2*time.Minute:
		return plural(int64(max(d, 0)/time.Second), "second")
	case d < 2*time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int64(d/time.Hour), "hour")
	}
	return plural(int64(d/(24*time.Hour)), "day")
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}
