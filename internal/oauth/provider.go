package oauth

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth"
)

// StateTTL bounds how long the Provider trusts its cached view of a principal
// (enabled, secrets, role assignments) when no change was made through it. A
// change made through this process takes effect on the next request; one made
// by another process within StateTTL.
const StateTTL = time.Second

// Store is what the Provider reads and writes.
type Store interface {
	berth.IdentityStore
	berth.RoleStore
	berth.RefreshTokenStore
	berth.PipelineStore
	berth.ConnectionStore
	berth.AssertionStore
}

// Provider is the identity provider at run time. It authenticates client
// credentials, refresh tokens and access tokens, always against the current
// state of their principal, and decides what a caller may do. The token
// endpoint, the /v2/ guard and the management API share one Provider.
type Provider struct {
	Store   Store
	Hasher  *berth.SecretHasher
	Keys    *Keyring
	Refresh *RefreshTokens
	// Addrs limits failed attempts per source address, Clients per principal
	// and source address (see AuthenticateClient).
	Clients, Addrs *Limiter
	// Bearers limits the bearer tokens per source address that fail their
	// verification (see authenticateBearer), in this process only; nil
	// limits none. It is apart from Addrs so that forged tokens cannot lock
	// an address out of the token endpoint.
	Bearers *Limiter
	Now     func() time.Time
	// TokenLifetime is the access token lifetime
	// (berth.DefaultAccessTokenLifetime when zero).
	TokenLifetime time.Duration
	// Service is the audience of access tokens: the Docker "service".
	Service string
	// URL is the registry's public base URL; when empty, challenges name the
	// host the request came to.
	URL    string
	Logger *slog.Logger
	// Federation verifies the CI ID tokens of Exchange; without it, Exchange
	// refuses every token.
	Federation *Federation
	// SessionLifetime is how long the refresh token of a federated login
	// lasts (berth.DefaultSessionLifetime when zero).
	SessionLifetime time.Duration
	// Repositories, when set, lets a refused pull of a repository that does
	// not exist name the closest existing ones (unknownrepo.go).
	Repositories RepositoryLister
	// People, when set, lets people sign in (package signin): their
	// sessions, device logins and the roles of their groups. Without it,
	// credentials bound to a session are refused with session_ended.
	People People
	// CacheNamespace, when set, reports whether repo lies in the namespace
	// of a pull-through cache, which nothing may be pushed to
	// (cache_read_only): tokens never carry push there, whatever the roles.
	// When it cannot tell, a token that would carry push is not issued.
	CacheNamespace func(ctx context.Context, repo string) (bool, error)

	mu      sync.Mutex
	gen     uint64
	states  map[string]*principalState
	conns   map[string]*stored[berth.Connection]
	pipes   map[string]*stored[berth.Pipeline]
	touched map[string]time.Time // secret id → last use recorded
}

// People is what the Provider asks of people who sign in through an
// identity provider; package signin's Service is the one implementation.
type People interface {
	// CheckSession returns the session id while it is live (not ended, not
	// expired, its person still confirmed by the provider), or
	// session_ended.
	CheckSession(ctx context.Context, id string) (berth.UserSession, error)
	// ConfirmPerson checks, for a credential bound to no session (a
	// personal access token), that the provider still confirms the person;
	// session_ended when it refused.
	ConfirmPerson(ctx context.Context, principalID string) error
	// SessionByCookie returns the live browser session of a cookie value,
	// or session_ended.
	SessionByCookie(ctx context.Context, value string) (berth.UserSession, error)
	// GroupAssignments returns the group assignments principal p holds
	// through its groups, as its own, and every group assignment.
	GroupAssignments(ctx context.Context, p berth.Principal) ([]berth.RoleAssignment, []berth.GroupRoleAssignment, error)
	// EndSession ends the session id (berth logout of a person's login).
	EndSession(ctx context.Context, id string) error
	// RedeemDeviceCode answers one poll of a device code: the session an
	// approved login is bound to, or device_code_pending,
	// device_code_expired, device_code_denied.
	RedeemDeviceCode(ctx context.Context, value string) (berth.UserSession, error)
}

// stored is the cached view of one record (a service connection, a
// pipeline); found is false when it does not exist.
type stored[T any] struct {
	loaded time.Time
	found  bool
	v      T
}

// principalState is the cached view of one principal.
type principalState struct {
	gen       uint64
	loaded    time.Time
	principal berth.Principal
	secrets   []berth.Secret
	access    *berth.AccessIndex
	// groups is every group assignment, for refusals of a person to name
	// the groups that would allow; nil for other principals.
	groups []berth.GroupRoleAssignment
}

// Invalidate drops every cached principal, connection and pipeline state:
// call it after any change to principals, secrets, role assignments, service
// connections or pipelines, so the change counts on the next request.
func (p *Provider) Invalidate() {
	p.mu.Lock()
	p.gen++
	p.states = nil
	p.conns = nil
	p.pipes = nil
	p.mu.Unlock()
}

// connection returns the current view of the service connection with id, or
// not_found, cached for StateTTL like principal states.
func (p *Provider) connection(ctx context.Context, id string) (berth.Connection, error) {
	return cachedFind(ctx, p, &p.conns, id, p.Store.FindConnectionByID, "service connection")
}

// pipeline returns the current view of the pipeline with id, or not_found,
// cached like connections: every access token of a federated login asks it.
func (p *Provider) pipeline(ctx context.Context, id string) (berth.Pipeline, error) {
	return cachedFind(ctx, p, &p.pipes, id, p.Store.FindPipelineByID, "pipeline")
}

// cachedFind returns the record with id from *cache while it is younger
// than StateTTL, and otherwise from find, keeping the answer (found or
// not_found) unless Invalidate ran meanwhile. what names the record in a
// not_found.
func cachedFind[T any](ctx context.Context, p *Provider, cache *map[string]*stored[T], id string, find func(context.Context, string) (T, error), what string) (T, error) {
	now := time.Now()
	p.mu.Lock()
	gen := p.gen
	if e, ok := (*cache)[id]; ok && now.Sub(e.loaded) < StateTTL {
		p.mu.Unlock()
		if !e.found {
			var zero T
			return zero, berth.Errorf(berth.CodeNotFound, "no %s has the id %s", what, id)
		}
		return e.v, nil
	}
	p.mu.Unlock()
	v, err := find(ctx, id)
	if err != nil && !berth.IsCode(err, berth.CodeNotFound) {
		return v, err
	}
	e := &stored[T]{loaded: now, found: err == nil, v: v}
	p.mu.Lock()
	if p.gen == gen {
		if *cache == nil || len(*cache) > 100_000 {
			*cache = map[string]*stored[T]{}
		}
		(*cache)[id] = e
	}
	p.mu.Unlock()
	return v, err
}

