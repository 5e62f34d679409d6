"""Listing options: `values=true` (each item as a batch read gives it; a page stops early at
8 MiB of values) and `total=true` (`meta.total`: the matching keys after the cursor)."""

import base64

import pytest

from tests.support import key_url, provisioned_namespace, put

MIB = 1024 * 1024


async def listing(client, tenant, namespace, **params) -> dict:
    resp = await client.get(key_url(namespace, listing=True), params=params, headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def pages(client, tenant, namespace, **params) -> list[dict]:
    """Every page, following cursors."""
    found, cursor = [], None
    while True:
        page = await listing(
            client, tenant, namespace, **params, **({"cursor": cursor} if cursor else {})
        )
        found.append(page)
        assert page["meta"]["has_more"] == (page["meta"]["cursor"] is not None)
        cursor = page["meta"]["cursor"]
        if cursor is None:
            return found


async def test_values_true_gives_each_item_as_a_batch_read_does(client, tenant, namespace):
    values = {
        "j": (b'{ "a" :  1.50 }', "application/json"),
        "t": ("h\u00e9".encode(), "text/plain; charset=utf-8"),
        "b": (b"\x00\xff", "application/octet-stream"),
        "l": (b"caf\xe9", "text/plain; charset=ISO-8859-1"),
        "x": (b"{bad", "application/json"),
        "e": (b"", "text/plain"),
    }
    for key, (value, content_type) in values.items():
        await put(client, tenant, namespace, key, value, {"Content-Type": content_type})
    await put(client, tenant, namespace, "ttl", b"1", params={"ttl_secs": "100"})
    resp = await client.get(
        key_url(namespace, listing=True), params={"values": "true"}, headers=tenant.headers
    )
    assert resp.status == 200
    assert b'"data":{ "a" :  1.50 }' in await resp.read()  # JSON spliced verbatim
    items = (await resp.json())["data"]
    keys = sorted([*values, "ttl"])
    assert [item["key"] for item in items] == keys
    batch = await client.post(
        f"/v2/storage/kvs/{namespace}/batch-read", json={"keys": keys}, headers=tenant.headers
    )
    assert items == (await batch.json())["data"]
    assert [item["encoding"] for item in items] == [
        "base64",  # b
        "text",  # e
        "json",  # j
        "base64",  # l
        "text",  # t
        "base64",  # ttl
        "base64",  # x
    ]
    plain = (await listing(client, tenant, namespace))["data"]
    carried = ("etag", "encoding", "data")
    assert plain == [{k: v for k, v in item.items() if k not in carried} for item in items]


async def test_total_counts_the_matching_keys_after_the_cursor(client, tenant, namespace):
    for i in range(25):
        await put(client, tenant, namespace, f"a-{i:02d}")
    for i in range(5):
        await put(client, tenant, namespace, f"b-{i:02d}")
    cases = [
        ({"prefix": "a-"}, [25, 15, 5]),
        ({"prefix": "a-", "reverse": "true"}, [25, 15, 5]),
        ({}, [30, 20, 10]),
        ({"start": "a-05", "end": "a-20"}, [15, 5]),
        ({"prefix": "a-", "start": "a-20"}, [5]),
        ({"prefix": "a-1", "end": "a-15"}, [5]),
        ({"start": "a-15", "end": "b-03", "reverse": "true"}, [13, 3]),
        ({"prefix": "c"}, [0]),
        ({"prefix": "a-", "values": "true"}, [25, 15, 5]),
        ({"prefix": "a-", "values": "true", "reverse": "true"}, [25, 15, 5]),
    ]
    for params, totals in cases:
        found = await pages(client, tenant, namespace, limit="10", total="true", **params)
        assert [p["meta"]["total"] for p in found] == totals, params
        counted = [len(p["data"]) for p in found]
        assert [sum(counted[i:]) for i in range(len(counted))] == totals, params
    assert "total" not in (await listing(client, tenant, namespace))["meta"]


async def test_a_page_with_values_stops_once_they_reach_8_mib(client, tenant, db, settings):
    """3 MiB values: a page takes keys while the values before it total under 8 MiB (so
    three, 9 MiB), then says has_more; the cursor goes on from the last key it holds, and
    every key comes once."""
    namespace = await provisioned_namespace(db, settings, tenant.id, "big", max_value_size=3 * MIB)
    keys = [f"k{i}" for i in range(7)]
    for i, key in enumerate(keys):
        assert (await put(client, tenant, namespace, key, bytes([i]) * 3 * MIB)).status == 201
    await put(client, tenant, namespace, "small", b"s")
    forward = [*keys, "small"]
    backward = forward[::-1]
    for reverse, expected, totals in [
        ("false", [forward[0:3], forward[3:6], forward[6:]], [8, 5, 2]),
        # 1 byte first: the fourth 3 MiB value still starts below 8 MiB.
        ("true", [backward[0:4], backward[4:7], backward[7:]], [8, 4, 1]),
    ]:
        found = await pages(client, tenant, namespace, values="true", total="true", reverse=reverse)
        assert [[item["key"] for item in p["data"]] for p in found] == expected
        assert [p["meta"]["total"] for p in found] == totals
        for item in (item for p in found for item in p["data"]):
            i = item["key"][1:]
            value = b"s" if item["key"] == "small" else bytes([int(i)]) * 3 * MIB
            assert base64.b64decode(item["data"]) == value
    limited = await listing(client, tenant, namespace, values="true", limit="2")
    assert len(limited["data"]) == 2 and limited["meta"]["has_more"] is True
    plain = await listing(client, tenant, namespace)  # without values, no early stop
    assert len(plain["data"]) == 8 and plain["meta"]["has_more"] is False


@pytest.mark.parametrize(
    "params", [{"values": "maybe"}, {"values": "1"}, {"total": "1"}, {"total": "TRUE"}]
)
async def test_bad_values_or_total_is_400(client, tenant, namespace, params):
    resp = await client.get(key_url(namespace, listing=True), params=params, headers=tenant.headers)
    assert resp.status == 400
    error = (await resp.json())["errors"][0]
    assert (error["code"], error["source"]) == ("10015", {"parameter": next(iter(params))})
