-- The initial schema. Times are {{time}}: Unix microseconds on SQLite,
-- timestamptz on PostgreSQL (which keeps microseconds), so both return the
-- same instants; digests are their "algorithm:hex" text. Names and digests
-- are {{key}}, which PostgreSQL orders by bytes (COLLATE "C") whatever the
-- database's locale, as SQLite always does. Rows only record what the domain
-- decided: the tables hold no triggers and no cascades, and every delete
-- names what it deletes.

CREATE TABLE repositories (
	id      {{id}},
	name    {{key}} NOT NULL UNIQUE,
	created {{time}} NOT NULL
){{strict}};

-- A repository holds a blob: it was uploaded or mounted there.
CREATE TABLE blob_links (
	repo_id {{bigint}} NOT NULL REFERENCES repositories (id),
	digest  {{key}} NOT NULL,
	size    {{bigint}} NOT NULL,
	created {{time}} NOT NULL,
	PRIMARY KEY (repo_id, digest)
){{strict_norowid}};

-- FindBlobRepositories and BlobInUse look a digest up across repositories.
CREATE INDEX blob_links_digest ON blob_links (digest);
-- Garbage collection scans links older than a cutoff.
CREATE INDEX blob_links_created ON blob_links (created);

-- Manifests are immutable once stored (a re-push keeps the first copy), so refs
-- repeats manifest_refs in push order, one "KIND DIGEST" per line, letting
-- FindManifest answer from this one row.
CREATE TABLE manifests (
	id            {{id}},
	repo_id       {{bigint}} NOT NULL REFERENCES repositories (id),
	digest        {{key}} NOT NULL,
	media_type    {{text}} NOT NULL,
	content       {{bytes}} NOT NULL,
	artifact_type {{text}} NOT NULL,
	subject       {{key}} NOT NULL, -- '' when the manifest has no subject
	annotations   {{text}},         -- a JSON object, NULL when there are none
	refs          {{text}} NOT NULL,
	created       {{time}} NOT NULL,
	UNIQUE (repo_id, digest)
){{strict}};

-- The referrers API lists a repository's manifests by subject, ordered by digest.
CREATE INDEX manifests_subject ON manifests (repo_id, subject, digest) WHERE subject <> '';

-- The blobs and manifests a manifest needs, for the reverse questions of garbage
-- collection: is this digest referenced, in this repository or anywhere.
CREATE TABLE manifest_refs (
	repo_id         {{bigint}} NOT NULL,
	manifest_digest {{key}} NOT NULL,
	ref_digest      {{key}} NOT NULL,
	kind            {{text}} NOT NULL,
	PRIMARY KEY (repo_id, manifest_digest, ref_digest, kind),
	FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests (repo_id, digest)
){{strict_norowid}};

-- Serves both "referenced in this repository" (ref_digest, repo_id) and
-- "referenced anywhere" (ref_digest).
CREATE INDEX manifest_refs_ref ON manifest_refs (ref_digest, repo_id);

CREATE TABLE tags (
	repo_id {{bigint}} NOT NULL,
	name    {{key}} NOT NULL,
	digest  {{key}} NOT NULL,
	PRIMARY KEY (repo_id, name),
	FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest)
){{strict_norowid}};

-- DeleteManifest removes the tags pointing at a manifest.
CREATE INDEX tags_digest ON tags (repo_id, digest);

-- Upload sessions name their repository without creating it: a repository comes
-- into being with its first blob or manifest, not with an abandoned upload.
CREATE TABLE upload_sessions (
	id         {{key}} PRIMARY KEY,
	repository {{text}} NOT NULL,
	created    {{time}} NOT NULL
){{strict_norowid}};

CREATE INDEX upload_sessions_created ON upload_sessions (created);
