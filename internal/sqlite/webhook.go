package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// Webhooks and their delivery queue (berth.WebhookStore), in the tables of
// migration 0007. Which webhook takes an event, when a delivery is due again
// and when it is given up are decided in package berth and internal/webhook.

var _ berth.WebhookStore = (*DB)(nil)

// CreateWebhook stores w with its secret, or returns conflict.
func (db *DB) CreateWebhook(ctx context.Context, w berth.Webhook) error {
	events, err := json.Marshal(w.Events)
	if err != nil {
		return fmt.Errorf("create webhook %s: %w", w.ID, err)
	}
	return db.inTx(ctx, "create webhook", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO webhooks (id, url, events, description, secret, created) VALUES (?, ?, ?, ?, ?, ?)`,
			w.ID, w.URL, string(events), w.Description, w.Secret.Reveal(), toDB(w.Created))
		switch {
		case isUniqueViolation(err):
			return berth.Errorf(berth.CodeConflict, "a webhook with id %s exists", w.ID)
		case err != nil:
			return fmt.Errorf("create webhook %s: %w", w.ID, err)
		}
		return nil
	})
}

const webhookColumns = `id, url, events, description, secret, created`

func scanWebhook(row interface{ Scan(...any) error }) (berth.Webhook, error) {
	var (
		w              berth.Webhook
		events, secret string
		created        int64
	)
	if err := row.Scan(&w.ID, &w.URL, &events, &w.Description, &secret, &created); err != nil {
		return berth.Webhook{}, err
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return berth.Webhook{}, fmt.Errorf("stored events of webhook %s: %v", w.ID, err)
	}
	w.Secret, w.Created = berth.WebhookSecretOf(secret), fromDB(created)
	return w, nil
}

// FindWebhookByID returns the webhook, or not_found.
func (db *DB) FindWebhookByID(ctx context.Context, id string) (berth.Webhook, error) {
	w, err := scanWebhook(db.read.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return berth.Webhook{}, berth.WebhookNotFound(id)
	case err != nil:
		return berth.Webhook{}, fmt.Errorf("find webhook %s: %w", id, err)
	}
	return w, nil
}

// FindWebhooks returns every webhook by Created then ID.
func (db *DB) FindWebhooks(ctx context.Context) ([]berth.Webhook, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("find webhooks: %w", err)
	}
	defer rows.Close()
	out := []berth.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("find webhooks: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find webhooks: %w", err)
	}
	return out, nil
}

// DeleteWebhook deletes the webhook and its deliveries, or returns not_found.
func (db *DB) DeleteWebhook(ctx context.Context, id string) error {
	return db.inTx(ctx, "delete webhook", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = ?`, id); err != nil {
			return fmt.Errorf("delete deliveries of webhook %s: %w", id, err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete webhook %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete webhook %s: %w", id, err)
		} else if n == 0 {
			return berth.WebhookNotFound(id)
		}
		return nil
	})
}

