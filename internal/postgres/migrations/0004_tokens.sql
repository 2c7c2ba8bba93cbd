-- Refresh tokens, as the SQLite store's 0004: only the SHA-256 of each value
-- is kept, with what the token is bound to. credential_id names a client
-- secret or a service connection, so it has no foreign key; principal_id has
-- none either, so that deleting a principal is not blocked by its tokens.
-- revoked is NULL while the token is not revoked.
CREATE TABLE refresh_tokens (
	id            text        COLLATE "C" PRIMARY KEY,
	hash          text        COLLATE "C" NOT NULL UNIQUE,
	principal_id  text        COLLATE "C" NOT NULL,
	credential_id text        COLLATE "C" NOT NULL,
	created       timestamptz NOT NULL,
	expires       timestamptz NOT NULL,
	revoked       timestamptz
);

-- Removing a secret or disabling a principal revokes the tokens bound to it.
CREATE INDEX refresh_tokens_credential ON refresh_tokens (credential_id) WHERE revoked IS NULL;
CREATE INDEX refresh_tokens_principal ON refresh_tokens (principal_id) WHERE revoked IS NULL;
-- DeleteExpiredRefreshTokens scans by expiry.
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires);
