package sqlite_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/storetest"
)

// auditLog opens a store holding events appended in batches of the given
// sizes, one a second from storetest.AuditEpoch.
func auditLog(t *testing.T, sizes ...int) *sqlite.DB {
	t.Helper()
	db := open(t, filepath.Join(t.TempDir(), "berth.db"))
	t.Cleanup(func() { db.Close() })
	n := 0
	for _, size := range sizes {
		appendEvents(t, db, n, size)
		n += size
	}
	return db
}

// appendEvents appends n events from the nth second, in batches of at most
// 1000.
func appendEvents(t *testing.T, db *sqlite.DB, from, n int) {
	t.Helper()
	for i := from; i < from+n; i += 1000 {
		var events []berth.AuditEvent
		for j := i; j < min(i+1000, from+n); j++ {
			events = append(events, storetest.TamperEvent(j))
		}
		if err := db.AppendAuditEvents(t.Context(), events); err != nil {
			t.Fatal(err)
		}
	}
}

func verify(t *testing.T, db *sqlite.DB) error {
	t.Helper()
	return db.AuditChain(t.Context(), &berth.AuditVerifier{})
}

// The block format, as 0005_audit.sql states it, for tampering by hand.

func decodeBlock(t *testing.T, blob []byte) []berth.AuditEvent {
	t.Helper()
	var out []berth.AuditEvent
	for len(blob) > 0 {
		n, k := binary.Uvarint(blob)
		var e berth.AuditEvent
		if err := e.UnmarshalBinary(blob[k : k+int(n)]); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		blob = blob[k+int(n):]
	}
	return out
}

func encodeBlock(events []berth.AuditEvent) []byte {
	var blob []byte
	for _, e := range events {
		b, _ := e.MarshalBinary()
		blob = binary.AppendUvarint(blob, uint64(len(b)))
		blob = append(blob, b...)
	}
	return blob
}

// rewriteBlock replaces the events of the block starting at first by what
// change makes of them, keeping every stored hash and the block's columns.
func rewriteBlock(t *testing.T, db *sqlite.DB, first int64, change func([]berth.AuditEvent) []berth.AuditEvent) {
	t.Helper()
	raw := rawDB(t, db.Path())
	var blob []byte
	if err := raw.QueryRow(`SELECT events FROM audit_blocks WHERE first_seq = ?`, first).Scan(&blob); err != nil {
		t.Fatal(err)
	}
	events := change(decodeBlock(t, blob))
	if _, err := raw.Exec(`UPDATE audit_blocks SET events = ? WHERE first_seq = ?`, encodeBlock(events), first); err != nil {
		t.Fatal(err)
	}
}

func editEvent(seq int64, f func(e *berth.AuditEvent)) func([]berth.AuditEvent) []berth.AuditEvent {
	return func(es []berth.AuditEvent) []berth.AuditEvent {
		for i := range es {
			if es[i].Seq == seq {
				f(&es[i])
			}
		}
		return es
	}
}

func removeEvent(seq int64) func([]berth.AuditEvent) []berth.AuditEvent {
	return func(es []berth.AuditEvent) []berth.AuditEvent {
		return slices.DeleteFunc(es, func(e berth.AuditEvent) bool { return e.Seq == seq })
	}
}

