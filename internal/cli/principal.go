package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/client"
)

func newPrincipalCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "principal",
		Short: "Manage principals, the identities that authenticate",
		Long: `Manage principals: the users and service principals that authenticate to
berth with a client id and a secret (or, through a service connection, with no
secret at all). Managing principals needs the role owner on registry.

The CLI reaches its server with BERTH_URL, BERTH_CLIENT_ID and
BERTH_CLIENT_SECRET.`,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "create NAME",
			Short: "Create a service principal",
			Args:  argsExactly(1, "berth principal create NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					p, err := c.CreatePrincipal(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(p)
					}
					fmt.Fprintf(e.stdout, "Created principal %s\n  client id: %s\n", p.Name, p.ClientID)
					fmt.Fprintf(e.stderr, "It has no secret and no role yet:\n  berth secret add %s --expires-in 90d\n  berth role assign --principal %s --role pull --scope NAMESPACE/*\n", p.Name, p.Name)
					return nil
				})
			},
		},
		principalListCommand(e),
		&cobra.Command{
			Use:   "show NAME",
			Short: "Show a principal, its client id and its roles",
			Args:  argsExactly(1, "berth principal show NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					p, err := c.GetPrincipal(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(p)
					}
					fmt.Fprintf(e.stdout, "name:       %s\nclient id:  %s\nid:         %s\nkind:       %s\nstatus:     %s\ncreated:    %s\n",
						p.Name, p.ClientID, p.ID, p.Kind, status(p.Principal), formatTime(p.Created))
					if p.IdP != "" {
						groups := make([]string, len(p.Groups))
						for i, g := range p.Groups {
							groups[i] = string(g)
						}
						fmt.Fprintf(e.stdout, "signs in:   through %s\ngroups:     %s\n", p.IdP, strings.Join(groups, " "))
						for _, a := range p.GroupRoles {
							fmt.Fprintf(e.stdout, "  %s on %s, through %s\n", a.Role, a.Scope, a.Group)
						}
					}
					if len(p.Roles) == 0 {
						fmt.Fprintln(e.stdout, "roles:      none")
						return nil
					}
					fmt.Fprintln(e.stdout, "roles:")
					for _, a := range p.Roles {
						fmt.Fprintf(e.stdout, "  %s on %s\n", a.Role, a.Scope)
					}
					return nil
				})
			},
		},
		&cobra.Command{
			Use:   "disable NAME",
			Short: "Disable a principal: its secrets and tokens stop working at once",
			Args:  argsExactly(1, "berth principal disable NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					p, err := c.DisablePrincipal(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(p)
					}
					fmt.Fprintf(e.stdout, "Disabled principal %s: its secrets and tokens no longer work (berth principal enable %s undoes it)\n", p.Name, p.Name)
					return nil
				})
			},
		},
		&cobra.Command{
			Use:   "enable NAME",
			Short: "Enable a disabled principal",
			Args:  argsExactly(1, "berth principal enable NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					p, err := c.EnablePrincipal(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(p)
					}
					fmt.Fprintf(e.stdout, "Enabled principal %s\n", p.Name)
					return nil
				})
			},
		},
		&cobra.Command{
			Use:     "delete NAME",
			Aliases: []string{"remove"},
			Short:   "Delete a principal with its secrets, refresh tokens and roles",
			Args:    argsExactly(1, "berth principal delete NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					p, err := c.DeletePrincipal(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(p)
					}
					fmt.Fprintf(e.stdout, "Deleted principal %s (%d role assignment%s removed, %d refresh token%s revoked)\n",
						p.Name, p.RolesRemoved, plural(p.RolesRemoved), p.RefreshTokensRevoked, plural(p.RefreshTokensRevoked))
					return nil
				})
			},
		},
	)
	return cmd
}

// withClient runs fn with a client of the configured server.
func (e *env) withClient(fn func(*client.Client) error) error {
	c, err := e.apiClient()
	if err != nil {
		return err
	}
	return fn(c)
}

func status(p berth.Principal) string {
	if p.Disabled {
		return "disabled"
	}
	return "enabled"
}

func principalListCommand(e *env) *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "list [--kind user|service]",
		Short: "List principals: service principals and people (kind user)",
		Args:  argsExactly(0, "berth principal list [--kind user|service]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			k := berth.PrincipalKind(kind)
			if kind != "" && !k.Valid() {
				return berth.Errorf(berth.CodeInvalid, "--kind %q is not user or service", kind).WithHint("berth principal list --kind user")
			}
			return e.withClient(func(c *client.Client) error {
				ps, err := c.ListPrincipalsOfKind(cmd.Context(), k)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(ps)
				}
				tw := e.table()
				fmt.Fprintln(tw, "NAME\tCLIENT ID\tKIND\tSTATUS\tCREATED")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.ClientID, p.Kind, status(p), formatTime(p.Created))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "only principals of this kind: user (people who sign in) or service")
	return cmd
}
