package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth"
)

// CreateRoleAssignment records a; not_found when no principal has
// a.PrincipalID, conflict when it already holds a.Role on a.Scope. Either way
// nothing changes. The check and the insert are one write transaction, so a
// concurrent DeletePrincipal either precedes it (not_found) or follows it.
func (db *DB) CreateRoleAssignment(ctx context.Context, a berth.RoleAssignment) error {
	if a.Scope.IsZero() {
		return errors.New("create role assignment: no scope")
	}
	return db.inTx(ctx, "create role assignment", func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM principals WHERE id = ?)`, a.PrincipalID).Scan(&exists); err != nil {
			return fmt.Errorf("create role assignment %s on %s for %s: %w", a.Role, a.Scope, a.PrincipalID, err)
		}
		if !exists {
			return principalNotFound("id", a.PrincipalID)
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO role_assignments (principal_id, scope, role, created, created_by)
			VALUES (?, ?, ?, ?, ?)`,
			a.PrincipalID, a.Scope.String(), string(a.Role), toDB(a.Created), a.CreatedBy)
		switch {
		case isUniqueViolation(err):
			return berth.Errorf(berth.CodeConflict, "principal %s already holds the role %s on %s", principalRef(a), a.Role, a.Scope).
				WithDetail("role", string(a.Role)).WithDetail("scope", a.Scope.String())
		case err != nil:
			return fmt.Errorf("create role assignment %s on %s for %s: %w", a.Role, a.Scope, a.PrincipalID, err)
		}
		return nil
	})
}

// DeleteRoleAssignment removes the principal's role on exactly scope, or
// returns not_found.
func (db *DB) DeleteRoleAssignment(ctx context.Context, principalID string, role berth.Role, scope berth.Scope) error {
	res, err := db.write.ExecContext(ctx, `
		DELETE FROM role_assignments WHERE principal_id = ? AND scope = ? AND role = ?`,
		principalID, scope.String(), string(role))
	if err != nil {
		return fmt.Errorf("delete role assignment %s on %s for %s: %w", role, scope, principalID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete role assignment %s on %s for %s: %w", role, scope, principalID, err)
	} else if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "principal %s holds no role %s on %s", principalID, role, scope).
			WithDetail("role", string(role)).WithDetail("scope", scope.String())
	}
	return nil
}

// FindRoleAssignments returns the assignments filter selects, with
// PrincipalName filled in, ordered by principal id, then scope text, then role
// name (byte order). Assignments left behind by a deleted principal are not
// returned: they belong to no one (IDs are never reused).
func (db *DB) FindRoleAssignments(ctx context.Context, filter berth.RoleAssignmentFilter) ([]berth.RoleAssignment, error) {
	var (
		where []string
		args  []any
	)
	if filter.PrincipalID != "" {
		where = append(where, "ra.principal_id = ?")
		args = append(args, filter.PrincipalID)
	}
	if !filter.Scope.IsZero() {
		where = append(where, "ra.scope = ?")
		args = append(args, filter.Scope.String())
	}
	query := `
		SELECT ra.principal_id, p.name, ra.scope, ra.role, ra.created, ra.created_by
		FROM role_assignments ra JOIN principals p ON p.id = ra.principal_id`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY ra.principal_id, ra.scope, ra.role"

	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("find role assignments: %w", err)
	}
	defer rows.Close()
	out := []berth.RoleAssignment{}
	for rows.Next() {
		var (
			a       berth.RoleAssignment
			scope   string
			role    string
			created int64
		)
		if err := rows.Scan(&a.PrincipalID, &a.PrincipalName, &scope, &role, &created, &a.CreatedBy); err != nil {
			return nil, fmt.Errorf("find role assignments: %w", err)
		}
		// The scope was written by Scope.String; reading it back cannot fail
		// unless the file was edited by hand, which is internal, not the
		// caller's invalid scope: hence %v, not %w.
		if a.Scope, err = berth.ParseScope(scope); err != nil {
			return nil, fmt.Errorf("find role assignments: stored scope %q of %s: %v", scope, a.PrincipalID, err)
		}
		a.Role = berth.Role(role)
		a.Created = fromDB(created)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find role assignments: %w", err)
	}
	return out, nil
}

// principalRef names a's principal for messages: its name when the caller set
// it, else its ID.
func principalRef(a berth.RoleAssignment) string {
	if a.PrincipalName != "" {
		return a.PrincipalName
	}
	return a.PrincipalID
}
