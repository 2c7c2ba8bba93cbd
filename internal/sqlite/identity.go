package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// Principals and their client secrets (berth.IdentityStore), in the tables of
// migration 0002. The store keeps secrets as the domain hands them over (a hash
// and a hint, never a value) and decides nothing about them: expiry, matching
// and revocation rules live in package berth.

const principalColumns = `id, name, client_id, kind, disabled, created`

func scanPrincipal(row interface{ Scan(...any) error }) (berth.Principal, error) {
	var (
		p       berth.Principal
		kind    string
		created int64
	)
	if err := row.Scan(&p.ID, &p.Name, &p.ClientID, &kind, &p.Disabled, &created); err != nil {
		return berth.Principal{}, err
	}
	p.Kind = berth.PrincipalKind(kind)
	p.Created = fromDB(created)
	return p, nil
}

// CreatePrincipal stores p, or returns conflict, changing nothing, when a
// principal with the same ID, Name or ClientID exists.
func (db *DB) CreatePrincipal(ctx context.Context, p berth.Principal) error {
	return db.inTx(ctx, "create principal", func(tx *sql.Tx) error {
		var taken bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM principals WHERE name = ?)`, p.Name).Scan(&taken); err != nil {
			return fmt.Errorf("create principal %s: %w", p.Name, err)
		}
		if taken {
			return berth.Errorf(berth.CodeConflict, "a principal named %s exists", p.Name)
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO principals (`+principalColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			p.ID, p.Name, p.ClientID, string(p.Kind), p.Disabled, toDB(p.Created))
		switch {
		case isUniqueViolation(err):
			return berth.Errorf(berth.CodeConflict, "a principal with id %s or client id %s exists", p.ID, p.ClientID)
		case err != nil:
			return fmt.Errorf("create principal %s: %w", p.Name, err)
		}
		return nil
	})
}

// FindPrincipalByID returns the principal with this id, or not_found.
func (db *DB) FindPrincipalByID(ctx context.Context, id string) (berth.Principal, error) {
	return db.findPrincipal(ctx, "id", id)
}

// FindPrincipalByName returns the principal with this name, or not_found.
func (db *DB) FindPrincipalByName(ctx context.Context, name string) (berth.Principal, error) {
	return db.findPrincipal(ctx, "name", name)
}

// FindPrincipalByClientID returns the principal with this client id, compared
// exactly, or not_found.
func (db *DB) FindPrincipalByClientID(ctx context.Context, clientID string) (berth.Principal, error) {
	return db.findPrincipal(ctx, "client_id", clientID)
}

// findPrincipal looks a principal up by one unique column; column is one of
// the three names above, never input.
func (db *DB) findPrincipal(ctx context.Context, column, value string) (berth.Principal, error) {
	p, err := scanPrincipal(db.read.QueryRowContext(ctx,
		`SELECT `+principalColumns+` FROM principals WHERE `+column+` = ?`, value))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return berth.Principal{}, principalNotFound(column, value)
	case err != nil:
		return berth.Principal{}, fmt.Errorf("find principal by %s %s: %w", column, value, err)
	}
	return p, nil
}

func principalNotFound(column, value string) *berth.Error {
	switch column {
	case "name":
		return berth.Errorf(berth.CodeNotFound, "no principal is named %s", value)
	case "client_id":
		return berth.Errorf(berth.CodeNotFound, "no principal has client id %s", value)
	}
	return berth.Errorf(berth.CodeNotFound, "no principal has id %s", value)
}

// FindPrincipals returns the principals that match f, ordered by name.
func (db *DB) FindPrincipals(ctx context.Context, f berth.PrincipalFilter) ([]berth.Principal, error) {
	var (
		where []string
		args  []any
	)
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, string(f.Kind))
	}
	if f.Disabled != nil {
		where, args = append(where, "disabled = ?"), append(args, *f.Disabled)
	}
	if f.After != "" {
		where, args = append(where, "name > ?"), append(args, f.After)
	}
	q := `SELECT ` + principalColumns + ` FROM principals`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY name`
	if f.Limit > 0 {
		q, args = q+` LIMIT ?`, append(args, f.Limit)
	}
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find principals: %w", err)
	}
	defer rows.Close()
	out := []berth.Principal{}
	for rows.Next() {
		p, err := scanPrincipal(rows)
		if err != nil {
			return nil, fmt.Errorf("find principals: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find principals: %w", err)
	}
	return out, nil
}

// UpdatePrincipal applies the set fields of u and returns the principal as it
// now is, or not_found.
func (db *DB) UpdatePrincipal(ctx context.Context, id string, u berth.PrincipalUpdate) (berth.Principal, error) {
	var p berth.Principal
	err := db.inTx(ctx, "update principal", func(tx *sql.Tx) error {
		if u.Disabled != nil {
			if _, err := tx.ExecContext(ctx,
				`UPDATE principals SET disabled = ? WHERE id = ?`, *u.Disabled, id); err != nil {
				return fmt.Errorf("update principal %s: %w", id, err)
			}
		}
		var err error
		p, err = scanPrincipal(tx.QueryRowContext(ctx,
			`SELECT `+principalColumns+` FROM principals WHERE id = ?`, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return principalNotFound("id", id)
		case err != nil:
			return fmt.Errorf("update principal %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return berth.Principal{}, err
	}
	return p, nil
}

// DeletePrincipal removes the principal, all its secrets (tombstones
// included) and its service connections with their permissions and pending
// requests, in one transaction, or returns not_found.
func (db *DB) DeletePrincipal(ctx context.Context, id string) error {
	return db.inTx(ctx, "delete principal", func(tx *sql.Tx) error {
		if _, err := deleteConnections(ctx, tx, `principal_id = ?`, id); err != nil {
			return fmt.Errorf("delete connections of principal %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM client_secrets WHERE principal_id = ?`, id); err != nil {
			return fmt.Errorf("delete secrets of principal %s: %w", id, err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM principals WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete principal %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete principal %s: %w", id, err)
		} else if n == 0 {
			return principalNotFound("id", id)
		}
		return nil
	})
}