// liveConnection returns the service connection with id after checking that
// it exists (connection_unknown) and is enabled (connection_disabled): the
// rule for every credential issued through one.
func (p *Provider) liveConnection(ctx context.Context, id string) (berth.Connection, error) {
	c, err := p.connection(ctx, id)
	switch {
	case berth.IsCode(err, berth.CodeNotFound):
		return berth.Connection{}, berth.Errorf(berth.CodeConnectionUnknown, "the service connection this token was issued through was deleted").
			WithHint("log in again through an existing connection: berth connection list shows them")
	case err != nil:
		return berth.Connection{}, err
	case c.Disabled:
		return berth.Connection{}, berth.Errorf(berth.CodeConnectionDisabled, "service connection %s, which this token was issued through, is disabled", c.Name).
			WithHint("berth connection enable %s", c.Name).WithDetail("connection", c.Name)
	}
	return c, nil
}

// state returns the current view of the principal with id, or not_found.
func (p *Provider) state(ctx context.Context, id string) (*principalState, error) {
	now := time.Now()
	p.mu.Lock()
	gen := p.gen
	if st, ok := p.states[id]; ok && now.Sub(st.loaded) < StateTTL {
		p.mu.Unlock()
		return st, nil
	}
	p.mu.Unlock()

	pr, err := p.Store.FindPrincipalByID(ctx, id)
	if err != nil {
		return nil, err
	}
	secrets, err := p.Store.FindSecrets(ctx, id)
	if err != nil {
		return nil, err
	}
	assignments, err := p.Store.FindRoleAssignments(ctx, berth.RoleAssignmentFilter{PrincipalID: id})
	if err != nil {
		return nil, err
	}
	var groups []berth.GroupRoleAssignment
	if p.People != nil && pr.Kind == berth.PrincipalUser {
		var member []berth.RoleAssignment
		if member, groups, err = p.People.GroupAssignments(ctx, pr); err != nil {
			return nil, err
		}
		assignments = append(assignments, member...)
	}
	actor := berth.Actor{ID: pr.ID, Name: pr.Name}
	st := &principalState{gen: gen, loaded: now, principal: pr, secrets: secrets, access: berth.NewAccessIndex(actor, assignments), groups: groups}
	p.mu.Lock()
	if p.gen == gen {
		if p.states == nil {
			p.states = map[string]*principalState{}
		}
		if len(p.states) > 100_000 {
			clear(p.states)
		}
		p.states[id] = st
	}
	p.mu.Unlock()
	return st, nil
}

// anonymous returns the state of the anonymous principal, or nil when the
// registry has none (then nothing is public).
func (p *Provider) anonymous(ctx context.Context) (*principalState, error) {
	p.mu.Lock()
	id := ""
	for k, st := range p.states {
		if st.principal.Name == berth.AnonymousName {
			id = k
		}
	}
	p.mu.Unlock()
	if id == "" {
		pr, err := p.Store.FindPrincipalByName(ctx, berth.AnonymousName)
		if berth.IsCode(err, berth.CodeNotFound) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		id = pr.ID
	}
	return p.state(ctx, id)
}

// callerOf returns the caller a principal state acts as.
func callerOf(st *principalState, credentialID string, token *berth.AccessClaims) *berth.Caller {
	pr := st.principal
	c := &berth.Caller{Actor: berth.Actor{ID: pr.ID, Name: pr.Name}, CredentialID: credentialID, Token: token}
	if pr.Name != berth.AnonymousName {
		c.Principal = &pr
	}
	return c
}

// AuthenticateClient checks a client id (or principal name) and secret from
// source, a host address, and returns the caller they prove.
//
// Failures count against source, and against the principal from source:
// past either limit it answers too_many_attempts without looking at the
// secret. The principal itself is never locked: a stranger failing from
// another address does not stop its correct secret from a clean one. The
// principal is keyed by its id, however the client named it (client id in
// any case, or name). An unknown principal name is refused as a wrong secret
// is (RefuseUnknownClient).
func (p *Provider) AuthenticateClient(ctx context.Context, user, secret, source string) (*berth.Caller, error) {
	now := p.Now()
	if ok, wait := p.Addrs.Allow(source); !ok {
		return nil, TooManyAttempts("address "+source, wait)
	}
	if strings.HasPrefix(secret, berth.PATPrefix) {
		c, err := p.authenticatePAT(ctx, user, secret, now)
		if berth.AsError(err) != nil {
			p.Addrs.Fail(source)
		}
		return c, err
	}
	pr, err := berth.FindClient(ctx, p.Store, user)
	if err != nil {
		if berth.AsError(err) != nil {
			p.Addrs.Fail(source)
			err = berth.RefuseUnknownClient(p.Hasher, user, secret, err)
		}
		return nil, err
	}
	key := pr.ID + " " + source
	if ok, wait := p.Clients.Allow(key); !ok {
		return nil, TooManyAttempts("this client from address "+source, wait)
	}
	st, err := p.state(ctx, pr.ID)
	if err != nil {
		return nil, err
	}
	s, err := berth.AuthenticateSecret(now, p.Hasher, st.principal, st.secrets, secret)
	if err != nil {
		if berth.AsError(err) != nil {
			p.Addrs.Fail(source)
			p.Clients.Fail(key)
		}
		return nil, err
	}
	p.Clients.Succeed(key)
	p.touch(ctx, s, now)
	berth.Authenticated(ctx)
	return callerOf(st, s.ID, nil), nil
}

