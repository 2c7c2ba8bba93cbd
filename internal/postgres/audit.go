package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/berth-dev/berth"
)

var _ berth.AuditStore = (*DB)(nil)

// AppendAuditEvents locks the head row (SELECT … FOR UPDATE), chains events
// after it with berth.ChainEvent, stores them, one row each, in one
// statement, and moves the head, all in one transaction. The lock queues
// appenders on every replica, and a waiter reads the head its predecessor
// committed, so no two chain after the same event. On success the chained
// events are copied into events.
func (db *DB) AppendAuditEvents(ctx context.Context, events []berth.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	chained := make([]berth.AuditEvent, len(events))
	err := db.inTx(ctx, "append audit events", func(tx pgx.Tx) error {
		_, head, err := readAuditHead(ctx, tx, true)
		if err != nil {
			return err
		}
		var (
			n                                   = len(events)
			seqs                                = make([]int64, 0, n)
			times                               = make([]time.Time, 0, n)
			actors, actorIDs, actions, targets  = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
			results, reasons, connections, hash = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
			bins                                = make([][]byte, 0, n)
		)
		for i := range events {
			c := berth.ChainEvent(head, events[i])
			bin, _ := c.AppendBinary(nil)
			cols := auditColumnsOf(c)
			seqs, times, bins = append(seqs, c.Seq), append(times, c.Time), append(bins, bin)
			actors, actorIDs = append(actors, cols.actor), append(actorIDs, cols.actorID)
			actions, targets = append(actions, cols.action), append(targets, cols.target)
			results, reasons = append(results, cols.result), append(reasons, cols.reason)
			connections, hash = append(connections, cols.connection), append(hash, c.Hash)
			chained[i] = c
			head = c.Link()
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO audit_events (seq, time, actor, actor_id, action, target, result, reason, connection, hash, event)
			SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
				$7::text[], $8::text[], $9::text[], $10::text[], $11::bytea[])`,
			seqs, times, actors, actorIDs, actions, targets, results, reasons, connections, hash, bins); err != nil {
			return fmt.Errorf("append audit events %d to %d: %w", chained[0].Seq, head.Seq, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_head SET head_seq = $1, head_hash = $2 WHERE id = 1`,
			head.Seq, head.Hash); err != nil {
			return fmt.Errorf("append audit events: move head: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	copy(events, chained)
	return nil
}

// readAuditHead returns the chain's anchor and head, locking the row FOR
// UPDATE when lock is set. A missing head row is audit_tampered:
// 0005_audit.sql creates it and nothing deletes it.
func readAuditHead(ctx context.Context, q querier, lock bool) (anchor, head berth.AuditLink, err error) {
	query := `SELECT anchor_seq, anchor_hash, head_seq, head_hash FROM audit_head WHERE id = 1`
	if lock {
		query += ` FOR UPDATE`
	}
	err = q.QueryRow(ctx, query).Scan(&anchor.Seq, &anchor.Hash, &head.Seq, &head.Hash)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return anchor, head, berth.Errorf(berth.CodeAuditTampered, "the audit log's head record (table audit_head) is missing: it was deleted outside berth").
			WithHint("restore the database from a backup; until then no audit event can be written")
	case err != nil:
		return anchor, head, fmt.Errorf("read audit head: %w", err)
	}
	return anchor, head, nil
}

// auditColumns are the text columns of audit_events: fields of the event, as
// text columns can hold them.
type auditColumns struct {
	actor, actorID, action, target, result, reason, connection string
}

func auditColumnsOf(e berth.AuditEvent) auditColumns {
	return auditColumns{
		actor: textColumn(e.Actor), actorID: textColumn(e.ActorID), action: textColumn(string(e.Action)),
		target: textColumn(e.Target), result: textColumn(string(e.Result)), reason: textColumn(string(e.Reason)),
		connection: textColumn(e.Connection),
	}
}

// textColumn returns s as a text column holds it: with invalid UTF-8 and NUL
// bytes, which PostgreSQL's text refuses, replaced by U+FFFD. Equal strings
// stay equal, so a query on a column selects at least what it would select
// on the event; FindAuditEvents then matches the events themselves.
func textColumn(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// decodeAuditEvent reads the event stored as row seq; a row that does not
// decode, or holds another Seq, was changed outside berth.
func decodeAuditEvent(seq int64, bin []byte) (berth.AuditEvent, error) {
	var e berth.AuditEvent
	if err := e.UnmarshalBinary(bin); err != nil {
		return e, auditUnreadable(seq, err.Error())
	}
	if e.Seq != seq {
		return e, auditUnreadable(seq, fmt.Sprintf("it holds event %d", e.Seq))
	}
	return e, nil
}

func auditUnreadable(seq int64, why string) error {
	return berth.Errorf(berth.CodeAuditTampered, "audit event %d cannot be read (%s): it was changed outside berth", seq, why).
		WithHint("compare the database with a backup, and keep this copy as evidence").
		WithDetail("seq", seq)
}

// FindAuditEvents selects in SQL on the columns, in Seq order (backwards for
// f.Last), and keeps the events f.Match selects. The columns select a
// superset (see textColumn), so with a Limit it reads further pages until it
// has enough or the rows run out.
func (db *DB) FindAuditEvents(ctx context.Context, f berth.AuditFilter) ([]berth.AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, vs ...any) {
		refs := make([]any, len(vs))
		for i, v := range vs {
			args = append(args, v)
			refs[i] = len(args)
		}
		where = append(where, fmt.Sprintf(cond, refs...))
	}
	if !f.Since.IsZero() {
		add("time >= $%d", f.Since) // sent truncated to microseconds: never later
	}
	if !f.Until.IsZero() {
		until := f.Until.Truncate(time.Microsecond)
		if until.Before(f.Until) {
			until = until.Add(time.Microsecond) // never earlier
		}
		add("time < $%d", until)
	}
	if f.After > 0 {
		add("seq > $%d", f.After)
	}
	if f.Before > 0 {
		add("seq < $%d", f.Before)
	}
	if f.Principal != "" {
		p := textColumn(f.Principal)
		add("(actor = $%d OR actor_id = $%d)", p, p)
	}
	if f.Repository != "" {
		if ns, ok := strings.CutSuffix(f.Repository, "/*"); ok {
			add("starts_with(target, $%d)", textColumn(ns)+"/")
		} else {
			add("target = $%d", textColumn(f.Repository))
		}
	}
	if f.Action != "" {
		add("action = $%d", textColumn(string(f.Action)))
	}
	if f.Result != "" {
		add("result = $%d", textColumn(string(f.Result)))
	}
	if f.Code != "" {
		add("reason = $%d", textColumn(string(f.Code)))
	}
	if f.Connection != "" {
		add("connection = $%d", textColumn(f.Connection))
	}
	order, cursorOp := "ASC", ">"
	if f.Last {
		order, cursorOp = "DESC", "<"
	}

	out := []berth.AuditEvent{}
	var cursor int64 // the last Seq read, once a page has been
	for page := 0; ; page++ {
		conds, qargs := slices.Clone(where), slices.Clone(args)
		if page > 0 {
			qargs = append(qargs, cursor)
			conds = append(conds, fmt.Sprintf("seq %s $%d", cursorOp, len(qargs)))
		}
		q := `SELECT seq, event FROM audit_events`
		if len(conds) > 0 {
			q += " WHERE " + strings.Join(conds, " AND ")
		}
		q += " ORDER BY seq " + order
		want := f.Limit - len(out)
		if f.Limit > 0 {
			qargs = append(qargs, want)
			q += fmt.Sprintf(" LIMIT $%d", len(qargs))
		}
		rows, err := db.pool.Query(ctx, q, qargs...)
		if err != nil {
			return nil, fmt.Errorf("find audit events: %w", err)
		}
		read := 0
		var (
			seq int64
			bin []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&seq, &bin}, func() error {
			read++
			cursor = seq
			e, err := decodeAuditEvent(seq, bin)
			if err != nil {
				return err
			}
			if f.Match(e) {
				out = append(out, e)
			}
			return nil
		})
		if err != nil {
			if berth.ErrorCode(err) != "" {
				return nil, err
			}
			return nil, fmt.Errorf("find audit events: %w", err)
		}
		if f.Limit <= 0 || len(out) >= f.Limit || read < want {
			break
		}
	}
	if f.Last {
		slices.Reverse(out)
	}
	return out, nil
}

// AuditChain reads the head row and every event in one read-only,
// repeatable-read transaction: one snapshot, so an append committing
// meanwhile is either wholly in it (events and head) or not at all. Besides
// passing each event to v, it checks each row's columns against its event: a
// row whose columns were edited (to hide it from a query, say) is
// audit_tampered.
func (db *DB) AuditChain(ctx context.Context, v berth.AuditChainVisitor) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	anchor, head, err := readAuditHead(ctx, tx, false)
	if err != nil {
		return err
	}
	if err := v.Begin(anchor, head); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `
		SELECT seq, time, actor, actor_id, action, target, result, reason, connection, hash, event
		FROM audit_events ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq  int64
			t    time.Time
			cols auditColumns
			hash string
			bin  []byte
		)
		if err := rows.Scan(&seq, &t, &cols.actor, &cols.actorID, &cols.action, &cols.target, &cols.result,
			&cols.reason, &cols.connection, &hash, &bin); err != nil {
			return fmt.Errorf("read audit chain: %w", err)
		}
		e, err := decodeAuditEvent(seq, bin)
		if err != nil {
			return err
		}
		if !t.Equal(e.Time) || hash != e.Hash || cols != auditColumnsOf(e) {
			return berth.Errorf(berth.CodeAuditTampered, "audit event %d was edited: its columns do not match its content", seq).
				WithHint("compare the database with a backup, and keep this copy as evidence").
				WithDetail("seq", seq)
		}
		if err := v.Event(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	return v.End()
}

// auditDeleteChunk bounds the events one retention transaction deletes, so
// that appends wait for the head's lock briefly, not for the whole prune.
const auditDeleteChunk = 10_000

// DeleteAuditEventsBefore deletes events, oldest first, up to the first
// whose Time is not before t, a chunk per transaction, each moving the
// anchor to the last event it deleted. It returns audit_tampered, deleting
// nothing more, where the events it would delete do not follow each other
// from the anchor: deleting them would hide the gap.
func (db *DB) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int, error) {
	total := 0
	for {
		n, more, err := db.deleteAuditChunk(ctx, t)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

func (db *DB) deleteAuditChunk(ctx context.Context, before time.Time) (n int, more bool, err error) {
	err = db.inTx(ctx, "delete audit events", func(tx pgx.Tx) error {
		anchor, _, err := readAuditHead(ctx, tx, true)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT seq, event FROM audit_events ORDER BY seq LIMIT $1`, auditDeleteChunk+1)
		if err != nil {
			return fmt.Errorf("delete audit events: %w", err)
		}
		defer rows.Close()
		cut := anchor
		for rows.Next() {
			var (
				seq int64
				bin []byte
			)
			if err := rows.Scan(&seq, &bin); err != nil {
				return fmt.Errorf("delete audit events: %w", err)
			}
			e, err := decodeAuditEvent(seq, bin)
			if err != nil {
				return err
			}
			if !e.Time.Before(before) {
				break
			}
			if seq != cut.Seq+1 {
				return berth.Errorf(berth.CodeAuditTampered, "audit events %d to %d, before the event retention would delete next, are missing: they were deleted outside berth", cut.Seq+1, seq-1).
					WithHint("run berth audit verify, and keep a copy of the database as evidence before pruning").
					WithDetail("seq", cut.Seq+1)
			}
			if cut.Seq-anchor.Seq >= auditDeleteChunk {
				more = true
				break
			}
			cut = e.Link()
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("delete audit events: %w", err)
		}
		rows.Close()
		if cut == anchor {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM audit_events WHERE seq <= $1`, cut.Seq); err != nil {
			return fmt.Errorf("delete audit events: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_head SET anchor_seq = $1, anchor_hash = $2 WHERE id = 1`, cut.Seq, cut.Hash); err != nil {
			return fmt.Errorf("delete audit events: move anchor: %w", err)
		}
		n = int(cut.Seq - anchor.Seq)
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}
