package cli

import (
	"fmt"
	"strings"

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
		newSecretListCommand(e),
		&cobra.Command{
			Use:     "remove PRINCIPAL SECRET_ID",
			Aliases: []string{"delete"},
			Short:   "Remove a secret: it and the refresh tokens obtained with it stop working at once",
			Args:    argsExactly(2, "berth secret remove PRINCIPAL SECRET_ID (berth secret list PRINCIPAL shows the ids)"),
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

// newSecretListCommand is berth secret list: one principal's secrets, or,
// with --expiring-within, the active secrets of every principal that expire
// soon and the service connections that depend on each.
func newSecretListCommand(e *env) *cobra.Command {
	var within string
	const usage = "berth secret list PRINCIPAL, or berth secret list [PRINCIPAL] --expiring-within 30d"
	cmd := &cobra.Command{
		Use:   "list [PRINCIPAL] [--expiring-within 30d]",
		Short: "List secrets: a principal's (hint, state, expiry, last use), or every principal's that expire soon",
		Long: `List a principal's secrets, removed and expired ones included: hint, state,
expiry and last use, never the value.

With --expiring-within (a duration such as 30d, 7d or 12h), list instead the
active secrets of every principal (or of PRINCIPAL alone) that expire within
it, soonest first, with the days left and the service connections that
authenticate with each: what to renew (berth connection save NAME, or
berth secret add PRINCIPAL) before a pipeline breaks. Without PRINCIPAL, the
credentials of upstream registries (berth upstream create --expires-at)
that expire within it are listed too. Listing every
principal's secrets needs the role owner on registry.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if within != "" {
				if len(args) > 1 {
					return berth.Errorf(berth.CodeInvalid, "%s --expiring-within takes at most one principal, and %d were given", cmd.CommandPath(), len(args)).
						WithHint("%s", usage)
				}
				return nil
			}
			return argsExactly(1, usage)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if within != "" {
				principal := ""
				if len(args) == 1 {
					principal = args[0]
				}
				return e.withClient(func(c *client.Client) error {
					l, err := c.ListExpiringSecrets(cmd.Context(), within, principal)
					if err != nil {
						return err
					}
					return printExpiringSecrets(e, l)
				})
			}
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
	}
	cmd.Flags().StringVar(&within, "expiring-within", "", "list the active secrets of every principal that expire within this duration, such as 30d")
	return cmd
}

// printExpiringSecrets prints the answer of --expiring-within: with -o json,
// the list of secrets, as berth secret list PRINCIPAL prints its own.
func printExpiringSecrets(e *env, l api.ExpiringSecretList) error {
	if e.output == "json" {
		return e.printJSON(l.Secrets)
	}
	if len(l.Secrets) == 0 {
		fmt.Fprintf(e.stderr, "No active secret expires within %s.\n", l.ExpiringWithin)
		return nil
	}
	tw := e.table()
	fmt.Fprintln(tw, "PRINCIPAL\tID\tHINT\tEXPIRES\tDAYS LEFT\tCONNECTIONS\tDESCRIPTION")
	for _, s := range l.Secrets {
		conns := "-"
		if len(s.Connections) > 0 {
			conns = strings.Join(s.Connections, ", ")
		}
		if s.Kind == "upstream" {
			fmt.Fprintf(tw, "upstream %s\t-\t%s\t%s\t%d\t-\tcredential of upstream %s (berth upstream verify %s)\n", s.Upstream, s.Username, formatTime(s.Expires), s.DaysLeft, s.Upstream, s.Upstream)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%d\t%s\t%s\n", s.Principal, s.ID, s.Hint, formatTime(s.Expires), s.DaysLeft, conns, s.Description)
	}
	return tw.Flush()
}
