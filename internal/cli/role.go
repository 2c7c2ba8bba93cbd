package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/client"
)

func newRoleCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "role",
		Short: "Assign, revoke and list roles on scopes",
		Long: `Roles: pull (read), push (pull + write), delete, catalog (list repositories)
and owner (everything on its scope, including assigning roles there). A scope is
registry, a namespace such as team/* (team/x and team/x/y, not teamx), or one
repository such as team/app. Assignments add up; anything not assigned is
denied. Only an owner of a scope (or of one containing it) assigns roles there.

--group IDP:GROUP assigns a role to every person whose identity provider IDP
puts GROUP in their groups claim (read at each sign-in and hourly refresh); a
person's rights are the union of their own assignments and their groups'.

The principal anonymous may be given pull on a scope, which makes that scope
publicly pullable and nothing else.`,
	}
	cmd.AddCommand(
		roleChangeCommand(e, "assign", "Give a principal a role on a scope"),
		roleChangeCommand(e, "revoke", "Take a role on a scope from a principal"),
		roleListCommand(e),
	)
	return cmd
}

func roleChangeCommand(e *env, verb, short string) *cobra.Command {
	var principal, group, role, scope string
	usage := "berth role " + verb + " (--principal P | --group IDP:GROUP) --role R --scope S"
	cmd := &cobra.Command{
		Use:   verb + " (--principal P | --group IDP:GROUP) --role R --scope S",
		Short: short,
		Args:  argsExactly(0, usage),
		RunE: func(cmd *cobra.Command, _ []string) error {
			who := principal
			if group != "" {
				if principal != "" {
					return berth.Errorf(berth.CodeInvalid, "--principal and --group name who holds the role; give one of them").WithHint("%s", usage)
				}
				who = group
			}
			for _, f := range []struct{ name, value string }{{"principal", who}, {"role", role}, {"scope", scope}} {
				if err := requireFlag(f.name, f.value, usage); err != nil {
					return err
				}
			}
			return e.withClient(func(c *client.Client) error {
				change, past := c.AssignRole, "Assigned role %s on %s to %s\n"
				if group != "" {
					change = c.AssignGroupRole
				}
				if verb == "revoke" {
					change, past = c.RevokeRole, "Revoked role %s on %s from %s\n"
					if group != "" {
						change = c.RevokeGroupRole
					}
				}
				a, err := change(cmd.Context(), who, role, scope)
				if err != nil {
					return err
				}
				for _, w := range a.Warnings {
					fmt.Fprintf(e.stderr, "warning: %s\n", w)
				}
				if e.output == "json" {
					return e.printJSON(a)
				}
				holder := a.Principal
				if a.Group != "" {
					holder = "the members of " + string(a.Group)
				}
				fmt.Fprintf(e.stdout, past, a.Role, a.Scope, holder)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&principal, "principal", "", "the principal's name")
	cmd.Flags().StringVar(&group, "group", "", "instead of --principal: a group IDP:GROUP of an identity provider's groups claim, whose members hold the role")
	cmd.Flags().StringVar(&role, "role", "", "pull, push, delete, catalog or owner")
	cmd.Flags().StringVar(&scope, "scope", "", "registry, a namespace such as team/*, or a repository such as team/app")
	return cmd
}

func roleListCommand(e *env) *cobra.Command {
	var principal string
	cmd := &cobra.Command{
		Use:   "list [--principal P]",
		Short: "List role assignments: yours and those on scopes you own",
		Args:  argsExactly(0, "berth role list [--principal P]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withClient(func(c *client.Client) error {
				as, err := c.ListRoles(cmd.Context(), principal)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(as)
				}
				if len(as) == 0 {
					fmt.Fprintln(e.stderr, "No role assignments.")
					return nil
				}
				tw := e.table()
				fmt.Fprintln(tw, "PRINCIPAL\tROLE\tSCOPE\tCREATED")
				for _, a := range as {
					holder := a.Principal
					if a.Group != "" {
						holder = "group " + string(a.Group)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", holder, a.Role, a.Scope, formatTime(a.Created))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&principal, "principal", "", "only this principal's assignments")
	return cmd
}