// authenticatePAT checks a personal access token sent as the password with
// user, the principal's name or client id, and returns the caller it acts
// as: the principal, limited to the token's scopes (Caller.Limit). A value
// that is no token, or another principal's, is secret_invalid; a revoked or
// expired one secret_revoked or secret_expired, naming its hint.
func (p *Provider) authenticatePAT(ctx context.Context, user, value string, now time.Time) (*berth.Caller, error) {
	invalid := berth.Errorf(berth.CodeSecretInvalid, "the personal access token is not one of %s's", user).
		WithHint("berth token list shows your tokens' hints; berth token create --scope SCOPE makes a new one")
	if p.People == nil || !berth.IsPATValue(value) {
		if !berth.IsPATValue(value) {
			invalid.Message = "the personal access token was mistyped or truncated: its checksum does not match"
		}
		return nil, invalid
	}
	store, ok := p.Store.(berth.PATStore)
	if !ok {
		return nil, invalid
	}
	t, err := store.FindPATByHash(ctx, berth.PATHash(value))
	if berth.IsCode(err, berth.CodeNotFound) {
		return nil, invalid
	} else if err != nil {
		return nil, err
	}
	pr, err := berth.FindClient(ctx, p.Store, user)
	if err != nil || pr.ID != t.PrincipalID {
		return nil, invalid
	}
	st, err := p.live(ctx, t.PrincipalID, t.CredentialID(), berth.CodeSecretInvalid)
	if err != nil {
		return nil, err
	}
	if t.LastUsed == nil || now.Sub(*t.LastUsed) >= berth.SecretTouchInterval {
		if err := store.TouchPAT(ctx, t.ID, now); err != nil && p.Logger != nil {
			p.Logger.WarnContext(ctx, "record personal access token use", slog.String("token_id", t.ID), slog.Any("err", err))
		}
	}
	berth.Authenticated(ctx)
	c := callerOf(st, t.CredentialID(), nil)
	// Never nil: a nil Limit means no limit, and a token whose scopes
	// were lost (a damaged row) must allow nothing, not everything.
	c.Limit = append([]berth.ResourceActions{}, t.Scopes...)
	return c, nil
}

// AuthenticateBasic checks the user name and password of Basic credentials or
// of the password grant: a client id (or principal name) and client secret
// (AuthenticateClient), or, when user is berth.IdentityTokenUser or
// berth.NullClientID, a refresh token (RedeemRefreshToken).
func (p *Provider) AuthenticateBasic(ctx context.Context, user, secret, source string) (*berth.Caller, error) {
	if berth.RefreshTokenUser(user) {
		return p.authenticateRefreshToken(ctx, user, secret, source)
	}
	return p.AuthenticateClient(ctx, user, secret, source)
}

// touch records a use of s, at most once per berth.SecretTouchInterval even
// while the cached state still shows the previous use.
func (p *Provider) touch(ctx context.Context, s berth.Secret, now time.Time) {
	p.mu.Lock()
	if last, ok := p.touched[s.ID]; ok && now.Sub(last) < berth.SecretTouchInterval || !s.NeedsTouch(now) {
		p.mu.Unlock()
		return
	}
	if p.touched == nil || len(p.touched) > 100_000 {
		p.touched = map[string]time.Time{}
	}
	p.touched[s.ID] = now
	p.mu.Unlock()
	if err := p.Store.TouchSecret(ctx, s.ID, now); err != nil && p.Logger != nil {
		p.Logger.WarnContext(ctx, "record secret use", slog.String("secret_id", s.ID), slog.Any("err", err))
	}
}

// AuthenticateToken verifies an access token and checks that its principal is
// still enabled and the credential it came from still live.
func (p *Provider) AuthenticateToken(ctx context.Context, token string) (*berth.Caller, error) {
	claims, err := p.Keys.Verify(token, p.Now())
	if err != nil {
		return nil, err
	}
	if claims.Subject == berth.AnonymousName {
		return &berth.Caller{Actor: berth.Actor{Name: berth.AnonymousName}, Token: &claims}, nil
	}
	st, err := p.live(ctx, claims.Subject, claims.CredentialID, berth.CodeTokenInvalid)
	if err != nil {
		return nil, err
	}
	if err := p.stillPermitted(ctx, claims); err != nil {
		return nil, err
	}
	c := callerOf(st, claims.CredentialID, &claims)
	c.Connection, c.Pipeline, c.PipelineID, c.Run = claims.Connection, claims.Pipeline, claims.PipelineID, claims.Run
	berth.Authenticated(ctx)
	return c, nil
}

// stillPermitted refuses claims that came through a federated login whose
// pipeline may no longer use the connection: deleted (pipeline_unknown),
// no longer permitted (pipeline_not_authorized), or the connection since
// turned into one that takes a client secret (invalid). Such a change stops
// the login's access tokens at once, not when they expire, as it stops its
// refresh token. Connections and pipelines are cached like principals.
func (p *Provider) stillPermitted(ctx context.Context, claims berth.AccessClaims) error {
	connID, ok := berth.ConnectionIDOf(claims.CredentialID)
	if !ok || claims.PipelineID == "" {
		return nil
	}
	conn, err := p.liveConnection(ctx, connID)
	if err != nil {
		return err
	}
	pl, err := p.loginPipeline(ctx, conn, claims.PipelineID)
	if err != nil {
		return err
	}
	err = conn.Usable(pl)
	if berth.IsCode(err, berth.CodePipelineNotAuthorized) {
		err = berth.Errorf(berth.CodePipelineNotAuthorized, "pipeline %s is no longer permitted to use service connection %s", pl.Name, conn.Name).
			WithHint("berth connection permit %s --pipeline %s", conn.Name, pl.Name).
			WithDetail("connection", conn.Name).WithDetail("pipeline", pl.Name)
	}
	return withUse(err, pl.Name, claims.Run)
}

// loginPipeline returns the pipeline with id that a federated login through
// conn came from, or pipeline_unknown when it was deleted since.
func (p *Provider) loginPipeline(ctx context.Context, conn berth.Connection, id string) (berth.Pipeline, error) {
	pl, err := p.pipeline(ctx, id)
	if berth.IsCode(err, berth.CodeNotFound) {
		return pl, berth.Errorf(berth.CodePipelineUnknown, "the pipeline this login through service connection %s came from was deleted", conn.Name).
			WithHint("register the pipeline again (berth pipeline create), then log in again: berth login HOST --connection %s", conn.Name).
			WithDetail("connection", conn.Name)
	}
	return pl, err
}

