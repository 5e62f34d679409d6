-- Every key statement checks the namespace (ownership, status, TTL support) in the same
-- statement, so a key request costs one round trip. Each returns the namespace's status and,
-- when the namespace is ready, the outcome; no row at all means no such namespace for this
-- tenant. An expired row is treated everywhere as absent, whether or not a sweep removed it.
-- Parameters: $1 namespace id, $2 tenant id, $3 key.
--
-- A write also returns the namespace's value limit (its max_value_size, else $8, and never
-- above the server's ceiling $9) and stores nothing above it. Triggers count every written
-- and removed row in the namespace's usage, and refuse growth past max_bytes (SQLSTATE KV001).

-- write: put_entry
-- $4 value, $5 content type, $6 ttl seconds (NULL: no expiry), $7 create only (If-None-Match:
-- *): then a live value is left alone and the outcome is NULL (migrations/0007 kv_put).
SELECT * FROM kv_put($1, $2, $3, $4, $5, $6, $7, $8, $9);

-- write: put_entry_if_match
-- Replaces the live value only if its version is one of $7 (If-Match); NULL $7 means any
-- live value (If-Match: *). A concurrent write in between makes the version differ, so this is
-- a compare-and-set.
SELECT * FROM kv_put_if_match($1, $2, $3, $4, $5, $6, $7, $8, $9);

-- write: write_entry_group
-- Writes of concurrent requests in one statement and one commit (migrations/0007
-- kv_write_group says what each argument and row is).
SELECT * FROM kv_write_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12);

-- read: get_entry
-- $4 versions the client holds (If-None-Match): the value is not sent back when it is one.
SELECT ns.status, e.version, e.content_type, e.size_bytes, e.expires_at,
       CASE WHEN e.version = ANY($4::bigint[]) THEN NULL ELSE e.value END AS value
FROM namespaces ns
LEFT JOIN kv_entries e ON ns.status = 'provision_ok' AND e.namespace_id = ns.id AND e.key = $3
                      AND (e.expires_at IS NULL OR e.expires_at > now())
WHERE ns.id = $1 AND ns.tenant_id = $2;

-- read: head_entry
SELECT ns.status, e.version, e.content_type, e.size_bytes, e.expires_at
FROM namespaces ns
LEFT JOIN kv_entries e ON ns.status = 'provision_ok' AND e.namespace_id = ns.id AND e.key = $3
                      AND (e.expires_at IS NULL OR e.expires_at > now())
WHERE ns.id = $1 AND ns.tenant_id = $2;

-- write: delete_entry
-- $4: whether the delete is conditional (If-Match); $5 the versions it may remove, NULL for
-- any live one (If-Match: *). Returns how many rows went (migrations/0007 kv_delete).
SELECT * FROM kv_delete($1, $2, $3, $4, $5);

-- read: get_entry_group
-- The reads of concurrent requests in one statement: item i (from 1) reads key $3[i] of
-- namespace $1[i] for tenant $2[i], with its value when $4[i] unless its version is one the
-- item holds (a pair $5[k] = i, $6[k] = version: If-None-Match). One row per item, the status
-- NULL when the namespace is not the tenant's.
SELECT q.i, ns.status, e.version, e.content_type, e.size_bytes, e.expires_at,
       CASE WHEN q.with_value AND (cardinality($5::integer[]) = 0 OR NOT EXISTS (
                SELECT 1 FROM unnest($5::integer[], $6::bigint[]) h(i, v)
                WHERE h.i = q.i AND h.v = e.version))
            THEN e.value END AS value
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::boolean[])
     WITH ORDINALITY AS q(namespace_id, tenant_id, key, with_value, i)
LEFT JOIN namespaces ns ON ns.id = q.namespace_id AND ns.tenant_id = q.tenant_id
LEFT JOIN kv_entries e ON ns.status = 'provision_ok' AND e.namespace_id = ns.id
                      AND e.key = q.key AND (e.expires_at IS NULL OR e.expires_at > now());

-- read: get_entries
-- A batch read: $3 keys in the caller's order (repeats allowed), answered in that order (`i`,
-- from 1), a missing or expired key with a NULL version. Values are returned when $4, and only
-- if those found total at most $5 bytes (`found_bytes` says how many they are).
SELECT ns.status, k.i, e.version, e.content_type, e.size_bytes, e.updated_at, e.expires_at,
       sum(e.size_bytes) OVER () AS found_bytes,
       CASE WHEN $4 AND sum(e.size_bytes) OVER () <= $5 THEN e.value END AS value
