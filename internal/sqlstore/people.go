package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

var _ berth.PeopleStore = (*Store)(nil)

const idpColumns = `id, name, issuer, client_id, groups_claim, username_claim, scopes, sealed_secret, created`

func scanIdP(row interface{ Scan(...any) error }) (berth.IdentityProvider, error) {
	var p berth.IdentityProvider
	var scopes string
	err := row.Scan(&p.ID, &p.Name, &p.Issuer, &p.ClientID, &p.GroupsClaim, &p.UsernameClaim, &scopes, &p.SealedSecret, Time(&p.Created))
	p.Scopes = strings.Fields(scopes)
	return p, err
}

// CreateIdentityProvider stores p.
func (s *Store) CreateIdentityProvider(ctx context.Context, p berth.IdentityProvider) error {
	_, err := s.c.Write().Exec(ctx, `INSERT INTO identity_providers (`+idpColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		p.ID, p.Name, p.Issuer, p.ClientID, p.GroupsClaim, p.UsernameClaim, strings.Join(p.Scopes, " "), NonNil(p.SealedSecret), p.Created)
	if s.d.IsUniqueViolation(err) {
		return berth.Errorf(berth.CodeConflict, "an identity provider named %s exists", p.Name).
			WithHint("berth idp show %s; remove it first to add it again: berth idp remove %s", p.Name, p.Name)
	}
	if err != nil {
		return fmt.Errorf("create identity provider %s: %w", p.Name, err)
	}
	return nil
}

func (s *Store) findIdP(ctx context.Context, where, arg, what string) (berth.IdentityProvider, error) {
	p, err := scanIdP(s.c.Read().QueryRow(ctx, `SELECT `+idpColumns+` FROM identity_providers WHERE `+where+` = $1`, arg))
	if IsNoRows(err) {
		return p, berth.Errorf(berth.CodeNotFound, "no identity provider has the %s %s", what, arg).WithHint("berth idp list")
	}
	if err != nil {
		return p, fmt.Errorf("find identity provider: %w", err)
	}
	return p, nil
}

// FindIdentityProviderByName returns the provider named name.
func (s *Store) FindIdentityProviderByName(ctx context.Context, name string) (berth.IdentityProvider, error) {
	return s.findIdP(ctx, "name", name, "name")
}

// FindIdentityProviderByID returns the provider with id.
func (s *Store) FindIdentityProviderByID(ctx context.Context, id string) (berth.IdentityProvider, error) {
	return s.findIdP(ctx, "id", id, "id")
}

// FindIdentityProviders returns every provider by name.
func (s *Store) FindIdentityProviders(ctx context.Context) ([]berth.IdentityProvider, error) {
	rows, err := s.c.Read().Query(ctx, `SELECT `+idpColumns+` FROM identity_providers ORDER BY name`)
	out, err := collect(rows, err, func(r Rows) (berth.IdentityProvider, error) { return scanIdP(r) })
	if err != nil {
		return nil, fmt.Errorf("find identity providers: %w", err)
	}
	return out, nil
}

