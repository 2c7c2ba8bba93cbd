-- What the replicas of one registry share besides the metadata. PostgreSQL
-- only: a SQLite installation is one process, and keeps its signing keys
-- and pepper as files of its data folder and its attempt limits in memory.

-- The keys that sign access tokens (oauth.Keyring). sealed is the private
-- JWK encrypted (AES-256-GCM) with the key encryption key of the
-- configuration, which never reaches the database.
CREATE TABLE signing_keys (
	id      text        COLLATE "C" PRIMARY KEY, -- RFC 7638 thumbprint
	created timestamptz NOT NULL,
	retired timestamptz,                         -- NULL for the signing key
	sealed  bytea       NOT NULL
);

-- Secrets of the installation other than keys, sealed the same way: the
-- pepper that client secrets are hashed with.
CREATE TABLE cluster_secrets (
	name   text  COLLATE "C" PRIMARY KEY,
	sealed bytea NOT NULL
);

-- Failed-attempt limits (oauth.Limiter), per kind of key ('client', 'addr'):
-- tat is when every failure of the key will have been forgiven. UNLOGGED:
-- losing the counters in a crash only forgives some failures early, and
-- the table is written on every failed attempt.
CREATE UNLOGGED TABLE attempt_limits (
	kind text        COLLATE "C" NOT NULL,
	key  text        COLLATE "C" NOT NULL,
	tat  timestamptz NOT NULL,
	PRIMARY KEY (kind, key)
);
CREATE INDEX attempt_limits_tat ON attempt_limits (tat);
