-- Identities and their credentials, as the SQLite store's 0002: no triggers,
-- no cascades (DeletePrincipal names the secrets it deletes).

CREATE TABLE principals (
	id        text        COLLATE "C" PRIMARY KEY,
	name      text        COLLATE "C" NOT NULL UNIQUE,
	client_id text        COLLATE "C" NOT NULL UNIQUE,
	kind      text        NOT NULL,
	disabled  boolean     NOT NULL,
	created   timestamptz NOT NULL
);

-- A client secret is kept only as its keyed hash. A removed secret stays as a
-- tombstone (revoked set, hash kept) so that a later use is reported as
-- revoked; the unique hash also refuses a repeated value outright.
CREATE TABLE client_secrets (
	id           text        COLLATE "C" PRIMARY KEY,
	principal_id text        COLLATE "C" NOT NULL REFERENCES principals (id),
	hint         text        NOT NULL,
	hash         bytea       NOT NULL UNIQUE,
	description  text        NOT NULL,
	created      timestamptz NOT NULL,
	expires      timestamptz NOT NULL,
	last_used    timestamptz, -- NULL until first used
	revoked      timestamptz  -- NULL unless removed
);

-- FindSecrets lists a principal's secrets in creation order; DeletePrincipal
-- removes them.
CREATE INDEX client_secrets_principal ON client_secrets (principal_id, created, id);
