package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/pgtest"
	"github.com/berth-dev/berth/internal/postgres"
	"github.com/berth-dev/berth/internal/storetest"
)

// Tampering needs raw access to the tables, so it is tested here rather than
// in storetest: each test edits what the store wrote behind its back and
// checks that reading the chain says where.

// auditLog opens a store in a new schema holding n events, one a second from
// storetest.AuditEpoch, appended one at a time, and returns it with its DSN.
func auditLog(t *testing.T, n int) (*postgres.DB, string) {
	t.Helper()
	dsn := newSchema(t)
	db := open(t, dsn)
	t.Cleanup(func() { db.Close() })
	for i := range n {
		if err := db.AppendAuditEvents(t.Context(), []berth.AuditEvent{storetest.TamperEvent(i)}); err != nil {
			t.Fatal(err)
		}
	}
	return db, dsn
}

func verify(t *testing.T, db *postgres.DB) error {
	t.Helper()
	return db.AuditChain(t.Context(), &berth.AuditVerifier{})
}

func TestAuditTamperDetected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sql  string
		seq  int64
	}{
		{"event deleted", `DELETE FROM audit_events WHERE seq = 3`, 3},
		{"tail deleted", `DELETE FROM audit_events WHERE seq = 5`, 5},
		{"column edited to hide an event", `UPDATE audit_events SET actor = 'someone' WHERE seq = 2`, 2},
		{"time edited to move an event out of a range", `UPDATE audit_events SET time = time - interval '1 day' WHERE seq = 4`, 4},
		{"event bytes edited", `UPDATE audit_events SET event = overlay(event placing '\x00'::bytea from 40 for 1) WHERE seq = 2`, 2},
		{"head rolled back", `UPDATE audit_head SET head_seq = 4`, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, dsn := auditLog(t, 5)
			if err := verify(t, db); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			pgtest.Exec(t, dsn, tt.sql)
			storetest.WantTamperedAt(t, "verify", verify(t, db), tt.seq)
		})
	}
}

func TestAuditHeadRowMissing(t *testing.T) {
	t.Parallel()
	db, dsn := auditLog(t, 2)
	pgtest.Exec(t, dsn, `DELETE FROM audit_head`)
	for what, err := range map[string]error{
		"verify": verify(t, db),
		"append": db.AppendAuditEvents(t.Context(), []berth.AuditEvent{storetest.TamperEvent(9)}),
	} {
		if berth.ErrorCode(err) != berth.CodeAuditTampered {
			t.Errorf("%s without a head row: %v, want audit_tampered", what, err)
		}
	}
}

func TestAuditFindRefusesUnreadableEvent(t *testing.T) {
	t.Parallel()
	db, dsn := auditLog(t, 3)
	pgtest.Exec(t, dsn, `UPDATE audit_events SET event = '\x0102'::bytea WHERE seq = 2`)
	_, err := db.FindAuditEvents(t.Context(), berth.AuditFilter{})
	storetest.WantTamperedAt(t, "FindAuditEvents", err, 2)
}

func TestAuditPruneRefusesGap(t *testing.T) {
	t.Parallel()
	db, dsn := auditLog(t, 6)
	pgtest.Exec(t, dsn, `DELETE FROM audit_events WHERE seq = 2`)
	n, err := db.DeleteAuditEventsBefore(t.Context(), storetest.AuditEpoch.Add(time.Hour))
	storetest.WantTamperedAt(t, "DeleteAuditEventsBefore", err, 2)
	if n != 0 {
		t.Errorf("a refused prune deleted %d", n)
	}
	es, err := db.FindAuditEvents(t.Context(), berth.AuditFilter{})
	if err != nil || len(es) != 5 {
		t.Errorf("after the refused prune: %d events, %v; want the 5 left", len(es), err)
	}
}

