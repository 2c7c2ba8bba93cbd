package berth

import (
	"context"
	"fmt"
	"io"
	"time"
)

// The registry's owners are whoever holds owner on registry. When the last
// secret among them expires, nobody can manage the registry any more: the
// first admin's secret, which lasts DefaultSecretLifetime, is the usual case.
// OwnerAccess says when that is, the server warns at OwnerAccessWarnings, and
// Recovery restores an owner from the stores themselves (berth admin recover).

// OwnerAccess is the live secret of an enabled owner of the registry that
// expires last: until then, someone can manage the registry.
type OwnerAccess struct {
	Principal string    // its principal's name; "" when no owner holds a live secret
	SecretID  string    // the secret
	Until     time.Time // when it expires; zero when no owner holds a live secret
}

// OwnerStore is what FindOwnerAccess and Recovery read and write.
type OwnerStore interface {
	IdentityStore
	RoleStore
}

// FindOwnerAccess returns the live secret of an enabled owner of the registry
// that expires last, or the zero OwnerAccess when there is none.
func FindOwnerAccess(ctx context.Context, s OwnerStore, now time.Time) (OwnerAccess, error) {
	as, err := s.FindRoleAssignments(ctx, RoleAssignmentFilter{Scope: RegistryScope})
	if err != nil {
		return OwnerAccess{}, fmt.Errorf("find the owners of the registry: %w", err)
	}
	var best OwnerAccess
	for _, a := range as {
		if a.Role != RoleOwner || a.PrincipalID == "" {
			continue
		}
		p, err := s.FindPrincipalByID(ctx, a.PrincipalID)
		if IsCode(err, CodeNotFound) {
			continue
		} else if err != nil {
			return OwnerAccess{}, err
		}
		if p.Disabled {
			continue
		}
		secrets, err := s.FindSecrets(ctx, p.ID)
		if err != nil && !IsCode(err, CodeNotFound) {
			return OwnerAccess{}, err
		}
		for _, sec := range secrets {
			if sec.State(now) == SecretActive && sec.Expires.After(best.Until) {
				best = OwnerAccess{Principal: p.Name, SecretID: sec.ID, Until: sec.Expires}
			}
		}
	}
	return best, nil
}

// OwnerAccessWarnings are the times before OwnerAccess.Until at which the
// server warns, most distant first.
var OwnerAccessWarnings = []time.Duration{30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour}

// Warning returns the nearest warning threshold the owners' access is within
// at now (30, 7 or 1 day, as a duration), -1 once it has lapsed or when no
// owner holds a live secret, and 0 while it is further away than every
// threshold.
func (o OwnerAccess) Warning(now time.Time) time.Duration {
	left := o.Until.Sub(now)
	if o.Until.IsZero() || left <= 0 {
		return -1
	}
	var w time.Duration
	for _, t := range OwnerAccessWarnings {
		if left <= t {
			w = t
		}
	}
	return w
}

// Recovery is a break-glass recovery of owner access, planned: a new secret
// for the principal Name, which is created, enabled or made owner of the
// registry as needed. Plan it, save the credentials, then Apply it, so that
// the credentials are never lost.
type Recovery struct {
	Principal Principal
	Secret    Secret
	Value     SecretValue
	// Created, Enabled and Assigned say what Apply does besides adding the
	// secret: create the principal, enable it, make it owner of the registry.
	Created, Enabled, Assigned bool
}

// PlanRecovery prepares a new owner secret for the principal name (AdminName
// when empty), reading the store but changing nothing. A principal that is a
// person is refused: recovery makes a service principal's credential.
func PlanRecovery(ctx context.Context, s OwnerStore, rand io.Reader, h *SecretHasher, name string, now time.Time, lifetime time.Duration) (Recovery, error) {
	if name == "" {
		name = AdminName
	}
	if name == AnonymousName {
		return Recovery{}, Errorf(CodeInvalid, "the anonymous principal cannot be an owner").WithHint("berth admin recover --principal %s", AdminName)
	}
	var r Recovery
	p, err := s.FindPrincipalByName(ctx, name)
	switch {
	case IsCode(err, CodeNotFound):
		if p, err = NewPrincipal(rand, name, PrincipalService, now); err != nil {
			return Recovery{}, err
		}
		r.Created = true
	case err != nil:
		return Recovery{}, err
	case p.Kind != PrincipalService:
		return Recovery{}, Errorf(CodeInvalid, "principal %s is a %s, not a service principal: recovery gives a service principal a secret", name, p.Kind).
			WithHint("berth admin recover --principal %s", AdminName)
	default:
		r.Enabled = p.Disabled
		owner, err := holdsRegistryOwner(ctx, s, p.ID)
		if err != nil {
			return Recovery{}, err
		}
		r.Assigned = !owner
	}
	if r.Created {
		r.Assigned = true
	}
	sec, v, err := NewSecret(rand, h, p.ID, now, lifetime, "break-glass recovery (berth admin recover)")
	if err != nil {
		return Recovery{}, err
	}
	r.Principal, r.Secret, r.Value = p, sec, v
	return r, nil
}

func holdsRegistryOwner(ctx context.Context, s RoleStore, principalID string) (bool, error) {
	as, err := s.FindRoleAssignments(ctx, RoleAssignmentFilter{PrincipalID: principalID, Scope: RegistryScope})
	if err != nil {
		return false, err
	}
	for _, a := range as {
		if a.Role == RoleOwner {
			return true, nil
		}
	}
	return false, nil
}

// Apply stores the recovery: the principal (created or enabled), its owner
// role on the registry and the new secret.
func (r Recovery) Apply(ctx context.Context, s OwnerStore) error {
	p := r.Principal
	if r.Created {
		if err := s.CreatePrincipal(ctx, p); err != nil {
			return fmt.Errorf("create %s: %w", p.Name, err)
		}
	}
	if r.Enabled {
		enabled := false
		if _, err := s.UpdatePrincipal(ctx, p.ID, PrincipalUpdate{Disabled: &enabled}); err != nil {
			return fmt.Errorf("enable %s: %w", p.Name, err)
		}
	}
	if r.Assigned {
		a := RoleAssignment{PrincipalID: p.ID, PrincipalName: p.Name, Role: RoleOwner, Scope: RegistryScope, Created: r.Secret.Created}
		if err := s.CreateRoleAssignment(ctx, a); err != nil && !IsCode(err, CodeConflict) {
			return fmt.Errorf("make %s owner of the registry: %w", p.Name, err)
		}
	}
	if err := s.CreateSecret(ctx, r.Secret); err != nil {
		return fmt.Errorf("create the secret of %s: %w", p.Name, err)
	}
	return nil
}
