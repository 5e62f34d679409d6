"""Transactions (POST …/transaction): checks, then sets and deletes, all or nothing; every
limit of the namespace holds; linearizable with single-key requests."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from service.domain.keys import DEFAULT_VALUE_LIMIT
from service.domain.namespaces import MAX_VALUE_SIZE_LIMIT, create_namespace
from tests.support import key_url, put

BASE = "/v2/storage/kvs"
MIB = 1024 * 1024


def url(namespace) -> str:
    return f"{BASE}/{namespace}/transaction"


async def transact(client, tenant, namespace, body):
    if isinstance(body, bytes):
        headers = {**tenant.headers, "Content-Type": "application/json"}
        return await client.post(url(namespace), data=body, headers=headers)
    return await client.post(url(namespace), json=body, headers=tenant.headers)


async def applied(client, tenant, namespace, checks=(), operations=()) -> list[dict]:
    body = {"checks": list(checks), "operations": list(operations)}
    resp = await transact(client, tenant, namespace, body)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["data"]["operations"]


async def first_error(resp) -> dict:
    return (await resp.json())["errors"][0]


async def batch_entry(client, tenant, namespace, key) -> dict | None:
    resp = await client.post(
        f"{BASE}/{namespace}/batch-read", json={"keys": [key]}, headers=tenant.headers
    )
    assert resp.status == 200
    return (await resp.json())["data"][0]


async def rows(db, namespace) -> list[tuple]:
    """Every row the namespace has, placeholders and expired keys included."""
    found = await db.fetch(
        "SELECT key, value, content_type, version, expires_at FROM kv_entries"
        " WHERE namespace_id = $1 ORDER BY key",
        namespace,
    )
    return [tuple(r) for r in found]


async def usage(client, tenant, namespace) -> dict:
    resp = await client.get(f"{BASE}/{namespace}", headers=tenant.headers)
    return (await resp.json())["data"]["usage"]


async def patch(client, tenant, namespace, **fields):
    resp = await client.patch(f"{BASE}/{namespace}", json=fields, headers=tenant.headers)
    assert resp.status == 200


async def expire(db, namespace, *keys):
    await db.execute(
        "UPDATE kv_entries SET expires_at = now() - interval '1 s'"
        " WHERE namespace_id = $1 AND key = ANY($2)",
        namespace,
        list(keys),
    )


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def text_set(key, data, **fields) -> dict:
    return {"op": "set", "key": key, "encoding": "text", "data": data, **fields}


async def test_sets_and_deletes_apply_together_with_each_ones_outcome(
    client, tenant, namespace, db
):
    """`created` is true for a new key and for an expired one, false for a replaced one;
    `deleted` is true only when a live key went."""
    for key in ("old", "gone", "expired", "expired-del"):
        await put(client, tenant, namespace, key, b"before", params={"ttl_secs": "100"})
    await expire(db, namespace, "expired", "expired-del")
    ops = await applied(
        client,
        tenant,
        namespace,
        operations=[
            text_set("new", "n"),
            text_set("old", "o"),
            {"op": "delete", "key": "gone"},
            text_set("expired", "e"),
            {"op": "delete", "key": "never"},
            {"op": "delete", "key": "expired-del"},
        ],
    )
    assert [(o["op"], o["key"], o.get("created"), o.get("deleted")) for o in ops] == [
        ("set", "new", True, None),
        ("set", "old", False, None),
        ("delete", "gone", None, True),
        ("set", "expired", True, None),
        ("delete", "never", None, False),
        ("delete", "expired-del", None, False),
    ]
    for op in ops:
        got = await client.get(key_url(namespace, op["key"]), headers=tenant.headers)
        if op["op"] == "set":
            assert got.status == 200 and got.headers["ETag"] == op["etag"]
            assert await got.read() == op["key"][0].encode()
            assert op["expires_at"] is None and "X-Expires-At" not in got.headers
        else:
            assert got.status == 404
    assert [r[0] for r in await rows(db, namespace)] == ["expired", "new", "old"]
    assert await usage(client, tenant, namespace) == {"keys": 3, "bytes": 3}


JSON, TEXT_UTF8, OCTETS = (
    "application/json",
    "text/plain; charset=utf-8",
    "application/octet-stream",
)


@pytest.mark.parametrize(
    ("op", "stored", "content_type"),
    [
        ({"data": {"a": [1, 2.5, "\u00e9"]}}, '{"a":[1,2.5,"\u00e9"]}'.encode(), JSON),
        ({"data": None, "encoding": "json"}, b"null", JSON),
        ({"data": "s", "content_type": "application/vnd.x+json"}, b'"s"', "application/vnd.x+json"),
        ({"data": "h\u00e9 \u2713", "encoding": "text"}, "h\u00e9 \u2713".encode(), TEXT_UTF8),
        (
            {"data": "# T", "encoding": "text", "content_type": "text/markdown"},
            b"# T",
            "text/markdown",
        ),
        ({"data": "", "encoding": "text"}, b"", TEXT_UTF8),
        ({"data": "AP8=", "encoding": "base64"}, b"\x00\xff", OCTETS),
        ({"data": "", "encoding": "base64"}, b"", OCTETS),
        (
            {"data": "iVBORw==", "encoding": "base64", "content_type": "image/png"},
            b"\x89PNG",
            "image/png",
        ),
    ],
)
async def test_values_are_stored_with_their_content_type_and_read_back_alike(
    client, tenant, namespace, op, stored, content_type
):
    """GET gives the bytes and content type; a batch read gives the same encoding and data."""
    (outcome,) = await applied(
        client, tenant, namespace, operations=[{"op": "set", "key": "k", **op}]
    )
    got = await client.get(key_url(namespace, "k"), headers=tenant.headers)
    assert await got.read() == stored
    assert got.headers["Content-Type"] == content_type
    assert got.headers["ETag"] == outcome["etag"]
    entry = await batch_entry(client, tenant, namespace, "k")
    assert (entry["encoding"], entry["data"]) == (op.get("encoding", "json"), op["data"])
    assert entry["etag"] == outcome["etag"]


async def test_big_integers_keep_every_digit(client, tenant, namespace):
    stored = b'{"n":123456789012345678901234567890,"m":-98765432109876543210}'
    body = b'{"operations": [{"op": "set", "key": "n", "data": %s}]}' % stored.replace(b",", b", ")
    resp = await transact(client, tenant, namespace, body)
    assert resp.status == 200
    got = await client.get(key_url(namespace, "n"), headers=tenant.headers)
    assert await got.read() == stored
    resp = await client.post(
        f"{BASE}/{namespace}/batch-read", json={"keys": ["n"]}, headers=tenant.headers
    )
    assert b'"data":' + stored in await resp.read()


async def test_ttl_secs_sets_the_expiry(client, tenant, namespace):
    before = datetime.now(UTC)
    (op,) = await applied(client, tenant, namespace, operations=[text_set("k", "v", ttl_secs=100)])
    expires = parse_time(op["expires_at"])
    assert before + timedelta(seconds=99) < expires < before + timedelta(seconds=102)
    got = await client.get(key_url(namespace, "k"), headers=tenant.headers)
    assert parse_time(got.headers["X-Expires-At"]) == expires
    entry = await batch_entry(client, tenant, namespace, "k")
    assert parse_time(entry["expires_at"]) == expires


async def test_a_failed_check_is_412_and_changes_nothing(client, tenant, namespace, db):
    etag_a = (await put(client, tenant, namespace, "a", b"1")).headers["ETag"]
    etag_b = (await put(client, tenant, namespace, "b", b"2")).headers["ETag"]
    await put(client, tenant, namespace, "b", b"22")  # etag_b is now stale
    before, used = await rows(db, namespace), await usage(client, tenant, namespace)
    resp = await transact(
        client,
        tenant,
        namespace,
        {
            "checks": [
                {"key": "a", "etag": etag_a},
                {"key": "absent", "etag": None},
                {"key": "b", "etag": etag_b},
            ],
            "operations": [
                text_set("a", "x" * 50),
                text_set("new", "x" * 50),
                {"op": "delete", "key": "b"},
            ],
        },
    )
    assert resp.status == 412
    error = await first_error(resp)
    assert (error["code"], error["source"]) == ("75007", {"pointer": "/checks/2"})
    assert await rows(db, namespace) == before  # no placeholder row left for new or absent
    assert await usage(client, tenant, namespace) == used


async def test_an_absent_check_fails_on_a_live_key_and_holds_on_an_expired_one(
    client, tenant, namespace, db
):
    await put(client, tenant, namespace, "live", b"v")
    await put(client, tenant, namespace, "expired", b"v", params={"ttl_secs": "100"})
    await expire(db, namespace, "expired")
    resp = await transact(
        client,
        tenant,
        namespace,
        {"checks": [{"key": "live", "etag": None}], "operations": [text_set("live", "new")]},
    )
    assert resp.status == 412
    assert (await first_error(resp))["source"] == {"pointer": "/checks/0"}
    got = await client.get(key_url(namespace, "live"), headers=tenant.headers)
    assert await got.read() == b"v"
    (op,) = await applied(
        client,
        tenant,
        namespace,
        checks=[{"key": "expired", "etag": None}],
        operations=[text_set("expired", "new")],
    )
    assert op["created"] is True


async def test_checks_on_keys_not_written_leave_no_row_behind(client, tenant, namespace, db):
    etag = (await put(client, tenant, namespace, "a", b"1")).headers["ETag"]
    ops = await applied(client, tenant, namespace, checks=[{"key": "ghost", "etag": None}])
    assert ops == []
    await applied(
        client,
        tenant,
        namespace,
        checks=[{"key": "ghost", "etag": None}, {"key": "a", "etag": etag}],
        operations=[text_set("b", "2")],
    )
    assert [r[0] for r in await rows(db, namespace)] == ["a", "b"]
    assert await usage(client, tenant, namespace) == {"keys": 2, "bytes": 2}


def check(i: int) -> dict:
    return {"key": f"c{i}", "etag": None}


def delete(i: int) -> dict:
    return {"op": "delete", "key": f"d{i}"}


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"checks": [check(i) for i in range(101)]}, "/checks"),
        ({"operations": [delete(i) for i in range(1001)]}, "/operations"),
        ({"operations": [delete(1), delete(2), delete(0), delete(1)]}, "/operations/3/key"),
        ({"operations": [text_set("d0", "1"), delete(0)]}, "/operations/1/key"),
        ({"checks": [check(0), check(1), check(0)], "operations": [delete(0)]}, "/checks/2/key"),
        ({}, ""),
        ({"checks": [], "operations": []}, ""),
    ],
)
async def test_transactions_outside_the_limits_are_422(
    client, tenant, namespace, db, body, pointer
):
    resp = await transact(client, tenant, namespace, body)
    assert resp.status == 422
    error = await first_error(resp)
    assert (error["code"], error["source"]) == ("75016", {"pointer": pointer})
    assert await rows(db, namespace) == []


async def test_the_largest_transaction_is_accepted(client, tenant, namespace, db):
    """100 checks and 1,000 operations; 10 MiB of values."""
    checks = [check(i) for i in range(100)]
    operations = [text_set(f"k{i:03d}", "") for i in range(990)]
    operations += [text_set(f"big{i}", "x" * MIB) for i in range(10)]
    ops = await applied(client, tenant, namespace, checks, operations)
    assert len(ops) == 1000 and all(o["created"] for o in ops)
    assert await usage(client, tenant, namespace) == {"keys": 1000, "bytes": 10 * MIB}


async def test_values_over_10_mib_in_all_are_413_and_nothing_is_written(
    client, tenant, namespace, db
):
    operations = [text_set(f"big{i}", "x" * MIB) for i in range(10)] + [text_set("one", "x")]
    resp = await transact(client, tenant, namespace, {"operations": operations})
    assert resp.status == 413
    error = await first_error(resp)
    assert (error["code"], error["source"]) == ("75004", {"pointer": "/operations"})
    assert await rows(db, namespace) == []


async def test_a_value_over_max_value_size_is_413_and_nothing_is_written(
    client, tenant, namespace, db
):
    await patch(client, tenant, namespace, max_value_size=10)
    operations = [text_set("a", "x" * 10), {"op": "delete", "key": "b"}, text_set("c", "x" * 11)]
    resp = await transact(client, tenant, namespace, {"operations": operations})
    assert resp.status == 413
    error = await first_error(resp)
    assert (error["code"], error["source"]) == ("75004", {"pointer": "/operations/2/data"})
    assert "at most 10 bytes" in error["detail"]
    assert await rows(db, namespace) == []


async def test_a_value_over_the_default_limit_is_413(client, tenant, namespace, db):
    operations = [text_set("a", "x" * (DEFAULT_VALUE_LIMIT + 1))]
    resp = await transact(client, tenant, namespace, {"operations": operations})
    assert resp.status == 413
    assert (await first_error(resp))["source"] == {"pointer": "/operations/0/data"}
    assert await rows(db, namespace) == []


async def test_ttl_secs_without_ttl_support_is_409_and_nothing_is_written(
    client, tenant, no_ttl_namespace, db
):
    await put(client, tenant, no_ttl_namespace, "a", b"old")
    before = await rows(db, no_ttl_namespace)
    operations = [text_set("a", "new"), text_set("b", "x", ttl_secs=60)]
    resp = await transact(client, tenant, no_ttl_namespace, {"operations": operations})
    assert resp.status == 409
    error = await first_error(resp)
    assert (error["code"], error["source"]) == ("75006", {"pointer": "/operations/1/ttl_secs"})
    assert await rows(db, no_ttl_namespace) == before


async def test_growth_past_max_bytes_is_409_and_every_operation_is_undone(
    client, tenant, namespace, db
):
    await put(client, tenant, namespace, "a", b"x" * 60)
    await patch(client, tenant, namespace, max_bytes=100)
    before, used = await rows(db, namespace), await usage(client, tenant, namespace)
    operations = [text_set("a", "x" * 59), text_set("b", "x" * 20), text_set("c", "x" * 22)]
    resp = await transact(client, tenant, namespace, {"operations": operations})  # 101 bytes
    assert resp.status == 409
    error = await first_error(resp)
    assert (error["code"], error["source"]) == ("75012", {"parameter": "id"})
    assert await rows(db, namespace) == before
    assert await usage(client, tenant, namespace) == used == {"keys": 1, "bytes": 60}
    operations[2] = text_set("c", "x" * 21)  # exactly full
    await applied(client, tenant, namespace, operations=operations)
    assert await usage(client, tenant, namespace) == {"keys": 3, "bytes": 100}


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "delete", "key": "a"}, text_set("c", "x" * 60)],
        [text_set("a", "x" * 40), text_set("b", "x" * 60)],
        [text_set("b", "x" * 60), text_set("a", "x" * 40)],
    ],
    ids=["delete-then-set", "shrink-then-grow", "grow-then-shrink"],
)
async def test_max_bytes_holds_for_the_transaction_as_a_whole(
    client, tenant, namespace, operations
):
    """A full namespace (60 + 40 of 100 bytes): a transaction that frees as many bytes as it
    adds leaves it exactly full, within max_bytes, in whatever order the rows are written."""
    await put(client, tenant, namespace, "a", b"x" * 60)
    await put(client, tenant, namespace, "b", b"x" * 40)
    await patch(client, tenant, namespace, max_bytes=100)
    await applied(client, tenant, namespace, operations=operations)
    assert await usage(client, tenant, namespace) == {"keys": 2, "bytes": 100}


async def test_a_namespace_not_ready_is_409(client, tenant, namespace, db):
    pending = (await create_namespace(db, tenant.id, "pending")).id
    await client.delete(f"{BASE}/{namespace}", headers=tenant.headers)
    for ns in (pending, namespace):  # pending, deleting
        resp = await transact(client, tenant, ns, {"operations": [text_set("k", "v")]})
        assert resp.status == 409
        assert (await first_error(resp))["code"] == "75002"  # as single-key requests
        assert await rows(db, ns) == []


async def test_a_body_over_21_mib_is_413(client, tenant, namespace, db):
    body = b'{"operations": [{"op": "delete", "key": "k"}]' + b" " * (21 * MIB) + b"}"
    resp = await transact(client, tenant, namespace, body)
    assert resp.status == 413
    assert (await first_error(resp))["code"] == "75004"


async def test_another_tenants_namespace_is_a_404_identical_to_a_missing_one(
    client, tenant, other_tenant, namespace, db
):
    etag = (await put(client, tenant, namespace, "k", b"secret")).headers["ETag"]
    body = {"checks": [{"key": "k", "etag": etag}], "operations": [text_set("k", "stolen")]}
    answers = []
    for ns in (namespace, uuid.uuid4()):
        resp = await client.post(
            url(ns), json=body, headers={**other_tenant.headers, "X-Request-Id": "same"}
        )
        content = (await resp.read()).replace(str(ns).encode(), b"ID")
        answers.append(
            (resp.status, {k: v for k, v in resp.headers.items() if k != "Date"}, content)
        )
    assert answers[0] == answers[1]
    assert answers[0][0] == 404 and b'"10005"' in answers[0][2]
    got = await client.get(key_url(namespace, "k"), headers=tenant.headers)
    assert await got.read() == b"secret"


VALID = text_set("fine", "v")
SET = {"op": "set", "key": "k"}
B64 = {**SET, "encoding": "base64"}
TEXT = {**SET, "encoding": "text"}


async def refused(client, tenant, namespace, db, body, code, pointer):
    resp = await transact(client, tenant, namespace, body)
    assert resp.status == 400
    error = await first_error(resp)
    assert (error["code"], error["source"]) == (code, {"pointer": pointer})
    assert await rows(db, namespace) == []


@pytest.mark.parametrize(
    ("operation", "code", "field"),
    [
        ({"key": "k", "data": 1}, "10004", "op"),
        ({"op": "put", "key": "k", "data": 1}, "10015", "op"),
        ({"op": 1, "key": "k"}, "10015", "op"),
        ({"op": "set", "data": 1}, "10004", "key"),
        ({"op": "delete"}, "10004", "key"),
        ({"op": "set", "key": "a b", "data": 1}, "10015", "key"),
        ({"op": "set", "key": 7, "data": 1}, "10015", "key"),
        ({"op": "delete", "key": "_k"}, "10015", "key"),
        ({"op": "delete", "key": ""}, "10015", "key"),
        ({"op": "delete", "key": "x" * 257}, "10015", "key"),
        (SET, "10004", "data"),
        ({**SET, "data": 1, "encoding": "yaml"}, "10015", "encoding"),
        ({**SET, "data": 1, "encoding": None}, "10015", "encoding"),
        ({**SET, "data": 1, "content_type": "text/plain"}, "10015", "content_type"),
        ({**TEXT, "data": "t", "content_type": "application/json"}, "10015", "content_type"),
        ({**TEXT, "data": 5}, "10015", "data"),
        ({**TEXT, "data": "\ud800"}, "10015", "data"),  # a lone surrogate is not text
        ({**SET, "data": "\ud800"}, "10015", "data"),
        ({**B64, "data": "not base64!"}, "10015", "data"),
        ({**B64, "data": "AP8"}, "10015", "data"),  # unpadded
        ({**B64, "data": ["AA=="]}, "10015", "data"),
        (
            {**TEXT, "data": "t", "content_type": "text/plain; name=caf\u00e9"},
            "10015",
            "content_type",
        ),
        ({**TEXT, "data": "t", "content_type": ""}, "10015", "content_type"),
        ({**TEXT, "data": "t", "content_type": "text/" + "x" * 251}, "10015", "content_type"),
        ({**TEXT, "data": "t", "content_type": ["text/plain"]}, "10015", "content_type"),
        ({**TEXT, "data": "t", "content_type": None}, "10015", "content_type"),
        ({**TEXT, "data": "t", "value": "x"}, "10015", "value"),
        ({"op": "delete", "key": "k", "data": 1}, "10015", "data"),
        ("set", "10015", ""),
    ],
)
async def test_a_bad_operation_is_400_with_its_pointer_and_nothing_is_stored(
    client, tenant, namespace, db, operation, code, field
):
    body = {"operations": [VALID, operation]}
    pointer = "/operations/1" + (f"/{field}" if field else "")
    await refused(client, tenant, namespace, db, body, code, pointer)


@pytest.mark.parametrize(
    ("item", "code", "field"),
    [
        ({"etag": None}, "10004", "key"),
        ({"key": "c"}, "10004", "etag"),
        ({"key": "c", "etag": 'W/"1"'}, "10015", "etag"),
        ({"key": "c", "etag": 17}, "10015", "etag"),
        ({"key": "c", "etag": "17"}, "10015", "etag"),
        ({"key": "c", "etag": '"-1"'}, "10015", "etag"),
        ({"key": "c", "etag": '"1", "2"'}, "10015", "etag"),
        ({"key": "c", "etag": '"12345678901234567890"'}, "10015", "etag"),  # 20 digits
        ({"key": "c d", "etag": None}, "10015", "key"),
        ({"key": ["c"], "etag": None}, "10015", "key"),
        ({"key": "c", "etag": None, "op": "set"}, "10015", "op"),
        ("c", "10015", ""),
    ],
)
async def test_a_bad_check_is_400_with_its_pointer_and_nothing_is_stored(
    client, tenant, namespace, db, item, code, field
):
    body = {"checks": [{"key": "ok", "etag": None}, item], "operations": [VALID]}
    pointer = "/checks/1" + (f"/{field}" if field else "")
    await refused(client, tenant, namespace, db, body, code, pointer)


OP = b'{"operations": [{"op": "set", "key": "k", %s}]}'


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"operations": {"op": "set"}}, "/operations"),
        ({"operations": [VALID], "checks": {"key": "c"}}, "/checks"),
        ({"operations": [VALID], "extra": 1}, "/extra"),
        (["operations"], ""),
        (b"not json", ""),
        (b"", ""),
        (OP % b'"data": NaN', ""),
        (OP % b'"data": -Infinity', ""),
        (OP % b'"encoding": "text", "data": "\xff"', ""),  # not UTF-8
        (OP % b'"data": 1e400', "/operations/0/data"),  # beyond a double
    ],
)
async def test_a_bad_body_is_400_with_its_pointer_and_nothing_is_stored(
    client, tenant, namespace, db, body, pointer
):
    await refused(client, tenant, namespace, db, body, "10015", pointer)


@pytest.mark.parametrize("ttl", [0, -1, 9223372037, "5", True, False, 1.5, [60], None])
async def test_an_invalid_ttl_is_422_and_nothing_is_stored(client, tenant, namespace, db, ttl):
    operations = [VALID, text_set("k", "v", ttl_secs=ttl)]
    resp = await transact(client, tenant, namespace, {"operations": operations})
    assert resp.status == 422
    error = await first_error(resp)
    assert (error["code"], error["source"]) == ("75008", {"pointer": "/operations/1/ttl_secs"})
    assert await rows(db, namespace) == []


async def test_the_largest_ttl_is_accepted(client, tenant, namespace):
    (op,) = await applied(
        client, tenant, namespace, operations=[text_set("k", "v", ttl_secs=9223372036)]
    )
    assert parse_time(op["expires_at"]).year > 2300


async def test_a_check_naming_a_version_beyond_any_etag_fails_as_a_precondition(
    client, tenant, namespace, db
):
    """19 digits fit the ETag syntax; above 2**63 - 1 no version can have it, so the check
    does not hold (as If-Match with such a tag does not)."""
    await put(client, tenant, namespace, "c", b"v")
    body = {
        "checks": [{"key": "c", "etag": '"9999999999999999999"'}],
        "operations": [text_set("c", "new")],
    }
    resp = await transact(client, tenant, namespace, body)
    assert resp.status == 412, await resp.text()
    assert (await first_error(resp))["source"] == {"pointer": "/checks/0"}
    got = await client.get(key_url(namespace, "c"), headers=tenant.headers)
    assert await got.read() == b"v"


# Concurrency and linearizability.


async def test_concurrent_read_and_transact_increments_lose_no_update(client, tenant, namespace):
    """20 clients each read the counter (batch read) and write it back plus one, checked on
    the etag they read, retrying on 412: the counter ends at exactly 20."""
    await applied(client, tenant, namespace, operations=[{"op": "set", "key": "n", "data": 0}])

    async def increment() -> int:
        for attempt in range(200):
            entry = await batch_entry(client, tenant, namespace, "n")
            resp = await transact(
                client,
                tenant,
                namespace,
                {
                    "checks": [{"key": "n", "etag": entry["etag"]}],
                    "operations": [{"op": "set", "key": "n", "data": entry["data"] + 1}],
                },
            )
            if resp.status == 200:
                return attempt
            assert resp.status == 412, await resp.text()
        raise AssertionError("no increment went through in 200 attempts")

    retries = await asyncio.gather(*(increment() for _ in range(20)))
    got = await client.get(key_url(namespace, "n"), headers=tenant.headers)
    assert await got.read() == b"20"
    assert sum(retries) > 0  # they did collide


async def test_batch_reads_see_concurrent_transfers_whole(client, tenant, namespace):
    """Transactions move amounts between two counters (checked on both etags): every batch
    read of the pair, taken meanwhile from one snapshot, sums to the same total."""
    await applied(
        client,
        tenant,
        namespace,
        operations=[{"op": "set", "key": k, "data": 50} for k in ("a", "b")],
    )
    stop = asyncio.Event()

    async def transfer(amount: int) -> None:
        for _ in range(100):
            resp = await client.post(
                f"{BASE}/{namespace}/batch-read", json={"keys": ["a", "b"]}, headers=tenant.headers
            )
            a, b = (await resp.json())["data"]
            resp = await transact(
                client,
                tenant,
                namespace,
                {
                    "checks": [{"key": e["key"], "etag": e["etag"]} for e in (a, b)],
                    "operations": [
                        {"op": "set", "key": "a", "data": a["data"] - amount},
                        {"op": "set", "key": "b", "data": b["data"] + amount},
                    ],
                },
            )
            if resp.status == 200:
                return
            assert resp.status == 412
        raise AssertionError("no transfer went through in 100 attempts")

    async def audit() -> int:
        reads = 0
        while not stop.is_set():
            resp = await client.post(
                f"{BASE}/{namespace}/batch-read", json={"keys": ["b", "a"]}, headers=tenant.headers
            )
            assert sum(e["data"] for e in (await resp.json())["data"]) == 100
            reads += 1
        return reads

    auditors = [asyncio.create_task(audit()) for _ in range(3)]
    await asyncio.gather(*(transfer(i) for i in range(-10, 10)))
    stop.set()
    assert min(await asyncio.gather(*auditors)) > 0
    final = [(await batch_entry(client, tenant, namespace, k))["data"] for k in "ab"]
    assert final == [50 - sum(range(-10, 10)), 50 + sum(range(-10, 10))]


KV_TRANSACT = "SELECT * FROM kv_transact($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"


async def open_transaction(database_url, namespace, tenant, checks, sets):
    """A connection inside a transaction that has run kv_transact and not committed."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("BEGIN")
    await conn.fetch(
        KV_TRANSACT,
        namespace,
        tenant.id,
        [k for k, _ in checks],
        [v for _, v in checks],
        [k for k, _ in sets],
        [v for _, v in sets],
        ["text/plain"] * len(sets),
        [None] * len(sets),
        DEFAULT_VALUE_LIMIT,
        MAX_VALUE_SIZE_LIMIT,
    )
    return conn


