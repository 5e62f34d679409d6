-- Versions for ETags and conditional writes; an index for the TTL sweeper; values stored
-- uncompressed (they are opaque bytes, often compressed already).

CREATE SEQUENCE kv_versions AS bigint;

-- `version` changes on every write and is the ETag. `created_version` is the version that
-- created this incarnation of the key: equal to `version` exactly when the last write created
-- the key (nothing live was there), which is how a PUT tells 201 from 200 in one statement.
ALTER TABLE kv_entries
    ADD COLUMN version bigint NOT NULL DEFAULT nextval('kv_versions'),
    ADD COLUMN created_version bigint NOT NULL DEFAULT 0;
UPDATE kv_entries SET created_version = version;
ALTER TABLE kv_entries ALTER COLUMN version DROP DEFAULT,
                       ALTER COLUMN created_version DROP DEFAULT;

CREATE INDEX kv_entries_expiry ON kv_entries (expires_at) WHERE expires_at IS NOT NULL;

ALTER TABLE kv_entries ALTER COLUMN value SET STORAGE EXTERNAL;