// TestAuditFindOddText appends events whose text fields hold NUL bytes,
// which PostgreSQL's text type refuses (berth.ChainEvent already makes them
// valid UTF-8 and escapes them, berth.EscapeLine): they are stored, read back
// exactly, found by those fields and not by the replacement the columns
// hold, and verify.
func TestAuditFindOddText(t *testing.T) {
	t.Parallel()
	db, _ := auditLog(t, 0)
	odd := storetest.TamperEvent(1)
	odd.Actor, odd.Target = "nul\x00actor", "team/\x00app"
	other := storetest.TamperEvent(2)
	other.Actor, other.Target = "nul\uFFFDactor", "team/\uFFFDapp" // what the columns hold for odd
	written := []berth.AuditEvent{odd, other}
	if err := db.AppendAuditEvents(t.Context(), written); err != nil {
		t.Fatal(err)
	}
	if err := verify(t, db); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		f    berth.AuditFilter
		want int64
	}{
		{berth.AuditFilter{Principal: berth.EscapeLine("nul\x00actor")}, 1},
		{berth.AuditFilter{Principal: "nul\uFFFDactor"}, 2},
		{berth.AuditFilter{Repository: berth.EscapeLine("team/\x00app"), Limit: 1}, 1},
		{berth.AuditFilter{Repository: "team/\uFFFDapp", Limit: 1, Last: true}, 2},
		{berth.AuditFilter{Repository: "team/*", Principal: berth.EscapeLine("nul\x00actor"), Limit: 1, Last: true}, 1},
	} {
		es, err := db.FindAuditEvents(t.Context(), tt.f)
		if err != nil || len(es) != 1 || es[0].Seq != tt.want {
			t.Errorf("FindAuditEvents(%+v): %v, %v; want event %d alone", tt.f, es, err, tt.want)
			continue
		}
		if w := written[tt.want-1]; es[0].Actor != w.Actor || es[0].Target != w.Target || es[0].Hash != w.Hash {
			t.Errorf("read back %q %q, want %q %q", es[0].Actor, es[0].Target, w.Actor, w.Target)
		}
	}
}

// TestAuditPruneInChunks prunes more events than one transaction deletes.
func TestAuditPruneInChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 25,000 events")
	}
	t.Parallel()
	db, _ := auditLog(t, 0)
	const n = 25_000
	for i := 0; i < n; i += 1000 {
		var batch []berth.AuditEvent
		for j := i; j < i+1000; j++ {
			batch = append(batch, storetest.TamperEvent(j))
		}
		if err := db.AppendAuditEvents(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := db.DeleteAuditEventsBefore(t.Context(), storetest.AuditEpoch.Add((n-10)*time.Second))
	if err != nil || deleted != n-10 {
		t.Fatalf("deleted %d, %v; want %d", deleted, err, n-10)
	}
	v := &berth.AuditVerifier{}
	if err := db.AuditChain(t.Context(), v); err != nil || v.Events() != 10 || v.Anchor().Seq != n-10 {
		t.Errorf("after pruning: %d events from anchor %d, %v; want 10 from %d", v.Events(), v.Anchor().Seq, err, n-10)
	}
}

// Two replicas append to one log, in turns and at once: each remembers the
// head it last wrote, which the other's appends make stale, and still every
// event is chained once, after the one before it.
func TestAuditAppendAcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	t.Cleanup(func() { a.Close(); b.Close() })
	n := 0
	appendTo := func(db *postgres.DB) error {
		n++
		return db.AppendAuditEvents(t.Context(), []berth.AuditEvent{storetest.TamperEvent(n)})
	}
	for _, db := range []*postgres.DB{a, a, b, a, b, b, a} {
		if err := appendTo(db); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, db := range []*postgres.DB{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				batch := []berth.AuditEvent{storetest.TamperEvent(100 + i), storetest.TamperEvent(200 + i)}
				if err := db.AppendAuditEvents(t.Context(), batch); err != nil {
					errs <- err
					return
				}
				if batch[1].Seq != batch[0].Seq+1 {
					errs <- fmt.Errorf("a batch written as seqs %d and %d", batch[0].Seq, batch[1].Seq)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v := &berth.AuditVerifier{}
	if err := a.AuditChain(t.Context(), v); err != nil {
		t.Fatalf("verify: %v", err)
	}
	events, err := b.FindAuditEvents(t.Context(), berth.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 7 + 2*2*20; len(events) != want {
		t.Fatalf("%d events stored, want %d", len(events), want)
	}
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}
