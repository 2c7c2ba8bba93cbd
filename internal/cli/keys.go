package cli

import (
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
		Short: "List the signing keys of the data folder, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(f, e.getenv)
			if err != nil {
				return err
			}
			kr, err := loadKeyring(cfg, cfg.URL)
			if err != nil {
				return err
			}
			return printKeys(e, kr.Keys())
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
keep verifying until they expire, and its public key stays in the JWKS until then.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(f, e.getenv)
			if err != nil {
				return err
			}
			kr, err := loadKeyring(cfg, cfg.URL)
			if err != nil {
				return err
			}
			kid, err := kr.Rotate(time.Now())
			if err != nil {
				return err
			}
			if e.output != "json" {
				fmt.Fprintf(e.stdout, "new signing key %s\n", kid)
			}
			return printKeys(e, kr.Keys())
		},
	}
	f.register(cmd.Flags(), false)
	return cmd
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
