-- The upstream registries of the pull-through cache. password is what the
-- composition root hands the store: sealed under the key encryption key
-- ("sealed:v1:…"), or empty for anonymous pulls. tag_ttl is in seconds.
-- expires is the credential's recorded end, NULL when unknown. max_size bounds
-- the bytes of the cache namespace (0: no bound), for eviction.
CREATE TABLE upstreams (
	name      {{key}} PRIMARY KEY,
	url       {{text}} NOT NULL,
	namespace {{key}} NOT NULL UNIQUE,
	username  {{text}} NOT NULL,
	password  {{text}} NOT NULL,
	tag_ttl   {{bigint}} NOT NULL,
	max_size  {{bigint}} NOT NULL,
	expires   {{time}},
	created   {{time}} NOT NULL
){{strict_norowid}};
