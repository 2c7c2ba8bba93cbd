package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth"
)

// Store is what a Writer writes to; berth.AuditStore implements it.
type Store interface {
	AppendAuditEvents(ctx context.Context, events []berth.AuditEvent) error
	DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int, error)
}

// Defaults of Options.
const (
	// DefaultBuffer holds about a second of events at the manifest GET rate
	// berth reaches on two cores (~23,000/s), ~5 MB: enough to ride out a
	// checkpoint or a slow fsync without dropping.
	DefaultBuffer = 16384
	// DefaultBatch bounds one append: past a few hundred events a batch costs
	// no less per event, and holds the store's write lock longer.
	DefaultBatch = 512
	// DefaultLinger is how long a batch waits for more events after its
	// first. Per event, an append of one costs about a hundred times one of
	// hundreds (each commit writes and syncs the pages it touched), and under
	// load group commit alone makes small batches: the append it waits for
	// is short. 10 ms turns 20,000 events a second into 100 appends of 200.
	DefaultLinger = 10 * time.Millisecond
	// DefaultRetryDelay is the first wait after a failed append; it doubles
	// up to maxRetryDelay.
	DefaultRetryDelay = 10 * time.Millisecond
	// DefaultAttempts is how often a batch is tried before it is dropped.
	DefaultAttempts = 5

	maxRetryDelay = time.Second
	// errorLogInterval bounds how often a failing store is logged.
	errorLogInterval = 10 * time.Second
)

// Options configures a Writer; the zero value of each field is its default.
type Options struct {
	// Now is the clock that stamps events recorded without a Time
	// (time.Now when nil).
	Now func() time.Time
	// Logger receives drops and store failures at Error (nothing when nil).
	Logger *slog.Logger
	// Buffer is how many events may wait for the store.
	Buffer int
	// Batch is the most events one append writes.
	Batch int
	// Linger is how long a batch waits for more events after its first,
	// unless it fills first; a negative Linger does not wait.
	Linger time.Duration
	// FullWait is how long Record waits for room when the buffer is full
	// before it drops the event. The default, 0, never makes a request wait
	// for the audit log: a full buffer means the store has stalled, and
	// waiting would stall every request with it, while the drop is counted
	// and reported in the log.
	FullWait time.Duration
	// RetryDelay and Attempts govern retrying a failed append.
	RetryDelay time.Duration
	Attempts   int
}

// Writer records audit events asynchronously; see the package documentation.
// Its methods are safe for concurrent use, and Record is safe on a nil
// *Writer (it does nothing), so a handler may hold a nil one in tests.
type Writer struct {
	store      Store
	now        func() time.Time
	logger     *slog.Logger
	batch      int
	linger     time.Duration
	fullWait   time.Duration
	retryDelay time.Duration
	attempts   int

	// mu guards closed and the closing of ch: Record holds it shared while it
	// sends, so no event is sent after the loop has drained ch.
	mu     sync.RWMutex
	closed bool
	ch     chan berth.AuditEvent

	ctx    context.Context // ends when Close gives up waiting
	cancel context.CancelFunc
	done   chan struct{}

	written   atomic.Uint64
	dropped   atomic.Uint64
	firstDrop atomic.Int64 // Unix µs of the first drop not yet reported; 0 when none

	// Owned by the loop; read after done.
	reported   uint64 // drops reported in the log
	lastErrLog time.Time
}

var _ berth.AuditRecorder = (*Writer)(nil)

// New returns a Writer appending to store and starts its goroutine; Close
// stops it.
func New(store Store, opts Options) *Writer {
	w := &Writer{
		store:      store,
		now:        opts.Now,
		logger:     opts.Logger,
		batch:      opts.Batch,
		linger:     opts.Linger,
		fullWait:   opts.FullWait,
		retryDelay: opts.RetryDelay,
		attempts:   opts.Attempts,
		done:       make(chan struct{}),
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	if w.batch <= 0 {
		w.batch = DefaultBatch
	}
	if w.linger == 0 {
		w.linger = DefaultLinger
	}
	if w.retryDelay <= 0 {
		w.retryDelay = DefaultRetryDelay
	}
	if w.attempts <= 0 {
		w.attempts = DefaultAttempts
	}
	buffer := opts.Buffer
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	w.ch = make(chan berth.AuditEvent, buffer)
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.run()
	return w
}

// Record takes e for writing and returns at once (or, with Options.FullWait,
// after at most that long when the buffer is full). An event without a Time
// is stamped with the writer's clock. An event that cannot be kept is counted
// and reported later as audit.dropped.
func (w *Writer) Record(e berth.AuditEvent) {
	if w == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = w.now()
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.drop(1)
		return
	}
	select {
	case w.ch <- e:
		return
	default:
	}
	if w.fullWait > 0 {
		t := time.NewTimer(w.fullWait)
		defer t.Stop()
		select {
		case w.ch <- e:
			return
		case <-t.C:
		}
	}
	w.drop(1)
}

// drop counts n lost events.
func (w *Writer) drop(n int) {
	w.noteDrop(w.now().UnixMicro())
	w.dropped.Add(uint64(n))
}

// noteDrop makes at, a Unix µs time, the time of the first unreported drop
// if it is earlier than the one noted.
func (w *Writer) noteDrop(at int64) {
	for {
		first := w.firstDrop.Load()
		if first != 0 && first <= at || w.firstDrop.CompareAndSwap(first, at) {
			return
		}
	}
}

