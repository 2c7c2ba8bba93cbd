package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/oauth"
)

// sealingKeyFile is the data folder's key that seals identity providers'
// client secrets and refresh tokens when no key_encryption_key is set (a
// single server on SQLite). Losing it makes the providers' secrets
// unreadable: add them again.
const sealingKeyFile = "sealing-key"

// peopleSealer returns the sealer of people's secrets: the key encryption
// key's when one is configured (always on PostgreSQL), else the data
// folder's sealing key, created on first start.
func (st *served) peopleSealer(cfg Config) (*oauth.Sealer, error) {
	if st.sealer != nil {
		return st.sealer, nil
	}
	path := filepath.Join(cfg.Data, sealingKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, b); err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		if err := atomicfile.Write(path, b); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return oauth.NewSealer(b, rand.Reader)
}

// ensureOwnerGroups makes each group of groups owner on registry, unless it
// is already (auth.owner_groups, berth serve --owner-group), and returns
// the audit events of the assignments it made.
func ensureOwnerGroups(ctx context.Context, meta berth.MetadataStore, groups []string, logger *slog.Logger) ([]berth.AuditEvent, error) {
	var made []berth.AuditEvent
	for _, g := range groups {
		a := berth.GroupRoleAssignment{Group: berth.Group(g), Role: berth.RoleOwner, Scope: berth.RegistryScope, Created: serveNow().UTC().Truncate(time.Microsecond)}
		err := meta.CreateGroupRoleAssignment(ctx, a)
		switch {
		case berth.IsCode(err, berth.CodeConflict):
		case err != nil:
			return nil, err
		default:
			logger.Info("group made owner on registry", slog.String("group", g))
			made = append(made, operatorEvent(ctx, "configuration", berth.AuditRoleAssign, g, map[string]string{
				"group": g, "role": string(berth.RoleOwner), "scope": berth.RegistryScope.String(), "from": "auth.owner_groups or --owner-group"}))
		}
	}
	return made, nil
}

// ensureIdentityProviders adds the configuration's identity providers, or
// brings those added before up to date (same name), keeping their people
// linked. The client secrets are read now and sealed. A provider found as
// configured is left alone. It returns the audit events of the providers it
// added or changed.
func ensureIdentityProviders(ctx context.Context, meta berth.MetadataStore, cfg Config, sealer *oauth.Sealer, getenv func(string) string, logger *slog.Logger) ([]berth.AuditEvent, error) {
	var changed []berth.AuditEvent
	for _, c := range cfg.IdentityProviders {
		secret := getenv(c.ClientSecretEnv)
		if c.ClientSecretFile != "" {
			b, err := os.ReadFile(c.ClientSecretFile)
			if err != nil {
				return nil, berth.Errorf(berth.CodeInvalid, "identity provider %s: cannot read client_secret_file %s: %v", c.Name, c.ClientSecretFile, errors.Unwrap(err)).
					WithHint("make %s readable by the user berth runs as (chmod 0400, owned by that user), or give client_secret_env instead", c.ClientSecretFile)
			}
			secret = string(b)
		}
		secret = strings.TrimSpace(secret)
		if secret == "" {
			return nil, berth.Errorf(berth.CodeInvalid, "identity provider %s: its client secret is empty", c.Name).
				WithHint("put the secret the provider issued in %s%s", c.ClientSecretFile, c.ClientSecretEnv)
		}
		p, err := berth.NewIdentityProvider(rand.Reader, berth.IdentityProvider{Name: c.Name, Issuer: c.Issuer, ClientID: c.ClientID,
			GroupsClaim: c.GroupsClaim, UsernameClaim: c.UsernameClaim, Scopes: c.Scopes}, berth.OutboundPolicy{AllowPrivate: cfg.Outbound.AllowPrivate},
			serveNow().UTC().Truncate(time.Microsecond))
		if err != nil {
			return nil, err
		}
		old, err := meta.FindIdentityProviderByName(ctx, p.Name)
		switch {
		case err == nil:
			p.ID, p.Created = old.ID, old.Created
		case !berth.IsCode(err, berth.CodeNotFound):
			return nil, err
		}
		if old.ID != "" && !idpChanged(old, p, secret, sealer) {
			continue // as configured already: nothing to write or audit
		}
		if p.SealedSecret, err = sealer.Seal([]byte(secret), berth.IdPSecretAAD(p.ID)); err != nil {
			return nil, err
		}
		if old.ID != "" {
			err = meta.UpdateIdentityProvider(ctx, p)
		} else {
			err = meta.CreateIdentityProvider(ctx, p)
		}
		if err != nil {
			return nil, err
		}
		logger.Info("identity provider from the configuration", slog.String("idp", p.Name), slog.String("issuer", p.Issuer))
		changed = append(changed, operatorEvent(ctx, "configuration", berth.AuditIdPAdd, p.Name, map[string]string{
			"issuer": p.Issuer, "client_id": p.ClientID, "updated": strconv.FormatBool(old.ID != ""), "from": "identity_providers"}))
	}
	return changed, nil
}

// idpChanged reports whether p, with its client secret secret, differs from
// old as stored (a secret that no longer opens counts as changed).
func idpChanged(old, p berth.IdentityProvider, secret string, sealer *oauth.Sealer) bool {
	if !old.SameSettings(p) {
		return true
	}
	was, err := sealer.Open(old.SealedSecret, berth.IdPSecretAAD(old.ID))
	return err != nil || string(was) != secret
}
