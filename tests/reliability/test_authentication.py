"""The limit on failed authentications: guessing keys is slowed to a crawl, nobody else is."""

import asyncio

import pytest

from service.web.app import create_app
from service.web.appkeys import METRICS
from tests.support import make_settings

BASE = "/v2/storage/kvs"
WRONG = {"Authorization": "Bearer kvs_0000000000000000_" + "A" * 43}


@pytest.fixture
async def limited(make_client, database_url):
    settings = make_settings(database_url, auth_failures_per_minute=5, trusted_proxies=1)
    return await make_client(create_app(settings))


async def test_past_the_limit_an_address_gets_429_with_retry_after_for_keys_not_seen_to_work(
    limited, tenant
):
    """Pass: 5 failed attempts answer 401, the 6th and a request with a key this process has
    never seen authenticate, from the same address, answer 429 in the contract's shape with
    Retry-After (that lookup is what the limit bounds); the allowance refills at 5 a minute,
    so one more attempt is allowed 12 s later (checked by the Retry-After given)."""
    client = limited
    for _ in range(5):
        assert (await client.get(BASE, headers=WRONG)).status == 401
    refused = await client.get(BASE, headers=WRONG)
    assert refused.status == 429
    assert (await refused.json())["errors"][0]["code"] == "10011"
    assert 1 <= int(refused.headers["Retry-After"]) <= 12
    valid = await client.get(BASE, headers=tenant.headers)
    assert valid.status == 429


async def test_the_limit_is_per_client_address_and_valid_keys_never_count(
    limited, tenant, other_tenant
):
    """Pass: one address locked out does not affect another (X-Forwarded-For appended by the
    one trusted proxy); 50 requests with a valid key from an address take nothing from it."""
    client = limited
    other = {"X-Forwarded-For": "203.0.113.9"}
    for _ in range(50):
        assert (await client.get(BASE, headers={**tenant.headers, **other})).status == 200
    attacker = {"X-Forwarded-For": "198.51.100.7"}
    statuses = [(await client.get(BASE, headers={**WRONG, **attacker})).status for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    assert (await client.get(BASE, headers={**tenant.headers, **other})).status == 200
    # Entries left of the trusted proxy's are the client's own words: they change nothing.
    spoofed = {"X-Forwarded-For": "192.0.2.1, 198.51.100.7"}
    assert (await client.get(BASE, headers={**other_tenant.headers, **spoofed})).status == 429


@pytest.mark.parametrize("cache_seconds", ["5", "0"])
async def test_a_key_that_worked_here_keeps_working_through_a_guessing_flood_from_its_address(
    make_client, database_url, tenant, cache_seconds
):
    """Pass: a tenant's key authenticates once; then 200 guesses (each a different key, some
    concurrent) come from the same address, one client behind a NAT gone wrong. The guesses
    are held back as ever (exactly the allowance of 5 answer 401, the rest 429), and every one
    of 60 requests with the tenant's key, interleaved with them, answers 200: with the key
    cache, and without it (KVS_AUTH_CACHE_SECONDS=0: each of those is a database lookup, not
    a guess, since this very key authenticated here a moment ago)."""
    settings = make_settings(
        database_url, auth_failures_per_minute=5, auth_cache_seconds=float(cache_seconds)
    )
    client = await make_client(create_app(settings))
    assert (await client.get(BASE, headers=tenant.headers)).status == 200

    def guess(n: int) -> dict[str, str]:
        return {"Authorization": f"Bearer kvs_{n:016x}_" + "A" * 43}

    guesses: list[int] = []
    valid: list[int] = []
    for round_ in range(20):
        batch = [client.get(BASE, headers=guess(round_ * 10 + i)) for i in range(10)]
        guesses += [r.status for r in await asyncio.gather(*batch)]
        for _ in range(3):
            valid.append((await client.get(BASE, headers=tenant.headers)).status)
    assert sorted(guesses) == [401] * 5 + [429] * 195
    assert valid == [200] * 60


async def test_concurrent_guesses_are_held_to_the_limit(limited):
    """Pass: 100 concurrent guesses (each a different key) from one address: 5 (the allowance)
    answered 401, the rest 429."""
    client = limited
    guesses = [{"X-Api-Key": f"kvs_{i:016x}_{'A' * 43}"} for i in range(100)]
    answers = await asyncio.gather(*(client.get(BASE, headers=guess) for guess in guesses))
    statuses = [a.status for a in answers]
    assert (statuses.count(401), statuses.count(429)) == (5, 95)


async def test_a_burst_on_a_key_not_yet_remembered_costs_one_query_and_is_never_limited(
    limited, tenant
):
    """Pass: 50 concurrent requests with a valid key no process remembers yet, from one
    address allowed 5 failures: all 200, and the key was looked up once."""
    client = limited
    answers = await asyncio.gather(*(client.get(BASE, headers=tenant.headers) for _ in range(50)))
    assert [a.status for a in answers] == [200] * 50
    registry = client.server.app[METRICS].registry
    lookups = registry.get_sample_value(
        "kvs_db_query_duration_seconds_count", {"query": "find_api_key"}
    )
    assert lookups == 1


async def test_concurrent_guesses_of_the_secret_of_a_remembered_key_are_held_to_the_limit(
    limited, tenant
):
    """Pass: once a key is remembered, 100 concurrent requests with its id and wrong secrets
    get 5 answers of 401 (the allowance), the rest 429."""
    client = limited
    assert (await client.get(BASE, headers=tenant.headers)).status == 200
    key_id = tenant.token.split("_")[1]
    guesses = [{"X-Api-Key": f"kvs_{key_id}_{i:043d}"} for i in range(100)]
    answers = await asyncio.gather(*(client.get(BASE, headers=guess) for guess in guesses))
    statuses = [a.status for a in answers]
    assert (statuses.count(401), statuses.count(429)) == (5, 95)
