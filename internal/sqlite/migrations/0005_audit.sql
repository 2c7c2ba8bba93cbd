-- The audit log: an append-only hash chain (see berth.ChainEvent). seq is the
-- rowid, assigned by the chain, never by SQLite; times are Unix microseconds as
-- elsewhere; detail is a JSON object of strings, NULL when empty. Every column
-- is covered by the hash, so a row edited here fails berth audit verify.
CREATE TABLE audit_events (
	seq           INTEGER PRIMARY KEY,
	time          INTEGER NOT NULL,
	actor         TEXT    NOT NULL,
	actor_id      TEXT    NOT NULL,
	source        TEXT    NOT NULL,
	action        TEXT    NOT NULL,
	target        TEXT    NOT NULL,
	result        TEXT    NOT NULL,
	reason        TEXT    NOT NULL,
	request_id    TEXT    NOT NULL,
	credential_id TEXT    NOT NULL,
	connection    TEXT    NOT NULL,
	pipeline      TEXT    NOT NULL,
	detail        TEXT,
	prev_hash     TEXT    NOT NULL,
	hash          TEXT    NOT NULL
) STRICT;

-- berth audit --since selects by time. Any other index would cost every
-- append, and appends happen on every request while queries are rare: the
-- other filters scan the rows that time and seq (the rowid) leave.
CREATE INDEX audit_events_time ON audit_events (time);

-- One row: the chain's anchor (the last event retention deleted, 0 and '' before
-- any) and head (the last event appended), moved in the transaction that moves
-- them. A head past the last row tells that the tail was deleted.
CREATE TABLE audit_head (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	anchor_seq  INTEGER NOT NULL,
	anchor_hash TEXT    NOT NULL,
	head_seq    INTEGER NOT NULL,
	head_hash   TEXT    NOT NULL
) STRICT;
INSERT INTO audit_head (id, anchor_seq, anchor_hash, head_seq, head_hash) VALUES (1, 0, '', 0, '');
