-- Key writes as functions, so that one write (service/db/sql/keys.sql) and a group of
-- concurrent writes sharing one statement and one commit (kv_write_group) run the same code.
-- Each returns what the statement it replaces returned: a row of the namespace's status, TTL
-- support and value limit (its max_value_size, else p_default_limit, never above p_ceiling)
-- with the outcome, or no row at all when there is no such namespace for the tenant.

-- Stores a value. p_if_absent (If-None-Match: *): a live value is left alone and the outcome
-- is NULL. `created` tells a new key (or one that had expired) from a replaced one.
CREATE FUNCTION kv_put(
    p_ns uuid, p_tenant uuid, p_key text, p_value bytea, p_type text, p_ttl float8,
    p_if_absent boolean, p_default_limit integer, p_ceiling integer
) RETURNS TABLE (
    status text, ttl_support boolean, value_limit integer,
    version bigint, created boolean, expires_at timestamptz
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH n AS (
        SELECT s.status, s.ttl_support,
               least(coalesce(s.max_value_size, p_default_limit), p_ceiling) AS value_limit
        FROM namespaces s WHERE s.id = p_ns AND s.tenant_id = p_tenant
    ), written AS (
        INSERT INTO kv_entries AS e (namespace_id, key, value, content_type, size_bytes,
                                     expires_at, version, created_version)
        SELECT p_ns, p_key, p_value, p_type, octet_length(p_value),
               now() + make_interval(secs => p_ttl), x.v, x.v
        FROM n, LATERAL (SELECT nextval('kv_versions') AS v) x
        WHERE n.status = 'provision_ok' AND (p_ttl IS NULL OR n.ttl_support)
          AND octet_length(p_value) <= n.value_limit
        ON CONFLICT (namespace_id, key) DO UPDATE SET
            value = EXCLUDED.value, content_type = EXCLUDED.content_type,
            size_bytes = EXCLUDED.size_bytes, expires_at = EXCLUDED.expires_at,
            updated_at = now(), version = EXCLUDED.version,
            created_version = CASE WHEN e.expires_at IS NULL OR e.expires_at > now()
                                   THEN e.created_version ELSE EXCLUDED.version END,
            created_at = CASE WHEN e.expires_at IS NULL OR e.expires_at > now()
                              THEN e.created_at ELSE now() END
        WHERE NOT p_if_absent OR e.expires_at <= now()
        RETURNING e.version, e.version = e.created_version AS created, e.expires_at
    )
    SELECT n.status, n.ttl_support, n.value_limit, w.version, w.created, w.expires_at
    FROM n LEFT JOIN written w ON true;
END;
$$;

-- Replaces the live value only if its version is one of p_versions (If-Match), or, when
-- p_versions is NULL, any live value (If-Match: *): a compare-and-set. The outcome is NULL
-- when it does not hold.
CREATE FUNCTION kv_put_if_match(
    p_ns uuid, p_tenant uuid, p_key text, p_value bytea, p_type text, p_ttl float8,
    p_versions bigint[], p_default_limit integer, p_ceiling integer
) RETURNS TABLE (
    status text, ttl_support boolean, value_limit integer,
    version bigint, created boolean, expires_at timestamptz
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH n AS (
        SELECT s.status, s.ttl_support,
               least(coalesce(s.max_value_size, p_default_limit), p_ceiling) AS value_limit
        FROM namespaces s WHERE s.id = p_ns AND s.tenant_id = p_tenant
    ), written AS (
        UPDATE kv_entries AS e SET
            value = p_value, content_type = p_type, size_bytes = octet_length(p_value),
            expires_at = now() + make_interval(secs => p_ttl), updated_at = now(),
            version = nextval('kv_versions')
        FROM n
        WHERE e.namespace_id = p_ns AND e.key = p_key
          AND n.status = 'provision_ok' AND (p_ttl IS NULL OR n.ttl_support)
          AND octet_length(p_value) <= n.value_limit
          AND (e.expires_at IS NULL OR e.expires_at > now())
          AND (p_versions IS NULL OR e.version = ANY(p_versions))
        RETURNING e.version, false AS created, e.expires_at
    )
    SELECT n.status, n.ttl_support, n.value_limit, w.version, w.created, w.expires_at
    FROM n LEFT JOIN written w ON true;
END;
$$;

-- Deletes a key: unconditionally, or when p_conditional (If-Match) only a live one at one of
-- p_versions (any live one when NULL). `deleted` counts the rows that went.
CREATE FUNCTION kv_delete(
    p_ns uuid, p_tenant uuid, p_key text, p_conditional boolean, p_versions bigint[]
) RETURNS TABLE (status text, deleted bigint) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH n AS (
        SELECT s.status FROM namespaces s WHERE s.id = p_ns AND s.tenant_id = p_tenant
    ), gone AS (
        DELETE FROM kv_entries e USING n
        WHERE e.namespace_id = p_ns AND e.key = p_key AND n.status = 'provision_ok'
          AND (NOT p_conditional OR ((e.expires_at IS NULL OR e.expires_at > now())
                                     AND (p_versions IS NULL OR e.version = ANY(p_versions))))
        RETURNING 1
    )
    SELECT n.status, (SELECT count(*) FROM gone) FROM n;
END;
$$;

-- Writes of concurrent requests, in one statement and one transaction (one commit): item j
-- is p_kinds[j] ('p' kv_put, 'm' kv_put_if_match, 'd' kv_delete, 'c' kv_delete with
-- p_conditional) on p_keys[j] of namespace p_ns[j] for tenant p_tenants[j], with the value,
-- type, TTL, default value limit and ceiling at j (puts) and p_if_absent[j] ('p'). The versions of item j ('m', 'c') are the
-- m_versions[k] where m_items[k] = j; none means any live value.
--
-- Items run one after another in the order given, each as its own statement would, seeing
-- what the items before it wrote: one row per item (`item` = j) as its function returns it,
-- or none when it has no namespace. An error of any item (a growth past max_bytes, a
-- namespace removed meanwhile, a deadlock) undoes the whole group; the caller then runs each
-- item on its own, so that only that item's request fails. The caller orders items by
-- namespace and key, so that two groups lock rows in the same order.
CREATE FUNCTION kv_write_group(
    p_kinds text[], p_ns uuid[], p_tenants uuid[], p_keys text[],
    p_values bytea[], p_types text[], p_ttls float8[], p_if_absent boolean[],
    m_items integer[], m_versions bigint[], p_default_limits integer[], p_ceilings integer[]
) RETURNS TABLE (
    item integer, status text, ttl_support boolean, value_limit integer,
    version bigint, created boolean, expires_at timestamptz, deleted bigint
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    versions bigint[];
BEGIN
    FOR j IN 1 .. cardinality(p_kinds) LOOP
        versions := NULL;
        IF p_kinds[j] IN ('m', 'c') AND j = ANY(m_items) THEN
            versions := ARRAY(SELECT u.v FROM unnest(m_items, m_versions) u(i, v) WHERE u.i = j);
        END IF;
        IF p_kinds[j] = 'p' THEN
            RETURN QUERY SELECT j, r.*, NULL::bigint
            FROM kv_put(p_ns[j], p_tenants[j], p_keys[j], p_values[j], p_types[j], p_ttls[j],
                        p_if_absent[j], p_default_limits[j], p_ceilings[j]) r;
        ELSIF p_kinds[j] = 'm' THEN
            RETURN QUERY SELECT j, r.*, NULL::bigint
            FROM kv_put_if_match(p_ns[j], p_tenants[j], p_keys[j], p_values[j], p_types[j],
                                 p_ttls[j], versions, p_default_limits[j], p_ceilings[j]) r;
        ELSE
            RETURN QUERY SELECT j, r.status, NULL::boolean, NULL::integer, NULL::bigint,
                                NULL::boolean, NULL::timestamptz, r.deleted
            FROM kv_delete(p_ns[j], p_tenants[j], p_keys[j], p_kinds[j] = 'c', versions) r;
        END IF;
    END LOOP;
END;
$$;
