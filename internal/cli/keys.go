package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

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

type keyJSON struct {
	ID        string     `json:"id"`
	Algorithm string     `json:"algorithm"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	Signing   bool       `json:"signing"`
}

func newKeysListCommand(e *env) *cobra.Command {
	var f configFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys (of the data folder, or of --db), oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withKeys(cmd.Context(), e, f, func(kr *oauth.Keyring) error {
				return printKeys(e, kr.Keys())
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
		Long: `Add a new signing key to the data folder and retire the current one. A running
berth serve picks the new key up within 30 seconds; tokens signed by the old key
keep verifying until they expire, and its public key stays in the JWKS until then.

With --db postgres://… (or BERTH_DB) and the key encryption key
(BERTH_KEY_ENCRYPTION_KEY), it rotates the keys the replicas share, sealed in
the database, and every replica picks the new key up at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withKeys(cmd.Context(), e, f, func(kr *oauth.Keyring) error {
				kid, err := kr.Rotate(time.Now())
				if err != nil {
					return err
				}
				if e.output != "json" {
					fmt.Fprintf(e.stdout, "new signing key %s\n", kid)
				}
				return printKeys(e, kr.Keys())
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

func printKeys(e *env, keys []oauth.KeyInfo) error {
	out := make([]keyJSON, 0, len(keys))
	for i, k := range keys {
		j := keyJSON{ID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.Created.UTC(), Signing: i == len(keys)-1}
		if !k.Retired.IsZero() {
			r := k.Retired.UTC()
			j.RetiredAt = &r
		}
		out = append(out, j)
	}
	if e.output == "json" {
		return e.printJSON(out)
	}
	for _, k := range out {
		state := "signing"
		if k.RetiredAt != nil {
			state = "retired " + k.RetiredAt.Format(time.RFC3339)
		}
		fmt.Fprintf(e.stdout, "%s  %s  created %s  %s\n", k.ID, k.Algorithm, k.CreatedAt.Format(time.RFC3339), state)
	}
	return nil
}
