package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// Principals and their client secrets (berth.IdentityStore), in the tables
// of migration 0002. The store keeps secrets as the domain hands them over (a
// hash and a hint, never a value) and decides nothing about them.

const principalColumns = `id, name, client_id, kind, disabled, created`

func scanPrincipal(row Row) (berth.Principal, error) {
	var (
		p    berth.Principal
		kind string
	)
	if err := row.Scan(&p.ID, &p.Name, &p.ClientID, &kind, &p.Disabled, Time(&p.Created)); err != nil {
		return berth.Principal{}, err
	}
	p.Kind = berth.PrincipalKind(kind)
	return p, nil
}

// CreatePrincipal stores p, or returns conflict, changing nothing, when a
// principal with the same ID, Name or ClientID exists.
func (s *Store) CreatePrincipal(ctx context.Context, p berth.Principal) error {
	_, err := s.c.Write().Exec(ctx,
		`INSERT INTO principals (`+principalColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		p.ID, p.Name, p.ClientID, string(p.Kind), p.Disabled, p.Created)
	switch {
	case s.d.IsUniqueViolation(err):
		return berth.Errorf(berth.CodeConflict, "a principal named %s, with id %s or with client id %s exists", p.Name, p.ID, p.ClientID)
	case err != nil:
		return fmt.Errorf("create principal %s: %w", p.Name, err)
	}
	return nil
}

// FindPrincipalByID returns the principal with this id, or not_found.
func (s *Store) FindPrincipalByID(ctx context.Context, id string) (berth.Principal, error) {
	return s.findPrincipal(ctx, "id", id)
}

// FindPrincipalByName returns the principal with this name, or not_found.
func (s *Store) FindPrincipalByName(ctx context.Context, name string) (berth.Principal, error) {
	return s.findPrincipal(ctx, "name", name)
}

// FindPrincipalByClientID returns the principal with this client id,
// compared exactly, or not_found.
func (s *Store) FindPrincipalByClientID(ctx context.Context, clientID string) (berth.Principal, error) {
	return s.findPrincipal(ctx, "client_id", clientID)
}

// findPrincipal looks a principal up by one unique column; column is one of
// the three names above, never input.
func (s *Store) findPrincipal(ctx context.Context, column, value string) (berth.Principal, error) {
	p, err := scanPrincipal(s.c.Read().QueryRow(ctx,
		`SELECT `+principalColumns+` FROM principals WHERE `+column+` = $1`, value))
	switch {
	case IsNoRows(err):
		return berth.Principal{}, principalNotFound(column, value)
	case err != nil:
		return berth.Principal{}, fmt.Errorf("find principal by %s %s: %w", column, value, err)
	}
	return p, nil
}

