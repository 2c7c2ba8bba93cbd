package berth

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
)

// PrincipalKind says what a principal stands for.
type PrincipalKind string

const (
	// PrincipalService is a service principal: a pipeline, a deployment, a tool.
	PrincipalService PrincipalKind = "service"
	// PrincipalUser is a person (signing in arrives with the web console).
	PrincipalUser PrincipalKind = "user"
)

// Valid reports whether k is a known kind.
func (k PrincipalKind) Valid() bool { return k == PrincipalService || k == PrincipalUser }

// Principal is an identity that can authenticate: a user or a service principal.
// Its Name is what people type and what role assignments and audit entries show;
// its ClientID is what a client sends as the user name of Basic credentials (the
// name may stand for it). ID is internal and never changes, so secrets, role
// assignments and audit events refer to the principal by ID.
type Principal struct {
	ID       string        `json:"id"`        // a UUID
	Name     string        `json:"name"`      // see ValidatePrincipalName
	ClientID string        `json:"client_id"` // a UUID, lower case
	Kind     PrincipalKind `json:"kind"`
	// Disabled principals cannot authenticate, and tokens they hold stop
	// working at their next check.
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created_at"`
}

// MaxPrincipalNameLength bounds a principal name.
const MaxPrincipalNameLength = 64

// ValidatePrincipalName returns invalid unless name is 1 to 64 characters of
// lower-case letters, digits, '.', '_' and '-', starting with a letter or a digit,
// and does not have the form of a client id (a UUID): Basic credentials accept
// either in the same field, so a name shaped like a client id would be ambiguous.
//
// The alphabet holds no shell metacharacter, no space and no path separator, so a
// name can be pasted into the hint commands that errors print.
func ValidatePrincipalName(name string) error {
	if err := validateName("principal", name); err != nil {
		return err
	}
	if _, err := parseUUID(name); err == nil {
		return Errorf(CodeInvalid, "principal name %q has the form of a client id, which Basic credentials could not tell apart from one", name).
			WithHint("choose a name that is not a UUID, such as ci-web")
	}
	return nil
}

// validateName applies the name rules shared by principals, pipelines and
// connections; what names the kind in messages.
func validateName(what, name string) error {
	const hint = "use 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit, such as ci-web"
	switch {
	case name == "":
		return Errorf(CodeInvalid, "the %s name is empty", what).WithHint(hint)
	case len(name) > MaxPrincipalNameLength:
		return Errorf(CodeInvalid, "%s name %q is %d characters long; the limit is %d",
			what, Truncate(name, 40), len(name), MaxPrincipalNameLength).WithHint(hint)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		case c == '.' || c == '_' || c == '-':
			return Errorf(CodeInvalid, "%s name %q starts with %q; it must start with a letter or digit",
				what, Truncate(name, 40), c).WithHint(hint)
		case c >= 'A' && c <= 'Z':
			e := Errorf(CodeInvalid, "%s name %q holds the upper-case letter %q at position %d; names are lower case",
				what, Truncate(name, 40), c, i+1).WithHint(hint)
			if lower := strings.ToLower(name); validateName(what, lower) == nil {
				e.Hint = "use " + lower
			}
			return e
		default:
			return Errorf(CodeInvalid, "%s name %q holds %q at position %d, which is not allowed",
				what, Truncate(name, 40), nameRune(name, i), i+1).WithHint(hint)
		}
	}
	return nil
}

// nameRune returns the character starting at byte i of s, for messages.
func nameRune(s string, i int) string {
	for j, r := range s {
		if j >= i {
			return string(r)
		}
	}
	return s[i : i+1]
}

// NewPrincipal returns an enabled principal named name, with a fresh ID and
// client id drawn from rand, created at now. It returns invalid for a bad name
// or kind.
func NewPrincipal(rand io.Reader, name string, kind PrincipalKind, now time.Time) (Principal, error) {
	if err := ValidatePrincipalName(name); err != nil {
		return Principal{}, err
	}
	if !kind.Valid() {
		return Principal{}, Errorf(CodeInvalid, "principal kind %q is unknown; it is %q or %q",
			Truncate(string(kind), 40), PrincipalService, PrincipalUser)
	}
	id, err := newUUID(rand)
	if err != nil {
		return Principal{}, fmt.Errorf("new principal %s: %w", name, err)
	}
	clientID, err := newUUID(rand)
	if err != nil {
		return Principal{}, fmt.Errorf("new principal %s: %w", name, err)
	}
	return Principal{ID: id, Name: name, ClientID: clientID, Kind: kind, Created: now}, nil
}

