package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// Webhooks and their delivery queue (berth.WebhookStore), in the tables of
// migration 0007. Which webhook takes an event, when a delivery is due again
// and when it is given up are decided in package berth and internal/webhook.

var _ berth.WebhookStore = (*Store)(nil)

const webhookColumns = `id, url, events, description, secret, created`

func scanWebhook(row Row) (berth.Webhook, error) {
	var (
		w              berth.Webhook
		events, secret string
	)
	if err := row.Scan(&w.ID, &w.URL, &events, &w.Description, &secret, Time(&w.Created)); err != nil {
		return berth.Webhook{}, err
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return berth.Webhook{}, fmt.Errorf("stored events of webhook %s: %v", w.ID, err)
	}
	w.Secret = berth.WebhookSecretOf(secret)
	return w, nil
}

// CreateWebhook stores w with its secret, or returns conflict.
func (s *Store) CreateWebhook(ctx context.Context, w berth.Webhook) error {
	events, err := json.Marshal(w.Events)
	if err != nil {
		return fmt.Errorf("create webhook %s: %w", w.ID, err)
	}
	_, err = s.c.Write().Exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		w.ID, w.URL, string(events), w.Description, w.Secret.Reveal(), w.Created)
	switch {
	case s.d.IsUniqueViolation(err):
		return berth.Errorf(berth.CodeConflict, "a webhook with id %s exists", w.ID)
	case err != nil:
		return fmt.Errorf("create webhook %s: %w", w.ID, err)
	}
	return nil
}

// FindWebhookByID returns the webhook, or not_found.
func (s *Store) FindWebhookByID(ctx context.Context, id string) (berth.Webhook, error) {
	w, err := scanWebhook(s.c.Read().QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id))
	switch {
	case IsNoRows(err):
		return berth.Webhook{}, berth.WebhookNotFound(id)
	case err != nil:
		return berth.Webhook{}, fmt.Errorf("find webhook %s: %w", id, err)
	}
	return w, nil
}

// FindWebhooks returns every webhook by Created then ID.
func (s *Store) FindWebhooks(ctx context.Context) ([]berth.Webhook, error) {
	rows, err := s.c.Read().Query(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY created, id`)
	out, err := collect(rows, err, func(r Rows) (berth.Webhook, error) { return scanWebhook(r) })
	if err != nil {
		return nil, fmt.Errorf("find webhooks: %w", err)
	}
	return out, nil
}

// SetWebhookSecret replaces the webhook's stored secret, or returns
// not_found.
func (s *Store) SetWebhookSecret(ctx context.Context, id string, secret berth.WebhookSecret) error {
	n, err := s.c.Write().Exec(ctx, `UPDATE webhooks SET secret = $2 WHERE id = $1`, id, secret.Reveal())
	switch {
	case err != nil:
		return fmt.Errorf("set the secret of webhook %s: %w", id, err)
	case n == 0:
		return berth.WebhookNotFound(id)
	}
	return nil
}

// DeleteWebhook deletes the webhook and its deliveries, or returns
// not_found. It locks the webhook's row first (on PostgreSQL), so an enqueue meanwhile
// either lands before (and is deleted) or is refused with not_found.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	return s.inTx(ctx, "delete webhook", func(tx Querier) error {
		var ok bool
		err := tx.QueryRow(ctx, `SELECT true FROM webhooks WHERE id = $1`+s.d.ForUpdate, id).Scan(&ok)
		switch {
		case IsNoRows(err):
			return berth.WebhookNotFound(id)
		case err != nil:
			return fmt.Errorf("delete webhook %s: %w", id, err)
		}
		for _, q := range []string{
			`DELETE FROM webhook_deliveries WHERE webhook_id = $1`,
			`DELETE FROM webhooks WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("delete webhook %s: %w", id, err)
			}
		}
		return nil
	})
}

// EnqueueDeliveries stores ds in one transaction, unless once was recorded.
// On PostgreSQL it locks the webhooks named (FOR NO KEY UPDATE, in ID order so that two
// enqueues never wait for each other in a circle) before drawing seqs: an
// enqueue to the same webhook on another replica waits for this one's
// commit, so a webhook's deliveries become visible in seq order and a
// dispatcher never sees a later one as the head of its queue.
func (s *Store) EnqueueDeliveries(ctx context.Context, once string, ds []berth.Delivery) (bool, error) {
	seqs := make([]int64, len(ds))
	fresh := true
	err := s.inTx(ctx, "enqueue deliveries", func(tx Querier) error {
		if once != "" {
			res, err := tx.Exec(ctx, `INSERT INTO webhook_once (key) VALUES ($1) ON CONFLICT (key) DO NOTHING`, once)
			if err != nil {
				return fmt.Errorf("enqueue deliveries: record %s: %w", once, err)
			}
			if res == 0 {
				fresh = false
				return nil
			}
		}
		var hooks []string
		for _, d := range ds {
			hooks = append(hooks, d.WebhookID)
		}
		slices.Sort(hooks)
		for _, id := range slices.Compact(hooks) {
			var ok bool
			err := tx.QueryRow(ctx, `SELECT true FROM webhooks WHERE id = $1`+s.d.ForNoKeyUpdate, id).Scan(&ok)
			switch {
			case IsNoRows(err):
				return berth.WebhookNotFound(id)
			case err != nil:
				return fmt.Errorf("enqueue deliveries to webhook %s: %w", id, err)
			}
		}
		for i, d := range ds {
			err := tx.QueryRow(ctx, `
				INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, subject, body, status, attempts,
					next_attempt, last_attempt, last_http_status, last_error, created, completed, redelivery_of)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING seq`,
				d.ID, d.WebhookID, d.EventID, string(d.EventType), d.Subject, NonNil(d.Body), string(d.Status), d.Attempts,
				s.optTime(d.NextAttempt), s.optTime(d.LastAttempt), d.LastHTTPStatus, lastError(d.LastError), d.Created, s.optTime(d.Completed),
				d.RedeliveryOf).Scan(&seqs[i])
			switch {
			case s.d.IsUniqueViolation(err):
				return berth.Errorf(berth.CodeConflict, "a delivery with id %s exists", d.ID)
			case err != nil:
				return fmt.Errorf("enqueue delivery %s: %w", d.ID, err)
			}
		}
		return nil
	})
	if err != nil || !fresh {
		return false, err
	}
	for i := range ds {
		ds[i].Seq = seqs[i]
	}
	return true, nil
}

