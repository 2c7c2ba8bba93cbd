package berth

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// People sign in through an identity provider the company already runs: an
// upstream OpenID Connect provider (Entra ID, Keycloak, Dex, Okta, Google,
// GitLab). A person's first sign-in creates a principal of kind user, linked
// to the provider's (issuer, subject); the groups claim of each sign-in
// decides which group role assignments count for that person.

// Defaults of an identity provider's claims and scopes.
const (
	DefaultGroupsClaim   = "groups"
	DefaultUsernameClaim = "preferred_username"
)

// DefaultIdPScopes are the scopes a sign-in asks for when the provider names
// none: openid, and the profile, email and groups claims.
var DefaultIdPScopes = []string{"openid", "profile", "email", "groups"}

// DefaultUserSessionLifetime is how long a person's sign-in lasts, in the
// browser and in the CLI (auth.user_session_lifetime).
const DefaultUserSessionLifetime = 12 * time.Hour

// IdentityProvider is an upstream OpenID Connect provider through which
// people sign in. Its client secret is never part of this type: callers seal
// it before the store keeps it (SealedSecret) and open it only to redeem an
// authorization code.
type IdentityProvider struct {
	ID   string `json:"id"`
	Name string `json:"name"` // the IDP of group names IDP:GROUP; see ValidatePrincipalName's alphabet
	// Issuer is the provider's issuer URL, exactly as its ID tokens' iss.
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// GroupsClaim and UsernameClaim name the ID token claims that hold the
	// person's groups (a string array) and the name berth derives the
	// principal's name from.
	GroupsClaim   string   `json:"groups_claim"`
	UsernameClaim string   `json:"username_claim"`
	Scopes        []string `json:"scopes"`
	// SealedSecret is the client secret sealed by the key encryption key;
	// never shown, never logged (json "-").
	SealedSecret []byte    `json:"-"`
	Created      time.Time `json:"created_at"`
}

// SameSettings reports whether p and q would sign people in alike: the
// same issuer, client, claims and scopes (the client secret, sealed, is
// compared by whoever can open it; ID, Name and Created say nothing of how
// sign-in works).
func (p IdentityProvider) SameSettings(q IdentityProvider) bool {
	return p.Issuer == q.Issuer && p.ClientID == q.ClientID && p.GroupsClaim == q.GroupsClaim &&
		p.UsernameClaim == q.UsernameClaim && slices.Equal(p.Scopes, q.Scopes)
}

// IdPSecretAAD is the additional data a provider's client secret is sealed
// with: the sealed bytes open only as this provider's.
func IdPSecretAAD(providerID string) []byte {
	return []byte("berth idp client secret " + providerID)
}

// NewIdentityProvider returns a provider with a fresh ID, the defaults filled
// in, after checking its fields: invalid for a bad name, client id, claim or
// scope list, and for an issuer that policy refuses (https, or plain http on
// loopback only).
func NewIdentityProvider(rand io.Reader, p IdentityProvider, policy OutboundPolicy, now time.Time) (IdentityProvider, error) {
	if err := validateName("identity provider", p.Name); err != nil {
		return IdentityProvider{}, err
	}
	if err := policy.CheckURL("issuer of identity provider "+p.Name, p.Issuer); err != nil {
		return IdentityProvider{}, err
	}
	if strings.TrimSpace(p.ClientID) == "" || len(p.ClientID) > 256 {
		return IdentityProvider{}, Errorf(CodeInvalid, "identity provider %s needs the client id the provider gave berth's application (1 to 256 characters)", p.Name).
			WithHint("berth idp add %s --issuer %s --client-id ID --client-secret-stdin", p.Name, p.Issuer)
	}
	if p.GroupsClaim == "" {
		p.GroupsClaim = DefaultGroupsClaim
	}
	if p.UsernameClaim == "" {
		p.UsernameClaim = DefaultUsernameClaim
	}
	for _, c := range []string{p.GroupsClaim, p.UsernameClaim} {
		if !claimName(c) {
			return IdentityProvider{}, Errorf(CodeInvalid, "claim name %q is not 1 to 64 letters, digits, '_', '-', '.', ':' or '/'", Truncate(c, 40))
		}
	}
	if len(p.Scopes) == 0 {
		p.Scopes = slices.Clone(DefaultIdPScopes)
	}
	if !slices.Contains(p.Scopes, "openid") {
		return IdentityProvider{}, Errorf(CodeInvalid, "the scopes of identity provider %s lack openid, without which the provider returns no ID token", p.Name).
			WithHint(`--scopes "openid profile email groups"`)
	}
	for _, s := range p.Scopes {
		if !claimName(s) {
			return IdentityProvider{}, Errorf(CodeInvalid, "scope %q is not 1 to 64 letters, digits, '_', '-', '.', ':' or '/'", Truncate(s, 40))
		}
	}
	id, err := newUUID(rand)
	if err != nil {
		return IdentityProvider{}, fmt.Errorf("new identity provider: %w", err)
	}
	p.ID, p.Created = id, now
	return p, nil
}

