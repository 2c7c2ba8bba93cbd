-- CI ID tokens exchanged for a login (berth.AssertionStore): the SHA-256 of
-- each, kept until it expires, so that a token is exchanged once. expires is
-- in Unix microseconds, as every time here.
CREATE TABLE assertion_replays (
	key     TEXT    PRIMARY KEY,
	expires INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX assertion_replays_expires ON assertion_replays (expires);
