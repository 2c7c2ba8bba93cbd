-- The bound of a cache namespace (berth upstream create --max-size), in
-- bytes, for eviction; 0 for none, as every upstream created before has.
ALTER TABLE upstreams ADD COLUMN max_size {{bigint}} NOT NULL DEFAULT 0;
