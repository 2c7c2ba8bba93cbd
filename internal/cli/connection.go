package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

func newConnectionCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connection",
		Short: "Manage service connections: what a pipeline names to reach the registry",
		Long: `Manage service connections. A connection acts as a principal, with that
principal's roles, and authenticates in one of two ways:

  federated  no secret exists: a permitted pipeline presents its CI ID token
             (berth login HOST --connection NAME inside the job)
  secret     a client secret of the principal, which berth tracks and renews
             (berth connection save NAME)

Pipeline permissions (authorize, permit) apply to federated connections. When
a registered pipeline that is not permitted tries a connection, berth refuses
it with pipeline_not_authorized and records a request: berth connection
requests NAME lists them. Managing connections needs the role owner on
registry.`,
	}
	cmd.AddCommand(
		connectionCreateCommand(e),
		connectionListCommand(e),
		connectionShowCommand(e),
		connectionDeleteCommand(e),
		connectionPermissionCommand(e, "authorize", "Permit a pipeline, or every pipeline, to use a federated connection"),
		connectionPermissionCommand(e, "unauthorize", "Withdraw a pipeline's permission, or that of every pipeline"),
		connectionRequestsCommand(e),
		connectionPermitCommand(e),
		connectionToggleCommand(e, "disable", "Disable a connection: exchanges are refused and its tokens stop"),
		connectionToggleCommand(e, "enable", "Enable a disabled connection"),
		connectionSaveCommand(e),
		connectionConvertCommand(e),
		connectionVerifyCommand(e),
		connectionHistoryCommand(e),
	)
	return cmd
}

