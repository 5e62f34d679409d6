-- write: create_tenant
INSERT INTO tenants (name) VALUES ($1) RETURNING id;

-- read: find_tenant
SELECT id FROM tenants WHERE name = $1;

-- write: create_api_key
INSERT INTO api_keys (id, tenant_id, secret_hash) VALUES ($1, $2, $3);

-- read: find_api_key
SELECT tenant_id, secret_hash, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE id = $1;

-- write: revoke_api_key
UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id;
