package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
)

func newAccessCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Explain access decisions",
	}
	var principal, action, repository string
	usage := "berth access check --principal P --action pull|push|delete|ACTION --repository R"
	check := &cobra.Command{
		Use:   "check --principal P --action ACTION --repository R",
		Short: "Replay the decision on whether a principal may do an action on a repository",
		Long: `Replay, against the current role assignments, the decision the registry would
take: allowed, with the assignment that allows it, or denied, with the reason
code, the roles the principal holds and the command that grants what is missing.

ACTION is pull, push or delete, as docker asks for them, or a berth action
(content:read, metadata:read, content:write, metadata:write, content:delete,
catalog:list, role:assign). --principal defaults to yourself; checking another
principal needs owner on a scope covering the repository.

The exit status is 0 whenever the check ran, allowed or denied; -o json gives
"allowed", "reason" and "hint" to scripts.`,
		Args: argsExactly(0, usage),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlag("action", action, usage); err != nil {
				return err
			}
			return e.withClient(func(c *client.Client) error {
				d, err := c.CheckAccess(cmd.Context(), principal, action, repository)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(d)
				}
				on := "on repository " + d.Repository
				if d.Repository == "" {
					on = "on the registry"
				}
				if d.Allowed {
					fmt.Fprintf(e.stdout, "allowed: %s may %s %s", d.Actor.Name, d.RequestedAction, on)
					if d.Allowing != nil {
						fmt.Fprintf(e.stdout, ", by role %s on %s", d.Allowing.Role, d.Allowing.Scope)
					}
					fmt.Fprintln(e.stdout)
					return nil
				}
				fmt.Fprintf(e.stdout, "denied [%s]: %s\n", d.Reason, d.Message)
				if d.Hint != "" {
					fmt.Fprintf(e.stdout, "Try: %s\n", d.Hint)
				}
				return nil
			})
		},
	}
	check.Flags().StringVar(&principal, "principal", "", "the principal whose access to check (default: yourself)")
	check.Flags().StringVar(&action, "action", "", "pull, push, delete, or a berth action such as content:write")
	check.Flags().StringVar(&repository, "repository", "", "the repository, such as team/app")
	cmd.AddCommand(check)
	return cmd
}