func claimName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-.:/", c) >= 0) {
			return false
		}
	}
	return true
}

// IdentityProviderStore persists identity providers.
type IdentityProviderStore interface {
	// CreateIdentityProvider stores p; conflict when its ID or Name exists.
	CreateIdentityProvider(ctx context.Context, p IdentityProvider) error
	// FindIdentityProviderByName returns the provider named name, or not_found.
	FindIdentityProviderByName(ctx context.Context, name string) (IdentityProvider, error)
	// FindIdentityProviderByID returns the provider with id, or not_found.
	FindIdentityProviderByID(ctx context.Context, id string) (IdentityProvider, error)
	// UpdateIdentityProvider writes p's issuer, client id, claims, scopes and
	// sealed secret to the provider with p.ID, or returns not_found; its
	// people stay linked.
	UpdateIdentityProvider(ctx context.Context, p IdentityProvider) error
	// FindIdentityProviders returns every provider, by name.
	FindIdentityProviders(ctx context.Context) ([]IdentityProvider, error)
	// DeleteIdentityProvider removes the provider, its user links and the
	// sessions signed in through it, or returns not_found. The principals
	// of its people stay (disable or delete them).
	DeleteIdentityProvider(ctx context.Context, id string) error
}

// PeopleStore is everything berth keeps about people: their providers,
// principals' links, groups' assignments, sessions and device logins.
type PeopleStore interface {
	IdentityProviderStore
	UserLinkStore
	GroupRoleStore
	SessionStore
	DeviceAuthorizationStore
	PATStore
}

// IdPUnknown is the refusal of a sign-in through a provider nobody added.
func IdPUnknown(name string) *Error {
	return Errorf(CodeIdPUnknown, "no identity provider is named %q", Truncate(name, 64)).
		WithHint("berth idp list shows the providers; berth idp add NAME --issuer URL --client-id ID --client-secret-stdin adds one").
		WithDetail("idp", Truncate(name, 64))
}

// Group is a group of an identity provider, written PROVIDER:GROUP: the
// provider's name, a colon, and the group exactly as the groups claim carries
// it (Entra ID sends object ids, Keycloak paths such as /team/ops).
type Group string

// MaxGroupLength bounds a group name, provider included.
const MaxGroupLength = 256

// ParseGroup returns s as a group, or invalid unless it is PROVIDER:GROUP
// with a valid provider name and a group of 1 to 190 printable characters
// without spaces or quotes.
func ParseGroup(s string) (Group, error) {
	const hint = "name a group as PROVIDER:GROUP, such as corp:registry-admins (berth idp list shows the providers)"
	idp, g, ok := strings.Cut(s, ":")
	if !ok {
		return "", Errorf(CodeInvalid, "group %q has no provider; it is PROVIDER:GROUP", Truncate(s, 80)).WithHint(hint)
	}
	if err := validateName("identity provider", idp); err != nil {
		return "", Errorf(CodeInvalid, "group %q: %s", Truncate(s, 80), AsError(err).Message).WithHint(hint)
	}
	if g == "" || len(s) > MaxGroupLength {
		return "", Errorf(CodeInvalid, "group %q: the group after the provider is empty or longer than %d characters", Truncate(s, 80), MaxGroupLength).WithHint(hint)
	}
	for _, r := range g {
		if r <= ' ' || r == 0x7f || r == '"' || r == '\'' || r == '`' || r == '\\' {
			return "", Errorf(CodeInvalid, "group %q holds a space, a quote, a backslash or a control character", Truncate(s, 80)).WithHint(hint)
		}
	}
	return Group(s), nil
}

