-- Atomic multi-key transactions (POST /v2/storage/kvs/{id}/transaction): checks on keys'
-- versions (or their absence), then sets and deletes, all or nothing, in one statement and so
-- in one round trip.

-- Runs one transaction in namespace `ns` of `tenant`. Checks: key c_keys[i] must be live with
-- version c_versions[i], or absent when that is NULL. Operations: o_keys[i] is set to
-- o_values[i] (content type o_types[i], expiry in o_ttls[i] seconds or none), or deleted when
-- o_values[i] is NULL. Keys are distinct within each list.
--
-- Returns first a row of the namespace (op NULL): its status, TTL support and value limit
-- (its max_value_size, else default_limit, never above ceiling); no row at all when there is
-- no such namespace for the tenant. When the namespace refuses the transaction (not
-- provision_ok, a TTL without TTL support, a value over the limit) that row is all, and nothing
-- was done. Otherwise one row per operation follows: its 1-based index, and for a set the new
-- version, whether it created the key and its expiry; for a delete whether a live key went.
-- A failed check raises SQLSTATE KV002 with the check's 0-based index as its detail, and a
-- growth past max_bytes KV001 (migrations/0004): either undoes everything.
--
-- Why it is linearizable with single-key statements under READ COMMITTED: every key named is
-- locked before the checks are read and stays locked until commit. A key with a row is locked
-- with FOR UPDATE; a key without one gets a placeholder row (expired, so absent to every
-- reader) that holds its place in the primary key, so that a concurrent insert of that key
-- waits for this transaction. Keys are locked in key order, which keeps two transactions from
-- waiting on each other; placeholders that no operation uses are removed before the end.
CREATE FUNCTION kv_transact(
    ns uuid, tenant uuid,
    c_keys text[], c_versions bigint[],
    o_keys text[], o_values bytea[], o_types text[], o_ttls float8[],
    default_limit integer, ceiling integer
) RETURNS TABLE (
    status text, ttl_support boolean, value_limit integer,
    op integer, version bigint, created boolean, deleted boolean, expires_at timestamptz
) LANGUAGE plpgsql AS $$
DECLARE
    n record;
    pending text[];
    taken text[];
    placeholders text[] := '{}';
    failed bigint;
    growing boolean;
BEGIN
    SELECT s.status, s.ttl_support,
           least(coalesce(s.max_value_size, default_limit), ceiling) AS value_limit
    INTO n FROM namespaces s WHERE s.id = ns AND s.tenant_id = tenant;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT n.status, n.ttl_support, n.value_limit,
                        NULL::integer, NULL::bigint, NULL::boolean, NULL::boolean,
                        NULL::timestamptz;
    IF n.status <> 'provision_ok'
       OR NOT n.ttl_support AND EXISTS (SELECT 1 FROM unnest(o_ttls) t WHERE t IS NOT NULL)
       OR EXISTS (SELECT 1 FROM unnest(o_values) v WHERE octet_length(v) > n.value_limit) THEN
        RETURN;
    END IF;

    pending := ARRAY(SELECT DISTINCT k FROM unnest(c_keys || o_keys) k ORDER BY k);
    FOR attempt IN 1..100 LOOP
        -- Each statement sees what committed before it began: a row deleted while this
        -- waited for its lock is not locked and stays pending; one inserted by another
        -- transaction before the placeholder is refused as a conflict, and is locked in the
        -- next round.
        taken := ARRAY(
            SELECT e.key FROM kv_entries e
            WHERE e.namespace_id = ns AND e.key = ANY(pending)
            ORDER BY e.key FOR UPDATE
        );
        pending := ARRAY(SELECT k FROM unnest(pending) k WHERE k <> ALL(taken) ORDER BY k);
        EXIT WHEN cardinality(pending) = 0;
        WITH inserted AS (
            INSERT INTO kv_entries AS e (namespace_id, key, value, content_type, size_bytes,
                                         expires_at, version, created_version)
            SELECT ns, k, '', '', 0, '-infinity', 0, 0 FROM unnest(pending) k ORDER BY k
            ON CONFLICT DO NOTHING
            RETURNING e.key
        )
        SELECT array_agg(key) INTO taken FROM inserted;
        placeholders := placeholders || coalesce(taken, '{}');
        pending := ARRAY(SELECT k FROM unnest(pending) k
                         WHERE k <> ALL(coalesce(taken, '{}')) ORDER BY k);
        EXIT WHEN cardinality(pending) = 0;
        IF attempt = 100 THEN
            RAISE EXCEPTION 'keys kept changing while the transaction locked them'
                USING ERRCODE = 'serialization_failure';
        END IF;
    END LOOP;

    SELECT c.i INTO failed
    FROM unnest(c_keys, c_versions) WITH ORDINALITY AS c(key, version, i)
    LEFT JOIN kv_entries e ON e.namespace_id = ns AND e.key = c.key
                          AND (e.expires_at IS NULL OR e.expires_at > now())
    WHERE e.version IS DISTINCT FROM c.version
    ORDER BY c.i LIMIT 1;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'a transaction check failed'
            USING ERRCODE = 'KV002', DETAIL = (failed - 1)::text;
    END IF;

    -- Deletes first, then the sets that shrink a value, then those that grow one: the usage
    -- triggers check max_bytes row by row, and in this order each growth is checked against
    -- a usage that already has every release in it, so the limit holds for the transaction's
    -- outcome rather than for an order of its rows.
    RETURN QUERY
    DELETE FROM kv_entries AS e
    USING unnest(o_keys, o_values) WITH ORDINALITY AS o(key, value, i)
    WHERE o.value IS NULL AND e.namespace_id = ns AND e.key = o.key
    RETURNING n.status, n.ttl_support, n.value_limit, o.i::integer, NULL::bigint,
              NULL::boolean, e.expires_at IS NULL OR e.expires_at > now(), NULL::timestamptz;

    FOREACH growing IN ARRAY ARRAY[false, true] LOOP
        RETURN QUERY
        UPDATE kv_entries AS e SET
            value = o.value, content_type = o.content_type, size_bytes = octet_length(o.value),
            expires_at = now() + make_interval(secs => o.ttl), updated_at = now(),
            version = o.v,
            created_version = CASE WHEN e.expires_at IS NULL OR e.expires_at > now()
                                   THEN e.created_version ELSE o.v END,
            created_at = CASE WHEN e.expires_at IS NULL OR e.expires_at > now()
                              THEN e.created_at ELSE now() END
        FROM (
            SELECT u.*, nextval('kv_versions') AS v
            FROM unnest(o_keys, o_values, o_types, o_ttls) WITH ORDINALITY
                 AS u(key, value, content_type, ttl, i)
            WHERE u.value IS NOT NULL
        ) o
        WHERE e.namespace_id = ns AND e.key = o.key
          AND (octet_length(o.value) > e.size_bytes) = growing
        RETURNING n.status, n.ttl_support, n.value_limit, o.i::integer, e.version,
                  e.version = e.created_version, NULL::boolean, e.expires_at;
    END LOOP;

    DELETE FROM kv_entries AS e
    WHERE e.namespace_id = ns AND e.key = ANY(placeholders) AND e.version = 0;
END;
$$;
