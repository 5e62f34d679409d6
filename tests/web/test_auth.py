"""API keys: both header forms, every way to be refused, revocation, and storage as a hash."""

import asyncio
import time

import pytest

from service.domain import tenants
from service.domain.tenants import generate_api_key
from service.web.app import create_app
from tests.support import make_settings

BASE = "/v2/storage/kvs"


async def test_bearer_and_x_api_key_are_both_accepted(client, tenant):
    assert (await client.get(BASE, headers=tenant.headers)).status == 200
    assert (await client.get(BASE, headers={"X-Api-Key": tenant.token})).status == 200
    assert (
        await client.get(BASE, headers={"Authorization": f"bearer  {tenant.token} "})
    ).status == 200


async def assert_401(resp):
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    error = (await resp.json())["errors"][0]
    assert error["code"] == "10009"
    assert error["title"] == "Authentication failed"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-Api-Key": ""},
        {"X-Api-Key": "kvs_0000000000000000_" + "A" * 43},
    ],
)
async def test_missing_malformed_or_unknown_keys_are_401(client, tenant, headers):
    await assert_401(await client.get(BASE, headers=headers))


async def test_a_right_key_id_with_a_wrong_secret_is_401(client, tenant):
    key_id = tenant.token.split("_")[1]
    forged = f"kvs_{key_id}_" + generate_api_key().token.split("_", 2)[2]
    await assert_401(await client.get(BASE, headers={"X-Api-Key": forged}))


async def test_conflicting_or_duplicate_key_headers_are_401(client, tenant, other_tenant):
    await assert_401(
        await client.get(
            BASE,
            headers={"Authorization": f"Bearer {tenant.token}", "X-Api-Key": other_tenant.token},
        )
    )
    await assert_401(
        await client.get(BASE, headers=[("X-Api-Key", tenant.token), ("X-Api-Key", tenant.token)])
    )


async def test_every_route_under_v2_needs_a_key_even_unknown_ones(client):
    for method, path in [
        ("POST", BASE),
        ("GET", f"{BASE}/x"),
        ("DELETE", f"{BASE}/x"),
        ("GET", "/v2/nothing-here"),
    ]:
        await assert_401(await client.request(method, path))


async def test_a_revoked_key_is_refused_within_the_cache_time_while_other_keys_work(
    make_client, database_url, db, tenant
):
    client = await make_client(create_app(make_settings(database_url, auth_cache_seconds=1)))
    second = await tenants.create_key(db, "tenant-a")
    assert (await client.get(BASE, headers={"X-Api-Key": second.token})).status == 200
    assert await tenants.revoke_key(db, second.id) == second.id
    revoked = time.monotonic()
    # The process remembers the key for KVS_AUTH_CACHE_SECONDS, and not one moment longer.
    while (await client.get(BASE, headers={"X-Api-Key": second.token})).status == 200:
        assert time.monotonic() - revoked < 1.0
        await asyncio.sleep(0.05)
    await assert_401(await client.get(BASE, headers={"X-Api-Key": second.token}))
    assert (await client.get(BASE, headers=tenant.headers)).status == 200
    with pytest.raises(tenants.ApiKeyNotFound):
        await tenants.revoke_key(db, second.id)


async def test_without_the_cache_a_revoked_key_is_refused_at_once(make_client, database_url, db):
    client = await make_client(create_app(make_settings(database_url, auth_cache_seconds=0)))
    _, key = await tenants.create_tenant(db, "revoked-at-once")
    headers = {"X-Api-Key": key.token}
    assert (await client.get(BASE, headers=headers)).status == 200
    await tenants.revoke_key(db, key.token)
    await assert_401(await client.get(BASE, headers=headers))


async def test_the_cache_never_accepts_a_wrong_secret_for_a_known_key_id(client, tenant):
    assert (await client.get(BASE, headers=tenant.headers)).status == 200  # now cached
    key_id = tenant.token.split("_")[1]
    forged = f"kvs_{key_id}_{'A' * 43}"
    await assert_401(await client.get(BASE, headers={"X-Api-Key": forged}))
    assert (await client.get(BASE, headers=tenant.headers)).status == 200


async def test_the_plaintext_key_is_nowhere_in_the_database(db, tenant):
    secret = tenant.token.split("_", 2)[2]
    for table in ("tenants", "api_keys"):
        for row in await db.fetch(f"SELECT t::text AS row FROM {table} t"):
            assert secret not in row["row"]
            assert tenant.token not in row["row"]
    stored = await db.fetchval("SELECT secret_hash FROM api_keys WHERE tenant_id = $1", tenant.id)
    assert len(stored) == 32 and secret.encode() not in stored


async def test_each_tenant_gets_its_own_distinct_key(tenant, other_tenant):
    assert tenant.token != other_tenant.token
    assert tenant.token.split("_")[1] != other_tenant.token.split("_")[1]
