package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

func newUpstreamCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "upstream",
		Short: "Manage the pull-through cache: other registries pulled through a cache namespace",
		Long: `Manage upstreams. An upstream is another registry (Docker Hub, ghcr.io, a
company registry) whose images berth serves under a cache namespace: a pull of
HOST/hub/library/alpine:3.20 is answered from what berth holds, or fetched from
the upstream, stored and served. On Docker Hub, an official image may be named
without library/ (HOST/hub/alpine:3.20).

Tags are re-checked against the upstream once --tag-ttl has passed (a HEAD);
digests never are. When the upstream is down or refuses, cached images are
still served, with a Warning header. A cache namespace cannot be pushed to
(cache_read_only); pulling needs the role pull on it, like any repository.

The upstream's credential is stored sealed and never shown. Give its expiry
(--expires-at) to have it listed by berth secret list --expiring-within, like
berth's own secrets. Managing upstreams needs the role owner on registry.`,
	}

	var create api.CreateUpstreamRequest
	var passwordStdin bool
	var expiresAt string
	createCmd := &cobra.Command{
		Use:   "create NAME --url URL --namespace NS [--username U --password-stdin] [--tag-ttl 1h] [--max-size 20GiB] [--expires-at DATE]",
		Short: "Register an upstream registry and its cache namespace",
		Example: `  berth upstream create hub --url https://registry-1.docker.io --namespace hub
  berth upstream create hub --url https://registry-1.docker.io --namespace hub \
      --username ci-bot --password-stdin --expires-at 2027-03-01 < token-file`,
		Args: argsExactly(1, "berth upstream create NAME --url URL --namespace NS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			const usage = "berth upstream create NAME --url https://registry-1.docker.io --namespace hub"
			if err := requireFlag("url", create.URL, usage); err != nil {
				return err
			}
			if err := requireFlag("namespace", create.Namespace, usage); err != nil {
				return err
			}
			create.Name = args[0]
			if passwordStdin {
				p, err := readPasswordStdin(cmd.InOrStdin(), cmd.CommandPath()+" NAME --url URL --namespace NS --username USER --password-stdin")
				if err != nil {
					return err
				}
				create.Password = p
			}
			if create.Username != "" && create.Password == "" {
				return berth.Errorf(berth.CodeInvalid, "--username needs the password on stdin").
					WithHint("berth upstream create %s --url %s --namespace %s --username %s --password-stdin < password-file", create.Name, create.URL, create.Namespace, create.Username)
			}
			if expiresAt != "" {
				t, err := parseExpiresAt(expiresAt)
				if err != nil {
					return err
				}
				create.ExpiresAt = &t
			}
			return e.withClient(func(c *client.Client) error {
				u, err := c.CreateUpstream(cmd.Context(), create)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(u)
				}
				fmt.Fprintf(e.stdout, "Created upstream %s: pulls of %s/… are served from %s\n", u.Name, u.Namespace, u.URL)
				fmt.Fprintf(e.stderr, "Check that berth reaches it: berth upstream verify %s\n", u.Name)
				return nil
			})
		},
	}
	f := createCmd.Flags()
	f.StringVar(&create.URL, "url", "", "the upstream registry's base URL, such as https://registry-1.docker.io")
	f.StringVar(&create.Namespace, "namespace", "", "the cache namespace: the first path component of the repositories it fills, such as hub")
	f.StringVar(&create.Username, "username", "", "the upstream account; its password or token comes from stdin")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the upstream password or access token from stdin")
	f.StringVar(&create.TagTTL, "tag-ttl", "", "how long a cached tag is served before it is re-checked upstream (default 1h)")
	f.StringVar(&create.MaxSize, "max-size", "", "bound the cache namespace's size, such as 20GiB: garbage collection evicts the least recently pulled images past it")
	f.StringVar(&expiresAt, "expires-at", "", "when the upstream credential stops working: YYYY-MM-DD or RFC 3339")

	var update api.UpdateUpstreamRequest
	var updatePasswordStdin bool
	var updateExpiresAt string
	updateCmd := &cobra.Command{
		Use:   "update NAME [--url URL] [--username U --password-stdin | --anonymous] [--expires-at DATE] [--tag-ttl 1h] [--max-size 20GiB]",
		Short: "Change an upstream's URL, credential, tag TTL or size bound; its namespace and what it cached stay",
		Long: `update changes what its flags give and keeps the rest. Renew an upstream's
credential with it: the namespace keeps its cached images and every reference
to them (a namespace that holds repositories cannot be given to a new
upstream). A new credential (--username with --password-stdin, or --anonymous
for none) replaces the recorded expiry with --expires-at, or with none;
--expires-at alone records the current credential's. --max-size 0 removes the
bound. A stored credential is sent to no other host: a --url on another host
needs a new credential, or --anonymous.`,
		Example: `  berth upstream update hub --username ci-bot --password-stdin --expires-at 2027-06-01 < token-file
  berth upstream update hub --tag-ttl 6h`,
		Args: argsExactly(1, "berth upstream update NAME [--username U --password-stdin] [--expires-at DATE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if updatePasswordStdin {
				p, err := readPasswordStdin(cmd.InOrStdin(), cmd.CommandPath()+" "+name+" --username USER --password-stdin")
				if err != nil {
					return err
				}
				update.Password = p
			}
			if (update.Username != "") != (update.Password != "") {
				return berth.Errorf(berth.CodeInvalid, "a new credential needs both --username and the password on stdin").
					WithHint("berth upstream update %s --username USER --password-stdin < password-file", name)
			}
			if updateExpiresAt != "" {
				t, err := parseExpiresAt(updateExpiresAt)
				if err != nil {
					return err
				}
				update.ExpiresAt = &t
			}
			if update == (api.UpdateUpstreamRequest{}) {
				return berth.Errorf(berth.CodeInvalid, "nothing to change: give at least one of --url, --username with --password-stdin, --anonymous, --expires-at, --tag-ttl, --max-size").
					WithHint("berth upstream update %s --username USER --password-stdin < password-file", name)
			}
			return e.withClient(func(c *client.Client) error {
				u, err := c.UpdateUpstream(cmd.Context(), name, update)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(u)
				}
				fmt.Fprintf(e.stdout, "Updated upstream %s: pulls of %s/… are served from %s (credential: %s, expires: %s)\n", u.Name, u.Namespace, u.URL, orDash(u.Username), upstreamExpiry(u))
				fmt.Fprintf(e.stderr, "Check that berth reaches it: berth upstream verify %s\n", u.Name)
				return nil
			})
		},
	}
	f = updateCmd.Flags()
	f.StringVar(&update.URL, "url", "", "the upstream registry's new base URL")
	f.StringVar(&update.Username, "username", "", "the new upstream account; its password or token comes from stdin")
	f.BoolVar(&updatePasswordStdin, "password-stdin", false, "read the new upstream password or access token from stdin")
	f.BoolVar(&update.Anonymous, "anonymous", false, "remove the stored credential: pull anonymously")
	f.StringVar(&updateExpiresAt, "expires-at", "", "when the upstream credential stops working: YYYY-MM-DD or RFC 3339")
	f.StringVar(&update.TagTTL, "tag-ttl", "", "how long a cached tag is served before it is re-checked upstream")
	f.StringVar(&update.MaxSize, "max-size", "", "bound the cache namespace's size, such as 20GiB; 0 removes the bound")

	var repo string
	verifyCmd := &cobra.Command{
		Use:   "verify NAME",
		Short: "Call the upstream with its stored credential, as a pull through the cache would",
		Long: `verify calls the upstream's /v2/ and authenticates with the stored credential
(a Docker token, Basic, or none), for --repository when given. It prints ✓ or
✗ with what the upstream said and the command that fixes it, and warns when
the credential's recorded expiry is within 30 days. The exit status is 1 when
the upstream refuses or cannot be reached.`,
		Example: "  berth upstream verify hub --repository library/alpine",
		Args:    argsExactly(1, "berth upstream verify NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				v, err := c.VerifyUpstream(cmd.Context(), args[0], repo)
				if err != nil {
					return err
				}
				if e.output == "json" {
					if err := e.printJSON(v); err != nil {
						return err
					}
				} else {
					ok := "answers and accepts the stored credential"
					if u, err := c.GetUpstream(cmd.Context(), v.Name); err == nil && u.Username == "" {
						ok = "answers anonymous pulls (no credential is stored)"
					}
					rows := []doctorCheck{{Name: "upstream " + v.Name + " (" + v.URL + ")", Status: doctorStatusOK, Message: ok}}
					if !v.OK {
						rows[0].Status, rows[0].Message, rows[0].Hint = doctorStatusFail, string(v.Reason)+": "+v.Message, v.Hint
					}
					if v.DaysLeft != nil {
						row := doctorCheck{Name: "credential expiry", Status: doctorStatusOK, Message: fmt.Sprintf("expires on %s, in %d days", v.ExpiresAt.UTC().Format("2006-01-02"), *v.DaysLeft)}
						if *v.DaysLeft < 30 {
							row.Status = doctorStatusWarn
							row.Hint = fmt.Sprintf("renew it upstream, then berth upstream update %s --username USER --password-stdin --expires-at DATE", v.Name)
						}
						rows = append(rows, row)
					}
					printChecklist(e.stdout, rows)
				}
				if !v.OK {
					return reported{fmt.Sprintf("berth upstream verify %s: %s", v.Name, v.Reason)}
				}
				return nil
			})
		},
	}
	verifyCmd.Flags().StringVar(&repo, "repository", "", "an upstream repository to authenticate for, such as library/alpine")

	cmd.AddCommand(
		createCmd,
		updateCmd,
		&cobra.Command{
			Use:   "list",
			Short: "List upstreams (never their credentials)",
			Args:  argsExactly(0, "berth upstream list"),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return e.withClient(func(c *client.Client) error {
					us, err := c.ListUpstreams(cmd.Context())
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(us)
					}
					tw := e.table()
					fmt.Fprintln(tw, "NAME\tNAMESPACE\tURL\tUSERNAME\tTAG TTL\tMAX SIZE\tEXPIRES\tCREATED")
					for _, u := range us {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, u.Namespace, u.URL, orDash(u.Username), u.TagTTL, upstreamMaxSize(u), upstreamExpiry(u), formatTime(u.Created))
					}
					return tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use:   "show NAME",
			Short: "Show an upstream (never its credential)",
			Args:  argsExactly(1, "berth upstream show NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					u, err := c.GetUpstream(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(u)
					}
					fmt.Fprintf(e.stdout, "name:        %s\nurl:         %s\nnamespace:   %s\nusername:    %s\ntag ttl:     %s\nmax size:    %s\nexpires:     %s\ncreated:     %s\n",
						u.Name, u.URL, u.Namespace, orDash(u.Username), u.TagTTL, upstreamMaxSize(u), upstreamExpiry(u), formatTime(u.Created))
					return nil
				})
			},
		},
		&cobra.Command{
			Use:     "delete NAME",
			Aliases: []string{"remove"},
			Short:   "Remove an upstream and its credential; what it cached stays as ordinary repositories",
			Args:    argsExactly(1, "berth upstream delete NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					u, err := c.DeleteUpstream(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(u)
					}
					fmt.Fprintf(e.stdout, "Deleted upstream %s; repositories under %s/ stay (berth repo delete removes one)\n", u.Name, u.Namespace)
					return nil
				})
			},
		},
		verifyCmd,
	)
	return cmd
}

// readPasswordStdin reads one line, the upstream password, from stdin for
// the command usage shows.
func readPasswordStdin(in io.Reader, usage string) (string, error) {
	line, err := readStdinLine(in, "the upstream password", usage)
	if err != nil {
		return "", err
	}
	if line == "" {
		return "", berth.Errorf(berth.CodeInvalid, "--password-stdin read nothing from stdin").
			WithHint("pipe the password or access token in: %s < password-file", usage)
	}
	return line, nil
}

// parseExpiresAt reads --expires-at: a day (the end of it is not meant:
// the credential is taken to stop at its start, UTC) or an RFC 3339 time.
func parseExpiresAt(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, berth.Errorf(berth.CodeInvalid, "--expires-at %q is neither YYYY-MM-DD nor an RFC 3339 time", s).
		WithHint("give the day the upstream credential stops working, such as --expires-at 2027-03-01")
}

func upstreamExpiry(u berth.Upstream) string {
	if u.ExpiresAt == nil {
		return "-"
	}
	return u.ExpiresAt.UTC().Format("2006-01-02")
}

func upstreamMaxSize(u berth.Upstream) string {
	if u.MaxSize == 0 {
		return "-"
	}
	return berth.FormatBytes(u.MaxSize)
}
