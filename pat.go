package berth

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// A personal access token is a person's own expiring secret, usable as a
// password by every client with the person's principal name or client id as
// the user name, and limited to the scopes named at its creation: never more
// than the person holds, which every use checks again.
//
//	brp_ BODY CHECKSUM
//
// in the shape of every berth credential, so that berth scan finds one and
// confirms it offline.
const (
	PATPrefix  = "brp_"
	PATLength  = len(PATPrefix) + patBodyLength + credentialChecksumLength
	PATPattern = `\bbrp_[0-9A-Za-z]{38}\b`
	// PATCredentialPrefix starts the credential id of what a token proves
	// (AccessClaims.CredentialID).
	PATCredentialPrefix = "pat:"
	// DefaultPATLifetime is a token's lifetime when none is asked, and
	// DefaultMaxPATLifetime the longest one (auth.max_token_lifetime).
	DefaultPATLifetime    = 30 * 24 * time.Hour
	DefaultMaxPATLifetime = 365 * 24 * time.Hour
	patBodyLength         = 32
)

// PersonalAccessToken is what berth stores of a token: its hash, never its
// value.
type PersonalAccessToken struct {
	ID          string            `json:"id"`
	PrincipalID string            `json:"principal_id"`
	Hint        string            `json:"hint"` // the value's first SecretHintLength characters
	Hash        string            `json:"-"`
	Scopes      []ResourceActions `json:"scopes"`
	Description string            `json:"description,omitempty"`
	Created     time.Time         `json:"created_at"`
	Expires     time.Time         `json:"expires_at"`
	LastUsed    *time.Time        `json:"last_used_at,omitempty"`
	Revoked     *time.Time        `json:"revoked_at,omitempty"`
}

// CredentialID is the credential id of what the token proves.
func (t PersonalAccessToken) CredentialID() string { return PATCredentialPrefix + t.ID }

// PATIDOf returns the token id a credential id names, and whether it names
// one.
func PATIDOf(credentialID string) (string, bool) {
	return strings.CutPrefix(credentialID, PATCredentialPrefix)
}

// PATHash is what is stored of a token's value (hex SHA-256).
func PATHash(value string) string { return sha256Hex(value) }

// IsPATValue reports whether s has the shape and checksum of a personal
// access token.
func IsPATValue(s string) bool { return hasCredentialShape(s, PATPrefix, PATLength) }

// ParsePATScopes reads the scopes of a new token ("repository:team/app:pull",
// "registry:catalog:*"), as the token endpoint's scope grammar; invalid for
// none or a malformed one, and for registry:api and registry:metrics, which
// a token used as a password never needs.
func ParsePATScopes(scopes []string) ([]ResourceActions, error) {
	if len(scopes) == 0 {
		return nil, Errorf(CodeInvalid, "a personal access token names at least one scope").
			WithHint("berth token create --scope repository:team/app:pull")
	}
	ras, err := ParseDockerScope(strings.Join(scopes, " "))
	if err != nil {
		return nil, err
	}
	for _, ra := range ras {
		if ra.Type == ResourceRegistry && ra.Name != ResourceCatalog {
			return nil, Errorf(CodeInvalid, "scope %s is not for a personal access token, which clients use as a password for the registry", ra).
				WithHint("name repositories (repository:team/app:pull,push) or the catalog (registry:catalog:*)")
		}
	}
	return ras, nil
}

