package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/sqlite"
)

var auditEpoch = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// auditLog opens a store holding n events, one a second from auditEpoch, each
// a denied push of team/app with a detail.
func auditLog(t *testing.T, n int) *sqlite.DB {
	t.Helper()
	db := open(t, filepath.Join(t.TempDir(), "berth.db"))
	t.Cleanup(func() { db.Close() })
	appendEvents(t, db, 0, n)
	return db
}

func appendEvents(t *testing.T, db *sqlite.DB, from, n int) {
	t.Helper()
	const batch = 1000
	for i := from; i < from+n; i += batch {
		var events []berth.AuditEvent
		for j := i; j < min(i+batch, from+n); j++ {
			events = append(events, berth.AuditEvent{
				Time: auditEpoch.Add(time.Duration(j) * time.Second), Actor: "ci-web", Action: berth.AuditRegistryPush,
				Target: "team/app", Result: berth.AuditDenied, Reason: berth.CodeRoleMissing,
				Detail: map[string]string{"missing_role": "push", "n": fmt.Sprint(j)},
			})
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

func wantBrokenAt(t *testing.T, what string, err error, seq int64) {
	t.Helper()
	e := berth.AsError(err)
	if e == nil || e.Code != berth.CodeAuditTampered {
		t.Fatalf("%s: verify returned %v, want audit_tampered", what, err)
	}
	if got, _ := e.Detail["seq"].(int64); got != seq {
		t.Errorf("%s: first broken seq %v, want %d (%s)", what, e.Detail["seq"], seq, e.Message)
	}
}

// TestAuditTamperDetected changes the file behind the store's back, as
// someone with access to the data folder could, and expects berth's
// verification to name the first event that no longer verifies.
func TestAuditTamperDetected(t *testing.T) {
	tests := []struct {
		name   string
		tamper string
		seq    int64
	}{
		{"result edited", `UPDATE audit_events SET result = 'allowed', reason = '' WHERE seq = 4`, 4},
		{"actor edited", `UPDATE audit_events SET actor = 'someone-else' WHERE seq = 1`, 1},
		{"time edited", `UPDATE audit_events SET time = time - 3600000000 WHERE seq = 7`, 7},
		{"detail edited", `UPDATE audit_events SET detail = '{"missing_role":"pull","n":"5"}' WHERE seq = 6`, 6},
		{"detail cleared", `UPDATE audit_events SET detail = NULL WHERE seq = 2`, 2},
		{"detail unreadable", `UPDATE audit_events SET detail = 'not json' WHERE seq = 3`, 3},
		{"middle deleted", `DELETE FROM audit_events WHERE seq = 5`, 5},
		{"first deleted", `DELETE FROM audit_events WHERE seq = 1`, 1},
		{"tail deleted", `DELETE FROM audit_events WHERE seq >= 9`, 9},
		{"last deleted", `DELETE FROM audit_events WHERE seq = 10`, 10},
		{"everything deleted", `DELETE FROM audit_events`, 1},
		{"hash replaced", `UPDATE audit_events SET hash = prev_hash WHERE seq = 8`, 8},
		{"seq renumbered", `UPDATE audit_events SET seq = 20 WHERE seq = 10`, 10},
		{"anchor moved without deleting", `UPDATE audit_head SET anchor_seq = 3`, 1},
		{"pruned by hand, anchor hash not moved", `DELETE FROM audit_events WHERE seq <= 3; UPDATE audit_head SET anchor_seq = 3`, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := auditLog(t, 10)
			if err := verify(t, db); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			execRaw(t, db.Path(), tt.tamper)
			wantBrokenAt(t, tt.name, verify(t, db), tt.seq)
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
	forged := events[2]
	forged.Result, forged.Reason = berth.AuditAllowed, ""
	forged = berth.ChainEvent(events[1].Link(), forged)
	if _, err := rawDB(t, db.Path()).Exec(`UPDATE audit_events SET result = ?, reason = ?, hash = ? WHERE seq = 3`,
		string(forged.Result), string(forged.Reason), forged.Hash); err != nil {
		t.Fatal(err)
	}
	wantBrokenAt(t, "rewritten event", verify(t, db), 4)
}

func TestAuditHeadRowMissing(t *testing.T) {
	db := auditLog(t, 3)
	execRaw(t, db.Path(), `DELETE FROM audit_head`)
	if err := verify(t, db); !berth.IsCode(err, berth.CodeAuditTampered) {
		t.Errorf("verify: %v, want audit_tampered", err)
	}
	// No event can be chained without the head; none is written.
	err := db.AppendAuditEvents(t.Context(), []berth.AuditEvent{{Time: auditEpoch, Action: berth.AuditRegistryPull}})
	if !berth.IsCode(err, berth.CodeAuditTampered) {
		t.Errorf("append: %v, want audit_tampered", err)
	}
	if got, _ := db.FindAuditEvents(t.Context(), berth.AuditFilter{}); len(got) != 3 {
		t.Errorf("%d events after a refused append, want 3", len(got))
	}
}

// TestAuditPruneRefusesBrokenAnchor: retention would hide a deleted event by
// anchoring the chain past it; it refuses where the anchor event is missing.
func TestAuditPruneRefusesBrokenAnchor(t *testing.T) {
	db := auditLog(t, 6)
	execRaw(t, db.Path(), `DELETE FROM audit_events WHERE seq = 3`)
	_, err := db.DeleteAuditEventsBefore(t.Context(), auditEpoch.Add(3*time.Second)) // cut at seq 3
	if e := berth.AsError(err); e == nil || e.Code != berth.CodeAuditTampered || e.Detail["seq"] != int64(3) {
		t.Fatalf("prune up to a deleted event: %v, want audit_tampered at seq 3", err)
	}
	wantBrokenAt(t, "after the refused prune", verify(t, db), 3)
}

// TestAuditPruneInChunks prunes more events than one transaction deletes.
func TestAuditPruneInChunks(t *testing.T) {
	const n = 25_003
	db := auditLog(t, n)
	// Keep the last three.
	deleted, err := db.DeleteAuditEventsBefore(t.Context(), auditEpoch.Add((n-3)*time.Second))
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
	appendEvents(t, db, 0, 4)
	if _, err := db.DeleteAuditEventsBefore(t.Context(), auditEpoch.Add(time.Second)); err != nil {
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

// BenchmarkAppendAuditEvents measures the store's share of auditing: events
// of the size a /v2/ decision makes, appended in batches as internal/audit's
// writer groups them. ns/op is per event.
func BenchmarkAppendAuditEvents(b *testing.B) {
	for _, size := range []int{1, 16, 128, 512} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db := open(b, filepath.Join(b.TempDir(), "berth.db"))
			defer db.Close()
			batch := make([]berth.AuditEvent, size)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += size {
				for j := range batch {
					batch[j] = berth.AuditEvent{
						Time: auditEpoch.Add(time.Duration(i+j) * time.Millisecond), Actor: "ci-web",
						ActorID: "0b6f6a52-5d2e-4f0e-9a57-3d1f7c9e2a01", Source: "10.1.2.3",
						Action: berth.AuditRegistryPull, Target: "team/app", Result: berth.AuditAllowed,
						RequestID: "9f86d081884c7d659a2feaa0c55ad015", CredentialID: "50000000-0000-4000-8000-000000000001",
					}
				}
				if err := db.AppendAuditEvents(context.Background(), batch[:min(size, b.N-i)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
