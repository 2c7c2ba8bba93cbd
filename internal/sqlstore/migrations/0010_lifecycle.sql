-- Lifecycle rules and the facts retention reads. Scopes are their text form
-- ("registry", "team/*", "team/app"); durations are whole seconds. Tag
-- pushes and manifest pulls name their repository rather than its id, so
-- that they never point at a row another repository reuses; a record whose
-- digest no longer matches its tag is ignored by the readers.

CREATE TABLE immutable_rules (
	scope      {{key}} NOT NULL,
	tags       {{key}} NOT NULL,
	created    {{time}} NOT NULL,
	created_by {{text}} NOT NULL,
	PRIMARY KEY (scope, tags)
){{strict_norowid}};

CREATE TABLE retention_rules (
	scope              {{key}} PRIMARY KEY,
	keep_last          {{bigint}} NOT NULL,
	tags               {{text}} NOT NULL,
	keep_tags          {{text}} NOT NULL,
	keep_pulled_within {{bigint}} NOT NULL,
	untagged_after     {{bigint}} NOT NULL,
	updated            {{time}} NOT NULL,
	updated_by         {{text}} NOT NULL
){{strict_norowid}};

CREATE TABLE quotas (
	scope            {{key}} PRIMARY KEY,
	max_size         {{bigint}} NOT NULL,
	max_repositories {{bigint}} NOT NULL,
	updated          {{time}} NOT NULL,
	updated_by       {{text}} NOT NULL
){{strict_norowid}};

-- The latest push of each tag: when, by whom, to which digest.
CREATE TABLE tag_pushes (
	repository {{key}} NOT NULL,
	tag        {{key}} NOT NULL,
	digest     {{key}} NOT NULL,
	pushed     {{time}} NOT NULL,
	pushed_by  {{text}} NOT NULL,
	PRIMARY KEY (repository, tag)
){{strict_norowid}};

-- The latest recorded pull of each manifest (written in batches).
CREATE TABLE manifest_pulls (
	repository {{key}} NOT NULL,
	digest     {{key}} NOT NULL,
	pulled     {{time}} NOT NULL,
	PRIMARY KEY (repository, digest)
){{strict_norowid}};