// RedeemRefreshToken checks a refresh token from source and returns the caller
// it acts as; its principal must be enabled and its credential live.
func (p *Provider) RedeemRefreshToken(ctx context.Context, value, source string) (*berth.Caller, error) {
	if ok, wait := p.Addrs.Allow(source); !ok {
		return nil, TooManyAttempts("address "+source, wait)
	}
	t, err := p.Refresh.Redeem(ctx, value, p.Now())
	if err != nil {
		if berth.AsError(err) != nil {
			p.Addrs.Fail(source)
		}
		return nil, err
	}
	st, err := p.live(ctx, t.PrincipalID, t.CredentialID, berth.CodeRefreshTokenInvalid)
	if err != nil {
		return nil, err
	}
	c := callerOf(st, t.CredentialID, nil)
	if connID, ok := berth.ConnectionIDOf(t.CredentialID); ok {
		if err := p.restoreSession(ctx, c, connID, t); err != nil {
			return nil, err
		}
	}
	berth.Authenticated(ctx)
	return c, nil
}

// restoreSession names on c the connection, pipeline and run of the
// federated login t, after checking that its pipeline still exists
// (pipeline_unknown) and is still permitted on the connection
// (pipeline_not_authorized, recorded as a permission request).
func (p *Provider) restoreSession(ctx context.Context, c *berth.Caller, connID string, t berth.RefreshToken) error {
	conn, err := p.liveConnection(ctx, connID)
	if err != nil {
		return err
	}
	c.Connection, c.Run = conn.Name, t.Run
	if t.PipelineID == "" {
		return nil
	}
	pl, err := p.loginPipeline(ctx, conn, t.PipelineID)
	if err != nil {
		return err
	}
	if err := conn.Usable(pl); err != nil {
		return p.refuseUse(ctx, conn, pl, t.Run, err)
	}
	c.Pipeline, c.PipelineID = pl.Name, pl.ID
	return nil
}

// refuseUse returns err, the refusal of pipeline pl on conn, with the
// pipeline and run in its detail; for pipeline_not_authorized it first
// records the permission request that berth connection requests lists.
func (p *Provider) refuseUse(ctx context.Context, conn berth.Connection, pl berth.Pipeline, run string, err error) error {
	if berth.IsCode(err, berth.CodePipelineNotAuthorized) {
		r := berth.PermissionRequest{ConnectionID: conn.ID, PipelineID: pl.ID, Last: p.Now(), Run: run}
		if rerr := p.Store.RecordPermissionRequest(ctx, r); rerr != nil && p.Logger != nil {
			p.Logger.WarnContext(ctx, "record permission request", slog.String("connection", conn.Name),
				slog.String("pipeline", pl.Name), slog.Any("err", rerr))
		}
	}
	return withUse(err, pl.Name, run)
}

// withUse adds the pipeline and CI run to the detail of a refusal, for the
// audit log.
func withUse(err error, pipeline, run string) error {
	if e := berth.AsError(err); e != nil {
		e.WithDetail("pipeline", pipeline)
		if run != "" {
			e.WithDetail("ci_run", run)
		}
	}
	return err
}

// Exchange checks a CI job's ID token, sent from source, for a login through
// the service connection named connectionName (or, when it is "", the only
// one that permits the matched pipeline), and returns the caller it
// acts as: the connection's principal, with CredentialID the connection's
// and Connection, Pipeline and Run naming the connection, the pipeline the
// token matched and the CI run.
//
// It refuses with assertion_invalid or assertion_expired (Federation.Verify),
// pipeline_unknown or audience_mismatch (berth.MatchPipeline, with Service the
// audience of pipelines registered without one), connection_unknown,
// connection_disabled, pipeline_not_authorized (after recording the
// permission request), the principal's principal_disabled, or
// assertion_replayed when the token was exchanged before. Failures are
// counted per source address, as for AuthenticateClient.
func (p *Provider) Exchange(ctx context.Context, assertion, connectionName, source string) (*berth.Caller, error) {
	return p.exchangeFrom(ctx, assertion, connectionName, source, false)
}

// ExchangeAccessToken is Exchange for the ACR-shaped endpoint
// (ExchangePath), where an Entra access token may come again: one that
// matched an Entra pipeline (berth.AssertionReusable) is accepted again
// from the address that first exchanged it, for as long as it is
// remembered, as az acr login sends the token the Azure CLI cached once per
// pipeline step. From any other address, and for every other token, a
// second exchange is assertion_replayed.
func (p *Provider) ExchangeAccessToken(ctx context.Context, assertion, connectionName, source string) (*berth.Caller, error) {
	return p.exchangeFrom(ctx, assertion, connectionName, source, true)
}

func (p *Provider) exchangeFrom(ctx context.Context, assertion, connectionName, source string, reusable bool) (*berth.Caller, error) {
	if ok, wait := p.Addrs.Allow(source); !ok {
		return nil, TooManyAttempts("address "+source, wait)
	}
	reuseFrom := ""
	if reusable {
		reuseFrom = source
	}
	c, err := p.exchange(ctx, assertion, connectionName, reuseFrom)
	if berth.AsError(err) != nil {
		p.Addrs.Fail(source)
	} else if err == nil {
		berth.Authenticated(ctx)
	}
	return c, err
}

