-- Tenants, their API keys, namespaces, the work queue of the provisioning worker, and key storage.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- An API key is "kvs_<id>_<secret>". Only SHA-256(secret) is stored: the secret is 256 random
-- bits, so a fast hash is as strong as a slow one and keeps authentication cheap.
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    secret_hash  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE namespaces (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    name           text NOT NULL,
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN
                       ('pending', 'provision_ok', 'provision_failed', 'deleting', 'delete_failed')),
    status_reason  text,
    ttl_support    boolean NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- A name is unique among the tenant's live namespaces; one being deleted frees its name.
CREATE UNIQUE INDEX namespaces_tenant_name_live ON namespaces (tenant_id, name)
    WHERE status <> 'deleting';
CREATE INDEX namespaces_tenant_newest ON namespaces (tenant_id, created_at DESC, id DESC);

-- What provisioning creates: the namespace's storage record, holding its usage totals so that
-- metrics and quotas never count rows.
CREATE TABLE namespace_storage (
    namespace_id  uuid PRIMARY KEY REFERENCES namespaces (id),
    key_count     bigint NOT NULL DEFAULT 0,
    value_bytes   bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Every key of every namespace, keyed by (namespace_id, key) so it can be distributed by namespace.
CREATE TABLE kv_entries (
    namespace_id  uuid NOT NULL REFERENCES namespaces (id),
    key           text COLLATE "C" NOT NULL,
    value         bytea NOT NULL,
    content_type  text NOT NULL,
    size_bytes    integer NOT NULL,
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace_id, key)
);

-- The provisioning worker's queue: one row per pending job. A claimed job's run_after is its
-- lease expiry, so a job whose worker died becomes claimable again by the same index scan.
CREATE TABLE jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('provision', 'delete')),
    namespace_id  uuid NOT NULL REFERENCES namespaces (id),
    attempts      integer NOT NULL DEFAULT 0,
    run_after     timestamptz NOT NULL DEFAULT now(),
    lease_owner   text,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace_id, kind)
);
CREATE INDEX jobs_due ON jobs (run_after);

CREATE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kvs_jobs', NEW.kind);
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_notify AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_notify();
