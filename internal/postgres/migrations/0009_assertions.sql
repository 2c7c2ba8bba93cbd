-- CI ID tokens exchanged for a login (berth.AssertionStore): the SHA-256 of
-- each, kept until it expires, so that a token is exchanged once, by one
-- replica.
CREATE TABLE assertion_replays (
	key     text        PRIMARY KEY,
	expires timestamptz NOT NULL
);

CREATE INDEX assertion_replays_expires ON assertion_replays (expires);
