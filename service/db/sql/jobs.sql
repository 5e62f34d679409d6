-- write: claim_job
-- Takes the oldest due job and leases it: run_after becomes the lease expiry, so the job is
-- claimable again only if its owner neither finishes nor renews it in time.
WITH due AS (
    SELECT id FROM jobs WHERE run_after <= now()
    ORDER BY run_after
    FOR UPDATE SKIP LOCKED
    LIMIT 1
)
UPDATE jobs
SET lease_owner = $1, run_after = now() + make_interval(secs => $2), attempts = attempts + 1
FROM due WHERE jobs.id = due.id
RETURNING jobs.id, jobs.kind, jobs.namespace_id, jobs.attempts, jobs.last_error;

-- read: seconds_until_next_job
SELECT extract(epoch FROM min(run_after) - now())::float8 FROM jobs;

-- write: renew_lease
UPDATE jobs SET run_after = now() + make_interval(secs => $3)
WHERE id = $1 AND lease_owner = $2 RETURNING id;

-- write: lock_namespace
SELECT status FROM namespaces WHERE id = $1 FOR UPDATE;

-- write: lock_owned_job
SELECT id FROM jobs WHERE id = $1 AND lease_owner = $2 FOR UPDATE;

-- write: delete_job
DELETE FROM jobs WHERE id = $1;

-- write: retry_job
UPDATE jobs SET lease_owner = NULL, run_after = now() + make_interval(secs => $3), last_error = $4
WHERE id = $1 AND lease_owner = $2 RETURNING id;

-- write: finish_provisioning
-- Returns how long the namespace waited in `pending`, in seconds.
UPDATE namespaces SET status = 'provision_ok', status_reason = NULL, updated_at = now()
WHERE id = $1 RETURNING extract(epoch FROM now() - created_at)::float8;

-- write: set_namespace_status
UPDATE namespaces SET status = $2, status_reason = $3, updated_at = now() WHERE id = $1;

-- write: create_namespace_storage
INSERT INTO namespace_storage (namespace_id) VALUES ($1);

-- write: delete_key_batch
DELETE FROM kv_entries WHERE namespace_id = $1 AND key IN (
    SELECT key FROM kv_entries WHERE namespace_id = $1 LIMIT $2
);

-- write: delete_namespace_row
-- Its usage rows go with it (ON DELETE CASCADE, so that a worker of an older release, which
-- knows nothing of them, can delete too).
WITH storage AS (
    DELETE FROM namespace_storage WHERE namespace_id = $1
)
DELETE FROM namespaces WHERE id = $1;

-- write: release_job
-- Hands a job back unfinished (at shutdown): due at once, and this attempt not counted.
UPDATE jobs SET lease_owner = NULL, run_after = now(), attempts = greatest(attempts - 1, 0)
WHERE id = $1 AND lease_owner = $2 RETURNING id;
