-- A tenant's secrets (service/domain/secrets.py). Every statement names the tenant: another
-- tenant's secret is never found.

-- write: lock_secret
-- The current version of a secret, locked until the write's transaction ends: the version a
-- write seals its value for is then the one it stores.
SELECT version, revision FROM secrets WHERE tenant_id = $1 AND name = $2 FOR UPDATE;

-- write: create_secret
-- $3 version (1), $4 master key id, $5 wrapped data key, $6 ciphertext. No row is written when
-- a concurrent create got there first (`created` false: the caller retries); `secrets` is the
-- tenant's count with this one, checked against its limit by the caller.
WITH rev AS (
    SELECT nextval('secret_revisions') AS revision
), s AS (
    INSERT INTO secrets (tenant_id, name, version, revision)
    SELECT $1, $2, $3, revision FROM rev
    ON CONFLICT (tenant_id, name) DO NOTHING
    RETURNING revision, created_at, updated_at
), v AS (
    INSERT INTO secret_versions (tenant_id, name, version, revision, master_key_id, wrapped_key,
                                 ciphertext)
    SELECT $1, $2, $3, revision, $4, $5, $6 FROM s
), c AS (
    INSERT INTO secret_counts AS c (tenant_id, secrets)
    SELECT $1, 1 FROM s
    ON CONFLICT (tenant_id) DO UPDATE SET secrets = c.secrets + 1
    RETURNING secrets
)
SELECT s.revision, s.created_at, s.updated_at, (SELECT secrets FROM c) AS secrets
FROM (SELECT 1) one LEFT JOIN s ON true;

-- write: add_secret_version
-- Makes $3 the current version of a secret locked by lock_secret, and destroys the versions
-- older than the newest $7.
WITH s AS (
    UPDATE secrets SET version = $3, revision = nextval('secret_revisions'), updated_at = now()
    WHERE tenant_id = $1 AND name = $2
    RETURNING revision, created_at, updated_at
), v AS (
    INSERT INTO secret_versions (tenant_id, name, version, revision, master_key_id, wrapped_key,
                                 ciphertext)
    SELECT $1, $2, $3, revision, $4, $5, $6 FROM s
), trimmed AS (
    DELETE FROM secret_versions WHERE tenant_id = $1 AND name = $2 AND version <= $3 - $7
)
SELECT revision, created_at, updated_at FROM s;

-- read: get_secret
-- $3 the version wanted (NULL: the current one). A secret without that version comes back
-- with a NULL `version`.
SELECT s.version AS current_version, s.created_at, s.updated_at, v.version, v.revision,
       v.master_key_id, v.wrapped_key, v.ciphertext, v.created_at AS version_created_at
FROM secrets s
LEFT JOIN secret_versions v ON v.tenant_id = s.tenant_id AND v.name = s.name
                           AND v.version = coalesce($3, s.version)
WHERE s.tenant_id = $1 AND s.name = $2;

-- read: list_secrets
-- One page of names in byte order: from $2 (inclusive) up to $4 (exclusive), after $3.
SELECT name, version, revision, created_at, updated_at
FROM secrets
WHERE tenant_id = $1 AND name >= $2 AND name > $3 AND name < $4
ORDER BY name
LIMIT $5;

-- read: reveal_secrets
-- The first $2 secrets by name with their current sealed values, and the running total of
-- their ciphertext bytes, so that a reveal can refuse what would not fit its budget.
SELECT s.name, v.version, v.master_key_id, v.wrapped_key, v.ciphertext,
       sum(octet_length(v.ciphertext)) OVER (ORDER BY s.name) AS running_bytes
FROM secrets s
JOIN secret_versions v ON v.tenant_id = s.tenant_id AND v.name = s.name
                      AND v.version = s.version
WHERE s.tenant_id = $1
ORDER BY s.name
LIMIT $2;

-- write: delete_secret
-- Deletes a secret with all its versions; $3 whether only if its revision is one of $4 (NULL:
-- any). Returns how many went (0 or 1).
WITH d AS (
    DELETE FROM secrets
    WHERE tenant_id = $1 AND name = $2 AND (NOT $3 OR $4::bigint[] IS NULL OR revision = ANY($4))
    RETURNING 1
), c AS (
    UPDATE secret_counts SET secrets = secrets - 1
    WHERE tenant_id = $1 AND EXISTS (SELECT 1 FROM d)
)
SELECT count(*) AS deleted FROM d;

-- read: master_key_usage
-- How many data keys each master key wraps.
SELECT master_key_id, count(*) AS data_keys
FROM secret_versions GROUP BY master_key_id ORDER BY master_key_id;

-- write: request_rotation
-- Starts a rotation to $1 unless one is under way; returns the one under way either way.
WITH started AS (
    INSERT INTO secret_rotations (target_key_id) VALUES ($1)
    ON CONFLICT ((true)) WHERE finished_at IS NULL DO NOTHING
    RETURNING *
)
SELECT *, true AS started FROM started
UNION ALL
SELECT *, false FROM secret_rotations
WHERE finished_at IS NULL AND NOT EXISTS (SELECT 1 FROM started);

-- read: latest_rotation
SELECT * FROM secret_rotations ORDER BY id DESC LIMIT 1;

-- write: claim_rotation
-- The rotation under way, locked for one batch; none when there is none or another worker
-- holds it.
SELECT * FROM secret_rotations WHERE finished_at IS NULL FOR UPDATE SKIP LOCKED;

-- write: rotation_batch
-- The next $4 versions in key order after ($1, $2, $3), locked while they are re-wrapped.
SELECT tenant_id, name, version, master_key_id, wrapped_key
FROM secret_versions
WHERE (tenant_id, name, version) > ($1, $2, $3)
ORDER BY tenant_id, name, version
LIMIT $4
FOR UPDATE;

-- write: store_rewrapped
UPDATE secret_versions v SET master_key_id = $4, wrapped_key = r.wrapped_key
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $5::bytea[])
     AS r (tenant_id, name, version, wrapped_key)
WHERE v.tenant_id = r.tenant_id AND v.name = r.name AND v.version = r.version;

-- write: advance_rotation
-- Records a batch: where the next one starts ($2-$4, all NULL to start another pass from the
-- first key), what it did, and, when $8, that the rotation is finished.
UPDATE secret_rotations SET
    after_tenant_id = $2, after_name = $3, after_version = $4,
    rewrapped = rewrapped + $5, unreadable = unreadable + $6,
    passes = passes + CASE WHEN $2::uuid IS NULL THEN 1 ELSE 0 END,
    last_error = coalesce($7, last_error),
    finished_at = CASE WHEN $8 THEN now() END
WHERE id = $1;

-- write: rotation_error
UPDATE secret_rotations SET last_error = $2 WHERE id = $1;

-- read: data_keys_not_under
-- Whether any data key is still wrapped by a master key other than $1.
SELECT EXISTS (SELECT 1 FROM secret_versions WHERE master_key_id <> $1);