// ForgetOnce deletes key from webhook_once, if it is there.
func (s *Store) ForgetOnce(ctx context.Context, key string) error {
	if _, err := s.c.Write().Exec(ctx, `DELETE FROM webhook_once WHERE key = $1`, key); err != nil {
		return fmt.Errorf("forget once key %s: %w", key, err)
	}
	return nil
}

// lastError keeps what text can hold of an attempt's error: it quotes a
// remote server, which may answer anything.
func lastError(e string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(e, "?"), "\x00", "?")
}

const deliveryColumns = `seq, id, webhook_id, event_id, event_type, subject, body, status, attempts,
	next_attempt, last_attempt, last_http_status, last_error, created, completed, redelivery_of`

func scanDelivery(row Row) (berth.Delivery, error) {
	var (
		d           berth.Delivery
		typ, status string
	)
	if err := row.Scan(&d.Seq, &d.ID, &d.WebhookID, &d.EventID, &typ, &d.Subject, &d.Body, &status, &d.Attempts,
		OptTime(&d.NextAttempt), OptTime(&d.LastAttempt), &d.LastHTTPStatus, &d.LastError, Time(&d.Created), OptTime(&d.Completed), &d.RedeliveryOf); err != nil {
		return berth.Delivery{}, err
	}
	d.EventType, d.Status = berth.EventType(typ), berth.DeliveryStatus(status)
	return d, nil
}

func readDeliveries(rows Rows, err error) ([]berth.Delivery, error) {
	return collect(rows, err, func(r Rows) (berth.Delivery, error) { return scanDelivery(r) })
}

// ClaimDueDeliveries returns the due heads of the webhooks' queues, leased.
// On PostgreSQL the heads are locked FOR UPDATE SKIP LOCKED, and a row locked after
// another dispatcher's claim or attempt committed is judged again on its new
// status and next_attempt, so dispatchers on several replicas never claim
// one delivery twice within a lease.
func (s *Store) ClaimDueDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]berth.Delivery, error) {
	if limit <= 0 {
		return []berth.Delivery{}, nil
	}
	var out []berth.Delivery
	err := s.inTx(ctx, "claim deliveries", func(tx Querier) error {
		rows, err := tx.Query(ctx, `
			SELECT `+deliveryColumns+` FROM webhook_deliveries
			WHERE seq IN (SELECT min(seq) FROM webhook_deliveries WHERE status = 'pending' GROUP BY webhook_id)
				AND status = 'pending' AND next_attempt <= $1
			ORDER BY next_attempt, seq LIMIT $2`+s.d.ForUpdateSkipLocked, now, limit)
		if out, err = readDeliveries(rows, err); err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		until := now.Add(lease).Truncate(time.Microsecond)
		for i := range out {
			if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET next_attempt = $1 WHERE seq = $2`, until, out[i].Seq); err != nil {
				return fmt.Errorf("claim delivery %s: %w", out[i].ID, err)
			}
			out[i].NextAttempt = until.UTC()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FindDeliveryByID returns the delivery, or not_found.
func (s *Store) FindDeliveryByID(ctx context.Context, id string) (berth.Delivery, error) {
	d, err := scanDelivery(s.c.Read().QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = $1`, id))
	switch {
	case IsNoRows(err):
		return berth.Delivery{}, berth.Errorf(berth.CodeNotFound, "no webhook delivery has id %s", id)
	case err != nil:
		return berth.Delivery{}, fmt.Errorf("find delivery %s: %w", id, err)
	}
	return d, nil
}

// FindDeliveries returns the webhook's deliveries, newest first.
func (s *Store) FindDeliveries(ctx context.Context, webhookID string, limit int) ([]berth.Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY seq DESC`
	args := []any{webhookID}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	out, err := readDeliveries(s.c.Read().Query(ctx, q, args...))
	if err != nil {
		return nil, fmt.Errorf("find deliveries of webhook %s: %w", webhookID, err)
	}
	return out, nil
}

// UpdateDelivery stores the outcome of an attempt.
func (s *Store) UpdateDelivery(ctx context.Context, d berth.Delivery) error {
	res, err := s.c.Write().Exec(ctx, `
		UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt = $3, last_attempt = $4,
			last_http_status = $5, last_error = $6, completed = $7
		WHERE id = $8`,
		string(d.Status), d.Attempts, s.optTime(d.NextAttempt), s.optTime(d.LastAttempt), d.LastHTTPStatus,
		lastError(d.LastError), s.optTime(d.Completed), d.ID)
	if err != nil {
		return fmt.Errorf("update delivery %s: %w", d.ID, err)
	}
	if res == 0 {
		return berth.Errorf(berth.CodeNotFound, "no webhook delivery has id %s", d.ID)
	}
	return nil
}
