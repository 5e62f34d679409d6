-- write: create_namespace
-- The namespace and its provisioning job are created by one atomic statement.
WITH ns AS (
    INSERT INTO namespaces (tenant_id, name, ttl_support) VALUES ($1, $2, $3)
    RETURNING id, name, status, status_reason, ttl_support, created_at, updated_at
), job AS (
    INSERT INTO jobs (kind, namespace_id) SELECT 'provision', id FROM ns
)
SELECT * FROM ns;

-- read: get_namespace
SELECT id, name, status, status_reason, ttl_support, created_at, updated_at
FROM namespaces WHERE id = $1 AND tenant_id = $2;

-- read: count_namespaces
SELECT count(*) FROM namespaces WHERE tenant_id = $1;

-- read: list_namespaces
SELECT id, name, status, status_reason, ttl_support, created_at, updated_at
FROM namespaces WHERE tenant_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2 OFFSET $3;

-- write: request_namespace_delete
-- Marks the namespace deleting, drops any provisioning still queued and queues its deletion.
-- Locks the namespace row before the job row, the same order the worker takes them in.
WITH ns AS (
    UPDATE namespaces SET status = 'deleting', status_reason = NULL, updated_at = now()
    WHERE id = $1 AND tenant_id = $2 AND status <> 'deleting'
    RETURNING id, name, status, status_reason, ttl_support, created_at, updated_at
), dropped AS (
    DELETE FROM jobs WHERE kind = 'provision' AND namespace_id IN (SELECT id FROM ns)
), queued AS (
    INSERT INTO jobs (kind, namespace_id) SELECT 'delete', id FROM ns
)
SELECT * FROM ns;
