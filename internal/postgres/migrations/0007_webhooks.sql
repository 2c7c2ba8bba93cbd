-- Webhooks and their delivery queue (berth.WebhookStore), as the SQLite
-- store's 0007. DeleteWebhook deletes its deliveries in the same transaction.
-- A zero time ("never") is stored as it is, 0001-01-01 UTC, and reads back
-- zero.

-- secret is the signing key's value: berth signs with it, so it cannot be a
-- hash. events is a JSON array of event type names.
CREATE TABLE webhooks (
	id          text        COLLATE "C" PRIMARY KEY,
	url         text        NOT NULL,
	events      text        NOT NULL,
	description text        NOT NULL,
	secret      text        NOT NULL,
	created     timestamptz NOT NULL
);

-- seq is the queue order, from a sequence. EnqueueDeliveries locks the
-- webhooks it enqueues to before drawing seqs, so deliveries of one webhook
-- become visible in seq order even when replicas enqueue at once.
CREATE TABLE webhook_deliveries (
	seq              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id               text        COLLATE "C" NOT NULL UNIQUE,
	webhook_id       text        COLLATE "C" NOT NULL REFERENCES webhooks (id),
	event_id         text        NOT NULL,
	event_type       text        NOT NULL,
	subject          text        NOT NULL,
	body             bytea       NOT NULL,
	status           text        NOT NULL, -- pending, delivered, failed
	attempts         integer     NOT NULL,
	next_attempt     timestamptz NOT NULL, -- zero once completed
	last_attempt     timestamptz NOT NULL, -- zero before the first attempt
	last_http_status integer     NOT NULL,
	last_error       text        NOT NULL,
	created          timestamptz NOT NULL,
	completed        timestamptz NOT NULL, -- zero while pending
	redelivery_of    text        NOT NULL  -- '' for an event's first delivery
);

-- The head of each webhook's queue: its pending delivery with the lowest seq.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, seq) WHERE status = 'pending';
-- The delivery log of a webhook, newest first.
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, seq);

-- Keys of notices sent once (secret.expiring per threshold, secret.expired).
CREATE TABLE webhook_once (
	key text COLLATE "C" PRIMARY KEY
);
