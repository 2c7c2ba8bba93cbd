-- Identities and their credentials. As in 0001, times are Unix microseconds, and
-- rows hold what the domain decided: no triggers, no cascades (DeletePrincipal
-- names the secrets it deletes).

CREATE TABLE principals (
	id        TEXT    PRIMARY KEY,
	name      TEXT    NOT NULL UNIQUE,
	client_id TEXT    NOT NULL UNIQUE,
	kind      TEXT    NOT NULL,
	disabled  INTEGER NOT NULL, -- 0 or 1
	created   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A client secret is kept only as its keyed hash. A removed secret stays as a
-- tombstone (revoked set, hash kept) so that a later use is reported as revoked;
-- the unique hash also refuses a repeated value outright.
CREATE TABLE client_secrets (
	id           TEXT    PRIMARY KEY,
	principal_id TEXT    NOT NULL REFERENCES principals (id),
	hint         TEXT    NOT NULL,
	hash         BLOB    NOT NULL UNIQUE,
	description  TEXT    NOT NULL,
	created      INTEGER NOT NULL,
	expires      INTEGER NOT NULL,
	last_used    INTEGER, -- NULL until first used
	revoked      INTEGER  -- NULL unless removed
) STRICT, WITHOUT ROWID;

-- FindSecrets lists a principal's secrets in creation order; DeletePrincipal
-- removes them.
CREATE INDEX client_secrets_principal ON client_secrets (principal_id, created, id);
