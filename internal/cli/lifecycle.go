package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

// Lifecycle rules: berth retention, berth immutable and berth quota. Each
// rule is written on a scope (registry, team/*, or one repository) and needs
// the role owner on a scope containing it.

const scopeHelp = "SCOPE is registry, a namespace such as team/* or one repository; managing a rule on it needs the role owner on a scope containing it."

func newRetentionCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Manage retention rules: which images to keep, the rest deleted on the GC schedule",
		Long: `Manage retention rules. A rule on a scope keeps, in each repository it
covers, the --keep-last N tagged images most recently pushed, every image with
a tag outside --tags or matching --keep-tags, every image pulled within
--keep-pulled-within and every image holding an immutable tag; untagged images
go after --untagged-after. Signatures and SBOMs go with their image. A
repository follows the most specific rule covering it. Rules run with garbage
collection (gc.interval); berth retention run --dry-run shows what they would
delete now, and the real run deletes exactly that, except what was pushed or
tagged in between.

` + scopeHelp,
	}
	var req api.RetentionRequest
	setCmd := &cobra.Command{
		Use:   "set SCOPE --keep-last N",
		Short: "Set the retention rule on a scope, replacing the one there",
		Args:  argsExactly(1, "berth retention set team/* --keep-last 20 --keep-tags 'v*' --untagged-after 7d"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("keep-last") {
				return requireFlag("keep-last", "", "berth retention set "+args[0]+" --keep-last 20")
			}
			req.Scope = args[0]
			return e.withClient(func(c *client.Client) error {
				r, err := c.SetRetention(cmd.Context(), req)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(r)
				}
				fmt.Fprintf(e.stdout, "Set retention on %s: %s\n", r.Scope, r.Flags())
				return nil
			})
		},
	}
	setCmd.Flags().IntVar(&req.KeepLast, "keep-last", 0, "keep the N tagged images most recently pushed")
	setCmd.Flags().StringVar(&req.Tags, "tags", "", "rank and delete only images whose tags all match this pattern (default: every tag)")
	setCmd.Flags().StringVar(&req.KeepTags, "keep-tags", "", "always keep images with a tag matching this pattern, such as 'v*'")
	setCmd.Flags().StringVar(&req.KeepPulledWithin, "keep-pulled-within", "", "keep images pulled within this long, such as 30d")
	setCmd.Flags().StringVar(&req.UntaggedAfter, "untagged-after", "", "delete untagged images pushed longer ago than this, such as 7d")

	var dryRun bool
	runCmd := &cobra.Command{
		Use:   "run [SCOPE] [--dry-run]",
		Short: "Apply the retention rules now, or show what they would delete",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scope := ""
			if len(args) == 1 {
				scope = args[0]
			}
			return e.withClient(func(c *client.Client) error {
				run, err := c.RunRetention(cmd.Context(), scope, dryRun)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(run)
				}
				tw := e.table()
				fmt.Fprintln(tw, "REPOSITORY\tTAGS\tDIGEST\tSIZE\tWHY")
				for _, d := range run.Deletions {
					tags := strings.Join(d.Tags, ",")
					if tags == "" {
						tags = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Repository, tags, d.Digest, berth.FormatBytes(d.Size), d.Reason)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				verb := "Deleted"
				if run.DryRun {
					verb = "Would delete"
				}
				fmt.Fprintf(e.stderr, "%s %d image(s), %s; berth gc then frees their blobs.\n", verb, len(run.Deletions), berth.FormatBytes(run.Bytes))
				return nil
			})
		},
	}
	runCmd.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be deleted")

	cmd.AddCommand(setCmd, runCmd,
		&cobra.Command{
			Use:   "list",
			Short: "List the retention rules",
			Args:  argsExactly(0, "berth retention list"),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return e.withClient(func(c *client.Client) error {
					rules, err := c.ListRetention(cmd.Context())
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(rules)
					}
					tw := e.table()
					fmt.Fprintln(tw, "SCOPE\tRULE\tUPDATED\tBY")
					for _, r := range rules {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Scope, r.Flags(), formatTime(r.Updated), r.UpdatedBy)
					}
					return tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use:   "show SCOPE",
			Short: "Show the retention rule on a scope",
			Args:  argsExactly(1, "berth retention show team/*"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					r, err := c.GetRetention(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(r)
					}
					fmt.Fprintf(e.stdout, "scope:    %s\nrule:     %s\nupdated:  %s by %s\n", r.Scope, r.Flags(), formatTime(r.Updated), r.UpdatedBy)
					return nil
				})
			},
		},
		&cobra.Command{
			Use:     "delete SCOPE",
			Aliases: []string{"remove"},
			Short:   "Delete the retention rule on a scope",
			Args:    argsExactly(1, "berth retention delete team/*"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					if err := c.DeleteRetention(cmd.Context(), args[0]); err != nil {
						return err
					}
					fmt.Fprintf(e.stderr, "Deleted the retention rule on %s\n", args[0])
					return nil
				})
			},
		},
	)
	return cmd
}

func newImmutableCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "immutable",
		Short: "Manage immutable tags: tags a push may create but never move or delete",
		Long: `Manage immutable-tag rules. A push that would point a matching tag at another
image, or a delete that would remove it, is refused with tag_immutable, for
every client. ` + scopeHelp,
	}
	var tags string
	addCmd := &cobra.Command{
		Use:   "add SCOPE --tags PATTERN",
		Short: "Make the tags matching a pattern immutable on a scope",
		Args:  argsExactly(1, "berth immutable add team/* --tags 'v*'"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("tags", tags, "berth immutable add "+args[0]+" --tags 'v*'"); err != nil {
				return err
			}
			return e.withClient(func(c *client.Client) error {
				r, err := c.AddImmutable(cmd.Context(), args[0], tags)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(r)
				}
				fmt.Fprintf(e.stdout, "Tags %q are immutable on %s\n", r.Tags, r.Scope)
				return nil
			})
		},
	}
	addCmd.Flags().StringVar(&tags, "tags", "", "tag pattern, such as 'v*' or 'release-*'")
	var removeTags string
	removeCmd := &cobra.Command{
		Use:     "remove SCOPE --tags PATTERN",
		Aliases: []string{"delete"},
		Short:   "Remove an immutable-tag rule",
		Args:    argsExactly(1, "berth immutable remove team/* --tags 'v*'"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("tags", removeTags, "berth immutable remove "+args[0]+" --tags 'v*'"); err != nil {
				return err
			}
			return e.withClient(func(c *client.Client) error {
				if err := c.RemoveImmutable(cmd.Context(), args[0], removeTags); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "Tags %q are no longer immutable on %s\n", removeTags, args[0])
				return nil
			})
		},
	}
	removeCmd.Flags().StringVar(&removeTags, "tags", "", "the rule's tag pattern")
	cmd.AddCommand(addCmd, removeCmd, &cobra.Command{
		Use:   "list",
		Short: "List the immutable-tag rules",
		Args:  argsExactly(0, "berth immutable list"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withClient(func(c *client.Client) error {
				rules, err := c.ListImmutable(cmd.Context())
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(rules)
				}
				tw := e.table()
				fmt.Fprintln(tw, "SCOPE\tTAGS\tCREATED\tBY")
				for _, r := range rules {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Scope, r.Tags, formatTime(r.Created), r.CreatedBy)
				}
				return tw.Flush()
			})
		},
	})
	return cmd
}

func newQuotaCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Manage quotas: how much the repositories of a scope may hold",
		Long: `Manage quotas. Usage counts each blob once per scope, however many manifests
and repositories share it. A push beyond a quota is refused with
quota_exceeded: before its bytes are accepted where the client announces the
size, else when the blob is committed. ` + scopeHelp,
	}
	var req api.QuotaRequest
	var maxRepositories int
	setCmd := &cobra.Command{
		Use:   "set SCOPE [--max-size SIZE] [--max-repositories N]",
		Short: "Set the quota on a scope; a bound not given keeps its value (0 removes it)",
		Args:  argsExactly(1, "berth quota set 'team/*' --max-size 50GiB"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Scope = args[0]
			sizeGiven, reposGiven := cmd.Flags().Changed("max-size"), cmd.Flags().Changed("max-repositories")
			if !sizeGiven && !reposGiven {
				return berth.Errorf(berth.CodeInvalid, "nothing to set: give --max-size, --max-repositories, or both").
					WithHint("berth quota set %s --max-size 50GiB", berth.ShellQuote(req.Scope))
			}
			if reposGiven {
				req.MaxRepositories = &maxRepositories // the server keeps a bound not sent
			}
			return e.withClient(func(c *client.Client) error {
				q, err := c.SetQuota(cmd.Context(), req)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(q)
				}
				fmt.Fprintf(e.stdout, "Quota on %s: %s (uses %s)\n", q.Scope, quotaLimits(q.Quota), quotaUse(q))
				return nil
			})
		},
	}
	setCmd.Flags().StringVar(&req.MaxSize, "max-size", "", "most bytes the scope's blobs may take, such as 50GiB (0: no bound)")
	setCmd.Flags().IntVar(&maxRepositories, "max-repositories", 0, "most repositories the scope may hold (0: no bound)")
	cmd.AddCommand(setCmd,
		&cobra.Command{
			Use:   "list",
			Short: "List the quotas with their usage",
			Args:  argsExactly(0, "berth quota list"),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return e.withClient(func(c *client.Client) error {
					qs, err := c.ListQuotas(cmd.Context())
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(qs)
					}
					tw := e.table()
					fmt.Fprintln(tw, "SCOPE\tLIMITS\tUSAGE")
					for _, q := range qs {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", q.Scope, quotaLimits(q.Quota), quotaUse(q))
					}
					return tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use:     "remove SCOPE",
			Aliases: []string{"delete"},
			Short:   "Remove the quota on a scope",
			Args:    argsExactly(1, "berth quota remove team/*"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					if err := c.RemoveQuota(cmd.Context(), args[0]); err != nil {
						return err
					}
					fmt.Fprintf(e.stderr, "Removed the quota on %s\n", args[0])
					return nil
				})
			},
		},
	)
	return cmd
}

func quotaLimits(q berth.Quota) string {
	var parts []string
	if q.MaxSize > 0 {
		parts = append(parts, berth.FormatBytes(q.MaxSize))
	}
	if q.MaxRepositories > 0 {
		parts = append(parts, fmt.Sprintf("%d repositories", q.MaxRepositories))
	}
	return strings.Join(parts, ", ")
}

func quotaUse(q api.QuotaStatus) string {
	s := berth.FormatBytes(q.Usage.Bytes)
	if q.MaxSize > 0 {
		s += fmt.Sprintf(" (%d%%)", q.Usage.Bytes*100/q.MaxSize)
	}
	return s + fmt.Sprintf(", %d repositories", q.Usage.Repositories)
}