// EnqueueDeliveries stores ds in one transaction, unless once was recorded.
func (db *DB) EnqueueDeliveries(ctx context.Context, once string, ds []berth.Delivery) (bool, error) {
	seqs := make([]int64, len(ds))
	fresh := true
	err := db.inTx(ctx, "enqueue deliveries", func(tx *sql.Tx) error {
		if once != "" {
			res, err := tx.ExecContext(ctx, `INSERT INTO webhook_once (key) VALUES (?) ON CONFLICT (key) DO NOTHING`, once)
			if err != nil {
				return fmt.Errorf("enqueue deliveries: record %s: %w", once, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("enqueue deliveries: record %s: %w", once, err)
			} else if n == 0 {
				fresh = false
				return nil
			}
		}
		for i, d := range ds {
			var exists bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = ?)`, d.WebhookID).Scan(&exists); err != nil {
				return fmt.Errorf("enqueue delivery %s: %w", d.ID, err)
			}
			if !exists {
				return berth.WebhookNotFound(d.WebhookID)
			}
			err := tx.QueryRowContext(ctx, `
				INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, subject, body, status, attempts,
					next_attempt, last_attempt, last_http_status, last_error, created, completed, redelivery_of)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
				d.ID, d.WebhookID, d.EventID, string(d.EventType), d.Subject, d.Body, string(d.Status), d.Attempts,
				optTime(d.NextAttempt), optTime(d.LastAttempt), d.LastHTTPStatus, d.LastError, toDB(d.Created),
				optTime(d.Completed), d.RedeliveryOf).Scan(&seqs[i])
			switch {
			case isUniqueViolation(err):
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
func (db *DB) ForgetOnce(ctx context.Context, key string) error {
	if _, err := db.write.ExecContext(ctx, `DELETE FROM webhook_once WHERE key = ?`, key); err != nil {
		return fmt.Errorf("forget once key %s: %w", key, err)
	}
	return nil
}

// optTime stores the zero time as 0, so that "never" reads back as zero.
func optTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return toDB(t)
}

func fromOptDB(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromDB(us)
}

const deliveryColumns = `seq, id, webhook_id, event_id, event_type, subject, body, status, attempts,
	next_attempt, last_attempt, last_http_status, last_error, created, completed, redelivery_of`

func scanDelivery(row interface{ Scan(...any) error }) (berth.Delivery, error) {
	var (
		d                              berth.Delivery
		typ, status                    string
		next, last, created, completed int64
	)
	if err := row.Scan(&d.Seq, &d.ID, &d.WebhookID, &d.EventID, &typ, &d.Subject, &d.Body, &status, &d.Attempts,
		&next, &last, &d.LastHTTPStatus, &d.LastError, &created, &completed, &d.RedeliveryOf); err != nil {
		return berth.Delivery{}, err
	}
	d.EventType, d.Status = berth.EventType(typ), berth.DeliveryStatus(status)
	d.NextAttempt, d.LastAttempt, d.Created, d.Completed = fromOptDB(next), fromOptDB(last), fromDB(created), fromOptDB(completed)
	return d, nil
}

func readDeliveries(rows *sql.Rows) ([]berth.Delivery, error) {
	defer rows.Close()
	out := []berth.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClaimDueDeliveries returns the due heads of the webhooks' queues, leased.
func (db *DB) ClaimDueDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]berth.Delivery, error) {
	if limit <= 0 {
		return []berth.Delivery{}, nil
	}
	var out []berth.Delivery
	err := db.inTx(ctx, "claim deliveries", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			SELECT `+deliveryColumns+` FROM webhook_deliveries
			WHERE seq IN (SELECT min(seq) FROM webhook_deliveries WHERE status = 'pending' GROUP BY webhook_id)
				AND next_attempt <= ?
			ORDER BY next_attempt, seq LIMIT ?`, toDB(now), limit)
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		if out, err = readDeliveries(rows); err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		until := now.Add(lease)
		for i := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt = ? WHERE seq = ?`,
				toDB(until), out[i].Seq); err != nil {
				return fmt.Errorf("claim delivery %s: %w", out[i].ID, err)
			}
			out[i].NextAttempt = fromDB(toDB(until))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FindDeliveryByID returns the delivery, or not_found.
func (db *DB) FindDeliveryByID(ctx context.Context, id string) (berth.Delivery, error) {
	d, err := scanDelivery(db.read.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return berth.Delivery{}, berth.Errorf(berth.CodeNotFound, "no webhook delivery has id %s", id)
	case err != nil:
		return berth.Delivery{}, fmt.Errorf("find delivery %s: %w", id, err)
	}
	return d, nil
}

// FindDeliveries returns the webhook's deliveries, newest first.
func (db *DB) FindDeliveries(ctx context.Context, webhookID string, limit int) ([]berth.Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM webhook_deliveries WHERE webhook_id = ? ORDER BY seq DESC`
	args := []any{webhookID}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find deliveries of webhook %s: %w", webhookID, err)
	}
	out, err := readDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("find deliveries of webhook %s: %w", webhookID, err)
	}
	return out, nil
}

// UpdateDelivery stores the outcome of an attempt.
func (db *DB) UpdateDelivery(ctx context.Context, d berth.Delivery) error {
	return db.inTx(ctx, "update delivery", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt = ?, last_attempt = ?,
				last_http_status = ?, last_error = ?, completed = ?
			WHERE id = ?`,
			string(d.Status), d.Attempts, optTime(d.NextAttempt), optTime(d.LastAttempt), d.LastHTTPStatus,
			strings.ToValidUTF8(d.LastError, "?"), optTime(d.Completed), d.ID)
		if err != nil {
			return fmt.Errorf("update delivery %s: %w", d.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("update delivery %s: %w", d.ID, err)
		} else if n == 0 {
			return berth.Errorf(berth.CodeNotFound, "no webhook delivery has id %s", d.ID)
		}
		return nil
	})
}