// exchange is Exchange; reuseFrom, when set, is the source address from
// which an Entra access token may be exchanged again (ExchangeAccessToken).
func (p *Provider) exchange(ctx context.Context, assertion, connectionName, reuseFrom string) (caller *berth.Caller, err error) {
	if p.Federation == nil {
		return nil, berth.Errorf(berth.CodeUnsupported, "this registry is not set up to accept CI ID tokens").
			WithHint("log in with a client id and secret, or ask the registry's operator to enable federation")
	}
	pipelinesOf := func(ctx context.Context, issuer string) ([]berth.Pipeline, error) {
		return p.Store.FindPipelines(ctx, berth.PipelineFilter{Issuer: issuer})
	}
	// Only the pipelines whose keys verified the token may match it.
	a, candidates, err := p.Federation.Verify(ctx, assertion, pipelinesOf)
	if err != nil {
		return nil, err
	}
	pl, err := berth.MatchPipeline(candidates, a, p.Service)
	if err != nil {
		return nil, err
	}
	run, runURL := a.Run(), a.RunURL()
	if runURL != "" {
		// Every refusal from here on names the run's page too, for the
		// connection's history.
		defer func() {
			if e := berth.AsError(err); e != nil {
				e.WithDetail("ci_run_url", runURL)
			}
		}()
	}
	conn, err := p.connectionFor(ctx, pl, connectionName, run)
	if err != nil {
		return nil, err
	}
	if err := conn.Usable(pl); err != nil {
		return nil, p.refuseUse(ctx, conn, pl, run, err)
	}
	st, err := p.live(ctx, conn.PrincipalID, conn.CredentialID(), berth.CodeConnectionUnknown)
	if err != nil {
		return nil, withUse(err, pl.Name, run)
	}
	// Last, once everything else would let it in: one ID token, one session.
	// A refused exchange does not use the token up.
	now := p.Now()
	until := berth.AssertionRememberedUntil(a, now)
	first, err := p.Store.RememberAssertion(ctx, berth.AssertionKey(assertion), until, now)
	if err != nil {
		return nil, err
	}
	reusable := reuseFrom != "" && berth.AssertionReusable(pl)
	switch {
	case first && reusable:
		// Remember where it came from, for its holder's next exchange.
		if _, err := p.Store.RememberAssertion(ctx, berth.AssertionSourceKey(assertion, reuseFrom), until, now); err != nil {
			return nil, err
		}
	case !first && reusable:
		same, err := p.Store.AssertionRemembered(ctx, berth.AssertionSourceKey(assertion, reuseFrom), now)
		if err != nil {
			return nil, err
		}
		if !same {
			return nil, withUse(berth.AssertionReplayedElsewhere(a, reuseFrom), pl.Name, run)
		}
	case !first:
		return nil, withUse(berth.AssertionReplayed(a), pl.Name, run)
	}
	c := callerOf(st, conn.CredentialID(), nil)
	c.Connection, c.Pipeline, c.PipelineID, c.Run, c.RunURL = conn.Name, pl.Name, pl.ID, run, runURL
	return c, nil
}

// live returns the state of principal id after checking that it is enabled and
// that credentialID, when it names one of its secrets, is neither removed nor
// expired, and when it names a service connection, that the connection exists
// and is enabled. A principal that no longer exists yields gone.
func (p *Provider) live(ctx context.Context, id, credentialID string, gone berth.Code) (*principalState, error) {
	st, err := p.state(ctx, id)
	if berth.IsCode(err, berth.CodeNotFound) {
		return nil, berth.Errorf(gone, "the principal this token was issued to no longer exists").
			WithHint("authenticate again with a current principal's client id and secret")
	} else if err != nil {
		return nil, err
	}
	pr := st.principal
	if pr.Disabled {
		return nil, berth.Errorf(berth.CodePrincipalDisabled, "principal %s is disabled", pr.Name).
			WithHint("berth principal enable %s", pr.Name)
	}
	now := p.Now()
	for _, s := range st.secrets {
		if s.ID != credentialID {
			continue
		}
		if s.Revoked != nil {
			return nil, berth.Errorf(berth.CodeSecretRevoked, "the secret '%s…' this token came from was removed on %s", s.Hint, s.Revoked.UTC().Format(time.RFC3339)).
				WithHint("log in again with another secret of %s: berth login HOST --client-id %s --client-secret-stdin (an owner sees its secrets with berth secret list %s; with no owner left, berth admin recover on the server)", pr.Name, pr.Name, pr.Name).
				WithDetail("secret_id", s.ID)
		}
		if !now.Before(s.Expires) {
			return nil, berth.Errorf(berth.CodeSecretExpired, "the secret '%s…' this token came from expired on %s", s.Hint, s.Expires.UTC().Format(time.RFC3339)).
				WithHint("berth secret add %s --expires-in 90d, then berth login HOST --client-id %s --client-secret-stdin with it (with no owner left, berth admin recover on the server)", pr.Name, pr.Name).
				WithDetail("secret_id", s.ID)
		}
	}
	if connID, ok := berth.ConnectionIDOf(credentialID); ok {
		if _, err := p.liveConnection(ctx, connID); err != nil {
			return nil, err
		}
	}
	if patID, ok := berth.PATIDOf(credentialID); ok {
		store, ok := p.Store.(berth.PATStore)
		if !ok {
			return nil, berth.Errorf(gone, "this registry keeps no personal access tokens")
		}
		t, err := store.FindPATByID(ctx, patID)
		if berth.IsCode(err, berth.CodeNotFound) {
			return nil, berth.Errorf(berth.CodeSecretRevoked, "the personal access token this credential came from no longer exists").
				WithHint("berth token create --scope SCOPE makes a new one")
		} else if err != nil {
			return nil, err
		}
		if err := t.Check(now); err != nil {
			return nil, err
		}
		if p.People != nil {
			if err := p.People.ConfirmPerson(ctx, id); err != nil {
				return nil, err
			}
		}
	}
	if sessionID, ok := berth.SessionIDOf(credentialID); ok {
		if p.People == nil {
			return nil, berth.Errorf(berth.CodeSessionEnded, "this registry no longer signs people in, so the session of this credential has ended").
				WithHint("log in with a client secret: berth login HOST --client-id ID --client-secret-stdin")
		}
		sess, err := p.People.CheckSession(ctx, sessionID)
		if err != nil {
			return nil, err
		}
		// A session signed in with a client secret ends with the secret.
		if cred, ok := berth.SignInCredentialOf(sess.ProviderID); ok && !strings.HasPrefix(cred, berth.SessionCredentialPrefix) {
			if _, err := p.live(ctx, id, cred, gone); err != nil {
				return nil, err
			}
		}
	}
	return st, nil
}

