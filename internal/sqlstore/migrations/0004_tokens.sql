-- Refresh tokens: only the SHA-256 of each value is kept, with what the token is
-- bound to. credential_id names a client secret or a service connection, so it
-- has no foreign key; principal_id has none either, so that deleting a
-- principal is not blocked by its tokens (redeeming one checks the principal,
-- and the caller revokes a principal's tokens when it deletes it).
-- revoked is NULL while the token is not revoked.
CREATE TABLE refresh_tokens (
	id            {{key}} PRIMARY KEY,
	hash          {{key}} NOT NULL UNIQUE,
	principal_id  {{key}} NOT NULL,
	credential_id {{key}} NOT NULL,
	created       {{time}} NOT NULL,
	expires       {{time}} NOT NULL,
	revoked       {{time}}
){{strict_norowid}};

-- Removing a secret or disabling a principal revokes the tokens bound to it.
CREATE INDEX refresh_tokens_credential ON refresh_tokens (credential_id) WHERE revoked IS NULL;
CREATE INDEX refresh_tokens_principal ON refresh_tokens (principal_id) WHERE revoked IS NULL;
-- DeleteExpiredRefreshTokens scans by expiry.
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires);
