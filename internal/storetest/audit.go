package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/berth-dev/berth"
)

// The AuditStore tests. A store chains with berth.ChainEvent and keeps what
// it was given; whether a chain verifies is berth.AuditVerifier's to say, so
// these tests verify through AuditChain after every kind of write. Where the
// contract leaves a choice open, the suite settles it:
//   - FindAuditEvents returns an empty result, not an error, when nothing
//     matches, and Detail nil (not empty) for an event without detail;
//   - a Repository filter "NS/*" matches targets under "NS/" at any depth,
//     not "NS" itself nor "NSx";
//   - after DeleteAuditEventsBefore removes every event, the anchor is the
//     head, and appends continue the chain from it;
//   - the retention tests that expect an exact count append one event at a
//     time, since a store may delete an append's events only together.
//
// Tampering (a row edited or deleted behind the store's back) needs raw
// access to the engine, so each store tests it in its own package.

var auditTests = []test{
	{"AppendChainsInOrder", testAuditAppendChains},
	{"AppendContinuesAcrossCalls", testAuditAppendContinues},
	{"AppendNothing", testAuditAppendNothing},
	{"AppendFailureChangesNothing", testAuditAppendFailure},
	{"ReadBackExactly", testAuditReadBack},
	{"FindFilters", testAuditFind},
	{"FindPages", testAuditFindPages},
	{"FindByConnection", testAuditFindConnection},
	{"ChainStopsAtVisitorError", testAuditChainVisitorError},
	{"DeleteBeforeKeepsChainVerifiable", testAuditDeleteBefore},
	{"DeleteBeforeStopsAtFirstKept", testAuditDeleteOutOfOrder},
	{"DeleteEverythingThenAppend", testAuditDeleteAll},
	{"DeleteBeforeWithinAnAppend", testAuditDeleteWithinAppend},
	{"ConcurrentAppends", testAuditConcurrent},
}

// auditEventN returns an allowed pull of team/app by ci-web at at(n), with a
// detail naming n.
func auditEventN(n int) berth.AuditEvent {
	return berth.AuditEvent{
		Time:         at(n),
		Actor:        "ci-web",
		ActorID:      "00000000-0000-4000-8000-000000000001",
		Source:       "192.0.2.1",
		Action:       berth.AuditRegistryPull,
		Target:       "team/app",
		Result:       berth.AuditAllowed,
		RequestID:    fmt.Sprintf("req-%d", n),
		CredentialID: "50000000-0000-4000-8000-000000000001",
		Detail:       map[string]string{"n": fmt.Sprint(n)},
	}
}

func appendAudit(t *testing.T, s berth.MetadataStore, events ...berth.AuditEvent) []berth.AuditEvent {
	t.Helper()
	must(t, s.AppendAuditEvents(ctx(t), events))
	return events
}

// verifyAudit verifies the stored chain and returns its anchor and head.
func verifyAudit(t *testing.T, s berth.MetadataStore) (v *berth.AuditVerifier) {
	t.Helper()
	v = &berth.AuditVerifier{}
	if err := s.AuditChain(ctx(t), v); err != nil {
		t.Fatalf("the stored chain does not verify: %v", err)
	}
	return v
}

func findAudit(t *testing.T, s berth.MetadataStore, f berth.AuditFilter) []berth.AuditEvent {
	t.Helper()
	es, err := s.FindAuditEvents(ctx(t), f)
	must(t, err)
	if es == nil {
		t.Fatalf("FindAuditEvents(%+v) returned nil, want an empty slice", f)
	}
	return es
}

func seqs(es []berth.AuditEvent) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, fmt.Sprint(e.Seq))
	}
	return out
}

func wantSeqs(t *testing.T, what string, es []berth.AuditEvent, want ...int64) {
	t.Helper()
	w := []string{}
	for _, n := range want {
		w = append(w, fmt.Sprint(n))
	}
	wantStrings(t, what, seqs(es), w)
}

