-- The initial schema. Times are Unix microseconds (the precision of PostgreSQL's
-- timestamptz, so both stores return the same instants); digests are their
-- "algorithm:hex" text. Rows only record what the domain decided: the tables hold
-- no triggers and no cascades, and every delete names what it deletes.

CREATE TABLE repositories (
	id      INTEGER PRIMARY KEY,
	name    TEXT    NOT NULL UNIQUE,
	created INTEGER NOT NULL
) STRICT;

-- A repository holds a blob: it was uploaded or mounted there.
CREATE TABLE blob_links (
	repo_id INTEGER NOT NULL REFERENCES repositories (id),
	digest  TEXT    NOT NULL,
	size    INTEGER NOT NULL,
	created INTEGER NOT NULL,
	PRIMARY KEY (repo_id, digest)
) STRICT, WITHOUT ROWID;

-- FindBlobRepositories and BlobInUse look a digest up across repositories.
CREATE INDEX blob_links_digest ON blob_links (digest);
-- Garbage collection scans links older than a cutoff.
CREATE INDEX blob_links_created ON blob_links (created);

-- Manifests are immutable once stored (a re-push keeps the first copy), so refs
-- repeats manifest_refs in push order, one "KIND DIGEST" per line, letting
-- FindManifest answer from this one row.
CREATE TABLE manifests (
	id            INTEGER PRIMARY KEY,
	repo_id       INTEGER NOT NULL REFERENCES repositories (id),
	digest        TEXT    NOT NULL,
	media_type    TEXT    NOT NULL,
	content       BLOB    NOT NULL,
	artifact_type TEXT    NOT NULL,
	subject       TEXT    NOT NULL, -- '' when the manifest has no subject
	annotations   TEXT,             -- a JSON object, NULL when there are none
	refs          TEXT    NOT NULL,
	created       INTEGER NOT NULL,
	UNIQUE (repo_id, digest)
) STRICT;

-- The referrers API lists a repository's manifests by subject, ordered by digest.
CREATE INDEX manifests_subject ON manifests (repo_id, subject, digest) WHERE subject <> '';

-- The blobs and manifests a manifest needs, for the reverse questions of garbage
-- collection: is this digest referenced, in this repository or anywhere.
CREATE TABLE manifest_refs (
	repo_id         INTEGER NOT NULL,
	manifest_digest TEXT    NOT NULL,
	ref_digest      TEXT    NOT NULL,
	kind            TEXT    NOT NULL,
	PRIMARY KEY (repo_id, manifest_digest, ref_digest, kind),
	FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests (repo_id, digest)
) STRICT, WITHOUT ROWID;

-- Serves both "referenced in this repository" (ref_digest, repo_id) and
-- "referenced anywhere" (ref_digest).
CREATE INDEX manifest_refs_ref ON manifest_refs (ref_digest, repo_id);

CREATE TABLE tags (
	repo_id INTEGER NOT NULL,
	name    TEXT    NOT NULL,
	digest  TEXT    NOT NULL,
	PRIMARY KEY (repo_id, name),
	FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest)
) STRICT, WITHOUT ROWID;

-- DeleteManifest removes the tags pointing at a manifest.
CREATE INDEX tags_digest ON tags (repo_id, digest);

-- Upload sessions name their repository without creating it: a repository comes
-- into being with its first blob or manifest, not with an abandoned upload.
CREATE TABLE upload_sessions (
	id         TEXT    PRIMARY KEY,
	repository TEXT    NOT NULL,
	created    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX upload_sessions_created ON upload_sessions (created);
