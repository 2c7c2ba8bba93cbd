package berth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Token lifetimes. An access token is short-lived and cannot be revoked, only
// refused: every request also checks the principal's current state. A refresh
// token lives longer and is revocable.
const (
	DefaultAccessTokenLifetime  = 15 * time.Minute
	DefaultRefreshTokenLifetime = 30 * 24 * time.Hour
)

// Resource types of the Docker token scope grammar, and the actions a Docker
// client asks for. A scope's actions are the Docker vocabulary; which berth
// Actions they stand for is decided where access is decided.
const (
	ResourceRepository = "repository"
	ResourceRegistry   = "registry"

	// The names of the registry resource type: registry:catalog:* asks to
	// list repositories; registry:api:* lets an access token call the
	// management API (/api/v1), registry:api:pull its reading endpoints only;
	// registry:metrics:pull lets it scrape /metrics. A token used outside /v2/
	// must name where: an access token narrowed to one repository stays
	// narrow.
	ResourceCatalog = "catalog"
	ResourceAPI     = "api"
	ResourceMetrics = "metrics"

	DockerActionPull   = "pull"
	DockerActionPush   = "push"
	DockerActionDelete = "delete"
	DockerActionAll    = "*"
)

// Bounds of a token request's scope, which is parsed before the caller is
// authenticated: a client asks for one or two resources (a cross-repository
// mount names two), each with at most the four actions there are.
const (
	// maxScopeEntries bounds how many distinct resources one request names.
	maxScopeEntries = 64
	// maxScopeFields bounds the entries as sent, repeats included.
	maxScopeFields = 4 * maxScopeEntries
)