// Provider returns the provider part of the group.
func (g Group) Provider() string { p, _, _ := strings.Cut(string(g), ":"); return p }

// GroupsOf returns the groups claim values of one sign-in through provider,
// as groups: PROVIDER:VALUE for each value ParseGroup accepts, sorted, each
// once; values it refuses are left out and counted in skipped.
func GroupsOf(provider string, values []string) (groups []Group, skipped int) {
	for _, v := range values {
		g, err := ParseGroup(provider + ":" + v)
		if err != nil {
			skipped++
			continue
		}
		groups = append(groups, g)
	}
	slices.Sort(groups)
	return slices.Compact(groups), skipped
}

// GroupRoleAssignment gives every member of a group a role on a scope.
type GroupRoleAssignment struct {
	Group     Group     `json:"group"`
	Role      Role      `json:"role"`
	Scope     Scope     `json:"scope"`
	Created   time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// Validate returns invalid unless g names a group, a built-in role and a scope.
func (g GroupRoleAssignment) Validate() error {
	if _, err := ParseGroup(string(g.Group)); err != nil {
		return err
	}
	return RoleAssignment{PrincipalID: "group", Role: g.Role, Scope: g.Scope}.Validate()
}

// For returns the assignment as the member principalID holds it: a
// RoleAssignment whose Group says where it comes from.
func (g GroupRoleAssignment) For(principalID, principalName string) RoleAssignment {
	return RoleAssignment{PrincipalID: principalID, PrincipalName: principalName, Group: g.Group, Role: g.Role, Scope: g.Scope, Created: g.Created, CreatedBy: g.CreatedBy}
}

// MemberAssignments returns the group assignments of the groups a person is in,
// as that person's own: what NewAccessIndex adds to the person's assignments.
func MemberAssignments(all []GroupRoleAssignment, member []Group, principalID, principalName string) []RoleAssignment {
	var out []RoleAssignment
	for _, g := range all {
		if slices.Contains(member, g.Group) {
			out = append(out, g.For(principalID, principalName))
		}
	}
	return out
}

// GroupsGranting returns the groups (sorted, each once) whose assignments
// would allow action on repo ("" the registry): what a refusal names so a
// person knows which group to ask to join.
func GroupsGranting(all []GroupRoleAssignment, action Action, repo string) []Group {
	var out []Group
	for _, g := range all {
		if g.Role.Allows(action) && g.Scope.Covers(repo) && !slices.Contains(out, g.Group) {
			out = append(out, g.Group)
		}
	}
	slices.Sort(out)
	return out
}

// NameGroups adds to a denial the groups whose members hold what was
// missing, in its message and detail "granting_groups"; an allowed decision
// is unchanged.
func (d *Decision) NameGroups(groups []Group) {
	if d.Allowed || len(groups) == 0 {
		return
	}
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = string(g)
	}
	d.Groups = names
	d.Message += "; members of " + strings.Join(names, ", ") + " may"
}

// GroupRoleStore persists group role assignments.
type GroupRoleStore interface {
	// CreateGroupRoleAssignment records g; conflict when the group already
	// holds g.Role on g.Scope.
	CreateGroupRoleAssignment(ctx context.Context, g GroupRoleAssignment) error
	// DeleteGroupRoleAssignment removes the group's role on exactly scope, or
	// returns not_found.
	DeleteGroupRoleAssignment(ctx context.Context, group Group, role Role, scope Scope) error
	// FindGroupRoleAssignments returns every group assignment, by group,
	// scope text and role.
	FindGroupRoleAssignments(ctx context.Context) ([]GroupRoleAssignment, error)
}