async def still_waiting(task: asyncio.Task, seconds: float = 0.5) -> bool:
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return not done


async def test_a_put_of_a_key_checked_absent_waits_for_the_transaction(
    client, tenant, namespace, db, database_url
):
    """The check's placeholder row holds the key's place until commit, though the
    transaction removed it before returning."""
    conn = await open_transaction(database_url, namespace, tenant, [("k2", None)], [("k1", b"v1")])
    try:
        racing = asyncio.create_task(put(client, tenant, namespace, "k2", b"from-put"))
        assert await still_waiting(racing)
        await conn.execute("COMMIT")
    finally:
        await conn.close()
    resp = await asyncio.wait_for(racing, 10)
    assert resp.status == 201
    got = await client.get(key_url(namespace, "k2"), headers=tenant.headers)
    assert await got.read() == b"from-put"
    got = await client.get(key_url(namespace, "k1"), headers=tenant.headers)
    assert await got.read() == b"v1"
    count = "SELECT count(*) FROM kv_entries WHERE namespace_id = $1 AND key = 'k2'"
    assert await db.fetchval(count, namespace) == 1


async def test_a_put_of_a_key_checked_at_its_etag_waits_for_the_transaction(
    client, tenant, namespace, db, database_url
):
    etag = (await put(client, tenant, namespace, "k3", b"old")).headers["ETag"]
    version = int(etag.strip('"'))
    conn = await open_transaction(
        database_url, namespace, tenant, [("k3", version)], [("k1", b"v1")]
    )
    try:
        racing = asyncio.create_task(
            put(client, tenant, namespace, "k3", b"from-put", {"If-Match": etag})
        )
        assert await still_waiting(racing)
        await conn.execute("COMMIT")
    finally:
        await conn.close()
    resp = await asyncio.wait_for(racing, 10)
    assert resp.status == 200  # the transaction left k3 at its etag
    got = await client.get(key_url(namespace, "k3"), headers=tenant.headers)
    assert await got.read() == b"from-put"


