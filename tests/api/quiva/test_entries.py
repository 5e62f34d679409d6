"""quiva.ai's entries: JSON objects stored byte for byte, read in quiva's envelope, listed in
key order within a byte budget, and searched by key pattern."""

import pytest

from service.api.quiva.entries import LISTING_BYTES
from tests.api.quiva import BASE, create_bucket, entry_url, error_of, put_entry


async def read_entry(client, tenant, bucket, key) -> dict:
    resp = await client.get(entry_url(bucket, key), headers=tenant.headers)
    assert resp.status == 200
    body = await resp.json()
    assert body["metadata"]["bucket"] == bucket and body["metadata"]["key"] == key
    return body["body"]


async def found(client, tenant, path, **params) -> dict:
    resp = await client.get(f"{BASE}/{path}", params=params, headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_an_entry_reads_back_as_written_and_an_overwrite_replaces_it(quiva, tenant):
    await create_bucket(quiva, tenant, "users")
    doc = {"name": "Zoë", "tags": ["a", {"b": None}], "n": 1.5, "ok": True}
    await put_entry(quiva, tenant, "users", "user/123", doc)
    assert await read_entry(quiva, tenant, "users", "user/123") == {"key": "user/123", "value": doc}
    await put_entry(quiva, tenant, "users", "user/123", {"name": "Zoe"})
    got = await read_entry(quiva, tenant, "users", "user/123")
    assert got["value"] == {"name": "Zoe"}


async def test_numbers_and_escapes_of_a_stored_object_come_back_exactly(quiva, tenant):
    await create_bucket(quiva, tenant, "exact")
    raw = b'{"big": 123456789012345678901234567890, "f": 1.10, "e": 1e400, "s": "\\ud83d\\ude00"}'
    resp = await quiva.put(entry_url("exact", "k"), data=raw, headers=tenant.headers)
    assert resp.status == 200
    resp = await quiva.get(entry_url("exact", "k"), headers=tenant.headers)
    assert raw in await resp.read()


async def test_a_missing_entry_is_not_found_and_delete_is_idempotent(quiva, tenant):
    await create_bucket(quiva, tenant, "d")
    resp = await quiva.get(entry_url("d", "nothing"), headers=tenant.headers)
    assert (await error_of(resp))[:2] == (404, "not_found")
    await put_entry(quiva, tenant, "d", "k", {"v": 1})
    for _ in range(2):
        resp = await quiva.delete(entry_url("d", "k"), headers=tenant.headers)
        assert resp.status == 200 and await resp.json() == {"message": "success"}
    resp = await quiva.get(entry_url("d", "k"), headers=tenant.headers)
    assert (await error_of(resp))[:2] == (404, "not_found")


async def test_latest_entries_are_listed_in_key_order_up_to_the_limit(quiva, tenant):
    await create_bucket(quiva, tenant, "l")
    for key in ("b", "a", "c/1", "c/0"):
        await put_entry(quiva, tenant, "l", key, {"key": key})
    body = await found(quiva, tenant, "l/entries")
    assert [e["key"] for e in body["body"]["results"]] == ["a", "b", "c/0", "c/1"]
    assert body["body"]["results"][0]["value"] == {"key": "a"}
    assert body["body"]["results_total"] == 4
    assert body["metadata"]["limit"] == 10 and "truncated" not in body["metadata"]
    body = await found(quiva, tenant, "l/entries", limit="2")
    assert [e["key"] for e in body["body"]["results"]] == ["a", "b"]
    assert body["metadata"]["limit"] == 2


async def test_a_listing_stops_at_its_byte_budget_and_says_so(make_client, quiva, tenant):
    await create_bucket(quiva, tenant, "large", max_value_size=4 * 1024 * 1024)
    blob = {"pad": "x" * (3 * 1024 * 1024)}
    for key in ("a", "b", "c", "d"):
        await put_entry(quiva, tenant, "large", key, blob)
    body = await found(quiva, tenant, "large/entries")
    keys = [e["key"] for e in body["body"]["results"]]
    assert keys == ["a", "b", "c"][: LISTING_BYTES // (3 * 1024 * 1024) + 1]
    assert body["metadata"]["truncated"] is True


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("user*", ["user1", "user12", "user2", "userAx", "user_x"]),
        ("user?", ["user1", "user2"]),
        ("user_*", ["user_x"]),  # `_` is a key character, not a wildcard
        ("*x", ["userAx", "user_x"]),
        ("*", ["admin", "user1", "user12", "user2", "userAx", "user_x"]),
        ("user12", ["user12"]),
        ("user1?", ["user12"]),
        ("nobody*", []),
    ],
)
async def test_search_by_key_matches_wildcards_in_key_order(quiva, tenant, pattern, expected):
    await create_bucket(quiva, tenant, "s")
    for key in ("user1", "user12", "user2", "user_x", "userAx", "admin"):
        await put_entry(quiva, tenant, "s", key, {"id": key})
    body = await found(quiva, tenant, "s/search-by-key", search=pattern, limit="1000")
    results = body["body"]["results"]
    assert [r["key"] for r in results] == expected
    assert all(r["value"] == {"id": r["key"]} for r in results)
    assert body["metadata"]["hits"] == len(expected) == body["body"]["results_total"]
    assert body["metadata"]["search"] == pattern


async def test_search_by_key_honours_its_limit(quiva, tenant):
    await create_bucket(quiva, tenant, "many")
    for i in range(15):
        await put_entry(quiva, tenant, "many", f"user{i:02}", {})
    body = await found(quiva, tenant, "many/search-by-key", search="user*")
    assert [r["key"] for r in body["body"]["results"]] == [f"user{i:02}" for i in range(10)]


async def test_expired_keys_are_neither_read_nor_listed(quiva, tenant, db):
    await create_bucket(quiva, tenant, "ttl")
    await put_entry(quiva, tenant, "ttl", "old", {})
    await put_entry(quiva, tenant, "ttl", "new", {})
    await db.execute("UPDATE kv_entries SET expires_at = now() - interval '1 s' WHERE key = 'old'")
    resp = await quiva.get(entry_url("ttl", "old"), headers=tenant.headers)
    assert (await error_of(resp))[:2] == (404, "not_found")
    for path, params in (("ttl/entries", {}), ("ttl/search-by-key", {"search": "*"})):
        body = await found(quiva, tenant, path, **params)
        assert [e["key"] for e in body["body"]["results"]] == ["new"]
