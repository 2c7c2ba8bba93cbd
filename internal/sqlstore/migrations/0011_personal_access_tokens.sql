-- Personal access tokens: only the SHA-256 of each value is kept. scopes are
-- the token's resource scopes in the Docker grammar, space separated.
-- principal_id has no foreign key, as in refresh_tokens: authenticating
-- with a token checks its principal.
CREATE TABLE personal_access_tokens (
	id           {{key}} PRIMARY KEY,
	principal_id {{key}} NOT NULL,
	hint         {{text}} NOT NULL,
	hash         {{key}} NOT NULL UNIQUE,
	scopes       {{text}} NOT NULL,
	description  {{text}} NOT NULL,
	created      {{time}} NOT NULL,
	expires      {{time}} NOT NULL,
	last_used    {{time}},
	revoked      {{time}}
){{strict_norowid}};

CREATE INDEX personal_access_tokens_principal ON personal_access_tokens (principal_id, created, id);