func wantAuditEvent(t *testing.T, what string, got, want berth.AuditEvent) {
	t.Helper()
	if got.Seq != want.Seq || !got.Time.Equal(want.Time) || got.Actor != want.Actor || got.ActorID != want.ActorID ||
		got.Source != want.Source || got.Action != want.Action || got.Target != want.Target || got.Result != want.Result ||
		got.Reason != want.Reason || got.RequestID != want.RequestID || got.CredentialID != want.CredentialID ||
		got.Connection != want.Connection || got.Pipeline != want.Pipeline || !maps.Equal(got.Detail, want.Detail) ||
		(got.Detail == nil) != (want.Detail == nil) || got.PrevHash != want.PrevHash || got.Hash != want.Hash {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testAuditAppendChains(t *testing.T, s berth.MetadataStore) {
	events := appendAudit(t, s, auditEventN(0), auditEventN(1), auditEventN(2))
	prev := berth.AuditLink{}
	for i, e := range events {
		want := berth.ChainEvent(prev, auditEventN(i))
		if e.Seq != int64(i+1) || e.Hash != want.Hash || e.PrevHash != prev.Hash {
			t.Errorf("event %d written back as seq %d hash %s prev %q; want seq %d hash %s prev %q",
				i, e.Seq, e.Hash, e.PrevHash, i+1, want.Hash, prev.Hash)
		}
		prev = e.Link()
	}
	v := verifyAudit(t, s)
	if v.Events() != 3 || v.Head() != events[2].Link() || v.Anchor() != (berth.AuditLink{}) {
		t.Errorf("chain: %d events, head %v, anchor %v; want 3, %v, the zero anchor", v.Events(), v.Head(), v.Anchor(), events[2].Link())
	}
}

func testAuditAppendContinues(t *testing.T, s berth.MetadataStore) {
	first := appendAudit(t, s, auditEventN(0), auditEventN(1))
	second := appendAudit(t, s, auditEventN(2))
	if second[0].Seq != 3 || second[0].PrevHash != first[1].Hash {
		t.Errorf("second append: seq %d prev %s, want 3 chained to %s", second[0].Seq, second[0].PrevHash, first[1].Hash)
	}
	for i := 3; i < 10; i++ {
		appendAudit(t, s, auditEventN(i))
	}
	if v := verifyAudit(t, s); v.Events() != 10 || v.Head().Seq != 10 {
		t.Errorf("after ten appends: %d events, head %d", v.Events(), v.Head().Seq)
	}
}

func testAuditAppendNothing(t *testing.T, s berth.MetadataStore) {
	must(t, s.AppendAuditEvents(ctx(t), nil))
	must(t, s.AppendAuditEvents(ctx(t), []berth.AuditEvent{}))
	if v := verifyAudit(t, s); v.Events() != 0 || v.Head() != (berth.AuditLink{}) {
		t.Errorf("empty appends wrote %d events, head %v", v.Events(), v.Head())
	}
	if e := appendAudit(t, s, auditEventN(0)); e[0].Seq != 1 || e[0].PrevHash != "" {
		t.Errorf("first event: seq %d prev %q, want 1 and the empty hash", e[0].Seq, e[0].PrevHash)
	}
}

func testAuditAppendFailure(t *testing.T, s berth.MetadataStore) {
	appendAudit(t, s, auditEventN(0))
	cancelled, cancel := context.WithCancel(ctx(t))
	cancel()
	events := []berth.AuditEvent{auditEventN(1), auditEventN(2)}
	if err := s.AppendAuditEvents(cancelled, events); err == nil {
		t.Fatal("AppendAuditEvents with a cancelled context succeeded")
	}
	if events[0].Seq != 0 || events[0].Hash != "" || events[1].Seq != 0 {
		t.Errorf("a failed append wrote back seq %d, %d", events[0].Seq, events[1].Seq)
	}
	if v := verifyAudit(t, s); v.Events() != 1 {
		t.Errorf("a failed append left %d events, want 1", v.Events())
	}
	// The chain continues from where it was.
	if e := appendAudit(t, s, events...); e[0].Seq != 2 || e[1].Seq != 3 {
		t.Errorf("retried append: seqs %d, %d; want 2, 3", e[0].Seq, e[1].Seq)
	}
	verifyAudit(t, s)
}

func testAuditReadBack(t *testing.T, s berth.MetadataStore) {
	full := berth.AuditEvent{
		Time: at(5), Actor: "ci-web", ActorID: "00000000-0000-4000-8000-000000000001", Source: "2001:db8::1",
		Action: berth.AuditRoleAssign, Target: "ci-web", Result: berth.AuditDenied, Reason: berth.CodeRoleMissing,
		RequestID: "r-1", CredentialID: "c-1", Connection: "web-deploy", Pipeline: "gh-main",
		Detail: map[string]string{"role": "push", "scope": "team/*", "message": "é ünïcode \"quoted\" \\ back\nslash", "empty": ""},
	}
	bare := berth.AuditEvent{Time: at(6), Action: berth.AuditLogDropped}
	written := appendAudit(t, s, full, bare)
	got := findAudit(t, s, berth.AuditFilter{})
	if len(got) != 2 {
		t.Fatalf("read back %d events, want 2", len(got))
	}
	wantAuditEvent(t, "full event", got[0], written[0])
	wantAuditEvent(t, "bare event", got[1], written[1])
	if got[1].Detail != nil {
		t.Errorf("an event without detail reads back with Detail %#v, want nil", got[1].Detail)
	}
	verifyAudit(t, s)
}

func testAuditFind(t *testing.T, s berth.MetadataStore) {
	ev := func(n int, actor string, action berth.AuditAction, target string, reason berth.Code) berth.AuditEvent {
		e := auditEventN(n)
		e.Actor, e.ActorID, e.Action, e.Target = actor, "id-"+actor, action, target
		if reason != "" {
			e.Result, e.Reason = berth.AuditDenied, reason
		}
		return e
	}
	appendAudit(t, s,
		ev(0, "ci-web", berth.AuditRegistryPull, "team/app", ""),                           // 1
		ev(10, "ci-web", berth.AuditRegistryPush, "team/app", berth.CodeRoleMissing),       // 2
		ev(20, "ci-api", berth.AuditRegistryPull, "team/app/sub", ""),                      // 3
		ev(30, "ci-api", berth.AuditRegistryPull, "team", berth.CodeCredentialsMissing),    // 4
		ev(40, "admin", berth.AuditRoleAssign, "ci-web", ""),                               // 5
		ev(50, "ci-web", berth.AuditRegistryPull, "teamx", berth.CodeRoleMissing),          // 6
		ev(60, "", berth.AuditAuthBasic, "", berth.CodeSecretInvalid),                      // 7
		ev(70, "ci-web", berth.AuditRegistryDelete, "team/app", berth.CodeScopeNotGranted), // 8
	)
	tests := []struct {
		name string
		f    berth.AuditFilter
		want []int64
	}{
		{"all", berth.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8}},
		{"since is inclusive", berth.AuditFilter{Since: at(20)}, []int64{3, 4, 5, 6, 7, 8}},
		{"until is exclusive", berth.AuditFilter{Until: at(20)}, []int64{1, 2}},
		{"since and until", berth.AuditFilter{Since: at(10), Until: at(41)}, []int64{2, 3, 4, 5}},
		{"principal by name", berth.AuditFilter{Principal: "ci-api"}, []int64{3, 4}},
		{"principal by id", berth.AuditFilter{Principal: "id-ci-web"}, []int64{1, 2, 6, 8}},
		{"principal unknown", berth.AuditFilter{Principal: "nobody"}, nil},
		{"repository", berth.AuditFilter{Repository: "team/app"}, []int64{1, 2, 8}},
		{"namespace", berth.AuditFilter{Repository: "team/*"}, []int64{1, 2, 3, 8}},
		{"nested namespace", berth.AuditFilter{Repository: "team/app/*"}, []int64{3}},
		{"action", berth.AuditFilter{Action: berth.AuditRegistryPull}, []int64{1, 3, 4, 6}},
		{"allowed", berth.AuditFilter{Result: berth.AuditAllowed}, []int64{1, 3, 5}},
		{"denied", berth.AuditFilter{Result: berth.AuditDenied}, []int64{2, 4, 6, 7, 8}},
		{"code", berth.AuditFilter{Code: berth.CodeRoleMissing}, []int64{2, 6}},
		{"combined", berth.AuditFilter{Principal: "ci-web", Result: berth.AuditDenied, Repository: "team/*", Since: at(5)}, []int64{2, 8}},
		{"limit", berth.AuditFilter{Limit: 3}, []int64{1, 2, 3}},
		{"limit, last", berth.AuditFilter{Limit: 3, Last: true}, []int64{6, 7, 8}},
		{"limit, last, filtered", berth.AuditFilter{Limit: 2, Last: true, Result: berth.AuditAllowed}, []int64{3, 5}},
		{"last without limit", berth.AuditFilter{Last: true}, []int64{1, 2, 3, 4, 5, 6, 7, 8}},
	}
	for _, tt := range tests {
		wantSeqs(t, tt.name, findAudit(t, s, tt.f), tt.want...)
	}
}

// testAuditFindConnection checks AuditFilter.Connection, which selects the
// events of one service connection, whether the store filters in its queries
// or with AuditFilter.Match.
func testAuditFindConnection(t *testing.T, s berth.MetadataStore) {
	ev := func(n int, connection, pipeline string) berth.AuditEvent {
		e := auditEventN(n)
		e.Connection, e.Pipeline = connection, pipeline
		return e
	}
	appendAudit(t, s, ev(0, "deploy", "web"), ev(10, "", ""), ev(20, "release", "web"), ev(30, "deploy", "api"))
	appendAudit(t, s, ev(40, "deploy-2", "web"), ev(50, "deploy", ""))
	wantSeqs(t, "connection deploy", findAudit(t, s, berth.AuditFilter{Connection: "deploy"}), 1, 4, 6)
	wantSeqs(t, "connection release", findAudit(t, s, berth.AuditFilter{Connection: "release"}), 3)
	wantSeqs(t, "an unknown connection", findAudit(t, s, berth.AuditFilter{Connection: "nothing"}))
	wantSeqs(t, "connection and since", findAudit(t, s, berth.AuditFilter{Connection: "deploy", Since: at(20)}), 4, 6)
	wantSeqs(t, "connection, last", findAudit(t, s, berth.AuditFilter{Connection: "deploy", Limit: 1, Last: true}), 6)
}

func testAuditFindPages(t *testing.T, s berth.MetadataStore) {
	for i := range 7 {
		appendAudit(t, s, auditEventN(i))
	}
	// Forward: After is the last Seq of the previous page.
	var got []string
	for after := int64(0); ; {
		page := findAudit(t, s, berth.AuditFilter{After: after, Limit: 3})
		if len(page) == 0 {
			break
		}
		got = append(got, fmt.Sprint(seqs(page)))
		after = page[len(page)-1].Seq
	}
	wantStrings(t, "forward pages", got, []string{"[1 2 3]", "[4 5 6]", "[7]"})
	// Back: Before is the first Seq of the previous page.
	got = nil
	for before := int64(0); ; {
		page := findAudit(t, s, berth.AuditFilter{Before: before, Limit: 3, Last: true})
		if len(page) == 0 {
			break
		}
		got = append(got, fmt.Sprint(seqs(page)))
		before = page[0].Seq
		if before == 1 {
			break
		}
	}
	wantStrings(t, "backward pages", got, []string{"[5 6 7]", "[2 3 4]", "[1]"})
	wantSeqs(t, "after and before", findAudit(t, s, berth.AuditFilter{After: 2, Before: 5}), 3, 4)
}

// failingVisitor fails at the event with Seq failAt.
type failingVisitor struct {
	failAt int64
	seen   []int64
	ended  bool
}

var errVisitor = errors.New("visitor stops")

func (v *failingVisitor) Begin(_, _ berth.AuditLink) error { return nil }
func (v *failingVisitor) Event(e berth.AuditEvent) error {
	v.seen = append(v.seen, e.Seq)
	if e.Seq == v.failAt {
		return errVisitor
	}
	return nil
}
func (v *failingVisitor) End() error { v.ended = true; return nil }

func testAuditChainVisitorError(t *testing.T, s berth.MetadataStore) {
	for i := range 5 {
		appendAudit(t, s, auditEventN(i))
	}
	v := &failingVisitor{failAt: 3}
	if err := s.AuditChain(ctx(t), v); !errors.Is(err, errVisitor) {
		t.Errorf("AuditChain returned %v, want the visitor's error as it is", err)
	}
	if fmt.Sprint(v.seen) != "[1 2 3]" || v.ended {
		t.Errorf("visitor saw %v (ended %v), want [1 2 3] and no End", v.seen, v.ended)
	}
}

func testAuditDeleteBefore(t *testing.T, s berth.MetadataStore) {
	var written []berth.AuditEvent
	for i := range 6 {
		written = append(written, appendAudit(t, s, auditEventN(i*10))...) // at 0, 10, …, 50
	}
	n, err := s.DeleteAuditEventsBefore(ctx(t), at(20))
	must(t, err)
	if n != 2 {
		t.Errorf("deleted %d events before at(20), want 2", n)
	}
	wantSeqs(t, "kept", findAudit(t, s, berth.AuditFilter{}), 3, 4, 5, 6)
	v := verifyAudit(t, s)
	if v.Anchor() != written[1].Link() || v.Events() != 4 {
		t.Errorf("anchor %v with %d events, want the last deleted event %v and 4", v.Anchor(), v.Events(), written[1].Link())
	}

	// Nothing before: nothing deleted, the anchor stays.
	n, err = s.DeleteAuditEventsBefore(ctx(t), at(20))
	must(t, err)
	if n != 0 {
		t.Errorf("a repeated prune deleted %d", n)
	}
	if v := verifyAudit(t, s); v.Anchor() != written[1].Link() {
		t.Errorf("a prune that deleted nothing moved the anchor to %v", v.Anchor())
	}

	// Appends chain on; a later prune moves the anchor again.
	next := appendAudit(t, s, auditEventN(60))
	if next[0].Seq != 7 || next[0].PrevHash != written[5].Hash {
		t.Errorf("append after a prune: seq %d prev %s", next[0].Seq, next[0].PrevHash)
	}
	n, err = s.DeleteAuditEventsBefore(ctx(t), at(41))
	must(t, err)
	if n != 3 {
		t.Errorf("deleted %d events before at(41), want 3 (seq 3 to 5)", n)
	}
	if v := verifyAudit(t, s); v.Anchor() != written[4].Link() || v.Events() != 2 {
		t.Errorf("anchor %v with %d events, want %v and 2", v.Anchor(), v.Events(), written[4].Link())
	}
}

// testAuditDeleteOutOfOrder appends events whose times are not in Seq order
// (recorded by concurrent requests, or across a clock step): retention deletes
// only the prefix, so that the chain stays unbroken.
func testAuditDeleteOutOfOrder(t *testing.T, s berth.MetadataStore) {
	for _, n := range []int{0, 10, 50, 5, 60} {
		appendAudit(t, s, auditEventN(n))
	}
	n, err := s.DeleteAuditEventsBefore(ctx(t), at(30))
	must(t, err)
	if n != 2 {
		t.Errorf("deleted %d, want 2: seq 3 (at 50) is kept, so seq 4 (at 5) after it is too", n)
	}
	wantSeqs(t, "kept", findAudit(t, s, berth.AuditFilter{}), 3, 4, 5)
	verifyAudit(t, s)
}

func testAuditDeleteAll(t *testing.T, s berth.MetadataStore) {
	written := appendAudit(t, s, auditEventN(0), auditEventN(1), auditEventN(2))
	n, err := s.DeleteAuditEventsBefore(ctx(t), at(100))
	must(t, err)
	if n != 3 {
		t.Errorf("deleted %d, want 3", n)
	}
	wantSeqs(t, "kept", findAudit(t, s, berth.AuditFilter{}))
	v := verifyAudit(t, s)
	if v.Anchor() != written[2].Link() || v.Head() != written[2].Link() || v.Events() != 0 {
		t.Errorf("emptied log: anchor %v head %v, %d events; want both %v", v.Anchor(), v.Head(), v.Events(), written[2].Link())
	}
	next := appendAudit(t, s, auditEventN(200))
	if next[0].Seq != 4 || next[0].PrevHash != written[2].Hash {
		t.Errorf("append after emptying: seq %d prev %s; want 4 chained to %s", next[0].Seq, next[0].PrevHash, written[2].Hash)
	}
	verifyAudit(t, s)
}

// testAuditDeleteWithinAppend: when t falls inside what one append wrote, a
// store deletes up to t or stops at the start of that append; either way the
// chain verifies and no event at or after t is deleted.
func testAuditDeleteWithinAppend(t *testing.T, s berth.MetadataStore) {
	appendAudit(t, s, auditEventN(0))
	appendAudit(t, s, auditEventN(10), auditEventN(20), auditEventN(30))
	n, err := s.DeleteAuditEventsBefore(ctx(t), at(25))
	must(t, err)
	kept := findAudit(t, s, berth.AuditFilter{})
	switch n {
	case 1:
		wantSeqs(t, "kept after stopping at the append", kept, 2, 3, 4)
	case 3:
		wantSeqs(t, "kept after deleting up to t", kept, 4)
	default:
		t.Errorf("deleted %d; want 1 (up to the append holding at(30)) or 3 (up to at(30) itself)", n)
	}
	verifyAudit(t, s)
}

func testAuditConcurrent(t *testing.T, s berth.MetadataStore) {
	const writers, batches, size = 8, 10, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				batch := make([]berth.AuditEvent, size)
				for i := range batch {
					batch[i] = auditEventN(w*1000 + b*10 + i)
				}
				if err := s.AppendAuditEvents(ctx(t), batch); err != nil {
					errs <- err
					return
				}
				// A batch is consecutive: no other writer's event inside it.
				for i := 1; i < size; i++ {
					if batch[i].Seq != batch[0].Seq+int64(i) {
						errs <- fmt.Errorf("batch written as seqs %d and then %d", batch[0].Seq, batch[i].Seq)
						return
					}
				}
			}
		}()
	}
	// A verifier reading meanwhile sees a consistent snapshot every time.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			if err := s.AuditChain(ctx(t), &berth.AuditVerifier{}); err != nil {
				errs <- fmt.Errorf("verify during appends: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	<-done
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if v := verifyAudit(t, s); v.Events() != writers*batches*size || v.Head().Seq != writers*batches*size {
		t.Errorf("after concurrent appends: %d events, head %d; want %d", v.Events(), v.Head().Seq, writers*batches*size)
	}
}
