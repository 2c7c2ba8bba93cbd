package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/audit"
	"github.com/berth-dev/berth/internal/sqlite"
	"github.com/berth-dev/berth/internal/testclock"
)

var epoch = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// clock is an injected clock that moves only when told.
func newClock() *testclock.Clock { return testclock.New(epoch) }

// fakeStore is a store that can be held (gate), told to fail, and watched
// (entered): the writer's failures cannot be forced on a real one.
type fakeStore struct {
	mu      sync.Mutex
	batches [][]berth.AuditEvent
	fail    int // fail this many appends from now
	entered chan struct{}
	gate    chan struct{} // when set, each append waits until it is closed
}

var errStore = errors.New("disk I/O error")

func newFakeStore() *fakeStore { return &fakeStore{entered: make(chan struct{}, 1000)} }

func (s *fakeStore) AppendAuditEvents(ctx context.Context, events []berth.AuditEvent) error {
	s.entered <- struct{}{}
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errStore
	}
	s.batches = append(s.batches, slices.Clone(events))
	return nil
}

func (s *fakeStore) DeleteAuditEventsBefore(context.Context, time.Time) (int, error) { return 0, nil }

func (s *fakeStore) hold() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *fakeStore) release() {
	s.mu.Lock()
	close(s.gate)
	s.gate = nil
	s.mu.Unlock()
}

// waitEntered waits until the writer has called AppendAuditEvents n more times.
func (s *fakeStore) waitEntered(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.entered:
		case <-time.After(5 * time.Second):
			t.Fatal("the writer did not append within 5 s")
		}
	}
}

// written returns the targets of the batches, one string per batch, with
// the writer's own records shown as ACTION(count).
func (s *fakeStore) written() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, b := range s.batches {
		var names []string
		for _, e := range b {
			if strings.HasPrefix(string(e.Action), "audit.") {
				names = append(names, fmt.Sprintf("%s(%s)", e.Action, e.Detail["count"]))
				continue
			}
			names = append(names, e.Target)
		}
		out = append(out, strings.Join(names, " "))
	}
	return out
}

func (s *fakeStore) events() []berth.AuditEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Concat(s.batches...)
}

func event(target string) berth.AuditEvent {
	return berth.AuditEvent{Actor: "ci-web", Action: berth.AuditRegistryPull, Target: target, Result: berth.AuditAllowed}
}

func closeWriter(t *testing.T, w *audit.Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func wantWritten(t *testing.T, s *fakeStore, want ...string) {
	t.Helper()
	if got := s.written(); !slices.Equal(got, want) {
		t.Errorf("batches written:\n got %q\nwant %q", got, want)
	}
}

func wantStats(t *testing.T, w *audit.Writer, written, dropped uint64) {
	t.Helper()
	if st := w.Stats(); st.Written != written || st.Dropped != dropped || st.Queued != 0 {
		t.Errorf("Stats = %+v, want %d written, %d dropped, none queued", st, written, dropped)
	}
}

// logBuffer captures what the writer logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

func openSQLite(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestWriterWritesEveryEventToSQLite(t *testing.T) {
	db := openSQLite(t)
	clk := newClock()
	w := audit.New(db, audit.Options{Now: clk.Now})

	const writers, each = 8, 250
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				w.Record(event(fmt.Sprintf("team/app-%d-%d", g, i)))
			}
		})
	}
	wg.Wait()
	stamped := epoch.Add(-time.Hour)
	e := event("kept-time")
	e.Time = stamped
	w.Record(e)
	closeWriter(t, w)
	wantStats(t, w, writers*each+1, 0)

	got, err := db.FindAuditEvents(t.Context(), berth.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != writers*each+1 {
		t.Fatalf("the store holds %d events, want %d", len(got), writers*each+1)
	}
	// Each writer's events keep their order.
	next := map[int]int{}
	for _, e := range got[:len(got)-1] {
		var g, i int
		if _, err := fmt.Sscanf(e.Target, "team/app-%d-%d", &g, &i); err != nil || i != next[g] {
			t.Fatalf("event %q out of order (want index %d of writer %d)", e.Target, next[g], g)
		}
		next[g]++
		if !e.Time.Equal(epoch) {
			t.Errorf("event %d stamped %v, want the injected clock's %v", e.Seq, e.Time, epoch)
		}
	}
	if last := got[len(got)-1]; !last.Time.Equal(stamped) {
		t.Errorf("an event recorded with a time was stamped %v, want %v", last.Time, stamped)
	}
	if err := db.AuditChain(t.Context(), &berth.AuditVerifier{}); err != nil {
		t.Errorf("the written chain does not verify: %v", err)
	}
}

