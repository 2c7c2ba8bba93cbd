-- CI pipelines and service connections (berth.PipelineStore and
-- berth.ConnectionStore). Rows hold what the domain decided: no triggers, no
-- cascades; DeletePipeline, DeleteConnection and DeletePrincipal name every
-- row they delete, in one transaction.

-- A pipeline's conditions are read together, never queried one by one, so
-- the claim conditions are one JSON object and the key set is kept as given.
CREATE TABLE pipelines (
	id       {{key}} PRIMARY KEY,
	name     {{key}} NOT NULL UNIQUE,
	issuer   {{key}} NOT NULL,
	subject  {{text}} NOT NULL,
	audience {{text}} NOT NULL, -- '' for the registry's service name
	claims   {{text}},          -- a JSON object, NULL when there are none
	jwks     {{bytes}},         -- the JSON Web Key Set as given, NULL when fetched from the issuer
	preset   {{text}} NOT NULL, -- '' when none
	created  {{time}} NOT NULL
){{strict_norowid}};

-- An exchange looks up the pipelines of the token's issuer.
CREATE INDEX pipelines_issuer ON pipelines (issuer, name);

-- principal_id is checked (on PostgreSQL, locked) by CreateConnection in its
-- transaction, and DeletePrincipal deletes the principal's connections with
-- it, so the foreign key never blocks anything and guards against a row
-- naming no principal. secret_id has no foreign key: the secret may be
-- removed before the connection is saved again.
CREATE TABLE connections (
	id            {{key}} PRIMARY KEY,
	name          {{key}} NOT NULL UNIQUE,
	principal_id  {{key}} NOT NULL REFERENCES principals (id),
	auth          {{text}} NOT NULL,
	intents       {{text}},          -- a JSON array of berth.ConnectionIntent, NULL when there are none
	all_pipelines {{bool}} NOT NULL,
	secret_id     {{key}} NOT NULL,  -- '' for a federated connection
	disabled      {{bool}} NOT NULL,
	created       {{time}} NOT NULL
){{strict_norowid}};

-- FindConnections by principal; DeletePrincipal finds the principal's connections.
CREATE INDEX connections_principal ON connections (principal_id, name);

-- The pipelines a connection permits. position keeps the order they were
-- permitted in (Connection.Pipelines): one more than the largest so far.
CREATE TABLE connection_pipelines (
	connection_id {{key}} NOT NULL REFERENCES connections (id),
	pipeline_id   {{key}} NOT NULL REFERENCES pipelines (id),
	position      {{bigint}} NOT NULL,
	PRIMARY KEY (connection_id, pipeline_id)
){{strict_norowid}};

-- DeletePipeline removes the pipeline's permissions on every connection.
CREATE INDEX connection_pipelines_pipeline ON connection_pipelines (pipeline_id);

-- A registered pipeline's attempts to use a connection that does not permit
-- it: one row per connection and pipeline, counted, until permitted or removed.
CREATE TABLE permission_requests (
	connection_id {{key}} NOT NULL REFERENCES connections (id),
	pipeline_id   {{key}} NOT NULL REFERENCES pipelines (id),
	first         {{time}} NOT NULL,
	last          {{time}} NOT NULL,
	count         {{bigint}} NOT NULL,
	run           {{text}} NOT NULL, -- the CI run of the last attempt, '' when unknown
	PRIMARY KEY (connection_id, pipeline_id)
){{strict_norowid}};

-- DeletePipeline removes the pipeline's pending requests.
CREATE INDEX permission_requests_pipeline ON permission_requests (pipeline_id);

-- The pipeline and CI run a federated login came from; '' for a login with a
-- client secret (and for every token issued before this step). No foreign key:
-- a token outlives the pipeline it came from until it expires or is revoked.
ALTER TABLE refresh_tokens ADD COLUMN pipeline_id {{key}} NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN run {{text}} NOT NULL DEFAULT '';
