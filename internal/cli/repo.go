package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/client"
)

func newRepoCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "List, show and delete repositories",
		Long: `List, show and delete repositories through the server's management API, with
the roles /v2/ asks for: catalog to list (what the caller may see), pull to
show, delete to delete.`,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "list [NAMESPACE]",
			Short: "List the repositories you may see, under NAMESPACE when given",
			Args:  cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ns := ""
				if len(args) == 1 {
					ns = args[0]
				}
				return e.withClient(func(c *client.Client) error {
					repos, err := c.ListRepositories(cmd.Context(), ns)
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(repos)
					}
					for _, r := range repos {
						fmt.Fprintln(e.stdout, r)
					}
					return nil
				})
			},
		},
		&cobra.Command{
			Use:   "show NAME",
			Short: "Show a repository's tags and manifests, with sizes and referrers",
			Args:  argsExactly(1, "berth repo show NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					d, err := c.GetRepository(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(d)
					}
					fmt.Fprintf(e.stdout, "repository: %s\n", d.Name)
					tw := e.table()
					fmt.Fprintln(tw, "DIGEST\tTAGS\tTYPE\tSIZE\tCREATED\tREFERRERS")
					for _, m := range d.Manifests {
						tags := "-"
						if len(m.Tags) > 0 {
							tags = strings.Join(m.Tags, ",")
						}
						typ := m.MediaType
						if m.ArtifactType != "" {
							typ = m.ArtifactType
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", m.Digest, tags, typ, berth.FormatBytes(m.Size), formatTime(m.Created), len(m.Referrers))
					}
					return tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use:     "delete NAME",
			Aliases: []string{"remove"},
			Short:   "Delete a repository with its tags and manifests (berth gc then frees the blobs)",
			Args:    argsExactly(1, "berth repo delete NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					d, err := c.DeleteRepository(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(d)
					}
					fmt.Fprintf(e.stdout, "Deleted repository %s: %d manifest%s, %d tag%s; berth gc frees the blobs nothing else holds.\n",
						d.Name, d.Manifests, plural(d.Manifests), d.Tags, plural(d.Tags))
					return nil
				})
			},
		},
	)
	return cmd
}

func newTagCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tag",
		Short: "List and delete tags",
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "list NAME",
			Short: "List a repository's tags and their digests",
			Args:  argsExactly(1, "berth tag list NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					l, err := c.ListTags(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(l)
					}
					tw := e.table()
					fmt.Fprintln(tw, "TAG\tDIGEST")
					for _, t := range l.Tags {
						fmt.Fprintf(tw, "%s\t%s\n", t.Name, t.Digest)
					}
					return tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use:     "delete NAME:TAG",
			Aliases: []string{"remove"},
			Short:   "Delete a tag; its manifest stays, untagged",
			Args:    argsExactly(1, "berth tag delete NAME:TAG"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					t, err := c.DeleteTag(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(t)
					}
					fmt.Fprintf(e.stdout, "Deleted tag %s (it pointed at %s)\n", args[0], t.Digest)
					return nil
				})
			},
		},
	)
	return cmd
}
