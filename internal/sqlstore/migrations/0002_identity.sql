-- Identities and their credentials. Rows hold what the domain decided: no
-- triggers, no cascades (DeletePrincipal names the secrets it deletes).

CREATE TABLE principals (
	id        {{key}} PRIMARY KEY,
	name      {{key}} NOT NULL UNIQUE,
	client_id {{key}} NOT NULL UNIQUE,
	kind      {{text}} NOT NULL,
	disabled  {{bool}} NOT NULL,
	created   {{time}} NOT NULL
){{strict_norowid}};

-- A client secret is kept only as its keyed hash. A removed secret stays as a
-- tombstone (revoked set, hash kept) so that a later use is reported as revoked;
-- the unique hash also refuses a repeated value outright.
CREATE TABLE client_secrets (
	id           {{key}} PRIMARY KEY,
	principal_id {{key}} NOT NULL REFERENCES principals (id),
	hint         {{text}} NOT NULL,
	hash         {{bytes}} NOT NULL UNIQUE,
	description  {{text}} NOT NULL,
	created      {{time}} NOT NULL,
	expires      {{time}} NOT NULL,
	last_used    {{time}}, -- NULL until first used
	revoked      {{time}}  -- NULL unless removed
){{strict_norowid}};

-- FindSecrets lists a principal's secrets in creation order; DeletePrincipal
-- removes them.
CREATE INDEX client_secrets_principal ON client_secrets (principal_id, created, id);
