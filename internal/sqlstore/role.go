package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth"
)

var _ berth.RoleStore = (*Store)(nil)

// CreateRoleAssignment records a; not_found when no principal has
// a.PrincipalID, conflict when it already holds a.Role on a.Scope. Either
// way nothing changes. The principal is checked in the same write
// transaction, its row locked until the commit (see lockPrincipal), so a
// concurrent DeletePrincipal either precedes it (not_found) or follows it and
// deletes the assignment too.
func (s *Store) CreateRoleAssignment(ctx context.Context, a berth.RoleAssignment) error {
	if a.Scope.IsZero() {
		return errors.New("create role assignment: no scope")
	}
	return s.inTx(ctx, "create role assignment", func(tx Querier) error {
		if err := s.lockPrincipal(ctx, tx, a.PrincipalID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO role_assignments (principal_id, scope, role, created, created_by)
			VALUES ($1, $2, $3, $4, $5)`,
			a.PrincipalID, a.Scope.String(), string(a.Role), a.Created, a.CreatedBy)
		switch {
		case s.d.IsUniqueViolation(err):
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
func (s *Store) DeleteRoleAssignment(ctx context.Context, principalID string, role berth.Role, scope berth.Scope) error {
	n, err := s.c.Write().Exec(ctx, `
		DELETE FROM role_assignments WHERE principal_id = $1 AND scope = $2 AND role = $3`,
		principalID, scope.String(), string(role))
	if err != nil {
		return fmt.Errorf("delete role assignment %s on %s for %s: %w", role, scope, principalID, err)
	}
	if n == 0 {
		return berth.Errorf(berth.CodeNotFound, "principal %s holds no role %s on %s", principalID, role, scope).
			WithDetail("role", string(role)).WithDetail("scope", scope.String())
	}
	return nil
}

// FindRoleAssignments returns the assignments filter selects, with
// PrincipalName filled in, ordered by principal id, then scope text, then
// role name (byte order). Only assignments of existing principals are
// returned (IDs are never reused).
func (s *Store) FindRoleAssignments(ctx context.Context, filter berth.RoleAssignmentFilter) ([]berth.RoleAssignment, error) {
	var (
		where []string
		args  []any
	)
	if filter.PrincipalID != "" {
		args = append(args, filter.PrincipalID)
		where = append(where, fmt.Sprintf("ra.principal_id = $%d", len(args)))
	}
	if !filter.Scope.IsZero() {
		args = append(args, filter.Scope.String())
		where = append(where, fmt.Sprintf("ra.scope = $%d", len(args)))
	}
	query := `
		SELECT ra.principal_id, p.name, ra.scope, ra.role, ra.created, ra.created_by
		FROM role_assignments ra JOIN principals p ON p.id = ra.principal_id`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY ra.principal_id, ra.scope, ra.role"

	rows, err := s.c.Read().Query(ctx, query, args...)
	out, err := collect(rows, err, func(r Rows) (berth.RoleAssignment, error) {
		var (
			a     berth.RoleAssignment
			scope string
			role  string
		)
		if err := r.Scan(&a.PrincipalID, &a.PrincipalName, &scope, &role, Time(&a.Created), &a.CreatedBy); err != nil {
			return a, err
		}
		// The scope was written by Scope.String; reading it back fails only
		// when the row was edited by hand, which is internal, not the
		// caller's invalid scope: hence %v, not %w.
		var err error
		if a.Scope, err = berth.ParseScope(scope); err != nil {
			return a, fmt.Errorf("stored scope %q of %s: %v", scope, a.PrincipalID, err)
		}
		a.Role = berth.Role(role)
		return a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find role assignments: %w", err)
	}
	return out, nil
}

// principalRef names a's principal for messages: its name when the caller
// set it, else its ID.
func principalRef(a berth.RoleAssignment) string {
	if a.PrincipalName != "" {
		return a.PrincipalName
	}
	return a.PrincipalID
}