// Stats are the writer's counters, for metrics.
type Stats struct {
	// Written counts the events appended to the store, audit.dropped and
	// audit.pruned included.
	Written uint64
	// Dropped counts the events lost: refused by a full buffer or a closed
	// writer, or in a batch the store did not take.
	Dropped uint64
	// Queued is how many events wait for the store now.
	Queued int
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	return Stats{Written: w.written.Load(), Dropped: w.dropped.Load(), Queued: len(w.ch)}
}

// Close stops taking events and waits until every buffered event is
// written, or until ctx ends: then it abandons what is left, counting it as
// dropped. It returns an error stating how many events were lost without
// being reported in the log (nil when none). Calling it again returns nil.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.ch)
	w.mu.Unlock()

	select {
	case <-w.done:
	case <-ctx.Done():
		w.cancel()
		<-w.done
	}
	w.cancel()
	if lost := w.dropped.Load() - w.reported; lost > 0 {
		w.logger.Error("audit events lost at shutdown", slog.Uint64("count", lost))
		return fmt.Errorf("audit: %d events were lost and are not reported in the log", lost)
	}
	return nil
}

// run is the writer's goroutine: it gathers what is buffered into a batch,
// waiting up to the linger for more, adds a report of unreported drops, and
// appends it, until ch is closed and drained.
func (w *Writer) run() {
	defer close(w.done)
	batch := make([]berth.AuditEvent, 0, w.batch+1)
	var linger *time.Timer
	if w.linger > 0 {
		linger = time.NewTimer(w.linger)
		linger.Stop()
	}
	for {
		e, ok := <-w.ch
		if !ok {
			// A last report of drops, which Record may have counted after
			// the final batch.
			if w.dropped.Load() > w.reported && w.ctx.Err() == nil {
				w.flush(batch[:0])
			}
			return
		}
		batch = append(batch[:0], e)
		if linger != nil {
			linger.Reset(w.linger)
		}
		w.gather(&batch, linger)
		w.flush(batch)
	}
}

// gather adds to batch what ch holds, until batch is full, ch is closed, or
// linger fires (with no linger: until ch is empty).
func (w *Writer) gather(batch *[]berth.AuditEvent, linger *time.Timer) {
	var expired <-chan time.Time
	if linger != nil {
		defer linger.Stop()
		expired = linger.C
	}
	for len(*batch) < w.batch {
		if linger == nil {
			select {
			case e, ok := <-w.ch:
				if !ok {
					return
				}
				*batch = append(*batch, e)
				continue
			default:
				return
			}
		}
		select {
		case e, ok := <-w.ch:
			if !ok {
				return
			}
			*batch = append(*batch, e)
		case <-expired:
			return
		}
	}
}

// flush appends batch, with a report of the drops not yet reported.
func (w *Writer) flush(batch []berth.AuditEvent) {
	dropped := w.dropped.Load()
	report := dropped - w.reported
	var since int64
	if report > 0 {
		// 0 when a drop counted now was noted before the last report.
		if since = w.firstDrop.Swap(0); since == 0 {
			since = w.now().UnixMicro()
		}
		w.logger.Error("audit events dropped: the buffer was full or the store failed",
			slog.Uint64("count", report), slog.Time("since", time.UnixMicro(since).UTC()))
		batch = append(batch, berth.AuditEvent{
			Time:   w.now(),
			Action: berth.AuditLogDropped,
			Reason: berth.CodeInternal,
			Detail: map[string]string{
				"count": strconv.FormatUint(report, 10),
				"since": time.UnixMicro(since).UTC().Format(time.RFC3339Nano),
			},
		})
	}
	if len(batch) == 0 {
		return
	}
	if err := w.append(batch); err != nil {
		lost := len(batch)
		if report > 0 {
			lost-- // the report itself; its count stays unreported, since when too
			w.noteDrop(since)
		}
		w.dropped.Add(uint64(lost))
		w.noteDrop(w.now().UnixMicro())
		w.logError("audit events not written", err, lost)
		return
	}
	w.reported = dropped
	w.written.Add(uint64(len(batch)))
}

// append writes batch, retrying a failure with a doubling delay.
func (w *Writer) append(batch []berth.AuditEvent) error {
	delay := w.retryDelay
	var err error
	for attempt := 1; ; attempt++ {
		if err = w.store.AppendAuditEvents(w.ctx, batch); err == nil {
			return nil
		}
		if attempt == w.attempts || w.ctx.Err() != nil {
			return err
		}
		w.logError("audit append failed; retrying", err, len(batch))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
			return errors.Join(err, w.ctx.Err())
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// logError logs a store failure at most once per errorLogInterval.
func (w *Writer) logError(msg string, err error, events int) {
	now := w.now()
	if !w.lastErrLog.IsZero() && now.Sub(w.lastErrLog) < errorLogInterval && now.After(w.lastErrLog) {
		return
	}
	w.lastErrLog = now
	w.logger.Error(msg, slog.Int("events", events), slog.Any("err", err))
}

// Prune deletes the events before t (see berth.AuditStore) and records that it
// did as audit.pruned, with the count and t in its detail; a prune that
// deletes nothing records nothing. Retention calls it with now minus the
// configured retention.
func (w *Writer) Prune(ctx context.Context, t time.Time) (int, error) {
	n, err := w.store.DeleteAuditEventsBefore(ctx, t)
	if n == 0 && err == nil {
		return 0, nil
	}
	e := berth.AuditEvent{
		Action: berth.AuditLogPruned,
		Detail: map[string]string{"count": strconv.Itoa(n), "before": t.UTC().Format(time.RFC3339Nano)},
	}
	if err != nil {
		e.Reason = berth.ErrorCode(err)
		if be := berth.AsError(err); be != nil {
			e.Detail["message"] = be.Message
		}
	}
	w.Record(e)
	return n, err
}
