package signin

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/oauth"
)

// Store is what signing people in reads and writes.
type Store interface {
	berth.PrincipalStore
	berth.IdentityProviderStore
	berth.UserLinkStore
	berth.SessionStore
	berth.DeviceAuthorizationStore
	berth.GroupRoleStore
	berth.PATStore
}

// Sealer seals what must stay secret at rest: a provider's client secret
// (sealed by the API that adds it) and the refresh tokens providers return.
// *oauth.Sealer is one.
type Sealer interface {
	Seal(plain, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// RefreshAAD binds a person's sealed provider refresh token to their
// principal.
func RefreshAAD(principalID string) []byte {
	return []byte("berth idp refresh token " + principalID)
}

// Service signs people in and keeps their sessions: the pages under /login,
// /logout and /device (Handler), the device authorization endpoint, and what
// the oauth Provider asks of people (CheckSession, GroupAssignments).
type Service struct {
	Store  Store
	RP     *RelyingParty
	Sealer Sealer
	// URL is the registry's public base URL; when empty, the URL each
	// request came to (scheme and Host).
	URL string
	// SessionLifetime bounds every session (berth.DefaultUserSessionLifetime
	// when zero).
	SessionLifetime time.Duration
	Now             func() time.Time
	Rand            io.Reader
	Logger          *slog.Logger
	Audit           berth.AuditRecorder
	// Invalidate, when set, is called after a person's groups change, so
	// that their rights follow at once (oauth.Provider.Invalidate).
	Invalidate func()
	// DeviceStarts, when set, limits the device logins started per source
	// address: each start counts, because each one writes a row for an
	// unauthenticated caller. Nil leaves the endpoint unlimited.
	DeviceStarts *oauth.Limiter
	// DeviceGuesses, when set, limits the user codes a signed-in person
	// may try at /device that match no waiting login (RFC 8628 section
	// 5.1): with it, guessing another's code is hopeless. Nil leaves the
	// page unlimited.
	DeviceGuesses *oauth.Limiter

	refreshing sync.Map // principal id → *sync.Mutex
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) rand() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return rand.Reader
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Service) audit(e berth.AuditEvent) {
	if s.Audit != nil {
		s.Audit.Record(e)
	}
}

func (s *Service) invalidate() {
	if s.Invalidate != nil {
		s.Invalidate()
	}
}

// clientSecret opens p's sealed client secret.
func (s *Service) clientSecret(p berth.IdentityProvider) (string, error) {
	if s.Sealer == nil {
		return "", berth.Errorf(berth.CodeInternal, "no key encryption key to open the client secret of identity provider %s", p.Name).
			WithHint("start berth serve with the key the secret was sealed with (BERTH_KEY_ENCRYPTION_KEY or key_encryption_key), or on SQLite with DATA/sealing-key in place")
	}
	b, err := s.Sealer.Open(p.SealedSecret, berth.IdPSecretAAD(p.ID))
	if err != nil {
		return "", berth.Errorf(berth.CodeIdPUnreachable, "the stored client secret of identity provider %s cannot be opened with the configured key encryption key", p.Name).
			WithHint("add the provider again with its secret: berth idp remove %s, then berth idp add %s --issuer %s --client-id %s --client-secret-stdin", p.Name, p.Name, p.Issuer, p.ClientID)
	}
	return string(b), nil
}

// person is a signed-in person: their principal and link.
type person struct {
	principal berth.Principal
	link      berth.UserLink
}

// signIn makes id, proven by provider p, a person: the principal linked to
// (issuer, subject), created at the first sign-in with a name derived from
// the username claim, with the groups of this sign-in. It refuses a disabled
// principal with principal_disabled.
func (s *Service) signIn(ctx context.Context, p berth.IdentityProvider, id Identity) (person, error) {
	now := s.now()
	groups, skipped := berth.GroupsOf(p.Name, id.Groups)
	if skipped > 0 {
		s.logger().WarnContext(ctx, "sign-in: groups left out, not valid group names", slog.String("idp", p.Name), slog.Int("skipped", skipped))
	}
	for attempt := 0; ; attempt++ {
		link, err := s.Store.FindUserLink(ctx, id.Issuer, id.Subject)
		switch {
		case err == nil:
			pr, err := s.Store.FindPrincipalByID(ctx, link.PrincipalID)
			if err != nil {
				return person{}, err
			}
			if pr.Disabled {
				return person{}, berth.Errorf(berth.CodePrincipalDisabled, "principal %s, which %s signs in as, is disabled", pr.Name, p.Name).
					WithHint("berth principal enable %s", pr.Name)
			}
			link.Groups, link.Refreshed = groups, now
			if err := s.sealRefresh(&link, id.RefreshToken); err != nil {
				return person{}, err
			}
			if err := s.Store.UpdateUserLink(ctx, link); err != nil {
				return person{}, err
			}
			s.invalidate()
			return person{principal: pr, link: link}, nil
		case !berth.IsCode(err, berth.CodeNotFound):
			return person{}, err
		}
		name := berth.UserName(id.Username, func(n string) bool {
			_, err := s.Store.FindPrincipalByName(ctx, n)
			return !berth.IsCode(err, berth.CodeNotFound)
		})
		pr, err := berth.NewPrincipal(s.rand(), name, berth.PrincipalUser, now)
		if err != nil {
			return person{}, err
		}
		link = berth.UserLink{PrincipalID: pr.ID, ProviderID: p.ID, Issuer: id.Issuer, Subject: id.Subject, Groups: groups, Refreshed: now}
		if err := s.sealRefresh(&link, id.RefreshToken); err != nil {
			return person{}, err
		}
		err = s.Store.CreateUser(ctx, pr, link)
		if berth.IsCode(err, berth.CodeConflict) && attempt < 3 {
			continue // another sign-in took the name, or linked the person first
		}
		if err != nil {
			return person{}, err
		}
		s.logger().InfoContext(ctx, "new person signed in", slog.String("principal", pr.Name), slog.String("idp", p.Name))
		s.invalidate()
		return person{principal: pr, link: link}, nil
	}
}

func (s *Service) sealRefresh(l *berth.UserLink, token string) error {
	if token == "" || s.Sealer == nil {
		l.SealedRefresh = nil
		return nil
	}
	b, err := s.Sealer.Seal([]byte(token), RefreshAAD(l.PrincipalID))
	if err != nil {
		return err
	}
	l.SealedRefresh = b
	return nil
}

// CheckSession returns the session id after checking that it is live: not
// ended, not expired, and its person confirmed by the provider within
// berth.UpstreamRefreshInterval, refreshing first when due. A provider that
// refuses the refresh ends every session of the person (session_ended); one
// that cannot be reached leaves them as they are, until it answers again.
func (s *Service) CheckSession(ctx context.Context, id string) (berth.UserSession, error) {
	sess, err := s.Store.FindSessionByID(ctx, id)
	if berth.IsCode(err, berth.CodeNotFound) {
		return berth.UserSession{}, berth.Errorf(berth.CodeSessionEnded, "the session this credential came from no longer exists").
			WithHint("sign in again: berth login HOST, or /login in the browser")
	} else if err != nil {
		return berth.UserSession{}, err
	}
	now := s.now()
	if err := sess.Check(now); err != nil {
		return berth.UserSession{}, err
	}
	if err := s.confirm(ctx, sess.PrincipalID, now); err != nil {
		return berth.UserSession{}, err
	}
	return sess, nil
}

// confirm refreshes the person's sign-in at the provider when due. One
// refresh per person at a time in this process: providers that rotate
// refresh tokens (Okta, Entra ID) refuse the second use of one, which must
// not read as the person being refused.
func (s *Service) confirm(ctx context.Context, principalID string, now time.Time) error {
	link, err := s.Store.FindUserLinkByPrincipal(ctx, principalID)
	if err != nil || !link.NeedsRefresh(now) || s.Sealer == nil {
		return nil // a person without a link or a refresh token keeps the groups of the sign-in
	}
	mu, _ := s.refreshing.LoadOrStore(principalID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	// Another request may have refreshed while this one waited.
	if link, err = s.Store.FindUserLinkByPrincipal(ctx, principalID); err != nil || !link.NeedsRefresh(now) {
		return nil
	}
	p, err := s.Store.FindIdentityProviderByID(ctx, link.ProviderID)
	if err != nil {
		return nil
	}
	secret, err := s.clientSecret(p)
	if err != nil {
		return nil
	}
	rt, err := s.Sealer.Open(link.SealedRefresh, RefreshAAD(principalID))
	if err != nil {
		return nil
	}
	id, err := s.RP.Refresh(ctx, p, secret, string(rt))
	switch {
	case berth.IsCode(err, berth.CodeSignInRefused) && s.refreshedElsewhere(ctx, link):
		return nil // another replica used the token first, and got the next one
	case berth.IsCode(err, berth.CodeSignInRefused):
		// The person is no longer confirmed: everything their sign-in gave
		// ends, not only the sessions. Their personal access tokens are
		// revoked (nothing would ask the provider about them again once the
		// refresh token is gone), and the groups of the last sign-in go, so
		// that no credential keeps roles the provider took away.
		n, eerr := s.Store.EndSessionsOfPrincipal(ctx, principalID, now)
		if eerr != nil {
			return eerr
		}
		revoked, eerr := s.Store.RevokePATsOf(ctx, principalID, now)
		if eerr != nil {
			return eerr
		}
		link.SealedRefresh, link.Groups = nil, nil
		_ = s.Store.UpdateUserLink(ctx, link)
		s.logger().InfoContext(ctx, "identity provider refused to refresh a sign-in: sessions ended, personal access tokens revoked", slog.String("idp", p.Name), slog.String("principal_id", principalID), slog.Int("sessions", n), slog.Int("tokens", revoked), causeAttr(err))
		s.invalidate()
		return berth.Errorf(berth.CodeSessionEnded, "identity provider %s no longer confirms this person: %s", p.Name, berth.AsError(err).Message).
			WithHint("sign in again: berth login HOST, or /login in the browser")
	case err != nil:
		s.logger().WarnContext(ctx, "refresh a sign-in at the identity provider", slog.String("idp", p.Name), slog.Any("err", err), causeAttr(err))
		return nil
	case id.Subject != link.Subject:
		return berth.Errorf(berth.CodeSessionEnded, "identity provider %s answered the refresh for another person", p.Name).
			WithHint("sign in again at /login; if it recurs, check the provider's client %s is not shared with another application", p.ClientID)
	}
	groups, _ := berth.GroupsOf(p.Name, id.Groups)
	link.Groups, link.Refreshed = groups, now
	if err := s.sealRefresh(&link, id.RefreshToken); err != nil {
		return err
	}
	if err := s.Store.UpdateUserLink(ctx, link); err != nil {
		return err
	}
	s.invalidate()
	return nil
}

// ConfirmPerson checks, for a credential of the person bound to no session
// (a personal access token), that the provider still confirms them,
// refreshing their sign-in when due as CheckSession does: session_ended
// when the provider refused, which also revoked their personal access
// tokens. A provider that issued no refresh token cannot be asked; the
// person's tokens then last their lifetime (docs/security.md).
func (s *Service) ConfirmPerson(ctx context.Context, principalID string) error {
	return s.confirm(ctx, principalID, s.now())
}

// EndSession ends the session id now; its tokens stop at their next use.
func (s *Service) EndSession(ctx context.Context, id string) error {
	return s.Store.EndSession(ctx, id, s.now())
}

// refreshedElsewhere reports whether the person's link changed since it was
// read as link: another replica refreshed with the same token meanwhile.
func (s *Service) refreshedElsewhere(ctx context.Context, link berth.UserLink) bool {
	now, err := s.Store.FindUserLinkByPrincipal(ctx, link.PrincipalID)
	return err == nil && now.Refreshed.After(link.Refreshed)
}

// SessionByCookie returns the browser session whose cookie value is value,
// after CheckSession; session_ended when none is, or it is not live.
func (s *Service) SessionByCookie(ctx context.Context, value string) (berth.UserSession, error) {
	hash := berth.SessionValueHash(value)
	if hash == "" {
		return berth.UserSession{}, berth.Errorf(berth.CodeSessionEnded, "the session cookie is not one berth set").
			WithHint("sign in again at /login")
	}
	sess, err := s.Store.FindSessionByHash(ctx, hash)
	if berth.IsCode(err, berth.CodeNotFound) {
		return berth.UserSession{}, berth.Errorf(berth.CodeSessionEnded, "no session has this cookie; it ended and was removed").
			WithHint("sign in again at /login")
	} else if err != nil {
		return berth.UserSession{}, err
	}
	return s.CheckSession(ctx, sess.ID)
}

// GroupAssignments returns the group role assignments that principal p holds
// through its groups, as its own, and every group assignment (for refusals
// to name the groups that would allow).
func (s *Service) GroupAssignments(ctx context.Context, p berth.Principal) ([]berth.RoleAssignment, []berth.GroupRoleAssignment, error) {
	return berth.GroupAssignments(ctx, s.Store, p)
}

// causeAttr is the provider's own words behind err (its private "cause",
// credentials already redacted), for the log line of a refresh: no audit
// event carries it there.
func causeAttr(err error) slog.Attr {
	if e := berth.AsError(err); e != nil && e.Private["cause"] != "" {
		return slog.String("cause", e.Private["cause"])
	}
	return slog.Attr{}
}
