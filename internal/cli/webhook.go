package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/webhook"
)

func newWebhookCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Manage webhooks: other systems told what happens in berth",
		Long: `Manage webhooks. berth posts each event a webhook subscribes to as a
CloudEvents 1.0 JSON document (Content-Type application/cloudevents+json,
type dev.berth.EVENT), signed in the header

  Berth-Signature: t=UNIX,v1=HEX

where HEX is the HMAC-SHA256, keyed with the webhook's secret, of UNIX, "."
and the body. Verify it over the raw body, and refuse a t more than a few
minutes from your clock. Failed deliveries are retried with backoff (30s, 1m,
2m, … up to 1h, 10 attempts), in order per webhook.

Events: ` + eventList() + `.

Managing webhooks needs the role owner on registry.`,
	}

	var create api.CreateWebhookRequest
	var events string
	createCmd := &cobra.Command{
		Use:   "create URL --events EVENT,…",
		Short: "Subscribe an https URL to events; prints its signing secret once",
		Args:  argsExactly(1, "berth webhook create https://hooks.example.com/berth --events secret.expiring,image.pushed"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("events", events, "berth webhook create URL --events "+eventList()); err != nil {
				return err
			}
			create.URL, create.Events = args[0], strings.Split(events, ",")
			return e.withClient(func(c *client.Client) error {
				w, err := c.CreateWebhook(cmd.Context(), create)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(w)
				}
				fmt.Fprintf(e.stdout, "Created webhook %s\n  url:     %s\n  events:  %s\n  secret:  %s\n", w.ID, w.URL, joinEvents(w.Events), w.Secret)
				fmt.Fprintln(e.stderr, "Keep the secret now: berth shows it only once. Verify each delivery's Berth-Signature with it.")
				return nil
			})
		},
	}
	createCmd.Flags().StringVar(&events, "events", "", "comma-separated event types: "+eventList())
	createCmd.Flags().StringVar(&create.Description, "description", "", "what the webhook is for")

	var limit int
	deliveriesCmd := &cobra.Command{
		Use:   "deliveries ID",
		Short: "Show a webhook's delivery log, newest first",
		Args:  argsExactly(1, "berth webhook deliveries ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withClient(func(c *client.Client) error {
				ds, err := c.ListDeliveries(cmd.Context(), args[0], limit)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.printJSON(ds)
				}
				tw := e.table()
				fmt.Fprintln(tw, "DELIVERY\tEVENT\tTYPE\tSTATUS\tATTEMPTS\tHTTP\tCREATED\tLAST ATTEMPT\tNEXT ATTEMPT\tLAST ERROR")
				for _, d := range ds {
					httpStatus, next, lastErr := "-", "-", d.LastError
					if d.LastHTTPStatus != 0 {
						httpStatus = fmt.Sprint(d.LastHTTPStatus)
					}
					if d.Status == berth.DeliveryPending {
						next = formatTime(d.NextAttempt)
					}
					if lastErr == "" {
						lastErr = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.EventID, d.EventType, d.Status, d.Attempts,
						httpStatus, formatTime(d.Created), formatTime(d.LastAttempt), next, lastErr)
				}
				return tw.Flush()
			})
		},
	}
	deliveriesCmd.Flags().IntVar(&limit, "limit", 0, "show at most this many (default 100)")

	cmd.AddCommand(
		createCmd,
		&cobra.Command{
			Use:   "list",
			Short: "List webhooks",
			Args:  argsExactly(0, "berth webhook list"),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return e.withClient(func(c *client.Client) error {
					ws, err := c.ListWebhooks(cmd.Context())
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(ws)
					}
					tw := e.table()
					fmt.Fprintln(tw, "ID\tURL\tEVENTS\tCREATED\tDESCRIPTION")
					for _, w := range ws {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", w.ID, w.URL, joinEvents(w.Events), formatTime(w.Created), w.Description)
					}
					return tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use:   "show ID",
			Short: "Show a webhook",
			Args:  argsExactly(1, "berth webhook show ID"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					w, err := c.GetWebhook(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(w)
					}
					fmt.Fprintf(e.stdout, "id:          %s\nurl:         %s\nevents:      %s\ncreated:     %s\n", w.ID, w.URL, joinEvents(w.Events), formatTime(w.Created))
					if w.Description != "" {
						fmt.Fprintf(e.stdout, "description: %s\n", w.Description)
					}
					return nil
				})
			},
		},
		&cobra.Command{
			Use:     "delete ID",
			Aliases: []string{"remove"},
			Short:   "Delete a webhook and its queued deliveries",
			Args:    argsExactly(1, "berth webhook delete ID"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					w, err := c.DeleteWebhook(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(w)
					}
					fmt.Fprintf(e.stdout, "Deleted webhook %s (%s)\n", w.ID, w.URL)
					return nil
				})
			},
		},
		deliveriesCmd,
		&cobra.Command{
			Use:   "redeliver ID DELIVERY_ID",
			Short: "Queue a delivered or failed event again",
			Args:  argsExactly(2, "berth webhook redeliver ID DELIVERY_ID (berth webhook deliveries ID lists them)"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withClient(func(c *client.Client) error {
					d, err := c.Redeliver(cmd.Context(), args[0], args[1])
					if err != nil {
						return err
					}
					if e.output == "json" {
						return e.printJSON(d)
					}
					fmt.Fprintf(e.stdout, "Queued event %s again as delivery %s\n", d.EventID, d.ID)
					return nil
				})
			},
		},
	)
	return cmd
}

func eventList() string {
	names := make([]string, len(berth.EventTypes))
	for i, t := range berth.EventTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

func joinEvents(ts []berth.EventType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = string(t)
	}
	return strings.Join(names, ",")
}

// webhooks is the webhook part of berth serve: a publisher that the audit
// stream and the registry feed, a dispatcher that delivers what it queues, and
// the scheduler of expiry notices.
type webhooks struct {
	publisher  *webhook.Publisher
	dispatcher *webhook.Dispatcher
	scheduler  *webhook.Scheduler
}

// newWebhooks wires the webhooks of a server whose URL is source (the
// CloudEvents source) on meta, with the server's clock; issuers lets the
// scheduled verification of connections load their pipelines' keys; the
// scheduler looks every interval.
func newWebhooks(meta berth.MetadataStore, source string, issuers berth.IssuerChecker, outbound berth.OutboundPolicy, interval time.Duration, now func() time.Time, logger *slog.Logger) *webhooks {
	d := webhook.NewDispatcher(meta, webhook.DispatcherOptions{Now: now, Logger: logger, UserAgent: "berth-webhook/" + Version, Outbound: outbound})
	p := webhook.NewPublisher(meta, webhook.Options{Source: source, Now: now, Logger: logger, Nudge: d.Nudge})
	verify := func(ctx context.Context, c berth.Connection) error {
		report, err := berth.VerifyConnection(ctx, meta, issuers, c, now())
		if err != nil {
			return err
		}
		return report.Err()
	}
	return &webhooks{publisher: p, dispatcher: d,
		scheduler: &webhook.Scheduler{Secrets: meta, Publisher: p, Now: now, Logger: logger, Interval: interval, Verify: verify}}
}

// start runs the three until ctx is done, on wg, which serve waits for
// before it closes the stores. The publisher stores the events still
// waiting before it returns.
func (w *webhooks) start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() { w.publisher.Run(ctx) })
	wg.Go(func() { w.dispatcher.Run(ctx) })
	wg.Go(func() { w.scheduler.Run(ctx) })
}
