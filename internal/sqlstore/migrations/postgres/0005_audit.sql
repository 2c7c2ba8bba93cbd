-- The audit log: an append-only hash chain (see berth.ChainEvent). Unlike the
-- SQLite store, which keeps an append's events as one block, each event is a
-- row: event holds its binary form (berth.AuditEvent.AppendBinary), which is
-- what is read back and verified; the other columns repeat fields of it so
-- that queries select in SQL, and AuditChain checks them against the event,
-- so an edited column is audit_tampered. Text columns hold the field with
-- invalid UTF-8 and NUL bytes replaced (PostgreSQL's text refuses both);
-- queries match after the same replacement and re-check the event itself.
CREATE TABLE audit_events (
	seq        bigint      PRIMARY KEY,
	time       timestamptz NOT NULL,
	actor      text        COLLATE "C" NOT NULL,
	actor_id   text        COLLATE "C" NOT NULL,
	action     text        COLLATE "C" NOT NULL,
	target     text        COLLATE "C" NOT NULL,
	result     text        COLLATE "C" NOT NULL,
	reason     text        COLLATE "C" NOT NULL,
	connection text        COLLATE "C" NOT NULL,
	hash       text        NOT NULL, -- the event's hash: the anchor once retention deletes it
	event      bytea       NOT NULL
);

-- Selecting by time (--since, retention).
CREATE INDEX audit_events_time ON audit_events (time);

-- One row: the chain's anchor (the last event retention deleted, 0 and ''
-- before any) and head (the last event appended). Appends and retention lock
-- it (SELECT … FOR UPDATE) before reading it, so writers on every replica
-- chain one after another.
CREATE TABLE audit_head (
	id          integer PRIMARY KEY CHECK (id = 1),
	anchor_seq  bigint  NOT NULL,
	anchor_hash text    NOT NULL,
	head_seq    bigint  NOT NULL,
	head_hash   text    NOT NULL
);
INSERT INTO audit_head (id, anchor_seq, anchor_hash, head_seq, head_hash) VALUES (1, 0, '', 0, '');
