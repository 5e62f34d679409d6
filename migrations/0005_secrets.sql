-- Secrets: a tenant's named values, every write a new version sealed under its own data key,
-- which a master key wraps (service/domain/secrets.py; docs/ARCHITECTURE.md, "Secrets").
-- No column holds a plaintext value.

-- A version's revision is its ETag: unique across every secret and never reused, so a
-- secret deleted and created again does not match a condition written against the old one.
CREATE SEQUENCE secret_revisions AS bigint;

-- One row per live secret: which version is current.
CREATE TABLE secrets (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    name        text COLLATE "C" NOT NULL,
    version     bigint NOT NULL,
    revision    bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

-- The kept versions of each secret (the newest KVS_SECRET_VERSIONS_KEPT). `wrapped_key` is
-- the version's data key sealed by master key `master_key_id`; `ciphertext` the value sealed
-- by the data key. Both are a 12-byte nonce followed by AES-256-GCM's output, and both are
-- bound to (tenant_id, name, version) as associated data: moved to another row, they fail to
-- open.
CREATE TABLE secret_versions (
    tenant_id      uuid NOT NULL,
    name           text COLLATE "C" NOT NULL,
    version        bigint NOT NULL,
    revision       bigint NOT NULL,
    master_key_id  text NOT NULL,
    wrapped_key    bytea NOT NULL,
    ciphertext     bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name, version),
    FOREIGN KEY (tenant_id, name) REFERENCES secrets ON DELETE CASCADE
);
-- `kvs secrets status`: how many data keys each master key still wraps.
CREATE INDEX secret_versions_master_key ON secret_versions (master_key_id);

-- How many secrets each tenant holds, for its limit: a create counts here in its own
-- transaction, so concurrent creates take turns on the row and the limit is exact.
CREATE TABLE secret_counts (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id),
    secrets    bigint NOT NULL CHECK (secrets >= 0)
);

-- Re-wrapping every data key under one master key (`kvs secrets rotate`), done by the worker
-- in batches in key order; `after_*` is where the next batch starts, so a rotation resumes
-- where it was. At most one is under way.
CREATE TABLE secret_rotations (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_key_id     text NOT NULL,
    requested_at      timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    passes            integer NOT NULL DEFAULT 0,
    rewrapped         bigint NOT NULL DEFAULT 0,
    unreadable        bigint NOT NULL DEFAULT 0,
    after_tenant_id   uuid,
    after_name        text COLLATE "C",
    after_version     bigint,
    last_error        text
);
CREATE UNIQUE INDEX secret_rotations_one_active ON secret_rotations ((true))
    WHERE finished_at IS NULL;
