package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

var _ berth.AuditStore = (*DB)(nil)

const auditColumns = `seq, time, actor, actor_id, source, action, target, result, reason,
	request_id, credential_id, connection, pipeline, detail, prev_hash, hash`

// AppendAuditEvents chains events after the head with berth.ChainEvent and
// stores them, moving the head, in one write transaction: the transaction's
// IMMEDIATE lock keeps two writers (in this process or another) from chaining
// after the same head. On success the chained events are copied into events.
func (db *DB) AppendAuditEvents(ctx context.Context, events []berth.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	chained := make([]berth.AuditEvent, len(events))
	err := db.inTx(ctx, "append audit events", func(tx *sql.Tx) error {
		_, head, err := readAuditHead(ctx, tx)
		if err != nil {
			return err
		}
		for i := range events {
			chained[i] = berth.ChainEvent(head, events[i])
			head = chained[i].Link()
		}
		if err := insertAuditEvents(ctx, tx, chained); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET head_seq = ?, head_hash = ? WHERE id = 1`,
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

// auditRowsPerInsert is how many events one INSERT statement writes: a
// statement per event costs more in the driver than SQLite spends storing it.
const auditRowsPerInsert = 32

// insertAuditEvents stores chained events, auditRowsPerInsert to a statement.
func insertAuditEvents(ctx context.Context, tx *sql.Tx, events []berth.AuditEvent) error {
	const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	var (
		stmt  *sql.Stmt
		rows  int
		args  = make([]any, 0, 16*min(len(events), auditRowsPerInsert))
		first = events[0].Seq
	)
	defer func() {
		if stmt != nil {
			stmt.Close()
		}
	}()
	for len(events) > 0 {
		chunk := events[:min(len(events), auditRowsPerInsert)]
		events = events[len(chunk):]
		if len(chunk) != rows {
			if stmt != nil {
				stmt.Close()
			}
			var err error
			stmt, err = tx.PrepareContext(ctx, `INSERT INTO audit_events (`+auditColumns+`) VALUES `+
				strings.Repeat(row+", ", len(chunk)-1)+row)
			if err != nil {
				return fmt.Errorf("append audit events: %w", err)
			}
			rows = len(chunk)
		}
		args = args[:0]
		for _, e := range chunk {
			detail, err := encodeAuditDetail(e.Detail)
			if err != nil {
				return fmt.Errorf("append audit event %d: %w", e.Seq, err)
			}
			args = append(args, e.Seq, toDB(e.Time), e.Actor, e.ActorID, e.Source, string(e.Action),
				e.Target, string(e.Result), string(e.Reason), e.RequestID, e.CredentialID, e.Connection, e.Pipeline,
				detail, e.PrevHash, e.Hash)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("append audit events %d to %d: %w", first, chunk[len(chunk)-1].Seq, err)
		}
	}
	return nil
}

// readAuditHead returns the chain's anchor and head. A missing head row is
// audit_tampered: 0005_audit.sql creates it and nothing deletes it.
func readAuditHead(ctx context.Context, q queryer) (anchor, head berth.AuditLink, err error) {
	err = q.QueryRowContext(ctx, `SELECT anchor_seq, anchor_hash, head_seq, head_hash FROM audit_head WHERE id = 1`).
		Scan(&anchor.Seq, &anchor.Hash, &head.Seq, &head.Hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return anchor, head, berth.Errorf(berth.CodeAuditTampered, "the audit log's head record (table audit_head) is missing: it was deleted outside berth").
			WithHint("restore metadata.db from a backup; until then no audit event can be written")
	case err != nil:
		return anchor, head, fmt.Errorf("read audit head: %w", err)
	}
	return anchor, head, nil
}

// encodeAuditDetail returns d as a JSON object with its keys in byte order,
// or nil (NULL) when d is empty.
func encodeAuditDetail(d map[string]string) (any, error) {
	if len(d) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

type scanner interface{ Scan(dest ...any) error }

func scanAuditEvent(s scanner) (berth.AuditEvent, error) {
	var (
		e                      berth.AuditEvent
		t                      int64
		action, result, reason string
		detail                 sql.NullString
	)
	if err := s.Scan(&e.Seq, &t, &e.Actor, &e.ActorID, &e.Source, &action, &e.Target, &result, &reason,
		&e.RequestID, &e.CredentialID, &e.Connection, &e.Pipeline, &detail, &e.PrevHash, &e.Hash); err != nil {
		return e, err
	}
	e.Time = fromDB(t)
	e.Action, e.Result, e.Reason = berth.AuditAction(action), berth.AuditResult(result), berth.Code(reason)
	if detail.Valid {
		// A detail that no longer parses was edited by hand: keep the event
		// (without it) so that verification reports it rather than this.
		if err := json.Unmarshal([]byte(detail.String), &e.Detail); err != nil || len(e.Detail) == 0 {
			e.Detail = map[string]string{"": detail.String}
		}
	}
	return e, nil
}

// FindAuditEvents returns the events f selects, in Seq order.
func (db *DB) FindAuditEvents(ctx context.Context, f berth.AuditFilter) ([]berth.AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if !f.Since.IsZero() {
		add("time >= ?", toDB(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", toDB(f.Until))
	}
	if f.Principal != "" {
		add("(actor = ? OR actor_id = ?)", f.Principal, f.Principal)
	}
	if ns, ok := strings.CutSuffix(f.Repository, "/*"); ok {
		// Targets under "ns/": from "ns/" up to "ns0", '0' following '/'.
		add("target > ? AND target < ?", ns+"/", ns+"0")
	} else if f.Repository != "" {
		add("target = ?", f.Repository)
	}
	if f.Action != "" {
		add("action = ?", string(f.Action))
	}
	if f.Result != "" {
		add("result = ?", string(f.Result))
	}
	if f.Code != "" {
		add("reason = ?", string(f.Code))
	}
	if f.After > 0 {
		add("seq > ?", f.After)
	}
	if f.Before > 0 {
		add("seq < ?", f.Before)
	}
	query := `SELECT ` + auditColumns + ` FROM audit_events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Last {
		query += " ORDER BY seq DESC"
	} else {
		query += " ORDER BY seq"
	}
	if f.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, f.Limit)
	}

	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("find audit events: %w", err)
	}
	defer rows.Close()
	out := []berth.AuditEvent{}
	for rows.Next() {
		e, err := scanAuditEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("find audit events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find audit events: %w", err)
	}
	if f.Last {
		slices.Reverse(out)
	}
	return out, nil
}