async def test_a_put_waiting_on_a_transactions_set_sees_its_outcome(
    client, tenant, namespace, database_url
):
    """A create-only PUT of a key an open transaction creates waits, then finds it there."""
    conn = await open_transaction(database_url, namespace, tenant, [], [("k1", b"tx")])
    try:
        racing = asyncio.create_task(
            put(client, tenant, namespace, "k1", b"put", {"If-None-Match": "*"})
        )
        assert await still_waiting(racing)
        await conn.execute("COMMIT")
    finally:
        await conn.close()
    assert (await asyncio.wait_for(racing, 10)).status == 412
    got = await client.get(key_url(namespace, "k1"), headers=tenant.headers)
    assert await got.read() == b"tx"


async def test_transactions_writing_keys_in_opposite_orders_never_deadlock(
    client, tenant, namespace
):
    """Without checks both apply, one after the other: every key ends with the value of the
    same one. With checks on the same etags exactly one applies and the other is 412."""
    keys = [f"k{i:02d}" for i in range(40)]

    def writes(tag: str, order: list[str]) -> dict:
        return {"operations": [text_set(k, tag) for k in order]}

    for _ in range(5):
        resps = await asyncio.gather(
            transact(client, tenant, namespace, writes("up", keys)),
            transact(client, tenant, namespace, writes("down", keys[::-1])),
        )
        assert [r.status for r in resps] == [200, 200]
        resp = await client.post(
            f"{BASE}/{namespace}/batch-read", json={"keys": keys}, headers=tenant.headers
        )
        assert len({e["data"] for e in (await resp.json())["data"]}) == 1

    await put(client, tenant, namespace, "a", b"A", {"Content-Type": "text/plain"})
    await put(client, tenant, namespace, "b", b"B", {"Content-Type": "text/plain"})
    for _ in range(10):
        a = await batch_entry(client, tenant, namespace, "a")
        b = await batch_entry(client, tenant, namespace, "b")

        def swap(first, second) -> dict:
            return {
                "checks": [{"key": e["key"], "etag": e["etag"]} for e in (first, second)],
                "operations": [
                    text_set(first["key"], second["data"]),
                    text_set(second["key"], first["data"]),
                ],
            }

        resps = await asyncio.gather(
            transact(client, tenant, namespace, swap(a, b)),
            transact(client, tenant, namespace, swap(b, a)),
        )
        assert sorted(r.status for r in resps) == [200, 412]
        loser = next(r for r in resps if r.status == 412)
        assert (await first_error(loser))["code"] == "75007"
        after = [(await batch_entry(client, tenant, namespace, k))["data"] for k in "ab"]
        assert after == [b["data"], a["data"]]