func connectionCreateCommand(e *env) *cobra.Command {
	var req api.CreateConnectionRequest
	var repos, actions []string
	usage := "berth connection create NAME --principal P [--auth federated|secret] [--repository R --actions pull,push]…"
	cmd := &cobra.Command{
		Use:   "create NAME --principal P [--auth federated|secret] [--repository R --actions pull,push]…",
		Short: "Create a service connection acting as a principal",
		Long: `Create a service connection acting as principal P. --auth federated (the
default) holds no secret; --auth secret creates a client secret of P and
prints its value once: in text output the value alone goes to stdout.

--repository and --actions, given in pairs and repeatable, say what the
connection is meant for; berth connection verify checks that P's roles cover
them. Actions are pull, push and delete.`,
		Example: `  berth connection create web --principal ci-web --repository team/web --actions pull,push
  berth connection authorize web --pipeline web-main
  SECRET=$(berth connection create legacy --principal ci-legacy --auth secret)`,
		Args: argsExactly(1, usage),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			if err := requireFlag("principal", req.Principal, usage); err != nil {
				return err
			}
			if len(repos) != len(actions) {
				return berth.Errorf(berth.CodeInvalid, "%d --repository and %d --actions were given; they go in pairs", len(repos), len(actions)).
					WithHint("--repository team/web --actions pull,push --repository team/base --actions pull")
			}
			for i, r := range repos {
				req.Intents = append(req.Intents, api.IntentRequest{Repository: r, Actions: strings.Split(actions[i], ",")})
			}
			return e.withClient(func(c *client.Client) error {
				ch, err := c.CreateConnection(cmd.Context(), req)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(ch)
				}
				if ch.NewSecret != nil {
					fmt.Fprintf(e.stderr, "Created service connection %s, acting as %s, with secret %s… (id %s), which expires at %s.\n",
						ch.Name, ch.Principal, ch.NewSecret.Hint, ch.NewSecret.ID, formatTime(ch.NewSecret.Expires))
					fmt.Fprintln(e.stdout, ch.NewSecret.Value)
					fmt.Fprintf(e.stderr, "Copy the value now: it will not be shown again. Log in with the client id of %s and this secret; berth connection save %s renews it.\n",
						ch.Principal, ch.Name)
					return nil
				}
				fmt.Fprintf(e.stdout, "Created service connection %s (federated), acting as %s\n", ch.Name, ch.Principal)
				fmt.Fprintf(e.stderr, "No pipeline may use it yet:\n  berth connection authorize %s --pipeline PIPELINE\n", ch.Name)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Principal, "principal", "", "the principal the connection acts as")
	f.StringVar(&req.Auth, "auth", "federated", "federated (no secret) or secret")
	f.StringArrayVar(&repos, "repository", nil, "a repository (or team/*) the connection is meant for; pairs with --actions")
	f.StringArrayVar(&actions, "actions", nil, "the actions on the --repository before it: pull, push, delete, comma-separated")
	f.StringVar(&req.ExpiresIn, "expires-in", "", "with --auth secret: the secret's lifetime, such as 90d (the default)")
	return cmd
}

// printConnection writes a connection's details.
func printConnection(e *env, c api.Connection) {
	status := "enabled"
	if c.Disabled {
		status = "disabled"
	}
	fmt.Fprintf(e.stdout, "name:       %s\nid:         %s\nprincipal:  %s\nauth:       %s\nstatus:     %s\ncreated:    %s\n",
		c.Name, c.ID, orDash(c.Principal), c.Auth, status, formatTime(c.Created))
	if c.Secret != nil {
		fmt.Fprintf(e.stdout, "secret:     %s… (id %s), %s, expires %s\n", c.Secret.Hint, c.Secret.ID, c.Secret.State, formatTime(c.Secret.Expires))
	}
	switch {
	case c.AllPipelines:
		fmt.Fprintln(e.stdout, "pipelines:  all")
	case len(c.Pipelines) == 0:
		fmt.Fprintln(e.stdout, "pipelines:  none")
	default:
		fmt.Fprintf(e.stdout, "pipelines:  %s\n", strings.Join(c.Pipelines, ", "))
	}
	if c.Auth == berth.ConnectionSecret && (c.AllPipelines || len(c.Pipelines) > 0) {
		fmt.Fprintln(e.stdout, "            (not enforced: the connection authenticates with a secret)")
	}
	for _, in := range c.Intents {
		fmt.Fprintf(e.stdout, "intent:     %s on %s\n", strings.Join(in.Actions, ","), in.Repository)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// pipelinesText summarises the pipelines a connection permits.
func pipelinesText(c api.Connection) string {
	switch {
	case c.AllPipelines:
		return "all"
	case len(c.Pipelines) == 0:
		return "-"
	}
	return strings.Join(c.Pipelines, ",")
}

func connectionListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List service connections",
		Args:  argsExactly(0, "berth connection list"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withClient(func(c *client.Client) error {
				cs, err := c.ListConnections(cmd.Context())
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(cs)
				}
				if len(cs) == 0 {
					fmt.Fprintln(e.stderr, "No service connections (berth connection create NAME --principal P creates one).")
					return nil
				}
				tw := e.table()
				fmt.Fprintln(tw, "NAME\tPRINCIPAL\tAUTH\tSTATUS\tPIPELINES\tSECRET EXPIRES")
				for _, conn := range cs {
					status, expires := "enabled", "-"
					if conn.Disabled {
						status = "disabled"
					}
					if conn.Secret != nil {
						expires = formatTime(conn.Secret.Expires)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", conn.Name, orDash(conn.Principal), conn.Auth, status, pipelinesText(conn), expires)
				}
				return tw.Flush()
			})
		},
	}
}

func connectionShowCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a service connection: principal, scheme, secret, pipelines",
		Args:  argsExactly(1, "berth connection show NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				conn, err := c.GetConnection(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(conn)
				}
				printConnection(e, conn.Connection)
				if conn.PendingRequests > 0 {
					fmt.Fprintf(e.stdout, "requests:   %d pending (berth connection requests %s)\n", conn.PendingRequests, conn.Name)
				}
				return nil
			})
		},
	}
}

func connectionDeleteCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"remove"},
		Short:   "Delete a service connection, revoking its secret and tokens",
		Args:    argsExactly(1, "berth connection delete NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				d, err := c.DeleteConnection(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(d)
				}
				fmt.Fprintf(e.stdout, "Deleted service connection %s", d.Name)
				if d.SecretRevoked {
					fmt.Fprint(e.stdout, "; its secret is revoked")
				}
				fmt.Fprintf(e.stdout, "; %d refresh token%s revoked\n", d.RefreshTokensRevoked, plural(d.RefreshTokensRevoked))
				return nil
			})
		},
	}
}

