package cli

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

// The audit commands read the log through the management API (GET
// /api/v1/audit, /api/v1/audit/verify), or with --data or --db the metadata
// store directly, so that they work with the server stopped too.

// defaultAuditLimit is how many events berth audit shows unless told.
const defaultAuditLimit = 100

func newAuditCommand(e *env) *cobra.Command {
	var (
		f            configFlags
		since, until string
		repository   string
		result, code string
		principal    string
		action       string
		after        int64
		limit        int
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log: every authentication, access decision and change",
		Long: `Show the audit log: through the registry (BERTH_URL or the stored login), or, given
--data, --db or --config (or BERTH_DATA, BERTH_DB, BERTH_CONFIG), read from the
stores directly. It holds every authentication (success and failure), every access decision (allowed or denied) and every change to
principals, secrets, roles, pipelines and connections, with who, from where,
on what, the result and its reason code. It never holds a credential.

Without --after it shows the last --limit events (100 unless told; 0 shows
all) that match, oldest first; with --after SEQ, the first --limit after that
event. Filters combine:
  --since, --until    a duration back from now (90m, 12h, 7d) or an RFC 3339 time
  --principal P       events by principal P (its name or id)
  --repository R      events on repository R, or under namespace NS/*
  --result R          allowed or denied
  --code CODE         denials with this reason code, such as role_missing
  --action A          one kind of event, such as registry.push or role.assign

berth audit verify checks that no event was edited or deleted.`,
		Args: argsExactly(0, "berth audit [--since 24h] [--principal P] [--repository R] [--result allowed|denied] [--code CODE]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			filter := berth.AuditFilter{Principal: principal, Action: berth.AuditAction(action), After: after, Limit: limit, Last: after == 0}
			var err error
			if filter.Since, err = berth.ParseAuditTime("--since", since, now); err != nil {
				return err
			}
			if filter.Until, err = berth.ParseAuditTime("--until", until, now); err != nil {
				return err
			}
			if filter.Repository, err = berth.ParseAuditRepository("--repository", repository); err != nil {
				return err
			}
			if result != "" {
				if filter.Result, err = berth.ParseAuditResult(result); err != nil {
					return err
				}
			}
			if filter.Code, err = berth.ParseAuditCode("--code", code); err != nil {
				return err
			}
			if limit < 0 {
				return berth.Errorf(berth.CodeInvalid, "--limit %d is negative", limit).WithHint("--limit 0 shows every matching event")
			}
			if limit > 0 {
				filter.Limit = limit + 1 // one more tells whether the limit cut the answer
			}
			show := func(events []berth.AuditEvent) error {
				if limit > 0 && len(events) > limit {
					which := "last"
					if filter.Last {
						events = events[len(events)-limit:]
					} else {
						which, events = "first", events[:limit]
					}
					fmt.Fprintf(e.stderr, "Showing the %s %d matching events; --limit 0 shows them all.\n", which, limit)
				}
				if e.output == "json" {
					return e.printJSON(events)
				}
				for _, ev := range events {
					fmt.Fprintln(e.stdout, formatAuditEvent(ev))
				}
				return nil
			}
			if !e.localStores(cmd) {
				q := url.Values{}
				for k, v := range map[string]string{"since": since, "until": until, "principal": principal,
					"repository": repository, "result": result, "code": code, "action": action} {
					if v != "" {
						q.Set(k, v)
					}
				}
				return e.withClient(func(c *client.Client) error {
					events, err := remoteAudit(cmd.Context(), c, q, filter)
					if err != nil {
						return err
					}
					return show(events)
				})
			}
			return withAuditStore(cmd.Context(), e, f, func(db berth.AuditStore) error {
				events, err := db.FindAuditEvents(cmd.Context(), filter)
				if err != nil {
					return err
				}
				return show(events)
			})
		},
	}
	f.register(cmd.Flags(), false)
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "events at or after this: a duration back from now (12h, 7d) or an RFC 3339 time")
	fl.StringVar(&until, "until", "", "events before this: a duration back from now or an RFC 3339 time")
	fl.StringVar(&principal, "principal", "", "events by this principal (name or id)")
	fl.StringVar(&repository, "repository", "", "events on this repository, or under NS/*")
	fl.StringVar(&result, "result", "", "allowed or denied")
	fl.StringVar(&code, "code", "", "denials with this reason code, such as role_missing")
	fl.StringVar(&action, "action", "", "one kind of event, such as registry.push or role.assign")
	fl.Int64Var(&after, "after", 0, "events after this sequence number, oldest first (for paging)")
	fl.IntVar(&limit, "limit", defaultAuditLimit, "at most this many events; 0 for all")
	cmd.AddCommand(newAuditVerifyCommand(e))
	return cmd
}

func newAuditVerifyCommand(e *env) *cobra.Command {
	var f configFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that no audit event was edited or deleted",
		Long: `Check the audit log's hash chain: every event must hash to what was recorded
when it was written and chain to the one before it, and the log must end at
the head recorded with the last append. An edited, deleted, reordered or
truncated entry fails with audit_tampered, naming the first event that does
not verify, and exit status 1. Events that retention deleted are not missing:
the chain starts after the last of them.`,
		Args: argsExactly(0, "berth audit verify [--data DIR]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			show := func(v api.AuditVerification) error {
				if e.output == "json" {
					return e.printJSON(v)
				}
				switch {
				case v.Events == 0 && v.Head.Seq == 0:
					fmt.Fprintln(e.stdout, "The audit log is empty.")
				case v.Events == 0:
					fmt.Fprintf(e.stdout, "The audit log verifies: retention deleted all %d events, the last with hash %s.\n", v.Head.Seq, v.Head.Hash)
				default:
					fmt.Fprintf(e.stdout, "The audit log verifies: %d events, %d to %d; the last has hash %s.\n",
						v.Events, v.Anchor.Seq+1, v.Head.Seq, v.Head.Hash)
					if v.Anchor.Seq > 0 {
						fmt.Fprintf(e.stdout, "Events 1 to %d were deleted by retention.\n", v.Anchor.Seq)
					}
				}
				return nil
			}
			if !e.localStores(cmd) {
				return e.withClient(func(c *client.Client) error {
					v, err := c.VerifyAudit(cmd.Context())
					if err != nil {
						return err
					}
					return show(v)
				})
			}
			return withAuditStore(cmd.Context(), e, f, func(db berth.AuditStore) error {
				v, err := api.VerifyAudit(cmd.Context(), db)
				if err != nil {
					return err
				}
				return show(v)
			})
		},
	}
	f.register(cmd.Flags(), false)
	return cmd
}

