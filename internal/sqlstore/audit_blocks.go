package sqlstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

// auditBlocks is the AuditBlocks layout (SQLite's migration 0005): table
// audit_blocks, one row per append, its events in their binary form
// (berth.AuditEvent.AppendBinary), each preceded by its length as a uvarint.
// The other columns index the blocks for queries and retention; AuditChain
// checks them against the events.
type auditBlocks struct{}

func (auditBlocks) insert(ctx context.Context, tx Querier, chained []berth.AuditEvent) error {
	var (
		block      = make([]byte, 0, 400*len(chained))
		scratch    []byte
		minT, maxT = chained[0].Time, chained[0].Time
	)
	for _, c := range chained {
		scratch, _ = c.AppendBinary(scratch[:0])
		block = binary.AppendUvarint(block, uint64(len(scratch)))
		block = append(block, scratch...)
		if c.Time.Before(minT) {
			minT = c.Time
		}
		if c.Time.After(maxT) {
			maxT = c.Time
		}
	}
	last := chained[len(chained)-1]
	_, err := tx.Exec(ctx, `
		INSERT INTO audit_blocks (first_seq, last_seq, min_time, max_time, last_hash, events)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		chained[0].Seq, last.Seq, minT, maxT, last.Hash, block)
	return err
}

// auditBlock is one row of audit_blocks.
type auditBlock struct {
	firstSeq, lastSeq int64
	minTime, maxTime  time.Time
	lastHash          string
	events            []byte
}

const auditBlockColumns = `first_seq, last_seq, min_time, max_time, last_hash, events`

func scanAuditBlock(r Rows) (auditBlock, error) {
	var b auditBlock
	err := r.Scan(&b.firstSeq, &b.lastSeq, Time(&b.minTime), Time(&b.maxTime), &b.lastHash, &b.events)
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
		WithHint("compare the metadata database with a backup, and keep this copy as evidence").
		WithDetail("seq", seq)
}

// find reads the blocks that may hold what f selects, in Seq order
// (backwards for f.Last), and keeps the events f.Match selects.
func (auditBlocks) find(ctx context.Context, q Querier, f berth.AuditFilter) ([]berth.AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if !f.Since.IsZero() {
		add("max_time >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("min_time < $%d", f.Until)
	}
	if f.After > 0 {
		add("last_seq > $%d", f.After)
	}
	if f.Before > 0 {
		add("first_seq < $%d", f.Before)
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
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("find audit events: %w", err)
	}
	defer rows.Close()

	out := []berth.AuditEvent{}
	full := func() bool { return f.Limit > 0 && len(out) >= f.Limit }
	var matched []berth.AuditEvent // of one block, for f.Last
	for !full() && rows.Next() {
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

func (auditBlocks) visit(ctx context.Context, q Querier, v berth.AuditChainVisitor) error {
	rows, err := q.Query(ctx, `SELECT `+auditBlockColumns+` FROM audit_blocks ORDER BY first_seq`)
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
			minT, maxT  time.Time
		)
		err = b.decode(func(e berth.AuditEvent) error {
			if n == 0 {
				first, minT, maxT = e, e.Time, e.Time
			}
			last, n = e, n+1
			if e.Time.Before(minT) {
				minT = e.Time
			}
			if e.Time.After(maxT) {
				maxT = e.Time
			}
			return v.Event(e)
		})
		if err != nil {
			return err
		}
		// The columns hold microseconds, as every stored time.
		if n == 0 || first.Seq != b.firstSeq || last.Seq != b.lastSeq || last.Hash != b.lastHash ||
			!minT.Truncate(time.Microsecond).Equal(b.minTime) || !maxT.Truncate(time.Microsecond).Equal(b.maxTime) {
			return berth.Errorf(berth.CodeAuditTampered, "the audit block from event %d was edited: its index columns do not match its events", b.firstSeq).
				WithHint("compare the metadata database with a backup, and keep this copy as evidence").
				WithDetail("seq", b.firstSeq)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	return nil
}

func (auditBlocks) prefix(ctx context.Context, tx Querier, before time.Time, limit int) (first []int64, last []berth.AuditLink, err error) {
	rows, err := tx.Query(ctx, `
		SELECT first_seq, last_seq, max_time, last_hash FROM audit_blocks
		ORDER BY first_seq LIMIT $1`, limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("delete audit events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			f, l    int64
			maxTime time.Time
			hash    string
		)
		if err := rows.Scan(&f, &l, Time(&maxTime), &hash); err != nil {
			return nil, nil, fmt.Errorf("delete audit events: %w", err)
		}
		if !maxTime.Before(before.Truncate(time.Microsecond)) { // the columns hold microseconds
			break
		}
		first, last = append(first, f), append(last, berth.AuditLink{Seq: l, Hash: hash})
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("delete audit events: %w", err)
	}
	return first, last, nil
}

func (auditBlocks) deleteThrough(ctx context.Context, tx Querier, seq int64) error {
	_, err := tx.Exec(ctx, `DELETE FROM audit_blocks WHERE first_seq <= $1`, seq)
	return err
}
