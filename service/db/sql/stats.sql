-- Figures for the service-wide gauges, refreshed by the worker every stats_interval seconds.
-- None of them reads kv_entries: their cost does not grow with the stored keys.

-- read: namespace_counts
SELECT status, count(*)::bigint AS n FROM namespaces GROUP BY status;

-- read: queue_depth
-- A job is due (claimable now, including one whose lease ran out), leased (a worker is on it)
-- or waiting (backing off before a retry).
SELECT kind,
       CASE WHEN run_after <= now() THEN 'due'
            WHEN lease_owner IS NULL THEN 'waiting'
            ELSE 'leased' END AS state,
       count(*)::bigint AS n,
       extract(epoch FROM now() - min(created_at))::float8 AS oldest_seconds
FROM jobs GROUP BY 1, 2;

-- read: storage_totals
-- The exact usage of all namespaces (a few rows per namespace, never the keys), how many
-- namespaces with max_bytes use over 90 % of it, and the table's on-disk size with TOAST and
-- indexes.
WITH per_namespace AS (
    SELECT namespace_id, sum(keys) AS keys, sum(bytes) AS bytes
    FROM namespace_usage GROUP BY namespace_id
)
SELECT coalesce(sum(p.keys), 0)::bigint AS keys,
       coalesce(sum(p.bytes), 0)::bigint AS bytes,
       count(*) FILTER (WHERE p.bytes > 0.9 * n.max_bytes)::bigint AS near_limit,
       pg_total_relation_size('kv_entries'::regclass) AS disk_bytes
FROM per_namespace p JOIN namespaces n ON n.id = p.namespace_id;
