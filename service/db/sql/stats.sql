-- Figures for the service-wide gauges, refreshed by the worker every stats_interval seconds.
-- None of them reads kv_entries: their cost does not grow with the stored data.

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
-- PostgreSQL's running count of live rows and the table's on-disk size with TOAST and indexes.
SELECT pg_stat_get_live_tuples('kv_entries'::regclass) AS keys,
       pg_total_relation_size('kv_entries'::regclass) AS bytes;
