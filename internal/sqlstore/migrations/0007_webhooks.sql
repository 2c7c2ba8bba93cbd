-- Webhooks and their delivery queue (berth.WebhookStore). Rows hold what the
-- domain decided. DeleteWebhook deletes its deliveries in the same
-- transaction. A zero time ("never") is stored as it is (0 microseconds
-- before 1970 on SQLite, 0001-01-01 UTC on PostgreSQL) and reads back zero.

-- secret is the signing key's value: berth signs with it, so it cannot be a
-- hash. events is a JSON array of event type names.
CREATE TABLE webhooks (
	id          {{key}} PRIMARY KEY,
	url         {{text}} NOT NULL,
	events      {{text}} NOT NULL,
	description {{text}} NOT NULL,
	secret      {{text}} NOT NULL,
	created     {{time}} NOT NULL
){{strict_norowid}};

-- seq is the queue order, assigned on insert and never reused, so a delivery
-- queued later always sorts later. On PostgreSQL, EnqueueDeliveries locks the
-- webhooks it enqueues to before drawing seqs, so deliveries of one webhook
-- become visible in seq order even when replicas enqueue at once.
CREATE TABLE webhook_deliveries (
	seq              {{serial}},
	id               {{key}} NOT NULL UNIQUE,
	webhook_id       {{key}} NOT NULL REFERENCES webhooks (id),
	event_id         {{text}} NOT NULL,
	event_type       {{text}} NOT NULL,
	subject          {{text}} NOT NULL,
	body             {{bytes}} NOT NULL,
	status           {{text}} NOT NULL, -- pending, delivered, failed
	attempts         {{integer}} NOT NULL,
	next_attempt     {{time}} NOT NULL, -- zero once completed
	last_attempt     {{time}} NOT NULL, -- zero before the first attempt
	last_http_status {{integer}} NOT NULL,
	last_error       {{text}} NOT NULL,
	created          {{time}} NOT NULL,
	completed        {{time}} NOT NULL, -- zero while pending
	redelivery_of    {{text}} NOT NULL  -- '' for an event's first delivery
){{strict}};

-- The head of each webhook's queue: its pending delivery with the lowest seq.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, seq) WHERE status = 'pending';
-- The delivery log of a webhook, newest first.
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, seq);

-- Keys of notices sent once (secret.expiring per threshold, secret.expired).
CREATE TABLE webhook_once (
	key {{key}} PRIMARY KEY
){{strict_norowid}};