// TestWriterBatchesWhatGathers: events recorded while an append runs are
// written together by the next one.
func TestWriterBatchesWhatGathers(t *testing.T) {
	s := newFakeStore()
	s.hold()
	w := audit.New(s, audit.Options{Now: newClock().Now})
	w.Record(event("a0"))
	s.waitEntered(t, 1)
	for i := 1; i <= 9; i++ {
		w.Record(event(fmt.Sprintf("a%d", i)))
	}
	s.release()
	closeWriter(t, w)
	wantWritten(t, s, "a0", "a1 a2 a3 a4 a5 a6 a7 a8 a9")
	wantStats(t, w, 10, 0)
}

func TestWriterBatchBound(t *testing.T) {
	s := newFakeStore()
	s.hold()
	w := audit.New(s, audit.Options{Now: newClock().Now, Batch: 3})
	w.Record(event("a0"))
	s.waitEntered(t, 1)
	for i := 1; i <= 7; i++ {
		w.Record(event(fmt.Sprintf("a%d", i)))
	}
	s.release()
	closeWriter(t, w)
	wantWritten(t, s, "a0", "a1 a2 a3", "a4 a5 a6", "a7")
}

// TestWriterReportsDrops fills the buffer while the store is held: the events
// that do not fit are counted, logged at Error, and reported in the log by an
// audit.dropped event with the count and the time of the first drop.
func TestWriterReportsDrops(t *testing.T) {
	s := newFakeStore()
	s.hold()
	clk := newClock()
	logger, logs := newLogger()
	w := audit.New(s, audit.Options{Now: clk.Now, Logger: logger, Buffer: 2})
	w.Record(event("a0"))
	s.waitEntered(t, 1)
	w.Record(event("a1"))
	w.Record(event("a2"))
	clk.Advance(time.Minute)
	firstDrop := clk.Now()
	for i := 3; i <= 5; i++ {
		w.Record(event(fmt.Sprintf("a%d", i))) // the buffer holds a1 and a2: dropped
		clk.Advance(time.Second)
	}
	if st := w.Stats(); st.Dropped != 3 || st.Queued != 2 {
		t.Fatalf("while held: Stats = %+v, want 3 dropped, 2 queued", st)
	}
	s.release()
	closeWriter(t, w)
	wantWritten(t, s, "a0", "a1 a2 audit.dropped(3)")
	wantStats(t, w, 4, 3)

	report := s.events()[3]
	if report.Reason != berth.CodeInternal || report.Detail["since"] != firstDrop.Format(time.RFC3339Nano) || !report.Time.Equal(clk.Now()) {
		t.Errorf("drop report: reason %q, since %q, time %v; want internal, %s, %v",
			report.Reason, report.Detail["since"], report.Time, firstDrop.Format(time.RFC3339Nano), clk.Now())
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "count=3") {
		t.Errorf("drops were not logged at Error with their count:\n%s", l)
	}
}

func TestWriterFullWait(t *testing.T) {
	s := newFakeStore()
	s.hold()
	w := audit.New(s, audit.Options{Now: newClock().Now, Buffer: 1, FullWait: 10 * time.Second})
	w.Record(event("a0"))
	s.waitEntered(t, 1)
	w.Record(event("a1"))
	recorded := make(chan struct{})
	go func() {
		w.Record(event("a2")) // waits for room
		close(recorded)
	}()
	select {
	case <-recorded:
		t.Fatal("Record returned while the buffer was full, with FullWait set")
	case <-time.After(20 * time.Millisecond):
	}
	s.release()
	<-recorded
	closeWriter(t, w)
	if got := strings.Join(s.written(), " "); got != "a0 a1 a2" {
		t.Errorf("written %q, want a0 a1 a2", got)
	}
	wantStats(t, w, 3, 0)
}

func TestWriterRetries(t *testing.T) {
	s := newFakeStore()
	s.fail = 2
	logger, logs := newLogger()
	w := audit.New(s, audit.Options{Now: newClock().Now, Logger: logger, RetryDelay: time.Millisecond})
	w.Record(event("a0"))
	closeWriter(t, w)
	wantWritten(t, s, "a0")
	wantStats(t, w, 1, 0)
	if l := logs.String(); !strings.Contains(l, errStore.Error()) {
		t.Errorf("the failure was not logged:\n%s", l)
	}
}

// TestWriterDropsAFailedBatchAndReportsIt: a batch the store refuses past the
// attempts is dropped, and the next successful append reports it.
func TestWriterDropsAFailedBatchAndReportsIt(t *testing.T) {
	s := newFakeStore()
	s.fail = 3
	w := audit.New(s, audit.Options{Now: newClock().Now, RetryDelay: time.Millisecond, Attempts: 3})
	w.Record(event("a0"))
	w.Record(event("a1"))
	s.waitEntered(t, 3)
	// a0 and a1 may have gone in one batch or in two; either way the store
	// refused a0's three times.
	w.Record(event("a2"))
	closeWriter(t, w)
	got := s.written()
	switch {
	case slices.Equal(got, []string{"a2 audit.dropped(2)"}):
	case slices.Equal(got, []string{"a1 audit.dropped(1)", "a2"}):
	case slices.Equal(got, []string{"a1 a2 audit.dropped(1)"}):
	default:
		t.Errorf("written %q; want the refused events reported by audit.dropped", got)
	}
	if st := w.Stats(); st.Dropped == 0 || st.Written != uint64(len(s.events())) {
		t.Errorf("Stats = %+v, with %d events written", st, len(s.events()))
	}
}