// ResourceActions is one entry of an access token's "access" claim, in the
// Docker token shape: {"type":"repository","name":"team/app","actions":["pull","push"]}.
type ResourceActions struct {
	Type string `json:"type"`
	// Class is the optional resource class of "repository(plugin)"; it does not
	// change what is authorized, which depends on Type and Name only.
	Class   string   `json:"class,omitempty"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// String returns the entry in the scope grammar ParseDockerScope reads.
func (r ResourceActions) String() string {
	typ := r.Type
	if r.Class != "" {
		typ += "(" + r.Class + ")"
	}
	return typ + ":" + r.Name + ":" + strings.Join(r.Actions, ",")
}

// ParseDockerScope reads the scope of a Docker token request
// (https://distribution.github.io/distribution/spec/auth/scope/): one or more
// entries separated by spaces, each TYPE[(CLASS)]:NAME:ACTION[,ACTION…], such as
// "repository:team/app:pull,push registry:catalog:*". Entries naming the same
// resource are merged, their actions united in first-seen order. An empty
// scope gives no entry.
//
// It returns invalid, quoting the offending entry, when an entry does not
// follow the grammar, names a type other than repository and registry, names a
// repository with a registry host ("localhost:5000/team/app": name it without
// the host) or outside the repository-name grammar, names a registry
// resource other than catalog, api and metrics, or names an action other than
// pull, push, delete and "*"; and when the scope names more than 64 resources
// or holds more than 256 entries. Its cost is linear in the length of s: it
// runs before the caller is authenticated.
func ParseDockerScope(s string) ([]ResourceActions, error) {
	var out []ResourceActions
	var index map[string]int // resource → its entry in out
	fields := 0
	for entry := range strings.FieldsSeq(s) {
		if fields++; fields > maxScopeFields {
			return nil, Errorf(CodeInvalid, "the scope holds more than %d entries", maxScopeFields).
				WithHint("request a token for the repositories one command needs")
		}
		ra, err := parseScopeEntry(entry)
		if err != nil {
			return nil, err
		}
		key := ra.Type + "(" + ra.Class + ")" + ra.Name
		i, ok := index[key]
		if !ok {
			if len(out) == maxScopeEntries {
				return nil, Errorf(CodeInvalid, "the scope names more than %d resources", maxScopeEntries).
					WithHint("request a token for the repositories one command needs")
			}
			if index == nil {
				index = map[string]int{}
			}
			index[key] = len(out)
			out = append(out, ra)
			continue
		}
		for _, a := range ra.Actions {
			if !slices.Contains(out[i].Actions, a) { // at most four actions
				out[i].Actions = append(out[i].Actions, a)
			}
		}
	}
	return out, nil
}

// scopeActions are the actions a scope may name.
var scopeActions = []string{DockerActionPull, DockerActionPush, DockerActionDelete, DockerActionAll}

func parseScopeEntry(entry string) (ResourceActions, error) {
	fail := func(why string, args ...any) (ResourceActions, error) {
		return ResourceActions{}, Errorf(CodeInvalid, "scope %q is invalid: %s", Truncate(entry, 120), fmt.Sprintf(why, args...)).
			WithHint(`use TYPE:NAME:ACTIONS, such as "repository:team/app:pull,push" or "registry:catalog:*"`).
			WithDetail("scope", Truncate(entry, 120))
	}
	typ, rest, ok := strings.Cut(entry, ":")
	i := strings.LastIndexByte(rest, ':')
	if !ok || i < 0 {
		return fail("it does not have the form TYPE:NAME:ACTIONS")
	}
	name, actionList := rest[:i], rest[i+1:]

	var ra ResourceActions
	if open := strings.IndexByte(typ, '('); open >= 0 {
		if !strings.HasSuffix(typ, ")") || !scopeTypeWord(typ[open+1:len(typ)-1]) {
			return fail("its resource class is not of the form TYPE(CLASS) with CLASS of lower-case letters and digits")
		}
		typ, ra.Class = typ[:open], typ[open+1:len(typ)-1]
	}
	ra.Type = typ
	switch typ {
	case ResourceRepository:
		if strings.Contains(name, ":") {
			return fail("the repository name %q holds a registry host and port; name the repository without the host, as in team/app", Truncate(name, 80))
		}
		if err := ValidateRepositoryName(name); err != nil {
			return fail("%s", AsError(err).Message)
		}
	case ResourceRegistry:
		if name != ResourceCatalog && name != ResourceAPI && name != ResourceMetrics {
			return fail("the registry resources are catalog, api and metrics, not %q", Truncate(name, 40))
		}
	default:
		if !scopeTypeWord(typ) {
			return fail("the resource type is not lower-case letters and digits")
		}
		return fail("the resource type %q is unknown; berth grants repository and registry scopes", typ)
	}
	ra.Name = name

	for a := range strings.SplitSeq(actionList, ",") {
		switch {
		case a == "":
			continue // the grammar allows empty actions; they ask for nothing
		case !slices.Contains(scopeActions, a):
			return fail("the action %q is not pull, push, delete or *", Truncate(a, 40))
		case !slices.Contains(ra.Actions, a): // at most four
			ra.Actions = append(ra.Actions, a)
		}
	}
	if len(ra.Actions) == 0 {
		return fail("it names no action")
	}
	return ra, nil
}

// scopeTypeWord reports whether s is a resource type or class: /[a-z0-9]+/.
func scopeTypeWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// AccessClaims is what an access token says: who it acts for, through which
// credential, and what it grants. Times are whole seconds, as JWTs carry them.
type AccessClaims struct {
	// Issuer is the registry's issuer URL (the iss claim).
	Issuer string
	// Audience is the service the token is for (aud; the Docker "service").
	Audience string
	// Subject is the ID of the principal the token acts for (sub).
	Subject string
	// Name is the principal's name, for logs and messages only: the principal
	// is found by Subject.
	Name     string
	ClientID string
	// CredentialID is the secret id or service connection the token came from,
	// so that removing the credential stops the tokens it produced.
	CredentialID string
	// Connection, Pipeline and Run name the service connection, the CI
	// pipeline and the CI run of a token issued through federation, for the
	// audit log; "" otherwise. PipelineID is the pipeline's ID: a token is
	// refused once its pipeline is no longer permitted on the connection.
	Connection string
	Pipeline   string
	PipelineID string
	Run        string
	Access     []ResourceActions
	IssuedAt   time.Time
	NotBefore  time.Time
	Expires    time.Time
	// ID is the token's unique id (jti), quoted by audit events.
	ID string
}

// Allows reports whether the claims grant action on the resource of type typ
// named name; "*" granted on a resource grants every action on it.
func (c AccessClaims) Allows(typ, name, action string) bool {
	for _, ra := range c.Access {
		if ra.Type == typ && ra.Name == name &&
			(slices.Contains(ra.Actions, action) || slices.Contains(ra.Actions, DockerActionAll)) {
			return true
		}
	}
	return false
}

// CheckTime returns token_expired when the token expired more than leeway
// before now, saying when and how long ago, and token_invalid when it is not
// valid yet by more than leeway. Leeway absorbs clock skew between the
// machines that issue and verify.
func (c AccessClaims) CheckTime(now time.Time, leeway time.Duration) error {
	if !c.Expires.IsZero() && now.After(c.Expires.Add(leeway)) {
		who := ""
		if c.Name != "" {
			who = " of principal " + c.Name
		}
		return Errorf(CodeTokenExpired, "the access token%s expired at %s, %s ago",
			who, formatTime(c.Expires), ago(now.Sub(c.Expires))).
			WithHint("get a new token: clients signed in with berth login refresh it by themselves; otherwise run docker login again").
			WithDetail("expired_at", formatTime(c.Expires))
	}
	if !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore) {
		return Errorf(CodeTokenInvalid, "the access token is not valid before %s; the clocks of the issuer and this server disagree",
			formatTime(c.NotBefore)).
			WithHint("synchronise the server's clock (NTP)")
	}
	return nil
}

// TokenSigner turns claims into a signed access token.
type TokenSigner interface {
	// Sign returns the compact serialization of a token carrying c. Errors are
	// internal: a misconfigured or unreadable key.
	Sign(c AccessClaims) (string, error)
}

// TokenVerifier checks an access token.
type TokenVerifier interface {
	// Verify returns the claims of a token this registry signed for its own
	// issuer and audience, valid at now. It returns token_expired when the
	// token is genuine but expired, and token_invalid when it is malformed,
	// signed with an unknown key or algorithm, tampered with, or for another
	// issuer or audience. Messages never quote the token nor internal details.
	// Verify does not look at the principal's current state: callers do.
	Verify(token string, now time.Time) (AccessClaims, error)
}

// The refresh token format follows the client secret's, with its own prefix:
//
//	brr_ BODY CHECKSUM
//
// BODY is 32 characters drawn uniformly from 0-9, A-Z, a-z (about 190 bits);
// CHECKSUM is the CRC-32 (IEEE) of "brr_" + BODY as 6 base-62 digits, most
// significant first. A scanner finds one with RefreshTokenPattern and confirms
// it offline with ParseRefreshTokenValue.
const (
	// RefreshTokenPrefix starts every refresh token value.
	RefreshTokenPrefix = "brr_"
	// RefreshTokenLength is the length of a refresh token value.
	RefreshTokenLength = len(RefreshTokenPrefix) + refreshTokenBodyLength + refreshTokenChecksumLength
	// RefreshTokenPattern is a regular expression (RE2 syntax) that matches
	// candidate refresh tokens in text.
	RefreshTokenPattern = `\bbrr_[0-9A-Za-z]{38}\b`

	refreshTokenBodyLength     = 32
	refreshTokenChecksumLength = credentialChecksumLength
	refreshTokenRedacted       = RefreshTokenPrefix + "[redacted]"
)

// IdentityTokenUser is the user name that says the password beside it is a
// refresh token: docker's credential helpers call such a token an identity
// token. Clients that hold a login but speak only user name and password (the
// kubelet's image credential providers, containerd, CRI-O, a pull secret)
// send it as Basic credentials or in the password grant.
const IdentityTokenUser = "<token>"

// RefreshTokenValue is a refresh token as the client holds it. Every way of
// printing it (fmt verbs, JSON, text, slog) writes "brr_[redacted]"; being a
// struct holding a pointer, even a field of a printed struct shows no value.
// Reveal is the one way out: the token response calls it.
type RefreshTokenValue struct{ v *string }

// Reveal returns the value.
func (v RefreshTokenValue) Reveal() string {
	if v.v == nil {
		return ""
	}
	return *v.v
}

// IsZero reports whether v holds no value.
func (v RefreshTokenValue) IsZero() bool { return v.v == nil }

// Hash returns the hex SHA-256 of the value: all that is stored of it.
func (v RefreshTokenValue) Hash() string {
	sum := sha256.Sum256([]byte(v.Reveal()))
	return hex.EncodeToString(sum[:])
}

// String returns the redacted form, or "" for the zero value.
func (v RefreshTokenValue) String() string {
	if v.v == nil {
		return ""
	}
	return refreshTokenRedacted
}

// GoString redacts like String.
func (v RefreshTokenValue) GoString() string {
	return "berth.RefreshTokenValue(" + strconv.Quote(v.String()) + ")"
}

// Format redacts for every verb, including those fmt would not route to String.
func (v RefreshTokenValue) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, v.String(), v.GoString())
}

// MarshalJSON writes the redacted form.
func (v RefreshTokenValue) MarshalJSON() ([]byte, error) { return json.Marshal(v.String()) }

// MarshalText writes the redacted form.
func (v RefreshTokenValue) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// LogValue makes log/slog record the redacted form.
func (v RefreshTokenValue) LogValue() slog.Value { return slog.StringValue(v.String()) }

// NewRefreshTokenValue draws a new value from rand (crypto/rand's Reader in
// production), by rejection sampling so that each character is uniform.
func NewRefreshTokenValue(rand io.Reader) (RefreshTokenValue, error) {
	s, err := newCredentialValue(rand, RefreshTokenPrefix, refreshTokenBodyLength)
	if err != nil {
		return RefreshTokenValue{}, fmt.Errorf("new refresh token: %w", err)
	}
	return RefreshTokenValue{v: &s}, nil
}

// ParseRefreshTokenValue returns s as a refresh token value when it has the
// format and checksum of one, and otherwise refresh_token_invalid saying what is
// wrong, never quoting s. A value that passes may still be unknown.
func ParseRefreshTokenValue(s string) (RefreshTokenValue, error) {
	const hint = "send the refresh token that berth login stored, or run berth login again"
	if !strings.HasPrefix(s, RefreshTokenPrefix) {
		e := Errorf(CodeRefreshTokenInvalid, "the refresh token does not start with %q, as every berth refresh token does", RefreshTokenPrefix).WithHint(hint)
		if strings.Count(s, ".") == 2 {
			e.Message = "an access token was sent where the refresh token belongs"
		}
		return RefreshTokenValue{}, e
	}
	if len(s) != RefreshTokenLength {
		return RefreshTokenValue{}, Errorf(CodeRefreshTokenInvalid, "the refresh token is %d characters long; a berth refresh token has %d", len(s), RefreshTokenLength).WithHint(hint)
	}
	for i := len(RefreshTokenPrefix); i < len(s); i++ {
		if !isBase62(s[i]) {
			return RefreshTokenValue{}, Errorf(CodeRefreshTokenInvalid, "the refresh token holds a character other than a letter or digit at position %d", i+1).WithHint(hint)
		}
	}
	split := len(s) - refreshTokenChecksumLength
	if credentialChecksum(s[:split]) != s[split:] {
		return RefreshTokenValue{}, Errorf(CodeRefreshTokenInvalid, "the refresh token's checksum does not match: it was mistyped, truncated or altered").WithHint(hint)
	}
	return RefreshTokenValue{v: &s}, nil
}

// RefreshToken is what berth stores of a refresh token it issued: never the
// value, only its hash, and what it is bound to.
type RefreshToken struct {
	ID string
	// Hash is RefreshTokenValue.Hash of the value.
	Hash        string
	PrincipalID string
	// CredentialID is the secret id or service connection the token came from;
	// revoking that credential revokes the token.
	CredentialID string
	// PipelineID and Run are the pipeline and CI run a federated login came
	// from; "" for a login with a client secret.
	PipelineID string
	Run        string
	Created    time.Time
	Expires    time.Time
	// Revoked is when the token was revoked, nil while it is not.
	Revoked *time.Time
}

// Check returns refresh_token_invalid when t was revoked or has expired at
// now, saying which and when. It does not look at the principal or the
// credential the token is bound to: whoever redeems it checks that they are
// still live.
func (t RefreshToken) Check(now time.Time) error {
	const hint = "run berth login again to get a new refresh token"
	if t.Revoked != nil {
		return Errorf(CodeRefreshTokenInvalid, "the refresh token issued at %s was revoked at %s, %s ago",
			formatTime(t.Created), formatTime(*t.Revoked), ago(now.Sub(*t.Revoked))).
			WithHint(hint).WithDetail("revoked_at", formatTime(*t.Revoked))
	}
	if !now.Before(t.Expires) {
		return Errorf(CodeRefreshTokenInvalid, "the refresh token issued at %s expired at %s, %s ago",
			formatTime(t.Created), formatTime(t.Expires), ago(now.Sub(t.Expires))).
			WithHint(hint).WithDetail("expired_at", formatTime(t.Expires))
	}
	return nil
}

// RefreshTokenStore persists refresh tokens. It decides nothing: expiry and
// revocation are judged by RefreshToken.Check.
type RefreshTokenStore interface {
	// CreateRefreshToken stores t; conflict when its ID or Hash exists.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// FindRefreshTokenByHash returns the token whose Hash is hash, revoked and
	// expired ones included, or not_found.
	FindRefreshTokenByHash(ctx context.Context, hash string) (RefreshToken, error)
	// RevokeRefreshToken marks the token revoked at the given time, or returns
	// not_found. Revoking a revoked token keeps its first revocation time.
	RevokeRefreshToken(ctx context.Context, id string, at time.Time) error
	// RevokeRefreshTokensByCredential revokes, at the given time, every token
	// bound to the credential that is not revoked yet, and returns how many.
	RevokeRefreshTokensByCredential(ctx context.Context, credentialID string, at time.Time) (int, error)
	// RevokeRefreshTokensByPrincipal revokes, at the given time, every token of
	// the principal that is not revoked yet, and returns how many.
	RevokeRefreshTokensByPrincipal(ctx context.Context, principalID string, at time.Time) (int, error)
	// DeleteExpiredRefreshTokens removes the tokens that expired strictly
	// before the given time, revoked or not, and returns how many.
	DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int, error)
	// FindRefreshTokens returns every token of the principal, revoked and
	// expired ones included, by Created then ID; an empty slice when it has
	// none. (berth migrate copies them with it.)
	FindRefreshTokens(ctx context.Context, principalID string) ([]RefreshToken, error)
}

// ParseChallenge reads one WWW-Authenticate challenge (RFC 9110 section
// 11.6.1): its scheme in lower case and its parameters, names in lower case,
// quoted values unquoted. What does not parse ends the parameters.
func ParseChallenge(v string) (scheme string, params map[string]string) {
	params = map[string]string{}
	v = strings.TrimSpace(v)
	s, rest, _ := strings.Cut(v, " ")
	scheme = strings.ToLower(s)
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, r, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		r = strings.TrimSpace(r)
		var val string
		if strings.HasPrefix(r, `"`) {
			end := 1
			for end < len(r) && r[end] != '"' {
				if r[end] == '\\' {
					end++
				}
				end++
			}
			val = strings.ReplaceAll(r[1:min(end, len(r))], `\"`, `"`)
			r = r[min(end+1, len(r)):]
		} else {
			val, r, _ = strings.Cut(r, ",")
			r = "," + r
		}
		params[k] = val
		rest = strings.TrimLeft(strings.TrimSpace(r), ", ")
	}
	return scheme, params
}