// CreateSecret stores s. It returns not_found when no principal has
// s.PrincipalID and conflict when a secret has the same ID or Hash, changing
// nothing either way.
func (db *DB) CreateSecret(ctx context.Context, s berth.Secret) error {
	return db.inTx(ctx, "create secret", func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM principals WHERE id = ?)`, s.PrincipalID).Scan(&exists); err != nil {
			return fmt.Errorf("create secret %s: %w", s.ID, err)
		}
		if !exists {
			return principalNotFound("id", s.PrincipalID)
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO client_secrets (id, principal_id, hint, hash, description, created, expires, last_used, revoked)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.ID, s.PrincipalID, s.Hint, nonNil([]byte(s.Hash)), s.Description,
			toDB(s.Created), toDB(s.Expires), nullTime(s.LastUsed), nullTime(s.Revoked))
		switch {
		case isUniqueViolation(err):
			// The message names the id, never the hash.
			return berth.Errorf(berth.CodeConflict, "secret %s, or a secret with the same value, exists", s.ID)
		case err != nil:
			return fmt.Errorf("create secret %s: %w", s.ID, err)
		}
		return nil
	})
}

// FindSecrets returns every secret of the principal, tombstones included,
// ordered by Created then ID, or not_found when no principal has this id. It is
// one query, so the answer is one snapshot.
func (db *DB) FindSecrets(ctx context.Context, principalID string) ([]berth.Secret, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT s.id, s.hint, s.hash, s.description, s.created, s.expires, s.last_used, s.revoked
		FROM principals p LEFT JOIN client_secrets s ON s.principal_id = p.id
		WHERE p.id = ?
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
			id, hint, description sql.NullString
			hash                  []byte
			created, expires      sql.NullInt64
			lastUsed, revoked     sql.NullInt64
		)
		if err := rows.Scan(&id, &hint, &hash, &description, &created, &expires, &lastUsed, &revoked); err != nil {
			return nil, fmt.Errorf("find secrets of principal %s: %w", principalID, err)
		}
		if !id.Valid { // the principal holds no secret
			continue
		}
		out = append(out, berth.Secret{
			ID:          id.String,
			PrincipalID: principalID,
			Hint:        hint.String,
			Hash:        hash,
			Description: description.String,
			Created:     fromDB(created.Int64),
			Expires:     fromDB(expires.Int64),
			LastUsed:    timePtr(lastUsed),
			Revoked:     timePtr(revoked),
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

// RevokeSecret makes the secret a tombstone removed at the given time, keeping
// its hash; a tombstone keeps its first time. It returns not_found when no
// secret has this id.
func (db *DB) RevokeSecret(ctx context.Context, id string, at time.Time) error {
	return db.updateSecret(ctx, "revoke", id,
		`UPDATE client_secrets SET revoked = coalesce(revoked, ?) WHERE id = ?`, toDB(at), id)
}

// TouchSecret records a use at lastUsed, never moving LastUsed back. It returns
// not_found when no secret has this id.
func (db *DB) TouchSecret(ctx context.Context, id string, lastUsed time.Time) error {
	us := toDB(lastUsed)
	return db.updateSecret(ctx, "touch", id,
		`UPDATE client_secrets SET last_used = max(coalesce(last_used, ?), ?) WHERE id = ?`, us, us, id)
}

// ExpireSecret moves the secret's Expires to at when at is earlier, never
// later. It returns not_found when no secret has this id.
func (db *DB) ExpireSecret(ctx context.Context, id string, at time.Time) error {
	return db.updateSecret(ctx, "expire", id,
		`UPDATE client_secrets SET expires = min(expires, ?) WHERE id = ?`, toDB(at), id)
}

// FindSecretByHash returns the secret, tombstones included, whose Hash equals
// hash, or not_found.
func (db *DB) FindSecretByHash(ctx context.Context, hash berth.SecretHash) (berth.Secret, error) {
	var (
		s                 berth.Secret
		created, expires  int64
		lastUsed, revoked sql.NullInt64
	)
	err := db.read.QueryRowContext(ctx, `
		SELECT id, principal_id, hint, hash, description, created, expires, last_used, revoked
		FROM client_secrets WHERE hash = ?`, nonNil([]byte(hash))).
		Scan(&s.ID, &s.PrincipalID, &s.Hint, &s.Hash, &s.Description, &created, &expires, &lastUsed, &revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// The message never quotes the hash.
		return berth.Secret{}, berth.Errorf(berth.CodeNotFound, "no secret has this value")
	case err != nil:
		return berth.Secret{}, fmt.Errorf("find secret by hash: %w", err)
	}
	s.Created, s.Expires = fromDB(created), fromDB(expires)
	s.LastUsed, s.Revoked = timePtr(lastUsed), timePtr(revoked)
	return s, nil
}

// updateSecret runs an UPDATE of one secret and returns not_found when it
// matched no row (SQLite counts matched rows, changed or not).
func (db *DB) updateSecret(ctx context.Context, op, id, query string, args ...any) error {
	res, err := db.write.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s secret %s: %w", op, id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s secret %s: %w", op, id, err)
	} else if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "no secret has id %s", id)
	}
	return nil
}

func nullTime(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: toDB(*t), Valid: true}
}

func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromDB(n.Int64)
	return &t
}
