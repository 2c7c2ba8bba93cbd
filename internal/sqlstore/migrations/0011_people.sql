-- (Personal access tokens are at the end.)
-- People: identity providers, the principals of the people who sign in
-- through them (user_links), the role assignments of their groups, their
-- sessions, and device logins in progress (RFC 8628).

-- A provider's client secret is kept sealed by the key encryption key,
-- bound to the provider's id; scopes are space separated.
CREATE TABLE identity_providers (
	id             {{key}} PRIMARY KEY,
	name           {{key}} NOT NULL UNIQUE,
	issuer         {{text}} NOT NULL,
	client_id      {{text}} NOT NULL,
	groups_claim   {{text}} NOT NULL,
	username_claim {{text}} NOT NULL,
	scopes         {{text}} NOT NULL,
	sealed_secret  {{bytes}} NOT NULL,
	created        {{time}} NOT NULL
){{strict_norowid}};

-- A person: (issuer, subject) at the provider, the principal it signs in
-- as, the groups of the latest sign-in or refresh (newline separated), and
-- the provider's refresh token, sealed (empty when it returned none).
-- principal_id has no foreign key, as in role_assignments: CreateUser
-- replaces the link of a principal that was deleted.
CREATE TABLE user_links (
	principal_id   {{key}} PRIMARY KEY,
	idp_id         {{key}} NOT NULL,
	issuer         {{key}} NOT NULL,
	subject        {{key}} NOT NULL,
	group_list     {{text}} NOT NULL,
	sealed_refresh {{bytes}} NOT NULL,
	refreshed      {{time}} NOT NULL,
	UNIQUE (issuer, subject)
){{strict_norowid}};

CREATE TABLE group_role_assignments (
	group_name {{key}} NOT NULL,
	scope      {{key}} NOT NULL,
	role       {{key}} NOT NULL,
	created    {{time}} NOT NULL,
	created_by {{text}} NOT NULL,
	PRIMARY KEY (group_name, scope, role)
){{strict_norowid}};

-- A session: a browser's (hash of its cookie) or the CLI's (hash NULL,
-- proven by refresh tokens bound to session:ID). ended is NULL while live.
CREATE TABLE user_sessions (
	id           {{key}} PRIMARY KEY,
	principal_id {{key}} NOT NULL,
	idp_id       {{key}} NOT NULL,
	hash         {{key}} UNIQUE,
	created      {{time}} NOT NULL,
	expires      {{time}} NOT NULL,
	ended        {{time}}
){{strict_norowid}};

CREATE INDEX user_sessions_principal ON user_sessions (principal_id) WHERE ended IS NULL;

-- A device login: the device code's hash, the user code, what the person
-- decided and, once approved, the session the client's tokens are bound to.
CREATE TABLE device_authorizations (
	id           {{key}} PRIMARY KEY,
	device_hash  {{key}} NOT NULL UNIQUE,
	user_code    {{key}} NOT NULL UNIQUE,
	client       {{text}} NOT NULL,
	created      {{time}} NOT NULL,
	expires      {{time}} NOT NULL,
	interval_ms  {{bigint}} NOT NULL,
	last_poll    {{time}},
	status       {{text}} NOT NULL,
	principal_id {{text}} NOT NULL,
	session_id   {{text}} NOT NULL
){{strict_norowid}};

CREATE INDEX device_authorizations_expires ON device_authorizations (expires);
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