// AuthenticateSession returns the caller a browser session's cookie value
// acts as, by the rules of every other credential: the session must be live
// (session_ended) and its principal enabled (principal_disabled). The web
// console and the sign-in pages resolve their requests with it.
func (p *Provider) AuthenticateSession(ctx context.Context, value string) (*berth.Caller, error) {
	if p.People == nil {
		return nil, berth.Errorf(berth.CodeSessionEnded, "this registry does not sign people in").
			WithHint("berth idp add NAME --issuer URL --client-id ID --client-secret-stdin")
	}
	s, err := p.People.SessionByCookie(ctx, value)
	if err != nil {
		return nil, err
	}
	cred := berth.SessionCredentialID(s.ID)
	st, err := p.live(ctx, s.PrincipalID, cred, berth.CodeSessionEnded)
	if err != nil {
		return nil, err
	}
	berth.Authenticated(ctx)
	return callerOf(st, cred, nil), nil
}

// RedeemDeviceCode answers a poll of the token endpoint with a device code
// (RFC 8628 section 3.4): once the person approved, the caller acting as
// them through the session the login is bound to. Unknown codes count as
// failed attempts of source; polls of a pending login do not.
func (p *Provider) RedeemDeviceCode(ctx context.Context, value, source string) (*berth.Caller, error) {
	if p.People == nil {
		return nil, berth.Errorf(berth.CodeUnsupported, "this registry does not sign people in, so it has no device login").
			WithHint("log in with a client secret: berth login HOST --client-id ID --client-secret-stdin")
	}
	if ok, wait := p.Addrs.Allow(source); !ok {
		return nil, TooManyAttempts("address "+source, wait)
	}
	s, err := p.People.RedeemDeviceCode(ctx, value)
	if err != nil {
		if berth.IsCode(err, berth.CodeDeviceCodeExpired) {
			p.Addrs.Fail(source)
		}
		return nil, err
	}
	cred := berth.SessionCredentialID(s.ID)
	st, err := p.live(ctx, s.PrincipalID, cred, berth.CodeSessionEnded)
	if err != nil {
		return nil, err
	}
	berth.Authenticated(ctx)
	return callerOf(st, cred, nil), nil
}

// access returns the access index deciding for caller (the anonymous
// principal's for the anonymous caller; nil when there is none).
func (p *Provider) access(ctx context.Context, c *berth.Caller) (*berth.AccessIndex, error) {
	var st *principalState
	var err error
	if c.Anonymous() {
		st, err = p.anonymous(ctx)
	} else {
		st, err = p.state(ctx, c.Actor.ID)
	}
	if err != nil || st == nil {
		return nil, err
	}
	return st.access, nil
}

// Grant returns what a token for caller may carry of what was requested: the
// intersection with what its roles permit now, as the Docker token spec asks,
// without push on a cache namespace. Resources nothing is granted on are
// left out.
func (p *Provider) Grant(ctx context.Context, c *berth.Caller, requested []berth.ResourceActions) ([]berth.ResourceActions, error) {
	idx, err := p.access(ctx, c)
	if err != nil || idx == nil {
		return nil, err
	}
	var granted []berth.ResourceActions
	for _, ra := range requested {
		if c.Limit != nil {
			ra.Actions = limitActions(c.Limit, ra)
		}
		acts := idx.DockerActions(ra.Type, ra.Name, ra.Actions)
		if ra.Type == berth.ResourceRepository && slices.ContainsFunc(acts, berth.CacheRefusesDocker) && p.CacheNamespace != nil {
			cached, err := p.CacheNamespace(ctx, ra.Name)
			if err != nil {
				// Push is not granted where a cache may refuse it.
				return nil, fmt.Errorf("tell whether %s is a cache namespace: %w", ra.Name, err)
			}
			if cached {
				acts = slices.DeleteFunc(acts, berth.CacheRefusesDocker)
			}
		}
		if len(acts) > 0 {
			granted = append(granted, berth.ResourceActions{Type: ra.Type, Class: ra.Class, Name: ra.Name, Actions: acts})
		}
	}
	return granted, nil
}

// limitActions returns the actions of ra that limit allows on its resource
// ("*" in limit allows every one; "*" asked is expanded first).
func limitActions(limit []berth.ResourceActions, ra berth.ResourceActions) []string {
	asked := ra.Actions
	if slices.Contains(asked, berth.DockerActionAll) && ra.Type == berth.ResourceRepository {
		asked = []string{berth.DockerActionPull, berth.DockerActionPush, berth.DockerActionDelete}
	}
	lim := berth.AccessClaims{Access: limit}
	var out []string
	for _, a := range asked {
		if lim.Allows(ra.Type, ra.Name, a) {
			out = append(out, a)
		}
	}
	return out
}

// IssueAccessToken signs an access token for caller carrying granted.
func (p *Provider) IssueAccessToken(c *berth.Caller, granted []berth.ResourceActions) (string, berth.AccessClaims, error) {
	now := p.Now()
	lifetime := p.TokenLifetime
	if lifetime <= 0 {
		lifetime = berth.DefaultAccessTokenLifetime
	}
	subject := c.Actor.ID
	if c.Anonymous() {
		subject = berth.AnonymousName // never a principal id, which is a UUID
	}
	claims := berth.AccessClaims{
		Audience: p.Service, Subject: subject, Name: c.Actor.Name, CredentialID: c.CredentialID,
		Connection: c.Connection, Pipeline: c.Pipeline, PipelineID: c.PipelineID, Run: c.Run,
		Access: granted, IssuedAt: now, Expires: now.Add(lifetime),
	}
	if c.Principal != nil {
		claims.ClientID = c.Principal.ClientID
	}
	token, err := p.Keys.Sign(claims)
	if err != nil {
		return "", berth.AccessClaims{}, err
	}
	return token, claims, nil
}

