-- A namespace as every answer shows it: its settings and its usage (the sum of its usage
-- rows, migrations/0004). Parameters: $1 namespace id, $2 tenant id, unless told.

-- write: create_namespace
-- The namespace and its provisioning job are created by one atomic statement (its usage rows
-- by a trigger). $1 tenant id, $2 name, $3 ttl_support, $4 description, $5 max_bytes,
-- $6 max_value_size.
WITH ns AS (
    INSERT INTO namespaces (tenant_id, name, ttl_support, description, max_bytes, max_value_size)
    VALUES ($1, $2, $3, $4, $5, $6)
    RETURNING id, name, status, status_reason, ttl_support, description, max_bytes,
              max_value_size, created_at, updated_at
), job AS (
    INSERT INTO jobs (kind, namespace_id) SELECT 'provision', id FROM ns
)
SELECT *, 0::bigint AS usage_keys, 0::bigint AS usage_bytes FROM ns;

-- read: get_namespace
SELECT n.id, n.name, n.status, n.status_reason, n.ttl_support, n.description, n.max_bytes,
       n.max_value_size, n.created_at, n.updated_at, u.usage_keys, u.usage_bytes
FROM namespaces n, LATERAL (
    SELECT sum(keys)::bigint AS usage_keys, sum(bytes)::bigint AS usage_bytes
    FROM namespace_usage WHERE namespace_id = n.id
) u
WHERE n.id = $1 AND n.tenant_id = $2;

-- read: find_namespace
-- $1 tenant id, $2 name: the tenant's live namespace of that name (the one the unique index
-- namespaces_tenant_name_live keeps), whatever its status but `deleting`.
SELECT n.id, n.name, n.status, n.status_reason, n.ttl_support, n.description, n.max_bytes,
       n.max_value_size, n.created_at, n.updated_at, u.usage_keys, u.usage_bytes
FROM namespaces n, LATERAL (
    SELECT sum(keys)::bigint AS usage_keys, sum(bytes)::bigint AS usage_bytes
    FROM namespace_usage WHERE namespace_id = n.id
) u
WHERE n.tenant_id = $1 AND n.name = $2 AND n.status <> 'deleting';

-- read: locate_namespace
-- As find_namespace, with only what a key operation needs.
SELECT id, status, ttl_support, max_value_size FROM namespaces
WHERE tenant_id = $1 AND name = $2 AND status <> 'deleting';

-- read: list_live_namespaces
-- $1 tenant id: every namespace of the tenant but those being deleted, by name.
SELECT n.id, n.name, n.status, n.status_reason, n.ttl_support, n.description, n.max_bytes,
       n.max_value_size, n.created_at, n.updated_at, u.usage_keys, u.usage_bytes
FROM namespaces n, LATERAL (
    SELECT sum(keys)::bigint AS usage_keys, sum(bytes)::bigint AS usage_bytes
    FROM namespace_usage WHERE namespace_id = n.id
) u
WHERE n.tenant_id = $1 AND n.status <> 'deleting'
ORDER BY n.name;

-- read: count_namespaces
SELECT count(*) FROM namespaces WHERE tenant_id = $1;

-- read: list_namespaces
-- $1 tenant id, $2 page size, $3 offset.
SELECT n.id, n.name, n.status, n.status_reason, n.ttl_support, n.description, n.max_bytes,
       n.max_value_size, n.created_at, n.updated_at, u.usage_keys, u.usage_bytes
FROM (SELECT * FROM namespaces WHERE tenant_id = $1
      ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3) n,
LATERAL (
    SELECT sum(keys)::bigint AS usage_keys, sum(bytes)::bigint AS usage_bytes
    FROM namespace_usage WHERE namespace_id = n.id
) u
ORDER BY n.created_at DESC, n.id DESC;

-- read: namespace_value_limit
-- What a write checks before it reads its value; no row when there is no such namespace.
SELECT status, ttl_support, max_value_size FROM namespaces WHERE id = $1 AND tenant_id = $2;

-- write: lock_namespace_settings
-- The first statement of a settings change: no row when there is no such namespace. NO KEY
-- UPDATE lets the key writes that check their foreign key meanwhile go on.
SELECT status FROM namespaces WHERE id = $1 AND tenant_id = $2 FOR NO KEY UPDATE;

-- write: update_namespace_settings
-- Each of $4, $6, $8 is the new value when the flag before it is true; else the setting stays.
UPDATE namespaces SET
    description = CASE WHEN $3 THEN $4::text ELSE description END,
    max_bytes = CASE WHEN $5 THEN $6::bigint ELSE max_bytes END,
    max_value_size = CASE WHEN $7 THEN $8::integer ELSE max_value_size END,
    updated_at = now()
WHERE id = $1 AND tenant_id = $2;

-- write: lock_namespace_usage
-- Locks every usage row of $1, in the order the usage triggers take them (row 0 last), so
-- that a change of max_bytes waits for the writes in flight and no write is counted against
-- the old limit once it commits.
SELECT shard FROM namespace_usage WHERE namespace_id = $1
ORDER BY shard = 0, shard DESC
FOR UPDATE;

-- write: gather_namespace_usage
-- Moves the usage of rows 1-15 into row 0, where a namespace with max_bytes keeps all of it.
-- Run with every usage row locked (lock_namespace_usage).
WITH spread AS (
    SELECT sum(keys) AS keys, sum(bytes) AS bytes
    FROM namespace_usage WHERE namespace_id = $1 AND shard > 0
), gathered AS (
    UPDATE namespace_usage u SET keys = u.keys + spread.keys, bytes = u.bytes + spread.bytes
    FROM spread WHERE u.namespace_id = $1 AND u.shard = 0
)
UPDATE namespace_usage SET keys = 0, bytes = 0
WHERE namespace_id = $1 AND shard > 0 AND (keys <> 0 OR bytes <> 0);

-- write: request_namespace_delete
-- Marks the namespace deleting, drops any provisioning still queued and queues its deletion.
-- Locks the namespace row before the job row, the same order the worker takes them in.
WITH ns AS (
    UPDATE namespaces SET status = 'deleting', status_reason = NULL, updated_at = now()
    WHERE id = $1 AND tenant_id = $2 AND status <> 'deleting'
    RETURNING id, name, status, status_reason, ttl_support, description, max_bytes,
              max_value_size, created_at, updated_at
), dropped AS (
    DELETE FROM jobs WHERE kind = 'provision' AND namespace_id IN (SELECT id FROM ns)
), queued AS (
    INSERT INTO jobs (kind, namespace_id) SELECT 'delete', id FROM ns
)
SELECT ns.*, u.usage_keys, u.usage_bytes
FROM ns, LATERAL (
    SELECT sum(keys)::bigint AS usage_keys, sum(bytes)::bigint AS usage_bytes
    FROM namespace_usage WHERE namespace_id = ns.id
) u;