FROM namespaces ns
LEFT JOIN unnest($3::text[]) WITH ORDINALITY AS k(key, i) ON ns.status = 'provision_ok'
LEFT JOIN kv_entries e ON e.namespace_id = ns.id AND e.key = k.key
                      AND (e.expires_at IS NULL OR e.expires_at > now())
WHERE ns.id = $1 AND ns.tenant_id = $2
ORDER BY k.i;

-- read: get_entries_group
-- The batch reads of concurrent requests in one statement: batch b (from 1) reads, from
-- namespace $1[b] for tenant $2[b], the keys $6[k] where $5[k] = b, each at its place $7[k]
-- in that batch (`i`), as get_entries does for one batch with $3[b] and $4[b]. A batch whose
-- namespace is not the tenant's has one row with a NULL status.
WITH batch AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::boolean[], $4::bigint[])
                  WITH ORDINALITY AS b(namespace_id, tenant_id, with_values, budget, b)
), k AS (
    SELECT * FROM unnest($5::integer[], $6::text[], $7::integer[]) AS k(b, key, i)
)
SELECT batch.b, ns.status, k.i, e.version, e.content_type, e.size_bytes, e.updated_at,
       e.expires_at, sum(e.size_bytes) OVER w AS found_bytes,
       CASE WHEN batch.with_values AND sum(e.size_bytes) OVER w <= batch.budget
            THEN e.value END AS value
FROM batch
LEFT JOIN namespaces ns ON ns.id = batch.namespace_id AND ns.tenant_id = batch.tenant_id
LEFT JOIN k ON k.b = batch.b AND ns.status = 'provision_ok'
LEFT JOIN kv_entries e ON e.namespace_id = ns.id AND e.key = k.key
                      AND (e.expires_at IS NULL OR e.expires_at > now())
WINDOW w AS (PARTITION BY batch.b)
ORDER BY batch.b, k.i;

