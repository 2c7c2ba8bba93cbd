-- CI pipelines and service connections (berth.PipelineStore and
-- berth.ConnectionStore). As before, times are Unix microseconds and rows hold
-- what the domain decided: no triggers, no cascades; DeletePipeline,
-- DeleteConnection and DeletePrincipal name every row they delete, in one
-- transaction.

-- A pipeline's conditions are read together, never queried one by one, so
-- the claim conditions are one JSON object and the key set is kept as given.
CREATE TABLE pipelines (
	id       TEXT    PRIMARY KEY,
	name     TEXT    NOT NULL UNIQUE,
	issuer   TEXT    NOT NULL,
	subject  TEXT    NOT NULL,
	audience TEXT    NOT NULL, -- '' for the registry's service name
	claims   TEXT,             -- a JSON object, NULL when there are none
	jwks     BLOB,             -- the JSON Web Key Set as given, NULL when fetched from the issuer
	preset   TEXT    NOT NULL, -- '' when none
	created  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- An exchange looks up the pipelines of the token's issuer.
CREATE INDEX pipelines_issuer ON pipelines (issuer, name);

-- principal_id is checked by CreateConnection in its transaction, and
-- DeletePrincipal deletes the principal's connections with it, so the foreign
-- key never blocks anything and guards against a row naming no principal.
-- secret_id has no foreign key: the secret may be removed before the
-- connection is saved again.
CREATE TABLE connections (
	id            TEXT    PRIMARY KEY,
	name          TEXT    NOT NULL UNIQUE,
	principal_id  TEXT    NOT NULL REFERENCES principals (id),
	auth          TEXT    NOT NULL,
	intents       TEXT,             -- a JSON array of berth.ConnectionIntent, NULL when there are none
	all_pipelines INTEGER NOT NULL, -- 0 or 1
	secret_id     TEXT    NOT NULL, -- '' for a federated connection
	disabled      INTEGER NOT NULL, -- 0 or 1
	created       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- FindConnections by principal; DeletePrincipal finds the principal's connections.
CREATE INDEX connections_principal ON connections (principal_id, name);

-- The pipelines a connection permits. position keeps the order they were
-- permitted in (Connection.Pipelines): one more than the largest so far.
CREATE TABLE connection_pipelines (
	connection_id TEXT    NOT NULL REFERENCES connections (id),
	pipeline_id   TEXT    NOT NULL REFERENCES pipelines (id),
	position      INTEGER NOT NULL,
	PRIMARY KEY (connection_id, pipeline_id)
) STRICT, WITHOUT ROWID;

-- DeletePipeline removes the pipeline's permissions on every connection.
CREATE INDEX connection_pipelines_pipeline ON connection_pipelines (pipeline_id);

-- A registered pipeline's attempts to use a connection that does not permit
-- it: one row per connection and pipeline, counted, until permitted or removed.
CREATE TABLE permission_requests (
	connection_id TEXT    NOT NULL REFERENCES connections (id),
	pipeline_id   TEXT    NOT NULL REFERENCES pipelines (id),
	first         INTEGER NOT NULL,
	last          INTEGER NOT NULL,
	count         INTEGER NOT NULL,
	run           TEXT    NOT NULL, -- the CI run of the last attempt, '' when unknown
	PRIMARY KEY (connection_id, pipeline_id)
) STRICT, WITHOUT ROWID;

-- DeletePipeline removes the pipeline's pending requests.
CREATE INDEX permission_requests_pipeline ON permission_requests (pipeline_id);

-- The pipeline and CI run a federated login came from; '' for a login with a
-- client secret (and for every token issued before this step). No foreign key:
-- a token outlives the pipeline it came from until it expires or is revoked.
ALTER TABLE refresh_tokens ADD COLUMN pipeline_id TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN run TEXT NOT NULL DEFAULT '';