// NewPAT returns a token of principalID limited to scopes, expiring after
// lifetime (DefaultPATLifetime when zero; invalid beyond max, or
// DefaultMaxPATLifetime when max is zero), and its value, which only the
// caller sees.
func NewPAT(rand io.Reader, principalID string, scopes []ResourceActions, description string, now time.Time, lifetime, max time.Duration) (PersonalAccessToken, string, error) {
	if max <= 0 {
		max = DefaultMaxPATLifetime
	}
	if lifetime == 0 {
		lifetime = min(DefaultPATLifetime, max)
	}
	if lifetime < 0 || lifetime > max {
		return PersonalAccessToken{}, "", Errorf(CodeInvalid, "a personal access token lives at most %s (auth.max_token_lifetime); %s was asked", FormatLifetime(max), FormatLifetime(lifetime)).
			WithHint("berth token create --expires-in %s", FormatLifetime(min(DefaultPATLifetime, max)))
	}
	if len(description) > MaxSecretDescriptionLength {
		return PersonalAccessToken{}, "", Errorf(CodeInvalid, "the description is %d bytes; the limit is %d", len(description), MaxSecretDescriptionLength)
	}
	value, err := newCredentialValue(rand, PATPrefix, patBodyLength)
	if err != nil {
		return PersonalAccessToken{}, "", fmt.Errorf("new personal access token: %w", err)
	}
	id, err := newUUID(rand)
	if err != nil {
		return PersonalAccessToken{}, "", fmt.Errorf("new personal access token: %w", err)
	}
	return PersonalAccessToken{ID: id, PrincipalID: principalID, Hint: value[:SecretHintLength], Hash: PATHash(value),
		Scopes: slices.Clone(scopes), Description: description, Created: now, Expires: now.Add(lifetime)}, value, nil
}

// Check returns secret_revoked or secret_expired when t was revoked or has
// expired at now, naming it by its hint.
func (t PersonalAccessToken) Check(now time.Time) error {
	if t.Revoked != nil {
		return Errorf(CodeSecretRevoked, "personal access token '%s…' was revoked at %s", t.Hint, formatTime(*t.Revoked)).
			WithHint("berth token create --scope SCOPE makes a new one").WithDetail("token_id", t.ID)
	}
	if !now.Before(t.Expires) {
		return Errorf(CodeSecretExpired, "personal access token '%s…' expired at %s, %s ago", t.Hint, formatTime(t.Expires), ago(now.Sub(t.Expires))).
			WithHint("berth token create --scope SCOPE --expires-in 30d makes a new one").WithDetail("token_id", t.ID)
	}
	return nil
}

// PATStore persists personal access tokens.
type PATStore interface {
	// CreatePAT stores t; conflict when its ID or Hash exists.
	CreatePAT(ctx context.Context, t PersonalAccessToken) error
	// FindPATByHash returns the token whose Hash is hash, or not_found.
	FindPATByHash(ctx context.Context, hash string) (PersonalAccessToken, error)
	// FindPATByID returns the token with id, or not_found.
	FindPATByID(ctx context.Context, id string) (PersonalAccessToken, error)
	// FindPATs returns the principal's tokens, revoked ones included, by
	// Created then ID.
	FindPATs(ctx context.Context, principalID string) ([]PersonalAccessToken, error)
	// RevokePAT marks the token revoked at the given time (keeping an
	// earlier revocation), or returns not_found.
	RevokePAT(ctx context.Context, id string, at time.Time) error
	// RevokePATsOf marks every token of the principal not revoked yet
	// revoked at the given time, in one write, and returns how many.
	RevokePATsOf(ctx context.Context, principalID string, at time.Time) (int, error)
	// TouchPAT records a use at the given time, never moving LastUsed back,
	// or returns not_found.
	TouchPAT(ctx context.Context, id string, at time.Time) error
}

// Allows reports whether t was created for action on typ:name.
func (t PersonalAccessToken) Allows(typ, name, action string) bool {
	return (AccessClaims{Access: t.Scopes}).Allows(typ, name, action)
}

// MayRevokeAsLeaked returns nil unless credentialID, a credential found
// leaked (what names it: "client secret 'brt_Ab12…' of ci"), is the one c
// is made with: conflict then, naming how to log in otherwise first and
// fix, the command that revokes it after. Revoking it through itself
// would lock the caller out halfway through berth scan --revoke's list,
// and an only owner out of the registry.
func (c *Caller) MayRevokeAsLeaked(credentialID, what, fix string) error {
	if credentialID != c.CredentialID {
		return nil
	}
	first := "berth secret add " + c.Actor.Name + " --expires-in 90d, then berth login HOST with the new secret"
	if c.Principal != nil && c.Principal.Kind == PrincipalUser {
		first = "berth login HOST, which signs you in through the browser"
	}
	return Errorf(CodeConflict, "the leaked %s is the credential this request was made with; it was not revoked", what).
		WithHint("log in with another credential first (%s), then %s", first, fix)
}