// FindPrincipals returns the principals that match f, ordered by name.
func (s *Store) FindPrincipals(ctx context.Context, f berth.PrincipalFilter) ([]berth.Principal, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Kind != "" {
		add("kind = $%d", string(f.Kind))
	}
	if f.Disabled != nil {
		add("disabled = $%d", *f.Disabled)
	}
	if f.After != "" {
		add("name > $%d", f.After)
	}
	q := `SELECT ` + principalColumns + ` FROM principals`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY name`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += fmt.Sprintf(` LIMIT $%d`, len(args))
	}
	rows, err := s.c.Read().Query(ctx, q, args...)
	out, err := collect(rows, err, func(r Rows) (berth.Principal, error) { return scanPrincipal(r) })
	if err != nil {
		return nil, fmt.Errorf("find principals: %w", err)
	}
	return out, nil
}

// UpdatePrincipal applies the set fields of u and returns the principal as
// it now is, or not_found. It is one statement.
func (s *Store) UpdatePrincipal(ctx context.Context, id string, u berth.PrincipalUpdate) (berth.Principal, error) {
	q, on := `SELECT `+principalColumns+` FROM principals WHERE id = $1`, s.c.Read()
	args := []any{id}
	if u.Disabled != nil {
		q, on = `UPDATE principals SET disabled = $2 WHERE id = $1 RETURNING `+principalColumns, s.c.Write()
		args = append(args, *u.Disabled)
	}
	p, err := scanPrincipal(on.QueryRow(ctx, q, args...))
	switch {
	case IsNoRows(err):
		return berth.Principal{}, principalNotFound("id", id)
	case err != nil:
		return berth.Principal{}, fmt.Errorf("update principal %s: %w", id, err)
	}
	return p, nil
}

// DeletePrincipal removes the principal, all its secrets (tombstones
// included), its role assignments and its service connections with their
// permissions and pending requests, in one transaction, or returns
// not_found. It locks the principal's row first (on PostgreSQL), so what a concurrent
// CreateSecret, CreateRoleAssignment or CreateConnection adds is either
// deleted with it or refused with not_found.
func (s *Store) DeletePrincipal(ctx context.Context, id string) error {
	return s.inTx(ctx, "delete principal", func(tx Querier) error {
		var ok bool
		err := tx.QueryRow(ctx, `SELECT true FROM principals WHERE id = $1`+s.d.ForUpdate, id).Scan(&ok)
		switch {
		case IsNoRows(err):
			return principalNotFound("id", id)
		case err != nil:
			return fmt.Errorf("delete principal %s: %w", id, err)
		}
		if _, err := s.deleteConnections(ctx, tx, `principal_id = $1`, id); err != nil {
			return fmt.Errorf("delete connections of principal %s: %w", id, err)
		}
		for _, q := range []string{
			`DELETE FROM client_secrets WHERE principal_id = $1`,
			`DELETE FROM role_assignments WHERE principal_id = $1`,
			// A person's link, sessions and tokens go with them: the same
			// person signing in again becomes a new principal.
			`DELETE FROM user_links WHERE principal_id = $1`,
			`DELETE FROM user_sessions WHERE principal_id = $1`,
			`DELETE FROM personal_access_tokens WHERE principal_id = $1`,
			`DELETE FROM principals WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("delete principal %s: %w", id, err)
			}
		}
		return nil
	})
}

const secretColumns = `id, principal_id, hint, hash, description, created, expires, last_used, revoked`

func scanSecret(row Row) (berth.Secret, error) {
	var (
		sec  berth.Secret
		hash []byte
	)
	if err := row.Scan(&sec.ID, &sec.PrincipalID, &sec.Hint, &hash, &sec.Description,
		Time(&sec.Created), Time(&sec.Expires), NullTime(&sec.LastUsed), NullTime(&sec.Revoked)); err != nil {
		return berth.Secret{}, err
	}
	sec.Hash = hash
	return sec, nil
}

