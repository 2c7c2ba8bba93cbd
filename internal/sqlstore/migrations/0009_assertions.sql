-- CI ID tokens exchanged for a login (berth.AssertionStore): the SHA-256 of
-- each, kept until it expires, so that a token is exchanged once, by one
-- replica. (Builds before the shared migration list numbered this step 8 on
-- SQLite; the SQLite dialect renumbers it.)
CREATE TABLE assertion_replays (
	key     {{text}} PRIMARY KEY,
	expires {{time}} NOT NULL
){{strict_norowid}};

CREATE INDEX assertion_replays_expires ON assertion_replays (expires);
