package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/oauth"
)

func newKeysCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the keys that sign access tokens",
	}
	cmd.AddCommand(newKeysListCommand(e), newKeysRotateCommand(e))
	return cmd
}

func newKeysListCommand(e *env) *cobra.Command {
	var f configFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys, oldest first",
		Long: `List the signing keys of the server, oldest first, through its management API
(BERTH_URL and an owner's credentials, or the stored login).

With --data DIR or --db postgres://… it reads the keys of that data folder or
database directly, with the server stopped or unreachable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !e.localStores(cmd) {
				return e.withClient(func(c *client.Client) error {
					l, err := c.ListKeys(cmd.Context())
					if err != nil {
						return err
					}
					return printKeys(e, l.Keys)
				})
			}
			return withKeys(cmd.Context(), e, f, func(kr *oauth.Keyring) error {
				return printKeys(e, api.NewKeyList(kr.Keys()).Keys)
			})
		},
	}
	f.register(cmd.Flags(), false)
	return cmd
}

func newKeysRotateCommand(e *env) *cobra.Command {
	var f configFlags
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new signing key; the old one verifies its tokens until they expire",
		Long: `Add a new signing key and retire the current one, through the server's
management API (BERTH_URL and an owner's credentials, or the stored login): the
server signs with the new key at once (on PostgreSQL, every replica does).
Tokens signed by the old key keep verifying until they expire, and its public
key stays in the JWKS until then.

With --data DIR it rotates the keys of that data folder directly (break-glass:
a running berth serve picks the new key up within 30 seconds). With --db
postgres://… (or BERTH_DB) and the key encryption key
(BERTH_KEY_ENCRYPTION_KEY), it rotates the keys the replicas share, sealed in
the database, and every replica picks the new key up at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rotated := func(kid string) {
				if e.output != "json" {
					fmt.Fprintf(e.stdout, "new signing key %s\n", kid)
				}
			}
			if !e.localStores(cmd) {
				return e.withClient(func(c *client.Client) error {
					l, err := c.RotateKeys(cmd.Context())
					if err != nil {
						return err
					}
					rotated(l.Rotated)
					return printKeys(e, l.Keys)
				})
			}
			return withKeys(cmd.Context(), e, f, func(kr *oauth.Keyring) error {
				kid, err := kr.Rotate(time.Now())
				if err != nil {
					return err
				}
				rotated(kid)
				return printKeys(e, api.NewKeyList(kr.Keys()).Keys)
			})
		},
	}
	f.register(cmd.Flags(), false)
	return cmd
}

// withKeys opens the signing keys cfg names for fn: the data folder's (the
// metadata store is not opened), or on PostgreSQL the replicas', which no
// replica changes until fn returns; each key fn saves there is announced to
// every replica.
func withKeys(ctx context.Context, e *env, f configFlags, fn func(*oauth.Keyring) error) error {
	cfg, err := loadConfig(f, e.getenv)
	if err != nil {
		return err
	}
	if !cfg.Postgres() {
		if err := requireDataFolder(cfg.Data); err != nil {
			return err
		}
		kr, err := loadKeyring(cfg, cfg.URL)
		if err != nil {
			return err
		}
		return fn(kr)
	}
	st, err := openServed(ctx, cfg, newLogger(cfg.Log, e.stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	return st.withKeyring(ctx, cfg, cfg.URL, fn)
}

func printKeys(e *env, keys []api.Key) error {
	if e.output == "json" {
		return e.printJSON(keys)
	}
	for _, k := range keys {
		state := "signing"
		if k.RetiredAt != nil {
			state = "retired " + k.RetiredAt.Format(time.RFC3339)
		}
		fmt.Fprintf(e.stdout, "%s  %s  created %s  %s\n", k.ID, k.Algorithm, k.CreatedAt.Format(time.RFC3339), state)
	}
	return nil
}