func connectionPermissionCommand(e *env, verb, short string) *cobra.Command {
	var pipeline string
	var all bool
	usage := "berth connection " + verb + " NAME (--pipeline P | --all-pipelines)"
	cmd := &cobra.Command{
		Use:   verb + " NAME (--pipeline P | --all-pipelines)",
		Short: short,
		Example: fmt.Sprintf(`  berth connection %s web --pipeline web-main
  berth connection %s web --all-pipelines`, verb, verb),
		Args: argsExactly(1, usage),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (pipeline == "") == !all {
				return berth.Errorf(berth.CodeInvalid, "give exactly one of --pipeline and --all-pipelines").WithHint("%s", usage)
			}
			return e.withClient(func(c *client.Client) error {
				change := c.AuthorizeConnection
				if verb == "unauthorize" {
					change = c.UnauthorizeConnection
				}
				ch, err := change(cmd.Context(), args[0], pipeline, all)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(ch)
				}
				fmt.Fprintf(e.stdout, "Service connection %s now permits: %s\n", ch.Name, pipelinesText(ch.Connection))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "the pipeline's name")
	cmd.Flags().BoolVar(&all, "all-pipelines", false, "every registered pipeline")
	return cmd
}

func connectionRequestsCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "requests NAME",
		Short: "List the pipelines that tried to use a connection without permission",
		Args:  argsExactly(1, "berth connection requests NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				l, err := c.PermissionRequests(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(l)
				}
				if len(l.Requests) == 0 {
					fmt.Fprintf(e.stderr, "No pipeline is waiting for permission on %s.\n", l.Connection)
					return nil
				}
				tw := e.table()
				fmt.Fprintln(tw, "PIPELINE\tATTEMPTS\tFIRST\tLAST\tCI RUN")
				for _, r := range l.Requests {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.Pipeline, r.Count, formatTime(r.First), formatTime(r.Last), orDash(r.Run))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				pipeline := "PIPELINE"
				if len(l.Requests) == 1 {
					pipeline = l.Requests[0].Pipeline
				}
				fmt.Fprintf(e.stderr, "Grant one with: berth connection permit %s --pipeline %s\n", l.Connection, pipeline)
				return nil
			})
		},
	}
}

func connectionPermitCommand(e *env) *cobra.Command {
	var pipeline string
	usage := "berth connection permit NAME --pipeline P"
	cmd := &cobra.Command{
		Use:     "permit NAME --pipeline P",
		Short:   "Grant a pipeline's pending permission request",
		Example: "  berth connection requests web\n  berth connection permit web --pipeline web-main",
		Args:    argsExactly(1, usage),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("pipeline", pipeline, usage); err != nil {
				return err
			}
			return e.withClient(func(c *client.Client) error {
				ch, err := c.PermitPipeline(cmd.Context(), args[0], pipeline)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(ch)
				}
				fmt.Fprintf(e.stdout, "Pipeline %s may now use service connection %s\n", pipeline, ch.Name)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "the pipeline's name")
	return cmd
}

func connectionToggleCommand(e *env, verb, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  argsExactly(1, "berth connection "+verb+" NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				toggle := c.DisableConnection
				if verb == "enable" {
					toggle = c.EnableConnection
				}
				ch, err := toggle(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(ch)
				}
				if ch.Disabled {
					fmt.Fprintf(e.stdout, "Disabled service connection %s (berth connection enable %s undoes it)\n", ch.Name, ch.Name)
				} else {
					fmt.Fprintf(e.stdout, "Enabled service connection %s\n", ch.Name)
				}
				return nil
			})
		},
	}
}

// printNewSecret shows a secret made by save or convert: the value alone on
// stdout, the rest on stderr.
func printNewSecret(e *env, ch api.ConnectionChange) {
	if p := ch.PreviousSecret; p != nil {
		fmt.Fprintf(e.stderr, "The previous secret %s… (id %s) keeps working until %s.\n", p.Hint, p.ID, formatTime(p.Expires))
	}
	if s := ch.NewSecret; s != nil {
		fmt.Fprintf(e.stderr, "New secret %s… (id %s) of %s expires at %s.\n", s.Hint, s.ID, s.Principal, formatTime(s.Expires))
		fmt.Fprintln(e.stdout, s.Value)
		fmt.Fprintln(e.stderr, "Copy the value now: it will not be shown again.")
	}
}

func connectionSaveCommand(e *env) *cobra.Command {
	var req api.RenewRequest
	cmd := &cobra.Command{
		Use:   "save NAME [--grace 7d]",
		Short: "Renew a secret connection's secret; the old one keeps working for a grace period",
		Long: `Re-save a secret connection: berth makes a new client secret, prints its
value once (alone on stdout in text output), and the previous secret, with
the refresh tokens obtained with it, keeps working for --grace (7d by
default; 0 ends it at once), so pipelines switch without downtime.`,
		Example: "  NEW=$(berth connection save legacy)\n  berth connection save legacy --grace 24h --expires-in 30d",
		Args:    argsExactly(1, "berth connection save NAME [--grace 7d] [--expires-in 90d]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				ch, err := c.SaveConnection(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(ch)
				}
				printNewSecret(e, ch)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&req.Grace, "grace", "", "how long the previous secret keeps working (default 7d; 0 ends it now)")
	cmd.Flags().StringVar(&req.ExpiresIn, "expires-in", "", "the new secret's lifetime (default 90d)")
	return cmd
}