// AuditChain reads the head row and every event in one read transaction: in
// WAL mode it sees one snapshot, so an append running meanwhile is either
// wholly in it (events and head) or not at all.
func (db *DB) AuditChain(ctx context.Context, v berth.AuditChainVisitor) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	defer tx.Rollback()
	anchor, head, err := readAuditHead(ctx, tx)
	if err != nil {
		return err
	}
	if err := v.Begin(anchor, head); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_events ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAuditEvent(rows)
		if err != nil {
			return fmt.Errorf("read audit chain: %w", err)
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
// that appends wait for the write lock briefly, not for the whole prune.
const auditDeleteChunk = 10_000

// DeleteAuditEventsBefore deletes the oldest events up to the first whose time
// is not before t, a chunk per transaction, each moving the anchor to the last
// event it deleted. It returns audit_tampered, deleting nothing more, when the
// event that would become the anchor is missing: the chain could not be
// anchored there.
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

func (db *DB) deleteAuditChunk(ctx context.Context, t time.Time) (n int, more bool, err error) {
	err = db.inTx(ctx, "delete audit events", func(tx *sql.Tx) error {
		anchor, head, err := readAuditHead(ctx, tx)
		if err != nil {
			return err
		}
		limit := min(head.Seq, anchor.Seq+auditDeleteChunk)
		// The first kept event, walking the rowid from the anchor: this reads
		// only what is deleted (NOT INDEXED keeps the time index out of it).
		var keep sql.NullInt64
		if err := tx.QueryRowContext(ctx, `
			SELECT min(seq) FROM audit_events NOT INDEXED
			WHERE seq > ? AND seq <= ? AND time >= ?`,
			anchor.Seq, limit, toDB(t)).Scan(&keep); err != nil {
			return fmt.Errorf("delete audit events: %w", err)
		}
		cut := limit
		if keep.Valid {
			cut = keep.Int64 - 1
		}
		if cut <= anchor.Seq {
			return nil
		}
		var hash string
		err = tx.QueryRowContext(ctx, `SELECT hash FROM audit_events WHERE seq = ?`, cut).Scan(&hash)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return berth.Errorf(berth.CodeAuditTampered, "audit event %d, where retention would anchor the chain, is missing: it was deleted outside berth", cut).
				WithHint("run berth audit verify, and keep a copy of metadata.db as evidence before pruning").
				WithDetail("seq", cut)
		case err != nil:
			return fmt.Errorf("delete audit events: %w", err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM audit_events WHERE seq <= ?`, cut)
		if err != nil {
			return fmt.Errorf("delete audit events: %w", err)
		}
		deleted, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("delete audit events: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET anchor_seq = ?, anchor_hash = ? WHERE id = 1`, cut, hash); err != nil {
			return fmt.Errorf("delete audit events: move anchor: %w", err)
		}
		n, more = int(deleted), !keep.Valid && cut < head.Seq
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}
