-- Each namespace's exact usage: its live keys and their value bytes, kept by triggers on
-- kv_entries so that every path that writes or removes a key (requests, the sweeper,
-- namespace deletion) counts, inside the same transaction, and a rolled-back write counts for
-- nothing.

-- Writes to kv_entries and new namespaces wait (reads go on) while the usage is counted, once,
-- and the triggers are made, so that nothing is written uncounted in between.
LOCK TABLE namespaces, kv_entries IN SHARE ROW EXCLUSIVE MODE;

-- A namespace's usage is the sum of its 16 rows. Without max_bytes a write adds to the row of
-- its session (pg_backend_pid() % 16), so concurrent writers rarely wait on each other's row
-- lock, held until commit. With max_bytes every write counts in row 0 and is checked there:
-- writers of that namespace take turns, which is what makes the check exact. Setting
-- max_bytes moves rows 1-15 into row 0, so row 0 alone is the usage while a limit is set.
CREATE TABLE namespace_usage (
    namespace_id  uuid NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    shard         smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    keys          bigint NOT NULL DEFAULT 0,
    bytes         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace_id, shard)
);

INSERT INTO namespace_usage (namespace_id, shard)
SELECT id, shard FROM namespaces, generate_series(0, 15) AS shard;

UPDATE namespace_usage u SET keys = t.keys, bytes = t.bytes
FROM (SELECT namespace_id, count(*) AS keys, sum(size_bytes) AS bytes
      FROM kv_entries GROUP BY namespace_id) t
WHERE u.namespace_id = t.namespace_id AND u.shard = 0;

CREATE FUNCTION namespaces_create_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO namespace_usage (namespace_id, shard)
    SELECT NEW.id, shard FROM generate_series(0, 15) AS shard;
    RETURN NULL;
END;
$$;
CREATE TRIGGER namespaces_create_usage AFTER INSERT ON namespaces
    FOR EACH ROW EXECUTE FUNCTION namespaces_create_usage();

-- Adds to a namespace's usage; growth that would take its bytes over max_bytes raises
-- SQLSTATE KV001, which undoes the whole statement; its detail is "<bytes used before the
-- write> <bytes the write adds> <max_bytes>".
--
-- Why it is exact under concurrency: the session's own row is locked first, and max_bytes is
-- read after (a new snapshot for each statement here). Changing max_bytes locks all 16 rows,
-- so it either waits for this transaction or has committed before the read. Row 0 is always
-- locked last (and by setting max_bytes, after rows 15..1), so the two never deadlock.
CREATE FUNCTION add_namespace_usage(ns uuid, added_keys bigint, added_bytes bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    own smallint := pg_backend_pid() % 16;
    limit_bytes bigint;
    reached bigint;
BEGIN
    UPDATE namespace_usage SET keys = keys + added_keys, bytes = bytes + added_bytes
    WHERE namespace_id = ns AND shard = own;
    SELECT max_bytes INTO limit_bytes FROM namespaces WHERE id = ns;
    IF limit_bytes IS NULL OR own = 0 AND added_bytes <= 0 THEN
        RETURN;
    END IF;
    IF own <> 0 THEN
        UPDATE namespace_usage SET keys = keys - added_keys, bytes = bytes - added_bytes
        WHERE namespace_id = ns AND shard = own;
        UPDATE namespace_usage SET keys = keys + added_keys, bytes = bytes + added_bytes
        WHERE namespace_id = ns AND shard = 0
        RETURNING bytes INTO reached;
    ELSE
        SELECT bytes INTO reached FROM namespace_usage WHERE namespace_id = ns AND shard = 0;
    END IF;
    IF added_bytes > 0 AND reached > limit_bytes THEN
        RAISE EXCEPTION 'namespace storage limit reached'
            USING ERRCODE = 'KV001',
                  DETAIL = format('%s %s %s', reached - added_bytes, added_bytes, limit_bytes);
    END IF;
END;
$$;

-- One row written: an insert adds a key and its bytes; an update, only a change of size (the
-- WHEN clause spares every other update even the trigger's call: an overwrite of the same
-- size costs nothing here).
CREATE FUNCTION kv_entries_count_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM add_namespace_usage(NEW.namespace_id, 1, NEW.size_bytes);
    ELSE
        PERFORM add_namespace_usage(NEW.namespace_id, 0, NEW.size_bytes - OLD.size_bytes);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER kv_entries_count_insert AFTER INSERT ON kv_entries
    FOR EACH ROW EXECUTE FUNCTION kv_entries_count_write();
CREATE TRIGGER kv_entries_count_resize AFTER UPDATE ON kv_entries
    FOR EACH ROW WHEN (NEW.size_bytes <> OLD.size_bytes)
    EXECUTE FUNCTION kv_entries_count_write();

-- Deletions come in batches (the sweeper, namespace deletion): counted once per statement and
-- namespace, in namespace order so that two batches never lock usage rows in opposite orders.
CREATE FUNCTION kv_entries_count_deletes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT namespace_id, count(*) AS keys, sum(size_bytes) AS bytes
             FROM removed GROUP BY namespace_id ORDER BY namespace_id LOOP
        PERFORM add_namespace_usage(r.namespace_id, -r.keys, -r.bytes);
    END LOOP;
    RETURN NULL;
END;
$$;
CREATE TRIGGER kv_entries_count_deletes AFTER DELETE ON kv_entries
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION kv_entries_count_deletes();

-- For the gauge of namespaces near their limit.
CREATE INDEX namespaces_limited ON namespaces (id) WHERE max_bytes IS NOT NULL;