// UpdateIdentityProvider writes p's settings and sealed secret.
func (s *Store) UpdateIdentityProvider(ctx context.Context, p berth.IdentityProvider) error {
	n, err := s.c.Write().Exec(ctx, `UPDATE identity_providers SET issuer = $2, client_id = $3, groups_claim = $4, username_claim = $5, scopes = $6, sealed_secret = $7 WHERE id = $1`,
		p.ID, p.Issuer, p.ClientID, p.GroupsClaim, p.UsernameClaim, strings.Join(p.Scopes, " "), NonNil(p.SealedSecret))
	if err != nil {
		return fmt.Errorf("update identity provider %s: %w", p.Name, err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no identity provider has the id %s", p.ID).WithHint("berth idp list")
	}
	return nil
}

// DeleteIdentityProvider removes the provider, its links and its sessions.
func (s *Store) DeleteIdentityProvider(ctx context.Context, id string) error {
	return s.inTx(ctx, "delete identity provider", func(tx Querier) error {
		n, err := tx.Exec(ctx, `DELETE FROM identity_providers WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete identity provider: %w", err)
		}
		if n == 0 {
			return berth.Errorf(berth.CodeNotFound, "no identity provider has the id %s", id).WithHint("berth idp list")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM user_links WHERE idp_id = $1`, id); err != nil {
			return fmt.Errorf("delete identity provider's links: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM user_sessions WHERE idp_id = $1`, id); err != nil {
			return fmt.Errorf("delete identity provider's sessions: %w", err)
		}
		return nil
	})
}

func joinGroups(gs []berth.Group) string {
	ss := make([]string, len(gs))
	for i, g := range gs {
		ss[i] = string(g)
	}
	return strings.Join(ss, "\n")
}

func splitGroups(s string) []berth.Group {
	out := []berth.Group{}
	for g := range strings.SplitSeq(s, "\n") {
		if g != "" {
			out = append(out, berth.Group(g))
		}
	}
	return out
}

// CreateUser stores a person's principal and link in one transaction. A
// link of (issuer, subject) whose principal was deleted is replaced.
func (s *Store) CreateUser(ctx context.Context, p berth.Principal, l berth.UserLink) error {
	return s.inTx(ctx, "create user", func(tx Querier) error {
		if _, err := tx.Exec(ctx, `DELETE FROM user_links WHERE issuer = $1 AND subject = $2
			AND NOT EXISTS (SELECT 1 FROM principals WHERE principals.id = user_links.principal_id)`, l.Issuer, l.Subject); err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO principals (id, name, client_id, kind, disabled, created) VALUES ($1, $2, $3, $4, $5, $6)`,
			p.ID, p.Name, p.ClientID, string(p.Kind), p.Disabled, p.Created)
		if s.d.IsUniqueViolation(err) {
			return berth.Errorf(berth.CodeConflict, "a principal named %s exists", p.Name)
		} else if err != nil {
			return fmt.Errorf("create user %s: %w", p.Name, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO user_links (principal_id, idp_id, issuer, subject, group_list, sealed_refresh, refreshed) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			p.ID, l.ProviderID, l.Issuer, l.Subject, joinGroups(l.Groups), NonNil(l.SealedRefresh), l.Refreshed)
		if s.d.IsUniqueViolation(err) {
			return berth.Errorf(berth.CodeConflict, "the person %s of %s is linked to a principal already", l.Subject, l.Issuer)
		} else if err != nil {
			return fmt.Errorf("create user %s: %w", p.Name, err)
		}
		return nil
	})
}

// CreateUserLink stores the link of an existing principal.
func (s *Store) CreateUserLink(ctx context.Context, l berth.UserLink) error {
	_, err := s.c.Write().Exec(ctx, `INSERT INTO user_links (principal_id, idp_id, issuer, subject, group_list, sealed_refresh, refreshed) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		l.PrincipalID, l.ProviderID, l.Issuer, l.Subject, joinGroups(l.Groups), NonNil(l.SealedRefresh), l.Refreshed)
	if s.d.IsUniqueViolation(err) {
		return berth.Errorf(berth.CodeConflict, "principal %s or the person %s of %s is linked already", l.PrincipalID, l.Subject, l.Issuer)
	} else if err != nil {
		return fmt.Errorf("create user link: %w", err)
	}
	return nil
}

const linkColumns = `principal_id, idp_id, issuer, subject, group_list, sealed_refresh, refreshed`

func (s *Store) findLink(ctx context.Context, where string, args ...any) (berth.UserLink, error) {
	var l berth.UserLink
	var groups string
	err := s.c.Read().QueryRow(ctx, `SELECT `+linkColumns+` FROM user_links WHERE `+where, args...).
		Scan(&l.PrincipalID, &l.ProviderID, &l.Issuer, &l.Subject, &groups, &l.SealedRefresh, Time(&l.Refreshed))
	if IsNoRows(err) {
		return l, berth.Errorf(berth.CodeNotFound, "no person is linked there")
	}
	if err != nil {
		return l, fmt.Errorf("find user link: %w", err)
	}
	l.Groups = splitGroups(groups)
	if len(l.SealedRefresh) == 0 {
		l.SealedRefresh = nil
	}
	return l, nil
}

// FindUserLink returns the link of (issuer, subject).
func (s *Store) FindUserLink(ctx context.Context, issuer, subject string) (berth.UserLink, error) {
	return s.findLink(ctx, `issuer = $1 AND subject = $2`, issuer, subject)
}

// FindUserLinkByPrincipal returns the link of the principal.
func (s *Store) FindUserLinkByPrincipal(ctx context.Context, principalID string) (berth.UserLink, error) {
	return s.findLink(ctx, `principal_id = $1`, principalID)
}

// UpdateUserLink writes l's groups, sealed refresh token and refresh time.
func (s *Store) UpdateUserLink(ctx context.Context, l berth.UserLink) error {
	n, err := s.c.Write().Exec(ctx, `UPDATE user_links SET group_list = $2, sealed_refresh = $3, refreshed = $4 WHERE principal_id = $1`,
		l.PrincipalID, joinGroups(l.Groups), NonNil(l.SealedRefresh), l.Refreshed)
	if err != nil {
		return fmt.Errorf("update user link: %w", err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no person is linked to principal %s", l.PrincipalID)
	}
	return nil
}

// CreateGroupRoleAssignment records g.
func (s *Store) CreateGroupRoleAssignment(ctx context.Context, g berth.GroupRoleAssignment) error {
	_, err := s.c.Write().Exec(ctx, `INSERT INTO group_role_assignments (group_name, scope, role, created, created_by) VALUES ($1, $2, $3, $4, $5)`,
		string(g.Group), g.Scope.String(), string(g.Role), g.Created, g.CreatedBy)
	if s.d.IsUniqueViolation(err) {
		return berth.Errorf(berth.CodeConflict, "group %s already holds %s on %s", g.Group, g.Role, g.Scope).
			WithHint("berth role list shows the assignments")
	}
	if err != nil {
		return fmt.Errorf("assign role to group %s: %w", g.Group, err)
	}
	return nil
}

// DeleteGroupRoleAssignment removes the group's role on exactly scope.
func (s *Store) DeleteGroupRoleAssignment(ctx context.Context, group berth.Group, role berth.Role, scope berth.Scope) error {
	n, err := s.c.Write().Exec(ctx, `DELETE FROM group_role_assignments WHERE group_name = $1 AND scope = $2 AND role = $3`,
		string(group), scope.String(), string(role))
	if err != nil {
		return fmt.Errorf("revoke role of group %s: %w", group, err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "group %s holds no %s on %s", group, role, scope).
			WithHint("berth role list shows the assignments")
	}
	return nil
}

// FindGroupRoleAssignments returns every group assignment.
func (s *Store) FindGroupRoleAssignments(ctx context.Context) ([]berth.GroupRoleAssignment, error) {
	rows, err := s.c.Read().Query(ctx, `SELECT group_name, scope, role, created, created_by FROM group_role_assignments ORDER BY group_name, scope, role`)
	if err != nil {
		return nil, fmt.Errorf("find group role assignments: %w", err)
	}
	defer rows.Close()
	out := []berth.GroupRoleAssignment{}
	for rows.Next() {
		var g berth.GroupRoleAssignment
		var group, scope, role string
		if err := rows.Scan(&group, &scope, &role, Time(&g.Created), &g.CreatedBy); err != nil {
			return nil, fmt.Errorf("find group role assignments: %w", err)
		}
		sc, err := berth.ParseScope(scope)
		if err != nil {
			return nil, fmt.Errorf("find group role assignments: stored scope %q: %w", scope, err)
		}
		g.Group, g.Scope, g.Role = berth.Group(group), sc, berth.Role(role)
		out = append(out, g)
	}
	return out, rows.Err()
}

const sessionColumns = `id, principal_id, idp_id, hash, created, expires, ended`

func (s *Store) findSession(ctx context.Context, where, arg string) (berth.UserSession, error) {
	var u berth.UserSession
	var hash *string
	err := s.c.Read().QueryRow(ctx, `SELECT `+sessionColumns+` FROM user_sessions WHERE `+where+` = $1`, arg).
		Scan(&u.ID, &u.PrincipalID, &u.ProviderID, &hash, Time(&u.Created), Time(&u.Expires), NullTime(&u.Ended))
	if IsNoRows(err) {
		return u, berth.Errorf(berth.CodeNotFound, "no such session")
	}
	if err != nil {
		return u, fmt.Errorf("find session: %w", err)
	}
	if hash != nil {
		u.Hash = *hash
	}
	return u, nil
}

// CreateSession stores u.
func (s *Store) CreateSession(ctx context.Context, u berth.UserSession) error {
	var hash *string
	if u.Hash != "" {
		hash = &u.Hash
	}
	_, err := s.c.Write().Exec(ctx, `INSERT INTO user_sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.ID, u.PrincipalID, u.ProviderID, hash, u.Created, u.Expires, u.Ended)
	if s.d.IsUniqueViolation(err) {
		return berth.Errorf(berth.CodeConflict, "the session exists")
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// FindSessionByID returns the session with id.
func (s *Store) FindSessionByID(ctx context.Context, id string) (berth.UserSession, error) {
	return s.findSession(ctx, "id", id)
}

// FindSessionByHash returns the browser session whose cookie hashes to hash.
func (s *Store) FindSessionByHash(ctx context.Context, hash string) (berth.UserSession, error) {
	if hash == "" {
		return berth.UserSession{}, berth.Errorf(berth.CodeNotFound, "no such session")
	}
	return s.findSession(ctx, "hash", hash)
}

// EndSession marks the session ended at at, keeping an earlier end.
func (s *Store) EndSession(ctx context.Context, id string, at time.Time) error {
	n, err := s.c.Write().Exec(ctx, `UPDATE user_sessions SET ended = COALESCE(ended, $2) WHERE id = $1`, id, at)
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no such session")
	}
	return nil
}

// EndSessionsOfPrincipal ends every live session of the principal.
func (s *Store) EndSessionsOfPrincipal(ctx context.Context, principalID string, at time.Time) (int, error) {
	n, err := s.c.Write().Exec(ctx, `UPDATE user_sessions SET ended = $2 WHERE principal_id = $1 AND ended IS NULL`, principalID, at)
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	return int(n), nil
}

const deviceColumns = `id, device_hash, user_code, client, created, expires, interval_ms, last_poll, status, principal_id, session_id, source`

func (s *Store) findDevice(ctx context.Context, where, arg string) (berth.DeviceAuthorization, error) {
	var d berth.DeviceAuthorization
	var interval int64
	var last *time.Time
	var status string
	err := s.c.Read().QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations WHERE `+where+` = $1`, arg).
		Scan(&d.ID, &d.DeviceHash, &d.UserCode, &d.Client, Time(&d.Created), Time(&d.Expires), &interval, NullTime(&last), &status, &d.PrincipalID, &d.SessionID, &d.Source)
	if IsNoRows(err) {
		return d, berth.Errorf(berth.CodeNotFound, "no such device login")
	}
	if err != nil {
		return d, fmt.Errorf("find device login: %w", err)
	}
	d.Interval, d.Status = time.Duration(interval)*time.Millisecond, berth.DeviceStatus(status)
	if last != nil {
		d.LastPoll = *last
	}
	return d, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// CreateDeviceAuthorization stores d.
func (s *Store) CreateDeviceAuthorization(ctx context.Context, d berth.DeviceAuthorization) error {
	_, err := s.c.Write().Exec(ctx, `INSERT INTO device_authorizations (`+deviceColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		d.ID, d.DeviceHash, d.UserCode, d.Client, d.Created, d.Expires, d.Interval.Milliseconds(), nullTime(d.LastPoll), string(d.Status), d.PrincipalID, d.SessionID, d.Source)
	if s.d.IsUniqueViolation(err) {
		return berth.Errorf(berth.CodeConflict, "the device login or its user code exists")
	}
	if err != nil {
		return fmt.Errorf("create device login: %w", err)
	}
	return nil
}

// FindDeviceAuthorizationByHash returns the login of a device code's hash.
func (s *Store) FindDeviceAuthorizationByHash(ctx context.Context, hash string) (berth.DeviceAuthorization, error) {
	return s.findDevice(ctx, "device_hash", hash)
}

// FindDeviceAuthorizationByUserCode returns the login of a user code.
func (s *Store) FindDeviceAuthorizationByUserCode(ctx context.Context, code string) (berth.DeviceAuthorization, error) {
	return s.findDevice(ctx, "user_code", code)
}

// UpdateDeviceAuthorization writes d when its stored status is from.
func (s *Store) UpdateDeviceAuthorization(ctx context.Context, d berth.DeviceAuthorization, from berth.DeviceStatus) error {
	n, err := s.c.Write().Exec(ctx, `UPDATE device_authorizations SET status = $2, interval_ms = $3, last_poll = $4, principal_id = $5, session_id = $6
		WHERE id = $1 AND status = $7`,
		d.ID, string(d.Status), d.Interval.Milliseconds(), nullTime(d.LastPoll), d.PrincipalID, d.SessionID, string(from))
	if err != nil {
		return fmt.Errorf("update device login: %w", err)
	}
	if n == 1 {
		return nil
	}
	if _, err := s.findDevice(ctx, "id", d.ID); err != nil {
		return err
	}
	return berth.Errorf(berth.CodeConflict, "the device login changed meanwhile")
}

// DeleteExpiredDeviceAuthorizations removes logins expired before before.
func (s *Store) DeleteExpiredDeviceAuthorizations(ctx context.Context, before time.Time) (int, error) {
	n, err := s.c.Write().Exec(ctx, `DELETE FROM device_authorizations WHERE expires < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("delete expired device logins: %w", err)
	}
	return int(n), nil
}
