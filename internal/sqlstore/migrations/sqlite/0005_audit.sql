-- The audit log: an append-only hash chain (see berth.ChainEvent), kept in
-- blocks: one row per AppendAuditEvents call, holding its events in their
-- binary form (berth.AuditEvent.AppendBinary), each preceded by its length as
-- a uvarint. Appends run on every request: a row per event cost about 6 us an
-- event in this driver, a block about 1 us. The other columns index the
-- blocks for queries and retention; verification checks them against the
-- events. Times are Unix microseconds, as elsewhere.
CREATE TABLE audit_blocks (
	first_seq INTEGER PRIMARY KEY,
	last_seq  INTEGER NOT NULL,
	min_time  INTEGER NOT NULL, -- the earliest time of its events (not always the first's)
	max_time  INTEGER NOT NULL, -- the latest
	last_hash TEXT    NOT NULL, -- the hash of event last_seq: the anchor once retention deletes the block
	events    BLOB    NOT NULL
) STRICT;

-- Paging by seq (--after) and selecting by time (--since, retention).
CREATE INDEX audit_blocks_last_seq ON audit_blocks (last_seq);
CREATE INDEX audit_blocks_max_time ON audit_blocks (max_time);

-- One row: the chain's anchor (the last event retention deleted, 0 and '' before
-- any) and head (the last event appended), moved in the transaction that moves
-- them. A head past the last event tells that the tail was deleted.
CREATE TABLE audit_head (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	anchor_seq  INTEGER NOT NULL,
	anchor_hash TEXT    NOT NULL,
	head_seq    INTEGER NOT NULL,
	head_hash   TEXT    NOT NULL
) STRICT;
INSERT INTO audit_head (id, anchor_seq, anchor_hash, head_seq, head_hash) VALUES (1, 0, '', 0, '');
