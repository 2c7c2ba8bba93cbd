// Package audit writes the audit log without slowing the requests it records.
//
// A Writer takes events from request handlers with Record, which only puts the
// event in a bounded buffer, and one goroutine appends them to the store in
// batches: what gathers within a short linger after a batch's first event, or
// while the previous append ran, up to a bound. A busy registry so writes
// hundreds of events per transaction, which is what keeps auditing under a
// few percent of a manifest GET; an idle one writes each event within the
// linger. Close flushes what is buffered.
//
// It never loses an event silently. An event it cannot keep (the buffer is
// full, the store failed past its retries, the writer is closed) is counted,
// logged at Error, and reported in the log itself by an audit.dropped event
// as soon as the store takes writes again.
//
// This package decides nothing about events: what is recorded, and when, is
// the emitting handler's; chaining and redaction are berth.ChainEvent's, which
// the store applies. It never blocks a request on the store, never reads the
// wall clock except through the injected Now, and never logs an event's
// content.
package audit
