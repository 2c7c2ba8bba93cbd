package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth"
)

// auditRows is the AuditRows layout (PostgreSQL's migration 0005): table
// audit_events, one row per event. event holds its binary form
// (berth.AuditEvent.AppendBinary), which is what is read back and verified;
// the other columns repeat fields of it so that queries select in SQL, and
// AuditChain checks them against the event, so an edited column is
// audit_tampered. Text columns hold the field with invalid UTF-8 and NUL
// bytes replaced (PostgreSQL's text refuses both); queries match after the
// same replacement and re-check the event itself.
type auditRows struct{}

// insert stores the events in one statement: PostgreSQL's unnest of one
// array per column.
func (auditRows) insert(ctx context.Context, tx Querier, chained []berth.AuditEvent) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO audit_events (seq, time, actor, actor_id, action, target, result, reason, connection, hash, event)
		SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
			$7::text[], $8::text[], $9::text[], $10::text[], $11::bytea[])`,
		auditRowArrays(chained)...)
	return err
}

// insertAfter stores chained and moves the head from prev to the last of
// them in one statement, only while the head is prev: it returns false, and
// changes nothing, when the head has moved (another appender, on any
// replica) or its row is gone. The UPDATE locks the head row as SELECT …
// FOR UPDATE does, and a writer that waited for it sees the head another
// moved, so two appenders never chain after the same event.
func (auditRows) insertAfter(ctx context.Context, q Querier, prev berth.AuditLink, chained []berth.AuditEvent) (bool, error) {
	head := chained[len(chained)-1].Link()
	args := append(auditRowArrays(chained), head.Seq, head.Hash, prev.Seq, prev.Hash)
	n, err := q.Exec(ctx, `
		WITH h AS (
			UPDATE audit_head SET head_seq = $12, head_hash = $13
			WHERE id = 1 AND head_seq = $14 AND head_hash = $15
			RETURNING 1)
		INSERT INTO audit_events (seq, time, actor, actor_id, action, target, result, reason, connection, hash, event)
		SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
			$7::text[], $8::text[], $9::text[], $10::text[], $11::bytea[])
		WHERE EXISTS (SELECT 1 FROM h)`,
		args...)
	if err != nil {
		return false, err
	}
	return n == int64(len(chained)), nil
}

// auditRowArrays returns the eleven arrays, one per column of audit_events,
// that insert and insertAfter unnest into rows.
func auditRowArrays(chained []berth.AuditEvent) []any {
	var (
		n                                   = len(chained)
		seqs                                = make([]int64, 0, n)
		times                               = make([]time.Time, 0, n)
		actors, actorIDs, actions, targets  = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		results, reasons, connections, hash = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		bins                                = make([][]byte, 0, n)
	)
	for _, c := range chained {
		bin, _ := c.AppendBinary(nil)
		cols := auditColumnsOf(c)
		seqs, times, bins = append(seqs, c.Seq), append(times, c.Time), append(bins, bin)
		actors, actorIDs = append(actors, cols.actor), append(actorIDs, cols.actorID)
		actions, targets = append(actions, cols.action), append(targets, cols.target)
		results, reasons = append(results, cols.result), append(reasons, cols.reason)
		connections, hash = append(connections, cols.connection), append(hash, c.Hash)
	}
	return []any{seqs, times, actors, actorIDs, actions, targets, results, reasons, connections, hash, bins}
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
// on the event; find then matches the events themselves.
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
		WithHint("compare the metadata database with a backup, and keep this copy as evidence").
		WithDetail("seq", seq)
}

// find selects in SQL on the columns, in Seq order (backwards for f.Last),
// and keeps the events f.Match selects. The columns select a superset (see
// textColumn), so with a Limit it reads further pages until it has enough
// or the rows run out.
func (auditRows) find(ctx context.Context, q Querier, f berth.AuditFilter) ([]berth.AuditEvent, error) {
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
		query := `SELECT seq, event FROM audit_events`
		if len(conds) > 0 {
			query += " WHERE " + strings.Join(conds, " AND ")
		}
		query += " ORDER BY seq " + order
		want := f.Limit - len(out)
		if f.Limit > 0 {
			qargs = append(qargs, want)
			query += fmt.Sprintf(" LIMIT $%d", len(qargs))
		}
		read, err := func() (int, error) {
			rows, err := q.Query(ctx, query, qargs...)
			if err != nil {
				return 0, fmt.Errorf("find audit events: %w", err)
			}
			defer rows.Close()
			read := 0
			for rows.Next() {
				var (
					seq int64
					bin []byte
				)
				if err := rows.Scan(&seq, &bin); err != nil {
					return 0, fmt.Errorf("find audit events: %w", err)
				}
				read++
				cursor = seq
				e, err := decodeAuditEvent(seq, bin)
				if err != nil {
					return 0, err
				}
				if f.Match(e) {
					out = append(out, e)
				}
			}
			if err := rows.Err(); err != nil {
				return 0, fmt.Errorf("find audit events: %w", err)
			}
			return read, nil
		}()
		if err != nil {
			return nil, err
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

func (auditRows) visit(ctx context.Context, q Querier, v berth.AuditChainVisitor) error {
	rows, err := q.Query(ctx, `
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
		if err := rows.Scan(&seq, Time(&t), &cols.actor, &cols.actorID, &cols.action, &cols.target, &cols.result,
			&cols.reason, &cols.connection, &hash, &bin); err != nil {
			return fmt.Errorf("read audit chain: %w", err)
		}
		e, err := decodeAuditEvent(seq, bin)
		if err != nil {
			return err
		}
		if !t.Equal(e.Time) || hash != e.Hash || cols != auditColumnsOf(e) {
			return berth.Errorf(berth.CodeAuditTampered, "audit event %d was edited: its columns do not match its content", seq).
				WithHint("compare the metadata database with a backup, and keep this copy as evidence").
				WithDetail("seq", seq)
		}
		if err := v.Event(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	return nil
}

func (auditRows) prefix(ctx context.Context, tx Querier, before time.Time, limit int) (first []int64, last []berth.AuditLink, err error) {
	rows, err := tx.Query(ctx, `SELECT seq, event FROM audit_events ORDER BY seq LIMIT $1`, limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("delete audit events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq int64
			bin []byte
		)
		if err := rows.Scan(&seq, &bin); err != nil {
			return nil, nil, fmt.Errorf("delete audit events: %w", err)
		}
		e, err := decodeAuditEvent(seq, bin)
		if err != nil {
			return nil, nil, err
		}
		if !e.Time.Before(before) {
			break
		}
		first, last = append(first, seq), append(last, e.Link())
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("delete audit events: %w", err)
	}
	return first, last, nil
}

func (auditRows) deleteThrough(ctx context.Context, tx Querier, seq int64) error {
	_, err := tx.Exec(ctx, `DELETE FROM audit_events WHERE seq <= $1`, seq)
	return err
}