// ParseClientID returns s as a client id in its canonical form (a lower-case
// UUID, 8-4-4-4-12 hex digits), or invalid. The message never repeats s: a value
// in the client id field may be a secret pasted into the wrong place.
func ParseClientID(s string) (string, error) {
	return parseID(s, "the client id", "the client id is the UUID that berth principal show NAME prints",
		"the client id holds a credential's value; a client secret or token goes in the password")
}

// ParseSecretID returns s as a secret id in its canonical form (a lower-case
// UUID), or invalid; like ParseClientID, its message never repeats s.
func ParseSecretID(s string) (string, error) {
	return parseID(s, "the secret id", "berth secret list PRINCIPAL shows the ids of a principal's secrets",
		"a credential's value was given where a secret's id belongs; the value is never needed to remove a secret")
}

// ParsePATID returns s as a personal access token's id in its canonical form
// (a lower-case UUID), or invalid; like ParseClientID, its message never
// repeats s.
func ParsePATID(s string) (string, error) {
	return parseID(s, "the token id", "berth token list shows the ids of your personal access tokens",
		"a credential's value was given where a token's id belongs; the value is never needed to revoke a token")
}

// parseID returns s as a UUID in its canonical form, or invalid saying that
// what is not one, with hint; when s looks like a credential's value the
// message is misplaced instead, which does not quote it either.
func parseID(s, what, hint, misplaced string) (string, error) {
	id, err := parseUUID(s)
	if err != nil {
		e := Errorf(CodeInvalid, "%s is not a UUID: %s", what, err).WithHint("%s", hint)
		if LooksLikeCredential(s) {
			e.Message = misplaced
		}
		return "", e
	}
	return id, nil
}

// PrincipalStore persists principals. It decides nothing: names, kinds and ids
// arrive validated, and the store keeps them as they are.
type PrincipalStore interface {
	// CreatePrincipal stores p. It returns conflict when a principal with the
	// same ID, Name or ClientID exists, and then changes nothing.
	CreatePrincipal(ctx context.Context, p Principal) error
	// FindPrincipalByID returns the principal with this ID, or not_found.
	FindPrincipalByID(ctx context.Context, id string) (Principal, error)
	// FindPrincipalByName returns the principal with this name, or not_found.
	FindPrincipalByName(ctx context.Context, name string) (Principal, error)
	// FindPrincipalByClientID returns the principal with this client id (compared
	// exactly: callers pass the canonical form of ParseClientID), or not_found.
	FindPrincipalByClientID(ctx context.Context, clientID string) (Principal, error)
	// FindPrincipals returns the principals that match f, ordered by name.
	FindPrincipals(ctx context.Context, f PrincipalFilter) ([]Principal, error)
	// UpdatePrincipal applies the set fields of u and returns the principal as it
	// now is, or not_found. An update with no field set changes nothing.
	UpdatePrincipal(ctx context.Context, id string, u PrincipalUpdate) (Principal, error)
	// DeletePrincipal removes the principal, every secret it holds (tombstones
	// included), its role assignments, its service connections with their
	// permitted pipelines and pending permission requests, and a person's
	// link, sessions and personal access tokens, in one transaction, or
	// returns not_found.
	DeletePrincipal(ctx context.Context, id string) error
}

// PrincipalFilter selects principals. The zero filter selects all of them.
type PrincipalFilter struct {
	// Kind, when set, selects principals of this kind.
	Kind PrincipalKind
	// Disabled, when set, selects principals whose Disabled equals it.
	Disabled *bool
	// After, when set, selects names after it in byte order: the last name of
	// the previous page.
	After string
	// Limit, when positive, returns at most this many.
	Limit int
}

// PrincipalUpdate holds the fields UpdatePrincipal changes; nil means unchanged.
type PrincipalUpdate struct {
	Disabled *bool
}