// UserLink ties a person's principal to the (issuer, subject) of the
// provider they sign in through, with the groups of their latest sign-in or
// refresh, and the provider's refresh token (sealed) that lets berth re-read
// them.
type UserLink struct {
	PrincipalID string  `json:"principal_id"`
	ProviderID  string  `json:"idp_id"`
	Issuer      string  `json:"issuer"`
	Subject     string  `json:"subject"`
	Groups      []Group `json:"groups"`
	// SealedRefresh is the provider's refresh token sealed by the key
	// encryption key, nil when it returned none; never shown.
	SealedRefresh []byte `json:"-"`
	// Refreshed is when the provider last confirmed the person: the sign-in
	// or the latest refresh.
	Refreshed time.Time `json:"refreshed_at"`
}

// NeedsRefresh reports whether the provider should confirm the person again
// at now: it returned a refresh token and UpstreamRefreshInterval has passed.
func (l UserLink) NeedsRefresh(now time.Time) bool {
	return len(l.SealedRefresh) > 0 && now.Sub(l.Refreshed) >= UpstreamRefreshInterval
}

// UserLinkStore persists people: their principals with their links.
type UserLinkStore interface {
	// CreateUser stores the principal p (of kind user) and its link l in one
	// transaction; conflict, changing nothing, when p's name, ID or client
	// id, or l's (Issuer, Subject), exists.
	CreateUser(ctx context.Context, p Principal, l UserLink) error
	// CreateUserLink stores the link of an existing principal (berth migrate
	// copies them); conflict when the principal or (Issuer, Subject) is
	// linked already.
	CreateUserLink(ctx context.Context, l UserLink) error
	// FindUserLink returns the link of (issuer, subject), or not_found.
	FindUserLink(ctx context.Context, issuer, subject string) (UserLink, error)
	// FindUserLinkByPrincipal returns the link of the principal, or not_found.
	FindUserLinkByPrincipal(ctx context.Context, principalID string) (UserLink, error)
	// UpdateUserLink writes l's Groups, SealedRefresh and Refreshed to the
	// link of l.PrincipalID, or returns not_found.
	UpdateUserLink(ctx context.Context, l UserLink) error
}

// UserName returns the principal name derived from a username claim: lower
// case, letters and digits kept, '.', '_' and '-' kept inside, the domain of
// an e-mail address dropped ("Ada.Lovelace@corp.example" is
// "ada.lovelace"), anything else turned into '-'; "user" when nothing is
// left. taken reports names in use; a taken name gets the first free suffix
// -2, -3, ….
func UserName(claim string, taken func(string) bool) string {
	if at := strings.IndexByte(claim, '@'); at > 0 {
		claim = claim[:at]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(claim) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '.' || r == '_' || r == '-':
			if b.Len() > 0 {
				b.WriteRune(r)
			}
		default:
			if b.Len() > 0 {
				b.WriteByte('-')
			}
		}
	}
	base := strings.TrimRight(b.String(), "._-")
	if len(base) > MaxPrincipalNameLength-4 {
		base = strings.TrimRight(base[:MaxPrincipalNameLength-4], "._-")
	}
	if base == "" || ValidatePrincipalName(base) != nil || base == AnonymousName || base == AdminName {
		base = "user-" + base
		base = strings.TrimRight(base, "._-")
		if ValidatePrincipalName(base) != nil {
			base = "user"
		}
	}
	name := base
	for n := 2; taken(name); n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	return name
}

// GroupAssignments returns the group role assignments that principal p
// holds through the groups of its latest sign-in, as its own, and every
// group assignment (for refusals to name the groups that would allow). Only
// a person (PrincipalUser) has groups.
func GroupAssignments(ctx context.Context, s interface {
	FindGroupRoleAssignments(ctx context.Context) ([]GroupRoleAssignment, error)
	FindUserLinkByPrincipal(ctx context.Context, principalID string) (UserLink, error)
}, p Principal) ([]RoleAssignment, []GroupRoleAssignment, error) {
	all, err := s.FindGroupRoleAssignments(ctx)
	if err != nil || len(all) == 0 || p.Kind != PrincipalUser {
		return nil, all, err
	}
	link, err := s.FindUserLinkByPrincipal(ctx, p.ID)
	if IsCode(err, CodeNotFound) {
		return nil, all, nil
	} else if err != nil {
		return nil, nil, err
	}
	return MemberAssignments(all, link.Groups, p.ID, p.Name), all, nil
}
