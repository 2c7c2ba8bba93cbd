package berth

import (
	"context"
	"fmt"
	"io"
	"time"
)

// AdminName is the principal the first start creates, with owner on the
// registry.
const AdminName = "admin"

// Bootstrap is what a first start on an empty data folder creates: the admin
// principal, its first secret and its owner role on the registry.
type Bootstrap struct {
	Admin  Principal
	Secret Secret
	Value  SecretValue
}

// PlanBootstrap prepares the first start without storing anything, so the
// caller can save the admin's credentials before they exist in the store: a
// crash in between then only repeats the first start.
func PlanBootstrap(rand io.Reader, h *SecretHasher, now time.Time) (Bootstrap, error) {
	admin, err := NewPrincipal(rand, AdminName, PrincipalService, now)
	if err != nil {
		return Bootstrap{}, err
	}
	s, v, err := NewSecret(rand, h, admin.ID, now, DefaultSecretLifetime, "created at first start")
	if err != nil {
		return Bootstrap{}, err
	}
	return Bootstrap{Admin: admin, Secret: s, Value: v}, nil
}

// NeedsBootstrap reports whether the store holds no principal but the
// anonymous one.
func NeedsBootstrap(ctx context.Context, s PrincipalStore) (bool, error) {
	ps, err := s.FindPrincipals(ctx, PrincipalFilter{Limit: 2})
	if err != nil {
		return false, fmt.Errorf("find principals: %w", err)
	}
	for _, p := range ps {
		if p.Name != AnonymousName {
			return false, nil
		}
	}
	return true, nil
}

// Apply stores the planned admin, its secret and its owner assignment.
func (b Bootstrap) Apply(ctx context.Context, s interface {
	IdentityStore
	RoleStore
}) error {
	if err := s.CreatePrincipal(ctx, b.Admin); err != nil {
		return fmt.Errorf("create %s: %w", AdminName, err)
	}
	if err := s.CreateSecret(ctx, b.Secret); err != nil {
		return fmt.Errorf("create the secret of %s: %w", AdminName, err)
	}
	a := RoleAssignment{PrincipalID: b.Admin.ID, PrincipalName: AdminName, Role: RoleOwner, Scope: RegistryScope, Created: b.Admin.Created}
	if err := s.CreateRoleAssignment(ctx, a); err != nil {
		return fmt.Errorf("make %s owner of the registry: %w", AdminName, err)
	}
	return nil
}

// EnsureAnonymous creates the anonymous principal, which unauthenticated
// requests act as, when the store has none. It holds no secret and no role
// until an owner gives it pull somewhere.
func EnsureAnonymous(ctx context.Context, s PrincipalStore, rand io.Reader, now time.Time) error {
	_, err := s.FindPrincipalByName(ctx, AnonymousName)
	if !IsCode(err, CodeNotFound) {
		return err
	}
	p, err := NewPrincipal(rand, AnonymousName, PrincipalService, now)
	if err != nil {
		return err
	}
	if err := s.CreatePrincipal(ctx, p); err != nil && !IsCode(err, CodeConflict) {
		return fmt.Errorf("create %s: %w", AnonymousName, err)
	}
	return nil
}