// IssueRefreshToken issues a refresh token bound to the caller's credential
// and returns it with its expiry, no later than the secret it came from. For
// a federated caller it is the session of the login: bound to the connection,
// the pipeline and the run, it expires after SessionLifetime.
func (p *Provider) IssueRefreshToken(ctx context.Context, c *berth.Caller) (berth.RefreshTokenValue, time.Time, error) {
	if c.Anonymous() {
		return berth.RefreshTokenValue{}, time.Time{}, berth.Errorf(berth.CodeCredentialsMissing, "a refresh token needs client credentials").
			WithHint("send the client id and secret with Basic authentication")
	}
	st, err := p.state(ctx, c.Actor.ID)
	if err != nil {
		return berth.RefreshTokenValue{}, time.Time{}, err
	}
	now := p.Now()
	if _, ok := berth.PATIDOf(c.CredentialID); ok {
		// A token is used as it is: a refresh token would outlive its
		// revocation's reach into the token's scopes.
		return berth.RefreshTokenValue{}, time.Time{}, nil
	}
	if _, ok := berth.ConnectionIDOf(c.CredentialID); ok {
		return p.issueSession(ctx, c, now)
	}
	if sessionID, ok := berth.SessionIDOf(c.CredentialID); ok && p.People != nil {
		// A person's refresh token ends with their session.
		s, err := p.People.CheckSession(ctx, sessionID)
		if err != nil {
			return berth.RefreshTokenValue{}, time.Time{}, err
		}
		v, t, err := p.Refresh.IssueFor(ctx, berth.RefreshToken{PrincipalID: c.Actor.ID, CredentialID: c.CredentialID}, now, s.Expires)
		return v, t.Expires, err
	}
	var notAfter time.Time
	for _, s := range st.secrets {
		if s.ID == c.CredentialID {
			notAfter = s.Expires
		}
	}
	v, t, err := p.Refresh.Issue(ctx, c.Actor.ID, c.CredentialID, now, notAfter)
	return v, t.Expires, err
}

// issueSession issues the refresh token of a federated login.
func (p *Provider) issueSession(ctx context.Context, c *berth.Caller, now time.Time) (berth.RefreshTokenValue, time.Time, error) {
	bound := berth.RefreshToken{PrincipalID: c.Actor.ID, CredentialID: c.CredentialID, PipelineID: c.PipelineID, Run: c.Run}
	lifetime := p.SessionLifetime
	if lifetime <= 0 {
		lifetime = berth.DefaultSessionLifetime
	}
	v, t, err := p.Refresh.IssueFor(ctx, bound, now, now.Add(lifetime))
	return v, t.Expires, err
}

// Authorize returns nil when caller may do the Docker action ("pull", "push",
// "delete", or "*" on registry:catalog) on the resource typ:name. It checks the
// caller's current roles first, then the token's scope: role_missing (or
// credentials_missing for the anonymous caller) when the roles do not allow it,
// scope_not_granted when they do but the token was not issued for it.
func (p *Provider) Authorize(ctx context.Context, c *berth.Caller, typ, name, action string) error {
	idx, err := p.access(ctx, c)
	if err != nil {
		return err
	}
	if idx == nil || !allows(idx, typ, name, action) {
		err := p.nameGroups(ctx, c, p.denial(idx, c, typ, name, action))
		// Naming other repositories is listing them: a token must have been
		// issued for the catalog to do so, and a personal access token
		// created for it.
		if c.CredentialAllows(berth.ResourceRegistry, berth.ResourceCatalog, berth.DockerActionAll) {
			err = p.explainUnknownRepository(ctx, idx, typ, name, action, err)
		}
		return err
	}
	if !c.LimitAllows(typ, name, action) || !c.TokenAllows(typ, name, action) && p.patLacks(ctx, c, typ, name, action) {
		scope := typ + ":" + name + ":" + action
		return berth.Errorf(berth.CodeScopeNotGranted, "the personal access token of %s was not created for %s", c.Actor.Name, scope).
			WithHint("berth token create --scope %s makes a token that is", scope).WithDetail("scope", scope)
	}
	if !c.TokenAllows(typ, name, action) {
		scope := typ + ":" + name + ":" + action
		e := berth.Errorf(berth.CodeScopeNotGranted, "the access token of %s was not issued for %s", c.Actor.Name, scope).
			WithHint("request a token with scope %s (docker, crane, skopeo and oras do so by themselves after this answer)", scope).
			WithDetail("scope", scope)
		if typ == berth.ResourceRegistry && name != berth.ResourceCatalog {
			e.WithHint("request an access token with scope %s explicitly (berth's CLI does for its stored login), or send Basic client credentials", scope)
		}
		return e
	}
	return nil
}

// patLacks reports whether the access token c presented came from a
// personal access token that was not created for action on typ:name, so
// that no token request could have carried it: the refusal then names the
// token to create rather than a token to request. It reads the token only
// on this path of refusals.
func (p *Provider) patLacks(ctx context.Context, c *berth.Caller, typ, name, action string) bool {
	id, ok := berth.PATIDOf(c.CredentialID)
	store, isStore := p.Store.(berth.PATStore)
	if !ok || !isStore {
		return false
	}
	t, err := store.FindPATByID(ctx, id)
	return err == nil && !t.Allows(typ, name, action)
}

// nameGroups adds to a person's role_missing refusal the groups whose
// members hold what is missing.
func (p *Provider) nameGroups(ctx context.Context, c *berth.Caller, err error) error {
	e := berth.AsError(err)
	if e == nil || e.Code != berth.CodeRoleMissing || p.People == nil || c.Anonymous() {
		return err
	}
	st, serr := p.state(ctx, c.Actor.ID)
	if serr != nil || len(st.groups) == 0 {
		return err
	}
	action, _ := e.Detail["action"].(string)
	repo, _ := e.Detail["repository"].(string)
	d := berth.Decision{Reason: e.Code, Message: e.Message}
	d.NameGroups(berth.GroupsGranting(st.groups, berth.Action(action), repo))
	if len(d.Groups) > 0 {
		e.Message = d.Message
		e.WithDetail("granting_groups", strings.Join(d.Groups, ","))
	}
	return err
}

// AuthorizeAPI returns nil when caller may call the management API with
// method: a token must have been issued for it (registry:api:pull for GET
// and HEAD, registry:api:* otherwise), and then each endpoint decides by the
// principal's roles. Basic credentials act with the roles alone.
func (p *Provider) AuthorizeAPI(ctx context.Context, c *berth.Caller, method string) error {
	action := berth.DockerActionAll
	if method == http.MethodGet || method == http.MethodHead {
		action = berth.DockerActionPull
	}
	return p.Authorize(ctx, c, berth.ResourceRegistry, berth.ResourceAPI, action)
}

// allows reports whether idx allows the Docker action on typ:name.
func allows(idx *berth.AccessIndex, typ, name, action string) bool {
	if typ != "repository" {
		return slices.Contains(idx.DockerActions(typ, name, []string{action}), action)
	}
	return berth.ValidateRepositoryName(name) == nil && idx.DecideDocker(action, name).Allowed
}