// IdentityStore is everything berth keeps about identities and their
// credentials.
type IdentityStore interface {
	PrincipalStore
	SecretStore
}

// FindClient returns the principal that user, the user name of Basic
// credentials or an OAuth 2.0 client_id, names: by client id when user is a UUID,
// by principal name otherwise. It returns client_unknown when none matches,
// with a hint that tells the client id from a secret's id, and never repeats
// user in the message (it may be a pasted secret).
func FindClient(ctx context.Context, s PrincipalStore, user string) (Principal, error) {
	const hint = "the client id is the UUID shown by berth principal show NAME (not the id of one of its secrets)"
	if user == "" {
		return Principal{}, Errorf(CodeClientUnknown, "the client id is empty").WithHint(hint)
	}
	if LooksLikeCredential(user) {
		return Principal{}, Errorf(CodeClientUnknown, "a credential's value was sent as the client id; a client secret or token goes in the password and the client id in the user name").
			WithHint(hint)
	}
	if id, err := parseUUID(user); err == nil {
		p, err := s.FindPrincipalByClientID(ctx, id)
		if IsCode(err, CodeNotFound) {
			return Principal{}, Errorf(CodeClientUnknown, "no principal has client id %s", id).WithHint(hint)
		}
		return p, err
	}
	if ValidatePrincipalName(user) != nil {
		return Principal{}, Errorf(CodeClientUnknown, "the client id is neither a UUID nor a principal name").WithHint(hint)
	}
	p, err := s.FindPrincipalByName(ctx, user)
	if IsCode(err, CodeNotFound) {
		return Principal{}, Errorf(CodeClientUnknown, "no principal is named %s", user).WithHint(hint)
	}
	return p, err
}

// RefuseUnknownClient returns the refusal of credentials whose user names no
// principal, err being FindClient's client_unknown. For a user that is a
// principal name, it is what AuthenticateSecret answers to a wrong secret of
// an existing principal, hashing included, so that a caller cannot tell which
// names exist; the real cause goes to the audit log only (Private). A client
// id (a UUID) cannot be guessed: its client_unknown stands, and tells a
// mistyped id from a wrong secret.
func RefuseUnknownClient(h *SecretHasher, user, presented string, err error) error {
	if !IsCode(err, CodeClientUnknown) || ValidatePrincipalName(user) != nil {
		return err
	}
	if _, uerr := parseUUID(user); uerr == nil {
		return err
	}
	_, refusal := AuthenticateSecret(time.Time{}, h, Principal{}, nil, presented)
	if e := AsError(refusal); e != nil {
		e.WithPrivate("cause", AsError(err).Message)
	}
	return refusal
}

// newUUID returns a random (version 4) UUID read from rand.
func newUUID(rand io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return formatUUID(b), nil
}

func formatUUID(b [16]byte) string {
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// parseUUID returns s in lower case when it is a UUID in the 8-4-4-4-12 hex
// form (any version), and otherwise an error that states the form, never s.
func parseUUID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("it is %d characters long, a UUID 36 (8-4-4-4-12 hex digits)", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", fmt.Errorf("a UUID has '-' at positions 9, 14, 19 and 24 (8-4-4-4-12 hex digits)")
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return "", fmt.Errorf("a UUID holds hex digits and '-' only (8-4-4-4-12)")
			}
		}
	}
	return strings.ToLower(s), nil
}

// principalPage is how many principals AllPrincipals reads at a time.
const principalPage = 1000

// AllPrincipals yields every principal f selects, in name order, reading
// them from s a page at a time (it sets f.After and f.Limit itself). A read
// error is yielded once, with the zero Principal, and ends the sequence.
func AllPrincipals(ctx context.Context, s interface {
	FindPrincipals(ctx context.Context, f PrincipalFilter) ([]Principal, error)
}, f PrincipalFilter) iter.Seq2[Principal, error] {
	return func(yield func(Principal, error) bool) {
		f.After, f.Limit = "", principalPage
		for {
			ps, err := s.FindPrincipals(ctx, f)
			if err != nil {
				yield(Principal{}, err)
				return
			}
			for _, p := range ps {
				if !yield(p, nil) {
					return
				}
			}
			if len(ps) < principalPage {
				return
			}
			f.After = ps[len(ps)-1].Name
		}
	}
}
