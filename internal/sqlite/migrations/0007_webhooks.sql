-- Webhooks and their delivery queue (berth.WebhookStore). As before, times are
-- Unix microseconds and rows hold what the domain decided. DeleteWebhook
-- deletes its deliveries in the same transaction.

-- secret is the signing key's value: berth signs with it, so it cannot be a
-- hash. events is a JSON array of event type names.
CREATE TABLE webhooks (
	id          TEXT    PRIMARY KEY,
	url         TEXT    NOT NULL,
	events      TEXT    NOT NULL,
	description TEXT    NOT NULL,
	secret      TEXT    NOT NULL,
	created     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- seq is the queue order: the rowid, assigned on insert and never reused
-- (AUTOINCREMENT), so a delivery queued later always sorts later.
CREATE TABLE webhook_deliveries (
	seq              INTEGER PRIMARY KEY AUTOINCREMENT,
	id               TEXT    NOT NULL UNIQUE,
	webhook_id       TEXT    NOT NULL REFERENCES webhooks (id),
	event_id         TEXT    NOT NULL,
	event_type       TEXT    NOT NULL,
	subject          TEXT    NOT NULL,
	body             BLOB    NOT NULL,
	status           TEXT    NOT NULL, -- pending, delivered, failed
	attempts         INTEGER NOT NULL,
	next_attempt     INTEGER NOT NULL, -- 0 once completed
	last_attempt     INTEGER NOT NULL, -- 0 before the first attempt
	last_http_status INTEGER NOT NULL,
	last_error       TEXT    NOT NULL,
	created          INTEGER NOT NULL,
	completed        INTEGER NOT NULL, -- 0 while pending
	redelivery_of    TEXT    NOT NULL  -- '' for an event's first delivery
) STRICT;

-- The head of each webhook's queue: its pending delivery with the lowest seq.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, seq) WHERE status = 'pending';
-- The delivery log of a webhook, newest first.
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, seq);

-- Keys of notices sent once (secret.expiring per threshold, secret.expired).
CREATE TABLE webhook_once (
	key TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