// denial explains why idx does not allow a Docker action.
func (p *Provider) denial(idx *berth.AccessIndex, c *berth.Caller, typ, name, action string) error {
	switch {
	case idx == nil:
		return berth.Errorf(berth.CodeCredentialsMissing, "%s:%s needs credentials: nothing here is public", typ, name).
			WithHint("log in: berth login HOST, or docker login HOST -u CLIENT_ID")
	case typ == "registry" && name == berth.ResourceAPI:
		return berth.Errorf(berth.CodeCredentialsMissing, "the management API needs credentials").
			WithHint("send Basic CLIENT_ID:SECRET, or an access token with scope registry:api:*")
	case typ == "registry":
		return idx.Decide(berth.ActionCatalogList, "").Err()
	}
	if err := idx.DecideDocker(action, name).Err(); err != nil {
		return err
	}
	return berth.Errorf(berth.CodeRoleMissing, "%s may not %s %s", c.Actor.Name, action, name) // an invalid name
}

// Listable reports whether caller may see repo in the catalog.
func (p *Provider) Listable(ctx context.Context, c *berth.Caller, repo string) bool {
	idx, err := p.access(ctx, c)
	return err == nil && idx != nil && idx.Listable(repo)
}

// AuthenticateRequest returns the caller of an HTTP request: by its bearer
// token, by Basic client credentials, or anonymous when it carries neither.
func (p *Provider) AuthenticateRequest(r *http.Request) (*berth.Caller, error) {
	h := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(h, " ")
	switch {
	case h == "":
		return &berth.Caller{Actor: berth.Actor{Name: berth.AnonymousName}}, nil
	case strings.EqualFold(scheme, "Bearer"):
		return p.authenticateBearer(r, strings.TrimSpace(value))
	case strings.EqualFold(scheme, "Basic"):
		user, secret, ok := r.BasicAuth()
		if !ok {
			return nil, berth.Errorf(berth.CodeCredentialsMissing, "the Basic credentials are not base64 of CLIENT_ID:SECRET").
				WithHint("docker login HOST -u CLIENT_ID --password-stdin")
		}
		return p.AuthenticateBasic(r.Context(), user, secret, SourceAddress(r))
	}
	return nil, berth.Errorf(berth.CodeCredentialsMissing, "the Authorization scheme %q is not Bearer or Basic", berth.Truncate(scheme, 20)).
		WithHint("send a bearer token from /oauth2/token, or Basic credentials CLIENT_ID:SECRET")
}

// BearerFailureLimit is the bearer tokens per minute an address may send
// that fail their verification, for berth serve's Provider.Bearers: about
// 1% of a core in ECDSA verifications, and far above what clients with
// stale tokens send, even many behind one proxy.
const BearerFailureLimit = 6000

// authenticateBearer is AuthenticateToken for a request's bearer token,
// with the failures of its source address limited by Bearers: a token that
// is not one this process verified before costs a signature verification,
// and an address whose tokens keep failing it (forged, altered, or signed
// by another registry) is refused with too_many_attempts before the
// verification. A remembered token is never slowed, and the token
// endpoint's own limits (Addrs) are not touched, so clients behind the
// same address can still log in and use their tokens.
func (p *Provider) authenticateBearer(r *http.Request, token string) (*berth.Caller, error) {
	if p.Bearers == nil || p.Keys.Remembers(token) {
		return p.AuthenticateToken(r.Context(), token)
	}
	addr := SourceAddress(r)
	if ok, wait := p.Bearers.AllowLocal(addr); !ok {
		secs := RetryAfterSeconds(wait)
		return nil, berth.Errorf(berth.CodeTooManyAttempts, "too many invalid access tokens from address %s; try again in %d seconds", addr, secs).
			WithHint("get a new token from the registry's token endpoint (docker login, berth login), then wait %d seconds", secs).
			WithDetail("retry_after", secs)
	}
	c, err := p.AuthenticateToken(r.Context(), token)
	if berth.IsCode(err, berth.CodeTokenInvalid) {
		p.Bearers.Fail(addr)
	}
	return c, err
}

// Challenge returns the WWW-Authenticate value of a 401 answering r: a Bearer
// challenge naming the token realm, the service and, when set, the scope the
// request needs, with an RFC 6750 error attribute for token and scope failures
// and, when the public URL is set, an error_uri for every refusal's reason.
func (p *Provider) Challenge(r *http.Request, scope string, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, `Bearer realm="%s/oauth2/token",service="%s"`, p.baseURL(r), p.Service)
	if scope != "" {
		fmt.Fprintf(&b, `,scope="%s"`, scope)
	}
	switch berth.ErrorCode(err) {
	case berth.CodeTokenExpired, berth.CodeTokenInvalid, berth.CodePrincipalDisabled, berth.CodeSecretRevoked, berth.CodeSecretExpired:
		if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ") {
			b.WriteString(`,error="invalid_token"`)
		}
	case berth.CodeScopeNotGranted:
		b.WriteString(`,error="insufficient_scope"`)
	}
	// RFC 6750 section 3's error_uri: the page explaining the reason, under
	// the configured public URL only (see berth.ExplainURL). A request that
	// sent no credentials gets no error information (RFC 6750 section 3.1).
	// A URL with a quote or comma is left out: some clients split the
	// challenge at commas without reading quoted strings.
	if code := berth.ErrorCode(err); code != berth.CodeCredentialsMissing {
		if u := berth.ExplainURL(p.URL, code); u != "" && !strings.ContainsAny(u, `",\`) {
			fmt.Fprintf(&b, `,error_uri="%s"`, u)
		}
	}
	return b.String()
}

// baseURL is the registry's public URL, or the one the request came to.
func (p *Provider) baseURL(r *http.Request) string {
	if p.URL != "" {
		return strings.TrimSuffix(p.URL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// SourceAddress is the host the request came from, the key of per-address
// limits: as the server middleware recorded it, else from RemoteAddr.
// Forwarded headers are not trusted.
func SourceAddress(r *http.Request) string {
	if a := berth.SourceAddress(r.Context()); a != "" {
		return a
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