-- read: list_entries
-- Keyset pagination: $3 inclusive lower bound, $4 exclusive lower bound (the cursor),
-- $5 exclusive upper bound, $6 how many. All bounds are index conditions. With $7, `total`
-- counts every key within the bounds (not only this page's): a scan of them all.
SELECT ns.status, e.key, e.size_bytes, e.updated_at, e.content_type, e.expires_at,
       CASE WHEN $7 THEN (
           SELECT count(*) FROM kv_entries
           WHERE namespace_id = $1 AND key >= $3 AND key > $4 AND key < $5
             AND (expires_at IS NULL OR expires_at > now())
       ) END AS total
FROM namespaces ns
LEFT JOIN LATERAL (
    SELECT key, size_bytes, updated_at, content_type, expires_at FROM kv_entries
    WHERE namespace_id = $1 AND key >= $3 AND key > $4 AND key < $5
      AND (expires_at IS NULL OR expires_at > now())
    ORDER BY key
    LIMIT $6
) e ON ns.status = 'provision_ok'
WHERE ns.id = $1 AND ns.tenant_id = $2;

-- read: list_entries_reverse
-- As list_entries, in descending key order: $4 is the exclusive upper bound (the cursor).
SELECT ns.status, e.key, e.size_bytes, e.updated_at, e.content_type, e.expires_at,
       CASE WHEN $7 THEN (
           SELECT count(*) FROM kv_entries
           WHERE namespace_id = $1 AND key >= $3 AND key < $4 AND key < $5
             AND (expires_at IS NULL OR expires_at > now())
       ) END AS total
FROM namespaces ns
LEFT JOIN LATERAL (
    SELECT key, size_bytes, updated_at, content_type, expires_at FROM kv_entries
    WHERE namespace_id = $1 AND key >= $3 AND key < $4 AND key < $5
      AND (expires_at IS NULL OR expires_at > now())
    ORDER BY key DESC
    LIMIT $6
) e ON ns.status = 'provision_ok'
WHERE ns.id = $1 AND ns.tenant_id = $2;

-- read: list_entries_with_values
-- As list_entries, with each key's version and value while the values before it total less
-- than $8 bytes (`fits`; the first always does): values past that are never read.
SELECT ns.status, e.key, e.size_bytes, e.updated_at, e.content_type, e.expires_at, e.version,
       e.fits, CASE WHEN e.fits THEN e.value END AS value,
       CASE WHEN $7 THEN (
           SELECT count(*) FROM kv_entries
           WHERE namespace_id = $1 AND key >= $3 AND key > $4 AND key < $5
             AND (expires_at IS NULL OR expires_at > now())
       ) END AS total
FROM namespaces ns
LEFT JOIN LATERAL (
    SELECT *, sum(size_bytes) OVER (ORDER BY key) - size_bytes < $8 AS fits
    FROM (
        SELECT key, size_bytes, updated_at, content_type, expires_at, version, value
        FROM kv_entries
        WHERE namespace_id = $1 AND key >= $3 AND key > $4 AND key < $5
          AND (expires_at IS NULL OR expires_at > now())
        ORDER BY key
        LIMIT $6
    ) page
) e ON ns.status = 'provision_ok'
WHERE ns.id = $1 AND ns.tenant_id = $2
ORDER BY e.key;

-- read: list_entries_with_values_reverse
-- As list_entries_with_values, in descending key order: $4 is the exclusive upper bound.
SELECT ns.status, e.key, e.size_bytes, e.updated_at, e.content_type, e.expires_at, e.version,
       e.fits, CASE WHEN e.fits THEN e.value END AS value,
       CASE WHEN $7 THEN (
           SELECT count(*) FROM kv_entries
           WHERE namespace_id = $1 AND key >= $3 AND key < $4 AND key < $5
             AND (expires_at IS NULL OR expires_at > now())
       ) END AS total
FROM namespaces ns
LEFT JOIN LATERAL (
    SELECT *, sum(size_bytes) OVER (ORDER BY key DESC) - size_bytes < $8 AS fits
    FROM (
        SELECT key, size_bytes, updated_at, content_type, expires_at, version, value
        FROM kv_entries
        WHERE namespace_id = $1 AND key >= $3 AND key < $4 AND key < $5
          AND (expires_at IS NULL OR expires_at > now())
        ORDER BY key DESC
        LIMIT $6
    ) page
) e ON ns.status = 'provision_ok'
WHERE ns.id = $1 AND ns.tenant_id = $2
ORDER BY e.key DESC;

-- write: transact
-- One atomic transaction (migrations/0006: kv_transact says what each argument and row is).
SELECT * FROM kv_transact($1, $2, $3, $4, $5, $6, $7, $8, $9, $10);

-- read: list_entry_values
-- Live keys from $3 (inclusive) to $4 (exclusive) that match the LIKE pattern $5, in key
-- order, at most $6, with their values while the values before them total less than $7 bytes
-- (`fits`; the first always does). Values that do not fit are never read from storage.
SELECT ns.status, page.key, page.content_type, page.fits,
       CASE WHEN page.fits THEN page.value END AS value
FROM namespaces ns
LEFT JOIN LATERAL (
    SELECT key, content_type, value, sum(size_bytes) OVER (ORDER BY key) - size_bytes < $7 AS fits
    FROM (
        SELECT key, content_type, size_bytes, value FROM kv_entries
        WHERE namespace_id = $1 AND key >= $3 AND key < $4 AND key LIKE $5
          AND (expires_at IS NULL OR expires_at > now())
        ORDER BY key
        LIMIT $6
    ) matching
) page ON ns.status = 'provision_ok'
WHERE ns.id = $1 AND ns.tenant_id = $2
ORDER BY page.key;

-- write: purge_watermark
-- A version above every version written so far: a purge removes the keys below it.
SELECT nextval('kv_versions');

-- write: purge_entries
-- Deletes up to $4 keys whose version is below the purge's watermark $3, and says how many it
-- picked: fewer than $4 means none is left below the watermark. A key rewritten meanwhile has
-- a newer version, which the delete checks again on the row, and stays.
WITH ns AS (
    SELECT status FROM namespaces WHERE id = $1 AND tenant_id = $2
), picked AS (
    SELECT key FROM kv_entries WHERE namespace_id = $1 AND version < $3 LIMIT $4
), gone AS (
    DELETE FROM kv_entries e USING ns
    WHERE ns.status = 'provision_ok' AND e.namespace_id = $1 AND e.version < $3
      AND e.key IN (SELECT key FROM picked)
    RETURNING 1
)
SELECT ns.status, (SELECT count(*) FROM picked) AS picked, (SELECT count(*) FROM gone) AS deleted
FROM ns;

-- write: sweep_expired
-- Deletes up to $1 expired rows. Rows a writer holds are skipped, and the expiry is checked
-- again on the row being deleted: a key rewritten without TTL meanwhile is never removed.
DELETE FROM kv_entries e
WHERE (e.namespace_id, e.key) IN (
    SELECT namespace_id, key FROM kv_entries
    WHERE expires_at <= now()
    LIMIT $1
    FOR UPDATE SKIP LOCKED
) AND e.expires_at <= now();
