package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

var _ berth.AuditStore = (*DB)(nil)

// AppendAuditEvents chains events after the head with berth.ChainEvent and
// stores them as one block, moving the head, in one write transaction: its
// IMMEDIATE lock keeps two writers (in this process or another) from
// chaining after the same head. On success the chained events are copied
// into events.
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
		var (
			block   = make([]byte, 0, 400*len(events))
			scratch []byte
			minT    = int64(1<<63 - 1)
			maxT    = int64(-1 << 63)
		)
		for i := range events {
			c := berth.ChainEvent(head, events[i])
			scratch, _ = c.AppendBinary(scratch[:0])
			block = binary.AppendUvarint(block, uint64(len(scratch)))
			block = append(block, scratch...)
			t := toDB(c.Time)
			minT, maxT = min(minT, t), max(maxT, t)
			chained[i] = c
			head = c.Link()
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO audit_blocks (first_seq, last_seq, min_time, max_time, last_hash, events)
			VALUES (?, ?, ?, ?, ?, ?)`,
			chained[0].Seq, head.Seq, minT, maxT, head.Hash, block); err != nil {
			return fmt.Errorf("append audit events %d to %d: %w", chained[0].Seq, head.Seq, err)
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

// auditBlock is one row of audit_blocks.
type auditBlock struct {
	firstSeq, lastSeq int64
	minTime, maxTime  int64
	lastHash          string
	events            []byte
}

const auditBlockColumns = `first_seq, last_seq, min_time, max_time, last_hash, events`

func scanAuditBlock(rows *sql.Rows) (auditBlock, error) {
	var b auditBlock
	err := rows.Scan(&b.firstSeq, &b.lastSeq, &b.minTime, &b.maxTime, &b.lastHash, &b.events)
	return b, err
}

// decode calls fn with each event of the block in order. A block that does
// not decode was changed outside berth: audit_tampered, naming the first Seq
// it could not read.
func (b auditBlock) decode(fn func(e berth.AuditEvent) error) error {
	next := b.firstSeq
	for rest := b.events; len(rest) > 0; {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return b.unreadable(next, "a length is malformed")
		}
		var e berth.AuditEvent
		if err := e.UnmarshalBinary(rest[k : k+int(n)]); err != nil {
			return b.unreadable(next, err.Error())
		}
		rest = rest[k+int(n):]
		if err := fn(e); err != nil {
			return err
		}
		next = e.Seq + 1
	}
	return nil
}

func (b auditBlock) unreadable(seq int64, why string) error {
	return berth.Errorf(berth.CodeAuditTampered, "the audit block from event %d cannot be read at event %d (%s): it was changed outside berth", b.firstSeq, seq, why).
		WithHint("compare metadata.db with a backup, and keep this copy as evidence").
		WithDetail("seq", seq)
}

// FindAuditEvents reads the blocks that may hold what f selects, in Seq
// order (backwards for f.Last), and keeps the events f.Match selects.
func (db *DB) FindAuditEvents(ctx context.Context, f berth.AuditFilter) ([]berth.AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	if !f.Since.IsZero() {
		where, args = append(where, "max_time >= ?"), append(args, toDB(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "min_time < ?"), append(args, toDB(f.Until))
	}
	if f.After > 0 {
		where, args = append(where, "last_seq > ?"), append(args, f.After)
	}
	if f.Before > 0 {
		where, args = append(where, "first_seq < ?"), append(args, f.Before)
	}
	query := `SELECT ` + auditBlockColumns + ` FROM audit_blocks`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Last {
		query += " ORDER BY first_seq DESC"
	} else {
		query += " ORDER BY first_seq"
	}
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("find audit events: %w", err)
	}
	defer rows.Close()

	out := []berth.AuditEvent{}
	full := func() bool { return f.Limit > 0 && len(out) >= f.Limit }
	var matched []berth.AuditEvent // of one block, for f.Last
	for rows.Next() && !full() {
		b, err := scanAuditBlock(rows)
		if err != nil {
			return nil, fmt.Errorf("find audit events: %w", err)
		}
		matched = matched[:0]
		err = b.decode(func(e berth.AuditEvent) error {
			if f.Match(e) {
				matched = append(matched, e)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if f.Last {
			slices.Reverse(matched)
		}
		for _, e := range matched {
			if full() {
				break
			}
			out = append(out, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find audit events: %w", err)
	}
	if f.Last {
		slices.Reverse(out)
	}
	return out, nil
}

// AuditChain reads the head row and every block in one read transaction: in
// WAL mode it sees one snapshot, so an append running meanwhile is either
// wholly in it (block and head) or not at all. Besides passing each event to
// v, it checks each block's columns against its events: a block whose
// columns were edited (to hide it from a time range, say) is audit_tampered.
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
	rows, err := tx.QueryContext(ctx, `SELECT `+auditBlockColumns+` FROM audit_blocks ORDER BY first_seq`)
	if err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		b, err := scanAuditBlock(rows)
		if err != nil {
			return fmt.Errorf("read audit chain: %w", err)
		}
		var (
			first, last berth.AuditEvent
			n           int
			minT        = int64(1<<63 - 1)
			maxT        = int64(-1 << 63)
		)
		err = b.decode(func(e berth.AuditEvent) error {
			if n == 0 {
				first = e
			}
			last, n = e, n+1
			t := toDB(e.Time)
			minT, maxT = min(minT, t), max(maxT, t)
			return v.Event(e)
		})
		if err != nil {
			return err
		}
		if n == 0 || first.Seq != b.firstSeq || last.Seq != b.lastSeq || last.Hash != b.lastHash || minT != b.minTime || maxT != b.maxTime {
			return berth.Errorf(berth.CodeAuditTampered, "the audit block from event %d was edited: its index columns do not match its events", b.firstSeq).
				WithHint("compare metadata.db with a backup, and keep this copy as evidence").
				WithDetail("seq", b.firstSeq)
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

// DeleteAuditEventsBefore deletes whole blocks, oldest first, while every
// event of a block is before t, a chunk per transaction, each moving the
// anchor to the last event it deleted. A block holding an event not before t
// is kept whole, with any older events it holds. It returns audit_tampered,
// deleting nothing more, where the blocks it would delete do not follow each
// other from the anchor: deleting them would hide the gap.
func (db *DB) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int, error) {
	total := 0
	for {
		n, more, err := db.deleteAuditChunk(ctx, toDB(t))
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

func (db *DB) deleteAuditChunk(ctx context.Context, before int64) (n int, more bool, err error) {
	err = db.inTx(ctx, "delete audit events", func(tx *sql.Tx) error {
		anchor, _, err := readAuditHead(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `
			SELECT first_seq, last_seq, max_time, last_hash FROM audit_blocks
			ORDER BY first_seq LIMIT ?`, auditDeleteChunk+1)
		if err != nil {
			return fmt.Errorf("delete audit events: %w", err)
		}
		defer rows.Close()
		cut := anchor
		for rows.Next() {
			var first, last, maxTime int64
			var hash string
			if err := rows.Scan(&first, &last, &maxTime, &hash); err != nil {
				return fmt.Errorf("delete audit events: %w", err)
			}
			if maxTime >= before {
				break
			}
			if first != cut.Seq+1 {
				return berth.Errorf(berth.CodeAuditTampered, "audit events %d to %d, before the block retention would delete next, are missing: they were deleted outside berth", cut.Seq+1, first-1).
					WithHint("run berth audit verify, and keep a copy of metadata.db as evidence before pruning").
					WithDetail("seq", cut.Seq+1)
			}
			if cut.Seq-anchor.Seq >= auditDeleteChunk {
				more = true
				break
			}
			cut = berth.AuditLink{Seq: last, Hash: hash}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("delete audit events: %w", err)
		}
		rows.Close()
		if cut == anchor {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM audit_blocks WHERE first_seq <= ?`, cut.Seq); err != nil {
			return fmt.Errorf("delete audit events: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET anchor_seq = ?, anchor_hash = ? WHERE id = 1`, cut.Seq, cut.Hash); err != nil {
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