func connectionConvertCommand(e *env) *cobra.Command {
	var req api.ConvertRequest
	usage := "berth connection convert NAME --to federated|secret [--grace 7d] [--expires-in 90d]"
	cmd := &cobra.Command{
		Use:   "convert NAME --to federated|secret",
		Short: "Move a connection off secrets, or give it one",
		Long: `Change how a connection authenticates. --to federated retires its secret,
which keeps working for --grace (7d by default) while pipelines move to
berth login --connection; --to secret creates a secret of its principal and
prints it once.`,
		Example: "  berth connection convert legacy --to federated\n  berth connection authorize legacy --pipeline web-main",
		Args:    argsExactly(1, usage),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("to", req.To, usage); err != nil {
				return err
			}
			return e.withClient(func(c *client.Client) error {
				ch, err := c.ConvertConnection(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(ch)
				}
				if ch.Auth == berth.ConnectionFederated {
					fmt.Fprintf(e.stdout, "Service connection %s is now federated: it holds no secret\n", ch.Name)
					printNewSecret(e, ch)
					if !ch.AllPipelines && len(ch.Pipelines) == 0 {
						fmt.Fprintf(e.stderr, "No pipeline may use it yet:\n  berth connection authorize %s --pipeline PIPELINE\n", ch.Name)
					}
					return nil
				}
				fmt.Fprintf(e.stderr, "Service connection %s now authenticates with a secret.\n", ch.Name)
				printNewSecret(e, ch)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&req.To, "to", "", "federated or secret")
	cmd.Flags().StringVar(&req.Grace, "grace", "", "--to federated: how long the secret keeps working (default 7d)")
	cmd.Flags().StringVar(&req.ExpiresIn, "expires-in", "", "--to secret: the secret's lifetime (default 90d)")
	return cmd
}

func connectionVerifyCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "verify NAME",
		Short: "Check everything a connection depends on, and say what to fix",
		Long: `Check a service connection, one line per check with ✓, ⚠ or ✗, the facts,
and the command that fixes it: the connection is enabled; its principal exists
and is enabled; a secret connection's secret is valid (a warning under 30
days); a federated connection permits some pipeline, and each permitted
pipeline's issuer answers with its keys; the principal's roles cover each
repository and action the connection declares.

The exit status is 1 when any check fails; -o json prints the checks as data.`,
		Example: "  berth connection verify web",
		Args:    argsExactly(1, "berth connection verify NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				v, err := c.VerifyConnection(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				failed := 0
				for _, ch := range v.Checks {
					if ch.Status == berth.CheckFail {
						failed++
					}
				}
				if e.output == "json" {
					if err := e.printJSON(v); err != nil {
						return err
					}
				} else {
					rows := make([]doctorCheck, len(v.Checks))
					for i, ch := range v.Checks {
						rows[i] = doctorCheck{Name: ch.Name, Status: doctorStatus(ch.Status), Message: ch.Message, Hint: ch.Hint}
					}
					printChecklist(e.stdout, rows)
				}
				if failed > 0 {
					return reported{fmt.Sprintf("berth connection verify %s: %d of %d checks failed", v.Connection, failed, len(v.Checks))}
				}
				return nil
			})
		},
	}
}

func connectionHistoryCommand(e *env) *cobra.Command {
	var since string
	var limit int
	cmd := &cobra.Command{
		Use:   "history NAME [--since 24h] [--limit N]",
		Short: "Show each use of a connection: time, pipeline, CI run, action, result, reason",
		Long: `Show a connection's history from the audit log, oldest first: every
exchange and registry request made through it, with the pipeline and CI run
it came from, and every change to the connection itself.`,
		Example: "  berth connection history web --since 24h\n  berth connection history web --limit 20 -o json",
		Args:    argsExactly(1, "berth connection history NAME [--since 24h] [--limit N]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return berth.Errorf(berth.CodeInvalid, "--limit %d is negative", limit).WithHint("--limit 100")
			}
			return e.withClient(func(c *client.Client) error {
				h, err := c.ConnectionHistory(cmd.Context(), args[0], since, limit)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(h)
				}
				if len(h.Events) == 0 {
					fmt.Fprintf(e.stderr, "Service connection %s has no recorded use in that period.\n", h.Connection)
					return nil
				}
				tw := e.table()
				fmt.Fprintln(tw, "TIME\tPIPELINE\tCI RUN\tACTION\tTARGET\tRESULT\tREASON")
				for _, ev := range h.Events {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", formatTime(ev.Time), orDash(ev.Pipeline), orDash(ev.CIRun), ev.Action,
						orDash(ev.Target), ev.Result, orDash(string(ev.Reason)))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only events since then: a duration back from now (24h, 7d) or an RFC 3339 time")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many of the latest events (default 100)")
	return cmd
}