// LimitAllows reports whether the personal access token c acts through
// (Limit) was created for action on typ:name; true for a caller without one.
func (c *Caller) LimitAllows(typ, name, action string) bool {
	return c.Limit == nil || (PersonalAccessToken{Scopes: c.Limit}).Allows(typ, name, action)
}

// TokenAllows reports whether the access token c presented, if any, was
// issued for action on typ:name; true for a caller without one.
func (c *Caller) TokenAllows(typ, name, action string) bool {
	return c.Token == nil || c.Token.Allows(typ, name, action)
}

// CredentialAllows reports whether what c presented allows action on
// typ:name: the access token it sent, if any, and the personal access
// token behind it, if any. Basic client credentials and sessions carry no
// such limit. The principal's roles are the other half of every decision,
// checked apart.
func (c *Caller) CredentialAllows(typ, name, action string) bool {
	return c.TokenAllows(typ, name, action) && c.LimitAllows(typ, name, action)
}

// MayCreatePATs returns nil when c may create personal access tokens: a
// person, signed in or logged in as themselves. A service principal is
// invalid (it has client secrets); a pipeline acting as a person through a
// service connection, and a personal access token, are scope_not_granted:
// the first would leave a credential that outlives the pipeline's
// permission, the second one that holds more than it was created for.
func (c *Caller) MayCreatePATs() error {
	if c.Principal == nil || c.Principal.Kind != PrincipalUser {
		return Errorf(CodeInvalid, "personal access tokens are for people; principal %s is a service principal", c.Actor.Name).
			WithHint("give a service principal a client secret: berth secret add %s --expires-in 90d", c.Actor.Name)
	}
	if err := c.refusePipelineMinting("personal access tokens", "the person creates tokens after signing in: berth login HOST, then berth token create --scope SCOPE"); err != nil {
		return err
	}
	if c.ViaPAT() {
		return Errorf(CodeScopeNotGranted, "a personal access token of %s cannot create personal access tokens: a new one could hold more than it was created for", c.Actor.Name).
			WithHint("create tokens after signing in: berth login HOST, then berth token create --scope SCOPE")
	}
	return nil
}

// MayMintSecrets returns nil when c may create a client secret of
// principal (the roles that allow it are checked apart): scope_not_granted
// for a pipeline acting through a service connection, as for personal
// access tokens. A secret would outlive the pipeline's permission, and a
// pipeline logged in by its ID token is where no secret was to exist.
func (c *Caller) MayMintSecrets(principal string) error {
	return c.refusePipelineMinting("client secrets",
		fmt.Sprintf("an owner creates it after logging in with their own credential: berth login HOST, then berth secret add %s --expires-in 90d", principal))
}

// refusePipelineMinting refuses a pipeline acting through a service
// connection the making of credentials (what), with fix as the way; nil
// for any other caller.
func (c *Caller) refusePipelineMinting(what, fix string) error {
	if c.Connection == "" {
		return nil
	}
	return Errorf(CodeScopeNotGranted, "a pipeline acting as %s through service connection %s cannot create %s: one would outlive the pipeline's permission", c.Actor.Name, c.Connection, what).
		WithDetail("connection", c.Connection).
		WithHint("%s; a pipeline needs none, its ID token is its credential", fix)
}

// ViaPAT reports whether c authenticated with a personal access token, or
// with an access token issued for one: such a caller is limited to what the
// token was created for, and may not create tokens, which would widen it.
func (c *Caller) ViaPAT() bool {
	return c != nil && (c.Limit != nil || strings.HasPrefix(c.CredentialID, PATCredentialPrefix))
}
