package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

func newSecretCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage the client secrets of principals",
		Long: `Manage client secrets. A principal may hold several at once, so a secret is
rotated without downtime: add a new one, move clients to it, remove the old one.
A secret's value is shown once, when it is added; berth keeps only its hash.
Managing secrets needs the role owner on registry.`,
	}
	var add api.AddSecretRequest
	addCmd := &cobra.Command{
		Use:   "add PRINCIPAL",
		Short: "Add a client secret and print its value, once",
		Long: `Add a client secret to a principal and print its value, which is never shown
again. In text output the value alone goes to stdout and the rest to stderr, so
SECRET=$(berth secret add ci-web) captures just the value.

--expires-in takes a positive duration such as 30s, 12h or 90d (the default),
up to the server's maximum (365d unless configured otherwise).`,
		Args: argsExactly(1, "berth secret add PRINCIPAL [--expires-in 90d] [--description TEXT]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				s, err := c.AddSecret(cmd.Context(), args[0], add)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(s)
				}
				fmt.Fprintf(e.stderr, "Added secret %s… (id %s) to principal %s; it expires at %s, in %s.\n",
					s.Hint, s.ID, s.Principal, formatTime(s.Expires), berth.FormatLifetime(s.Expires.Sub(s.Created)))
				fmt.Fprintln(e.stdout, s.Value)
				fmt.Fprintf(e.stderr, "Copy the value now: it will not be shown again, since berth keeps only its hash.\n")
				return nil
			})
		},
	}
	addCmd.Flags().StringVar(&add.ExpiresIn, "expires-in", "", "lifetime: a positive duration such as 30s, 12h or 90d (default 90d, or the server's maximum when shorter)")
	addCmd.Flags().StringVar(&add.Description, "description", "", "what the secret is for, such as the pipeline that uses it")

	cmd.AddCommand(
		addCmd,
		&cobra.Command{
			Use:   "list PRINCIPAL",
			Short: "List a principal's secrets: hint, state, expiry, last use (never the value)",
			Args:  argsExactly(1, "berth secret list PRINCIPAL"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					ss, err := c.ListSecrets(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(ss)
					}
					if len(ss) == 0 {
						fmt.Fprintf(e.stderr, "Principal %s has no secrets (berth secret add %s adds one).\n", args[0], args[0])
						return nil
					}
					tw := e.table()
					fmt.Fprintln(tw, "ID\tHINT\tSTATE\tCREATED\tEXPIRES\tLAST USED\tDESCRIPTION")
					for _, s := range ss {
						fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Hint, s.State,
							formatTime(s.Created), formatTime(s.Expires), formatTimePtr(s.LastUsed), s.Description)
					}
					return tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use:   "remove PRINCIPAL SECRET_ID",
			Short: "Remove a secret: it and the refresh tokens obtained with it stop working at once",
			Args:  argsExactly(2, "berth secret remove PRINCIPAL SECRET_ID (berth secret list PRINCIPAL shows the ids)"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					s, err := c.RemoveSecret(cmd.Context(), args[0], args[1])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(s)
					}
					fmt.Fprintf(e.stdout, "Removed secret %s… (id %s) of principal %s; %d refresh token%s revoked\n",
						s.Hint, s.ID, s.Principal, s.RefreshTokensRevoked, plural(s.RefreshTokensRevoked))
					return nil
				})
			},
		},
	)
	return cmd
}
