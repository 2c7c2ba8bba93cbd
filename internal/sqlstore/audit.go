package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth"
)

var _ berth.AuditStore = (*Store)(nil)

// AuditLayout names how an engine keeps the audit log: the one store
// interface whose tables differ between the engines (migration 0005 is per
// engine), because appending runs on every request and each engine has its
// own cheapest way to append.
type AuditLayout int

const (
	// AuditBlocks keeps one row per append, holding its events in their
	// binary form: on SQLite a row per event cost about 6 µs an event, a
	// block about 1 µs. Queries select blocks by seq and time, and match
	// the events in Go.
	AuditBlocks AuditLayout = iota + 1
	// AuditRows keeps one row per event, inserted in one statement per
	// append (PostgreSQL's unnest of arrays), with the fields queries select
	// on as columns.
	AuditRows
)

// auditLayout is what differs between the layouts; audit.go holds the rest
// (the head row, its lock, the chunked retention), once.
type auditLayout interface {
	// insert stores chained, events chained after the head in Seq order.
	insert(ctx context.Context, tx Querier, chained []berth.AuditEvent) error
	// find returns what f selects, in Seq order.
	find(ctx context.Context, q Querier, f berth.AuditFilter) ([]berth.AuditEvent, error)
	// visit passes every stored event to v, in Seq order, checking what the
	// layout repeats beside each event against it.
	visit(ctx context.Context, q Querier, v berth.AuditChainVisitor) error
	// prefix returns the links that end the oldest stored units (a block,
	// an event) wholly before before, oldest first, at most limit+1 of them:
	// what retention may delete. first is the first Seq of each.
	prefix(ctx context.Context, tx Querier, before time.Time, limit int) (first []int64, last []berth.AuditLink, err error)
	// deleteThrough deletes every stored event up to seq.
	deleteThrough(ctx context.Context, tx Querier, seq int64) error
}

func (s *Store) audit() auditLayout {
	if s.d.Audit == AuditRows {
		return auditRows{}
	}
	return auditBlocks{}
}