// TestAuditTamperDetected changes the file behind the store's back, as
// someone with access to the data folder could, and expects verification to
// name the first event that no longer verifies. The log holds events 1 to 10
// in four blocks: 1-3, 4-6, 7-9, 10.
func TestAuditTamperDetected(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *sqlite.DB)
		seq    int64
	}{
		{"result edited", func(t *testing.T, db *sqlite.DB) {
			rewriteBlock(t, db, 4, editEvent(5, func(e *berth.AuditEvent) { e.Result, e.Reason = berth.AuditAllowed, "" }))
		}, 5},
		{"actor edited", func(t *testing.T, db *sqlite.DB) {
			rewriteBlock(t, db, 1, editEvent(1, func(e *berth.AuditEvent) { e.Actor = "someone-else" }))
		}, 1},
		{"time edited", func(t *testing.T, db *sqlite.DB) {
			rewriteBlock(t, db, 7, editEvent(8, func(e *berth.AuditEvent) { e.Time = e.Time.Add(-time.Hour) }))
		}, 8},
		{"detail edited", func(t *testing.T, db *sqlite.DB) {
			rewriteBlock(t, db, 1, editEvent(2, func(e *berth.AuditEvent) { e.Detail["missing_role"] = "pull" }))
		}, 2},
		{"detail removed", func(t *testing.T, db *sqlite.DB) {
			rewriteBlock(t, db, 10, editEvent(10, func(e *berth.AuditEvent) { e.Detail = nil }))
		}, 10},
		{"hash replaced", func(t *testing.T, db *sqlite.DB) {
			rewriteBlock(t, db, 4, editEvent(6, func(e *berth.AuditEvent) { e.Hash = e.PrevHash }))
		}, 6},
		{"event removed from a block", func(t *testing.T, db *sqlite.DB) { rewriteBlock(t, db, 4, removeEvent(5)) }, 5},
		{"first event of a block removed", func(t *testing.T, db *sqlite.DB) { rewriteBlock(t, db, 4, removeEvent(4)) }, 4},
		{"first event of the log removed", func(t *testing.T, db *sqlite.DB) { rewriteBlock(t, db, 1, removeEvent(1)) }, 1},
		{"events reordered", func(t *testing.T, db *sqlite.DB) {
			rewriteBlock(t, db, 7, func(es []berth.AuditEvent) []berth.AuditEvent { es[0], es[1] = es[1], es[0]; return es })
		}, 7},
		{"block deleted", func(t *testing.T, db *sqlite.DB) {
			execRaw(t, db.Path(), `DELETE FROM audit_blocks WHERE first_seq = 4`)
		}, 4},
		{"last block deleted", func(t *testing.T, db *sqlite.DB) {
			execRaw(t, db.Path(), `DELETE FROM audit_blocks WHERE first_seq = 10`)
		}, 10},
		{"tail deleted", func(t *testing.T, db *sqlite.DB) {
			execRaw(t, db.Path(), `DELETE FROM audit_blocks WHERE first_seq >= 7`)
		}, 7},
		{"everything deleted", func(t *testing.T, db *sqlite.DB) { execRaw(t, db.Path(), `DELETE FROM audit_blocks`) }, 1},
		{"last event cut from a block, columns fixed", func(t *testing.T, db *sqlite.DB) {
			es, err := db.FindAuditEvents(t.Context(), berth.AuditFilter{After: 7, Before: 9})
			if err != nil || len(es) != 1 {
				t.Fatalf("find event 8: %v %v", es, err)
			}
			rewriteBlock(t, db, 7, removeEvent(9))
			if _, err := rawDB(t, db.Path()).Exec(`UPDATE audit_blocks SET last_seq = 8, max_time = max_time - 1000000, last_hash = ?
				WHERE first_seq = 7`, es[0].Hash); err != nil {
				t.Fatal(err)
			}
		}, 9},
		{"block hidden from a time range", func(t *testing.T, db *sqlite.DB) {
			execRaw(t, db.Path(), `UPDATE audit_blocks SET max_time = 0 WHERE first_seq = 4`)
		}, 4},
		{"block's last seq edited", func(t *testing.T, db *sqlite.DB) {
			execRaw(t, db.Path(), `UPDATE audit_blocks SET last_seq = 5 WHERE first_seq = 4`)
		}, 4},
		{"a byte of text changed", func(t *testing.T, db *sqlite.DB) {
			raw := rawDB(t, db.Path())
			var blob []byte
			if err := raw.QueryRow(`SELECT events FROM audit_blocks WHERE first_seq = 1`).Scan(&blob); err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(blob, []byte("team/app"))
			blob[i+5] = 'b' // team/bpp, in event 1
			if _, err := raw.Exec(`UPDATE audit_blocks SET events = ? WHERE first_seq = 1`, blob); err != nil {
				t.Fatal(err)
			}
		}, 1},
		{"block cut short", func(t *testing.T, db *sqlite.DB) {
			execRaw(t, db.Path(), `UPDATE audit_blocks SET events = substr(events, 1, 50) WHERE first_seq = 4`)
		}, 4},
		{"anchor moved without deleting", func(t *testing.T, db *sqlite.DB) {
			execRaw(t, db.Path(), `UPDATE audit_head SET anchor_seq = 3`)
		}, 1},
		{"pruned by hand, anchor hash not moved", func(t *testing.T, db *sqlite.DB) {
			execRaw(t, db.Path(), `DELETE FROM audit_blocks WHERE first_seq = 1; UPDATE audit_head SET anchor_seq = 3`)
		}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := auditLog(t, 3, 3, 3, 1)
			if err := verify(t, db); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			tt.tamper(t, db)
			storetest.WantTamperedAt(t, tt.name, verify(t, db), tt.seq)
		})
	}
}