// CreateSecret stores s. It returns not_found when no principal has
// s.PrincipalID and conflict when a secret has the same ID or Hash, changing
// nothing either way.
func (s *Store) CreateSecret(ctx context.Context, sec berth.Secret) error {
	return s.inTx(ctx, "create secret", func(tx Querier) error {
		if err := s.lockPrincipal(ctx, tx, sec.PrincipalID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO client_secrets (`+secretColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			sec.ID, sec.PrincipalID, sec.Hint, NonNil([]byte(sec.Hash)), sec.Description, sec.Created, sec.Expires, sec.LastUsed, sec.Revoked)
		switch {
		case s.d.IsUniqueViolation(err):
			// The message names the id, never the hash.
			return berth.Errorf(berth.CodeConflict, "secret %s, or a secret with the same value, exists", sec.ID)
		case s.d.IsForeignKeyViolation(err):
			return principalNotFound("id", sec.PrincipalID)
		case err != nil:
			return fmt.Errorf("create secret %s: %w", sec.ID, err)
		}
		return nil
	})
}

// FindSecrets returns every secret of the principal, tombstones included,
// ordered by Created then ID, or not_found when no principal has this id. It
// is one query, so the answer is one snapshot.
func (s *Store) FindSecrets(ctx context.Context, principalID string) ([]berth.Secret, error) {
	rows, err := s.c.Read().Query(ctx, `
		SELECT s.id, s.hint, s.hash, s.description, s.created, s.expires, s.last_used, s.revoked
		FROM principals p LEFT JOIN client_secrets s ON s.principal_id = p.id
		WHERE p.id = $1
		ORDER BY s.created, s.id`, principalID)
	if err != nil {
		return nil, fmt.Errorf("find secrets of principal %s: %w", principalID, err)
	}
	defer rows.Close()
	found := false
	out := []berth.Secret{}
	for rows.Next() {
		found = true
		var (
			id, hint, description *string
			hash                  []byte
			created, expires      *time.Time
			lastUsed, revoked     *time.Time
		)
		if err := rows.Scan(&id, &hint, &hash, &description,
			NullTime(&created), NullTime(&expires), NullTime(&lastUsed), NullTime(&revoked)); err != nil {
			return nil, fmt.Errorf("find secrets of principal %s: %w", principalID, err)
		}
		if id == nil { // the principal holds no secret
			continue
		}
		out = append(out, berth.Secret{
			ID:          *id,
			PrincipalID: principalID,
			Hint:        *hint,
			Hash:        hash,
			Description: *description,
			Created:     *created,
			Expires:     *expires,
			LastUsed:    lastUsed,
			Revoked:     revoked,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find secrets of principal %s: %w", principalID, err)
	}
	if !found {
		return nil, principalNotFound("id", principalID)
	}
	return out, nil
}

// RevokeSecret makes the secret a tombstone removed at the given time,
// keeping its hash; a tombstone keeps its first time. It returns not_found
// when no secret has this id.
func (s *Store) RevokeSecret(ctx context.Context, id string, at time.Time) error {
	return s.updateSecret(ctx, "revoke", id,
		`UPDATE client_secrets SET revoked = coalesce(revoked, $2) WHERE id = $1`, id, at)
}

// TouchSecret records a use at lastUsed, never moving LastUsed back. It
// returns not_found when no secret has this id.
func (s *Store) TouchSecret(ctx context.Context, id string, lastUsed time.Time) error {
	return s.updateSecret(ctx, "touch", id,
		`UPDATE client_secrets SET last_used = CASE WHEN last_used IS NULL OR last_used < $2 THEN $2 ELSE last_used END
		WHERE id = $1`, id, lastUsed)
}

// ExpireSecret moves the secret's Expires to at when at is earlier, never
// later. It returns not_found when no secret has this id.
func (s *Store) ExpireSecret(ctx context.Context, id string, at time.Time) error {
	return s.updateSecret(ctx, "expire", id,
		`UPDATE client_secrets SET expires = CASE WHEN $2 < expires THEN $2 ELSE expires END WHERE id = $1`, id, at)
}

// updateSecret runs an UPDATE of one secret and returns not_found when it
// matched no row (both engines count matched rows, changed or not).
func (s *Store) updateSecret(ctx context.Context, op, id, query string, args ...any) error {
	res, err := s.c.Write().Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s secret %s: %w", op, id, err)
	}
	if res == 0 {
		return berth.Errorf(berth.CodeNotFound, "no secret has id %s", id)
	}
	return nil
}

// FindSecretByHash returns the secret, tombstones included, whose Hash
// equals hash, or not_found.
func (s *Store) FindSecretByHash(ctx context.Context, hash berth.SecretHash) (berth.Secret, error) {
	sec, err := scanSecret(s.c.Read().QueryRow(ctx,
		`SELECT `+secretColumns+` FROM client_secrets WHERE hash = $1`, NonNil([]byte(hash))))
	switch {
	case IsNoRows(err):
		// The message never quotes the hash.
		return berth.Secret{}, berth.Errorf(berth.CodeNotFound, "no secret has this value")
	case err != nil:
		return berth.Secret{}, fmt.Errorf("find secret by hash: %w", err)
	}
	return sec, nil
}

// principalNotFound is the not_found of a principal looked up by column.
func principalNotFound(column, value string) *berth.Error {
	switch column {
	case "name":
		return berth.Errorf(berth.CodeNotFound, "no principal is named %s", value)
	case "client_id":
		return berth.Errorf(berth.CodeNotFound, "no principal has client id %s", value)
	}
	return berth.Errorf(berth.CodeNotFound, "no principal has id %s", value)
}

// lockPrincipal returns not_found unless a principal has id. On PostgreSQL
// it keeps the row locked FOR KEY SHARE until tx ends, so a DeletePrincipal
// meanwhile waits, then deletes what tx added with the principal; SQLite's
// write transactions run one at a time, so the check alone holds until tx
// ends.
func (s *Store) lockPrincipal(ctx context.Context, tx Querier, id string) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT true FROM principals WHERE id = $1`+s.d.ForKeyShare, id).Scan(&ok)
	switch {
	case IsNoRows(err):
		return principalNotFound("id", id)
	case err != nil:
		return fmt.Errorf("find principal %s: %w", id, err)
	}
	return nil
}
