// Package webhook delivers berth's events to the webhooks subscribed to them.
//
// A Publisher turns an event into one queued delivery per subscribed webhook:
// a CloudEvents 1.0 document in structured JSON mode (Encode), stored in the
// metadata store (berth.WebhookStore), never only in memory, so that what was
// queued survives a restart. Its Recorder decorates the audit recorder and
// publishes the events the audit stream carries (auth.denied, rate-limited
// per principal; pipeline.permission_requested); the /v2/ handler publishes
// image.pushed and image.deleted through berth.EventPublisher. A Scheduler
// announces expiring and expired client secrets, each notice once. A
// Dispatcher claims the due head of each webhook's queue, signs it
// (berth.SignWebhook) and posts it, retrying with the backoff berth decides,
// one delivery at a time per webhook, in order.
//
// Time and the HTTP client are injected, so tests move a clock instead of
// sleeping. The package must never log or store a webhook's secret anywhere
// but in the store, and never decide retry timing or notice thresholds
// itself: those are package berth's.
package webhook
