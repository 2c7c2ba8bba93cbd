package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

func newTokenCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Personal access tokens: a person's own expiring secrets, limited to named scopes",
		Long: `A personal access token works as a password for every client (docker, podman,
crane, oras, helm), with your principal name or client id as the user name. It
is limited to the scopes named at its creation, never more than you hold, and
your roles are checked again on every use: a role you lose, it loses. It needs a
person's login (berth login HOST, through the identity provider).`,
	}
	cmd.AddCommand(tokenCreateCommand(e), tokenListCommand(e), tokenRevokeCommand(e))
	return cmd
}

func tokenCreateCommand(e *env) *cobra.Command {
	var req api.CreateTokenRequest
	cmd := &cobra.Command{
		Use:   "create --scope SCOPE… [--expires-in 30d] [--description TEXT]",
		Short: "Create a personal access token; its value is printed once",
		Example: `  berth token create --scope repository:team/app:pull,push --expires-in 7d --description laptop
  berth token create --scope 'repository:team/app:pull' --scope registry:catalog:* -o json`,
		Args: argsExactly(0, "berth token create --scope SCOPE… [--expires-in 30d] [--description TEXT]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withClient(func(c *client.Client) error {
				t, err := c.CreateToken(cmd.Context(), req)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(t)
				}
				fmt.Fprintf(e.stdout, "%s\n", t.Value)
				fmt.Fprintf(e.stderr, "Token %s (%s…) of %s for %s, expires %s. It is shown once; use it as the password with the user name %s.\n",
					t.ID, t.Hint, t.Principal, strings.Join(t.Scopes, " "), formatTime(t.Expires), t.Principal)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&req.Scopes, "scope", nil, "a scope the token may use, such as repository:team/app:pull,push or registry:catalog:* (repeatable)")
	f.StringVar(&req.ExpiresIn, "expires-in", "", "lifetime such as 7d or 12h (default 30d; at most auth.max_token_lifetime)")
	f.StringVar(&req.Description, "description", "", "what the token is for")
	return cmd
}

func tokenListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List your personal access tokens (never their values)",
		Args:  argsExactly(0, "berth token list"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withClient(func(c *client.Client) error {
				ts, err := c.ListTokens(cmd.Context())
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(ts)
				}
				if len(ts) == 0 {
					fmt.Fprintln(e.stderr, "No personal access token: berth token create --scope SCOPE")
					return nil
				}
				tw := e.table()
				fmt.Fprintln(tw, "ID\tHINT\tSCOPES\tEXPIRES\tSTATUS\tDESCRIPTION")
				for _, t := range ts {
					status := "active"
					if t.Revoked != nil {
						status = "revoked"
					}
					fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\t%s\n", t.ID, t.Hint, strings.Join(t.Scopes, " "), formatTime(t.Expires), status, t.Description)
				}
				return tw.Flush()
			})
		},
	}
}

func tokenRevokeCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a personal access token: clients using it are refused at once",
		Args:  argsExactly(1, "berth token revoke ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Checked here too: a token's value given for its id must not
			// travel in a URL to the server's request log.
			if _, err := berth.ParsePATID(args[0]); err != nil {
				return err
			}
			return e.withClient(func(c *client.Client) error {
				t, err := c.RevokeToken(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(t)
				}
				fmt.Fprintf(e.stdout, "Revoked personal access token %s (%s…)\n", t.ID, t.Hint)
				return nil
			})
		},
	}
}