// TestAuditRewrittenEventDetected replaces an event by one chained correctly
// to its predecessor, as someone who knows the encoding would: the event
// after it no longer chains.
func TestAuditRewrittenEventDetected(t *testing.T) {
	db := auditLog(t, 5)
	events, err := db.FindAuditEvents(t.Context(), berth.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	rewriteBlock(t, db, 1, editEvent(3, func(e *berth.AuditEvent) {
		e.Result, e.Reason = berth.AuditAllowed, ""
		*e = berth.ChainEvent(events[1].Link(), *e)
	}))
	storetest.WantTamperedAt(t, "rewritten event", verify(t, db), 4)
}

func TestAuditHeadRowMissing(t *testing.T) {
	db := auditLog(t, 3)
	execRaw(t, db.Path(), `DELETE FROM audit_head`)
	if err := verify(t, db); !berth.IsCode(err, berth.CodeAuditTampered) {
		t.Errorf("verify: %v, want audit_tampered", err)
	}
	// No event can be chained without the head; none is written.
	err := db.AppendAuditEvents(t.Context(), []berth.AuditEvent{{Time: storetest.AuditEpoch, Action: berth.AuditRegistryPull}})
	if !berth.IsCode(err, berth.CodeAuditTampered) {
		t.Errorf("append: %v, want audit_tampered", err)
	}
	if got, _ := db.FindAuditEvents(t.Context(), berth.AuditFilter{}); len(got) != 3 {
		t.Errorf("%d events after a refused append, want 3", len(got))
	}
}

func TestAuditFindRefusesUnreadableBlock(t *testing.T) {
	db := auditLog(t, 2, 2)
	execRaw(t, db.Path(), `UPDATE audit_blocks SET events = substr(events, 1, 30) WHERE first_seq = 3`)
	_, err := db.FindAuditEvents(t.Context(), berth.AuditFilter{})
	if e := berth.AsError(err); e == nil || e.Code != berth.CodeAuditTampered || e.Detail["seq"] != int64(3) {
		t.Errorf("find over an unreadable block: %v, want audit_tampered at 3", err)
	}
	// A query that does not reach it still answers.
	if got, err := db.FindAuditEvents(t.Context(), berth.AuditFilter{Before: 3}); err != nil || len(got) != 2 {
		t.Errorf("find before the block: %d events, %v", len(got), err)
	}
}

// TestAuditPruneRefusesGap: retention would hide deleted events by anchoring
// the chain past them; it refuses to.
func TestAuditPruneRefusesGap(t *testing.T) {
	db := auditLog(t, 2, 2, 2)
	execRaw(t, db.Path(), `DELETE FROM audit_blocks WHERE first_seq = 3`)
	_, err := db.DeleteAuditEventsBefore(t.Context(), storetest.AuditEpoch.Add(time.Hour))
	if e := berth.AsError(err); e == nil || e.Code != berth.CodeAuditTampered || e.Detail["seq"] != int64(3) {
		t.Fatalf("prune across a deleted block: %v, want audit_tampered at seq 3", err)
	}
	storetest.WantTamperedAt(t, "after the refused prune", verify(t, db), 3)
}

// TestAuditPruneKeepsBlocksWhole: a block holding an event not before t is
// kept whole.
func TestAuditPruneKeepsBlocksWhole(t *testing.T) {
	db := auditLog(t, 2, 3) // seconds 0-1, 2-4
	n, err := db.DeleteAuditEventsBefore(t.Context(), storetest.AuditEpoch.Add(3*time.Second))
	if err != nil || n != 2 {
		t.Fatalf("DeleteAuditEventsBefore = %d, %v; want 2 (the block 3-5 holds an event at 3 s)", n, err)
	}
	got, err := db.FindAuditEvents(t.Context(), berth.AuditFilter{})
	if err != nil || len(got) != 3 || got[0].Seq != 3 {
		t.Fatalf("kept %d events from %v, %v; want 3-5", len(got), got, err)
	}
	if err := verify(t, db); err != nil {
		t.Fatal(err)
	}
}

// TestAuditPruneInChunks prunes more events than one transaction deletes.
func TestAuditPruneInChunks(t *testing.T) {
	const n = 25_003
	db := auditLog(t, n) // blocks of 1000, the last of 3
	deleted, err := db.DeleteAuditEventsBefore(t.Context(), storetest.AuditEpoch.Add((n-3)*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if deleted != n-3 {
		t.Errorf("deleted %d, want %d", deleted, n-3)
	}
	v := &berth.AuditVerifier{}
	if err := db.AuditChain(t.Context(), v); err != nil {
		t.Fatal(err)
	}
	if v.Events() != 3 || v.Anchor().Seq != n-3 || v.Head().Seq != n {
		t.Errorf("after pruning: %d events from anchor %d to head %d; want 3 from %d to %d", v.Events(), v.Anchor().Seq, v.Head().Seq, n-3, n)
	}
}

// TestAuditSurvivesReopen checks that the chain and its head persist.
func TestAuditSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	db := open(t, path)
	appendEvents(t, db, 0, 1)
	appendEvents(t, db, 1, 3)
	if _, err := db.DeleteAuditEventsBefore(t.Context(), storetest.AuditEpoch.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path)
	defer db.Close()
	appendEvents(t, db, 4, 2)
	v := &berth.AuditVerifier{}
	if err := db.AuditChain(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	if v.Anchor().Seq != 1 || v.Head().Seq != 6 || v.Events() != 5 {
		t.Errorf("after reopening: anchor %d, head %d, %d events; want 1, 6, 5", v.Anchor().Seq, v.Head().Seq, v.Events())
	}
}

// BenchmarkAppendAuditEvents measures the store's share of auditing, per
// event, by batch size (see storetest.BenchAppendAuditEvents).
func BenchmarkAppendAuditEvents(b *testing.B) {
	for _, size := range []int{1, 16, 128, 512} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db := open(b, filepath.Join(b.TempDir(), "berth.db"))
			defer db.Close()
			storetest.BenchAppendAuditEvents(b, db, size, false)
		})
	}
}