// TestWriterReportsFailedReport: when the batch carrying a drop report fails
// too, a later one reports every loss, the failed report's included.
func TestWriterReportsFailedReport(t *testing.T) {
	s := newFakeStore()
	s.hold()
	w := audit.New(s, audit.Options{Now: newClock().Now, Buffer: 1, RetryDelay: time.Millisecond, Attempts: 1})
	w.Record(event("a0"))
	s.waitEntered(t, 1)
	w.Record(event("a1"))
	w.Record(event("lost")) // dropped: the buffer is full
	s.mu.Lock()
	s.fail = 2 // a0 is refused, then a1 with the report of one drop
	s.mu.Unlock()
	s.release()
	closeWriter(t, w) // the last report goes in as Close drains
	wantWritten(t, s, "audit.dropped(3)")
	wantStats(t, w, 1, 3)
}

func TestWriterCloseGivesUpAtDeadline(t *testing.T) {
	s := newFakeStore()
	s.hold() // never released
	logger, logs := newLogger()
	w := audit.New(s, audit.Options{Now: newClock().Now, Logger: logger})
	w.Record(event("a0"))
	s.waitEntered(t, 1)
	w.Record(event("a1"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := w.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "2 events") {
		t.Errorf("Close past its deadline = %v, want an error counting 2 lost events", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v past a 20 ms deadline", d)
	}
	if st := w.Stats(); st.Dropped != 2 || st.Written != 0 {
		t.Errorf("Stats = %+v, want 2 dropped", st)
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("the loss was not logged at Error:\n%s", logs.String())
	}
}

func TestWriterRecordAfterClose(t *testing.T) {
	s := newFakeStore()
	w := audit.New(s, audit.Options{Now: newClock().Now})
	closeWriter(t, w)
	w.Record(event("late"))
	if st := w.Stats(); st.Dropped != 1 {
		t.Errorf("a record after Close: Stats = %+v, want it counted as dropped", st)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Errorf("a second Close = %v", err)
	}
	wantWritten(t, s)
}

func TestNilWriter(t *testing.T) {
	var w *audit.Writer
	w.Record(event("nowhere")) // does nothing, and does not panic
	var rec berth.AuditRecorder = w
	rec.Record(event("nowhere"))
}

// TestWriterConcurrentClose closes while goroutines record: every event is
// either written or counted as dropped, never lost in between.
func TestWriterConcurrentClose(t *testing.T) {
	s := newFakeStore()
	w := audit.New(s, audit.Options{Now: newClock().Now, Buffer: 64})
	const writers, each = 8, 2000
	var wg sync.WaitGroup
	start, recording := make(chan struct{}), make(chan struct{})
	var once sync.Once
	for range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				w.Record(event("x"))
				if i == 100 {
					once.Do(func() { close(recording) })
				}
			}
		})
	}
	close(start)
	<-recording                       // close while the writers are mid-way, not before they begin
	_ = w.Close(context.Background()) // may report drops after the last batch
	wg.Wait()
	var written uint64
	for _, e := range s.events() {
		if e.Action == berth.AuditRegistryPull {
			written++
		}
	}
	if st := w.Stats(); written+st.Dropped != writers*each {
		t.Errorf("%d written + %d dropped = %d, want %d", written, st.Dropped, written+st.Dropped, writers*each)
	}
}

func TestWriterPrune(t *testing.T) {
	db := openSQLite(t)
	clk := newClock()
	for i := range 5 { // one append each: retention may keep an append whole
		e := event(fmt.Sprint(i))
		e.Time = epoch.Add(time.Duration(i) * time.Hour)
		if err := db.AppendAuditEvents(t.Context(), []berth.AuditEvent{e}); err != nil {
			t.Fatal(err)
		}
	}
	w := audit.New(db, audit.Options{Now: clk.Now})
	before := epoch.Add(3 * time.Hour)
	n, err := w.Prune(t.Context(), before)
	if err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v; want 3", n, err)
	}
	if n, err := w.Prune(t.Context(), before); err != nil || n != 0 {
		t.Fatalf("a second Prune = %d, %v; want 0", n, err)
	}
	closeWriter(t, w)
	got, err := db.FindAuditEvents(t.Context(), berth.AuditFilter{Action: berth.AuditLogPruned})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Detail["count"] != "3" || got[0].Detail["before"] != before.Format(time.RFC3339Nano) {
		t.Errorf("audit.pruned events: %+v; want one, count 3, before %s", got, before.Format(time.RFC3339Nano))
	}
	if err := db.AuditChain(t.Context(), &berth.AuditVerifier{}); err != nil {
		t.Errorf("after pruning: %v", err)
	}
}