// AppendAuditEvents locks the head row (FOR UPDATE on PostgreSQL; SQLite's
// write transaction holds the database), chains events after it with
// berth.ChainEvent, stores them and moves the head, in one transaction: no
// two appenders, on any replica or process, chain after the same event. On
// success the chained events are copied into events.
//
// Where the layout keeps a row per event (PostgreSQL), the head this process
// last wrote is remembered: the next append chains after it and stores its
// events and the new head in one statement that takes effect only while the
// head is still that one (auditRows.insertAfter), so an append from the
// only writer costs one round trip instead of five. When the head has moved
// (another replica appended, retention is no matter: it moves the anchor),
// nothing was written and the append runs as above. Appends of one process
// take turns for this, as they would for the head row's lock.
func (s *Store) AppendAuditEvents(ctx context.Context, events []berth.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	chained := make([]berth.AuditEvent, len(events))
	rows, fast := s.audit().(auditRows)
	fast = fast && s.d.WritableCTE
	if fast {
		s.auditMu.Lock()
		defer s.auditMu.Unlock()
		if s.auditHead != nil {
			head := *s.auditHead
			for i := range events {
				chained[i] = berth.ChainEvent(head, events[i])
				head = chained[i].Link()
			}
			ok, err := rows.insertAfter(ctx, s.c.Write(), *s.auditHead, chained)
			if err != nil {
				s.auditHead = nil
				return fmt.Errorf("append audit events %d to %d: %w", chained[0].Seq, head.Seq, err)
			}
			if ok {
				s.auditHead = &head
				copy(events, chained)
				return nil
			}
			s.auditHead = nil
		}
	}
	err := s.inTx(ctx, "append audit events", func(tx Querier) error {
		_, head, err := readAuditHead(ctx, tx, s.d.ForUpdate)
		if err != nil {
			return err
		}
		for i := range events {
			chained[i] = berth.ChainEvent(head, events[i])
			head = chained[i].Link()
		}
		if err := s.audit().insert(ctx, tx, chained); err != nil {
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
	if fast {
		head := chained[len(chained)-1].Link()
		s.auditHead = &head
	}
	copy(events, chained)
	return nil
}

// readAuditHead returns the chain's anchor and head, with lock appended to
// the query. A missing head row is audit_tampered: migration 0005 creates it
// and nothing deletes it.
func readAuditHead(ctx context.Context, q Querier, lock string) (anchor, head berth.AuditLink, err error) {
	err = q.QueryRow(ctx, `SELECT anchor_seq, anchor_hash, head_seq, head_hash FROM audit_head WHERE id = 1`+lock).
		Scan(&anchor.Seq, &anchor.Hash, &head.Seq, &head.Hash)
	switch {
	case IsNoRows(err):
		return anchor, head, berth.Errorf(berth.CodeAuditTampered, "the audit log's head record (table audit_head) is missing: it was deleted outside berth").
			WithHint("restore the metadata database from a backup; until then no audit event can be written")
	case err != nil:
		return anchor, head, fmt.Errorf("read audit head: %w", err)
	}
	return anchor, head, nil
}

// FindAuditEvents returns the events f selects, in Seq order.
func (s *Store) FindAuditEvents(ctx context.Context, f berth.AuditFilter) ([]berth.AuditEvent, error) {
	return s.audit().find(ctx, s.c.Read(), f)
}

// AuditChain reads the head row and every event in one read-only snapshot
// (Conn.BeginRead), so an append committing meanwhile is either wholly in it
// (events and head) or not at all. Besides passing each event to v, it
// checks what the layout keeps beside each event against it: a row whose
// columns were edited (to hide it from a query, say) is audit_tampered.
func (s *Store) AuditChain(ctx context.Context, v berth.AuditChainVisitor) error {
	tx, err := s.c.BeginRead(ctx)
	if err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	anchor, head, err := readAuditHead(ctx, tx, "")
	if err != nil {
		return err
	}
	if err := v.Begin(anchor, head); err != nil {
		return err
	}
	if err := s.audit().visit(ctx, tx, v); err != nil {
		return err
	}
	return v.End()
}

// auditDeleteChunk bounds the events one retention transaction deletes, so
// that appends wait for the head briefly, not for the whole prune.
const auditDeleteChunk = 10_000

// DeleteAuditEventsBefore deletes the oldest events while they are before t
// (whole blocks in the block layout: a block holding an event not before t
// is kept whole, with any older events it holds), a chunk per transaction,
// each moving the anchor to the last event it deleted. It returns
// audit_tampered, deleting nothing more, where the events it would delete
// do not follow each other from the anchor: deleting them would hide the
// gap.
func (s *Store) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int, error) {
	total := 0
	for {
		n, more, err := s.deleteAuditChunk(ctx, t)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

func (s *Store) deleteAuditChunk(ctx context.Context, before time.Time) (n int, more bool, err error) {
	err = s.inTx(ctx, "delete audit events", func(tx Querier) error {
		anchor, _, err := readAuditHead(ctx, tx, s.d.ForUpdate)
		if err != nil {
			return err
		}
		firsts, lasts, err := s.audit().prefix(ctx, tx, before, auditDeleteChunk)
		if err != nil {
			return err
		}
		cut := anchor
		for i, first := range firsts {
			if first != cut.Seq+1 {
				return berth.Errorf(berth.CodeAuditTampered, "audit events %d to %d, before what retention would delete next, are missing: they were deleted outside berth", cut.Seq+1, first-1).
					WithHint("run berth audit verify, and keep a copy of the metadata database as evidence before pruning").
					WithDetail("seq", cut.Seq+1)
			}
			if cut.Seq-anchor.Seq >= auditDeleteChunk {
				more = true
				break
			}
			cut = lasts[i]
		}
		if cut == anchor {
			return nil
		}
		if err := s.audit().deleteThrough(ctx, tx, cut.Seq); err != nil {
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