// metadataFile is the SQLite metadata store's file in the data folder, and
// locksFolder the folder of the commit locks every process on it shares.
const (
	metadataFile = "metadata.db"
	locksFolder  = "locks"
)

// withAuditStore opens the configured metadata store for fn: the database
// of --db (BERTH_DB, db:), else the data folder's. It refuses a data folder
// without one, rather than creating an empty store that would show an empty
// log.
func withAuditStore(ctx context.Context, e *env, f configFlags, fn func(berth.AuditStore) error) error {
	cfg, err := loadConfig(f, e.getenv)
	if err != nil {
		return err
	}
	st, err := openExisting(ctx, cfg, newLogger(cfg.Log, e.stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st.meta)
}

// formatAuditEvent writes one event on one line: time, seq, result, action,
// actor, target, reason, then the rest as key=value, quoted where needed.
func formatAuditEvent(ev berth.AuditEvent) string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	// A field a caller chose (the target of a refused request) that holds a
	// space is quoted, so that it cannot shift the columns.
	word := func(s string) string {
		if strings.ContainsAny(s, " \"\\") {
			return strconv.Quote(s)
		}
		return dash(s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s #%d %s %s %s %s %s", ev.Time.UTC().Format("2006-01-02T15:04:05.000Z"), ev.Seq,
		dash(string(ev.Result)), word(string(ev.Action)), word(ev.Actor), word(ev.Target), word(string(ev.Reason)))
	kv := func(k, v string) {
		if v == "" {
			return
		}
		b.WriteString(" ")
		b.WriteString(k)
		b.WriteString("=")
		if strings.ContainsAny(v, " \"\\=") || strconv.Quote(v) != `"`+v+`"` {
			v = strconv.Quote(v)
		}
		b.WriteString(v)
	}
	kv("from", ev.Source)
	kv("request", ev.RequestID)
	kv("credential", ev.CredentialID)
	kv("connection", ev.Connection)
	kv("pipeline", ev.Pipeline)
	for _, k := range slices.Sorted(maps.Keys(ev.Detail)) {
		kv(k, ev.Detail[k])
	}
	return b.String()
}

// auditPage is how many events remoteAudit asks for at a time: the API's
// largest page (a variable for tests).
var auditPage = 1000

// remoteAudit fetches what filter selects from the server's audit log, with
// q its filters as GET /api/v1/audit reads them. Like the store, it returns
// the last filter.Limit events when filter.Last is set, else the first after
// filter.After (every one when Limit is 0), in Seq order.
func remoteAudit(ctx context.Context, c *client.Client, q url.Values, filter berth.AuditFilter) ([]berth.AuditEvent, error) {
	page := auditPage
	if filter.Last && filter.Limit > 0 {
		// The last Limit events: pages read backwards from the end, so
		// that a long log is not read from its start.
		var out []berth.AuditEvent
		var before int64
		q.Set("last", "true")
		for len(out) < filter.Limit {
			n := min(page, filter.Limit-len(out))
			q.Set("limit", strconv.Itoa(n))
			if before > 0 {
				q.Set("before", strconv.FormatInt(before, 10))
			}
			p, err := c.Audit(ctx, q)
			if err != nil {
				return nil, err
			}
			if before > 0 && len(p.Events) > 0 && p.Events[len(p.Events)-1].Seq >= before {
				// A server older than the before cursor answered the
				// last page again: read forwards instead.
				q.Del("last")
				q.Del("before")
				break
			}
			out = append(p.Events, out...)
			if len(p.Events) < n {
				return out, nil
			}
			before = p.Events[0].Seq
		}
		if len(out) >= filter.Limit {
			return out, nil
		}
		out = nil
	}
	var out []berth.AuditEvent
	after := filter.After
	for {
		q.Set("limit", strconv.Itoa(page))
		q.Set("after", strconv.FormatInt(after, 10))
		p, err := c.Audit(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Events...)
		if !filter.Last && filter.Limit > 0 && len(out) >= filter.Limit {
			return out[:filter.Limit], nil
		}
		if p.Next == 0 || p.Next <= after {
			if filter.Last && filter.Limit > 0 && len(out) > filter.Limit {
				out = out[len(out)-filter.Limit:]
			}
			return out, nil
		}
		after = p.Next
	}
}

// operatorEvent is an audit event that no principal caused: actor names
// what acted (the configuration file, a break-glass command run by whoever
// holds the stores), and its source is this machine's host name.
func operatorEvent(ctx context.Context, actor string, action berth.AuditAction, target string, detail map[string]string) berth.AuditEvent {
	ev := berth.NewAuditEvent(ctx, action, target, nil)
	ev.Actor, ev.Detail = actor, detail
	if h, err := os.Hostname(); err == nil {
		ev.Source = h
	}
	return ev
}
