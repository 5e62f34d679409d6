"""Batch reads (POST …/batch-read): entries in the order asked, null for missing or expired
keys, values carried as json, text or base64, and the request's limits."""

import base64
import json
import uuid
from datetime import datetime

import pytest

from service.domain.namespaces import create_namespace
from tests.support import key_url, put

MIB = 1024 * 1024


def url(namespace) -> str:
    return f"/v2/storage/kvs/{namespace}/batch-read"


async def read(client, tenant, namespace, body):
    return await client.post(url(namespace), json=body, headers=tenant.headers)


async def entries(client, tenant, namespace, keys, **fields) -> list:
    resp = await read(client, tenant, namespace, {"keys": keys, **fields})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["data"]


async def first_error(resp) -> dict:
    return (await resp.json())["errors"][0]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def expire(db, namespace, *keys):
    await db.execute(
        "UPDATE kv_entries SET expires_at = now() - interval '1 s'"
        " WHERE namespace_id = $1 AND key = ANY($2)",
        namespace,
        list(keys),
    )


async def test_entries_come_in_the_order_asked_with_null_for_missing_and_expired_keys(
    client, tenant, namespace, db
):
    for key in ("a", "b", "c"):
        await put(client, tenant, namespace, key, key.encode(), {"Content-Type": "text/plain"})
    await put(client, tenant, namespace, "old", b"x", params={"ttl_secs": "100"})
    await expire(db, namespace, "old")
    got = await entries(client, tenant, namespace, ["c", "missing", "a", "old", "c", "b"])
    assert [e and (e["key"], e["data"]) for e in got] == [
        ("c", "c"),
        None,
        ("a", "a"),
        None,
        ("c", "c"),
        ("b", "b"),
    ]
    assert got[0] == got[4]  # a repeated key is answered each time, identically


async def test_an_entry_carries_the_metadata_get_gives(client, tenant, namespace):
    await put(
        client, tenant, namespace, "t", b"12345", {"Content-Type": "text/csv"}, {"ttl_secs": "100"}
    )
    await put(client, tenant, namespace, "p", b"{}", {"Content-Type": "application/json"})
    t, p = await entries(client, tenant, namespace, ["t", "p"])
    for entry in (t, p):
        got = await client.get(key_url(namespace, entry["key"]), headers=tenant.headers)
        assert entry["etag"] == got.headers["ETag"]
        assert entry["content_type"] == got.headers["Content-Type"]
        assert entry["size_bytes"] == len(await got.read())
        assert entry["updated_at"].endswith("Z")
    assert set(t) == {
        "key",
        "etag",
        "content_type",
        "size_bytes",
        "updated_at",
        "expires_at",
        "encoding",
        "data",
    }
    got = await client.get(key_url(namespace, "t"), headers=tenant.headers)
    assert parse_time(t["expires_at"]) == parse_time(got.headers["X-Expires-At"])
    assert p["expires_at"] is None


async def test_metadata_only_leaves_out_encoding_and_data(client, tenant, namespace):
    await put(client, tenant, namespace, "k", b"value", {"Content-Type": "text/plain"})
    full, missing = await entries(client, tenant, namespace, ["k", "nope"])
    meta, missing_meta = await entries(client, tenant, namespace, ["k", "nope"], metadata_only=True)
    assert missing is None and missing_meta is None
    assert "encoding" not in meta and "data" not in meta
    assert meta == {k: v for k, v in full.items() if k not in ("encoding", "data")}


@pytest.mark.parametrize(
    ("content_type", "value", "encoding"),
    [
        ("application/json", b'{ "a" :  [1,  2.50, "x\\u00e9"] ,"b":null }', "json"),
        ("application/json; charset=utf-8", b" 12345678901234567890123 ", "json"),
        ("application/problem+json", b'[ "x" ]', "json"),
        ("application/json", b'{"a": 1', "base64"),  # not JSON
        ("application/json", b"", "base64"),
        ("text/plain; charset=utf-8", "h\u00e9llo \u2713\n".encode(), "text"),
        ("text/markdown", b"", "text"),
        ("text/plain; charset=ISO-8859-1", b"caf\xe9", "base64"),  # not UTF-8
        ("application/octet-stream", b"\x00\xff\xfe binary", "base64"),
        ("image/png", b"plain ascii", "base64"),
    ],
)
async def test_values_are_carried_as_json_text_or_base64(
    client, tenant, namespace, content_type, value, encoding
):
    await put(client, tenant, namespace, "k", value, {"Content-Type": content_type})
    resp = await read(client, tenant, namespace, {"keys": ["k"]})
    assert resp.status == 200
    (entry,) = (await resp.json())["data"]
    assert entry["encoding"] == encoding
    if encoding == "json":
        # The stored bytes are spliced verbatim, spacing and number spelling included.
        assert b'"data":' + value + b"}" in await resp.read()
        assert entry["data"] == json.loads(value)
    elif encoding == "text":
        assert entry["data"] == value.decode("utf-8")
    else:
        assert base64.b64decode(entry["data"], validate=True) == value


async def test_up_to_1000_keys_are_read_and_0_or_1001_are_422(client, tenant, namespace):
    await put(client, tenant, namespace, "k0999")
    got = await entries(client, tenant, namespace, [f"k{i:04d}" for i in range(1000)])
    assert len(got) == 1000 and got[:999] == [None] * 999 and got[999]["key"] == "k0999"
    for keys in ([], [f"k{i}" for i in range(1001)]):
        resp = await read(client, tenant, namespace, {"keys": keys})
        assert resp.status == 422
        error = await first_error(resp)
        assert (error["code"], error["source"]) == ("75016", {"pointer": "/keys"})


@pytest.mark.parametrize(
    ("body", "code", "pointer"),
    [
        ({"keys": ["ok", "bad key"]}, "10015", "/keys/1"),
        ({"keys": ["ok", "ok", 5]}, "10015", "/keys/2"),
        ({"keys": [None]}, "10015", "/keys/0"),
        ({"keys": ["_reserved"]}, "10015", "/keys/0"),
        ({"keys": ["x" * 257]}, "10015", "/keys/0"),
        ({"keys": [""]}, "10015", "/keys/0"),
        ({"keys": "k"}, "10015", "/keys"),
        ({}, "10004", "/keys"),
        ({"keys": ["k"], "metadata_only": "true"}, "10015", "/metadata_only"),
        ({"keys": ["k"], "values": True}, "10015", "/values"),
        (["k"], "10015", ""),
        ("k", "10015", ""),
        (5, "10015", ""),
        (b"not json", "10015", ""),
        (b'{"keys": ["k"],}', "10015", ""),
        (b'{"keys": ["k"], "metadata_only": NaN}', "10015", ""),
        (b'{"keys": ["\xff"]}', "10015", ""),  # not UTF-8
        (b"", "10015", ""),
    ],
)
async def test_bad_input_is_400_with_its_pointer(client, tenant, namespace, body, code, pointer):
    await put(client, tenant, namespace, "ok")
    if isinstance(body, bytes):
        headers = {**tenant.headers, "Content-Type": "application/json"}
        resp = await client.post(url(namespace), data=body, headers=headers)
    else:
        resp = await read(client, tenant, namespace, body)
    assert resp.status == 400
    error = await first_error(resp)
    assert (error["code"], error["source"]) == (code, {"pointer": pointer})


async def test_another_tenants_namespace_is_a_404_identical_to_a_missing_one(
    client, tenant, other_tenant, namespace
):
    await put(client, tenant, namespace, "k", b"secret")
    answers = []
    for ns in (namespace, uuid.uuid4()):
        resp = await client.post(
            url(ns), json={"keys": ["k"]}, headers={**other_tenant.headers, "X-Request-Id": "same"}
        )
        body = (await resp.read()).replace(str(ns).encode(), b"ID")
        answers.append((resp.status, {k: v for k, v in resp.headers.items() if k != "Date"}, body))
    assert answers[0] == answers[1]
    assert answers[0][0] == 404 and b'"10005"' in answers[0][2]


async def test_a_namespace_not_ready_is_409(client, tenant, namespace, db):
    pending = (await create_namespace(db, tenant.id, "pending")).id
    await client.delete(f"/v2/storage/kvs/{namespace}", headers=tenant.headers)
    for ns in (pending, namespace):  # pending, deleting
        resp = await read(client, tenant, ns, {"keys": ["k"]})
        assert resp.status == 409
        assert (await first_error(resp))["code"] == "75002"  # as single-key requests


async def test_a_body_over_1_mib_is_413(client, tenant, namespace):
    body = b'{"keys": ["k"]' + b" " * MIB + b"}"
    headers = {**tenant.headers, "Content-Type": "application/json"}
    resp = await client.post(url(namespace), data=body, headers=headers)
    assert resp.status == 413
    assert (await first_error(resp))["code"] == "75004"


async def test_values_found_over_16_mib_are_413_while_their_metadata_is_200(
    client, tenant, namespace
):
    """16 values of 1 MiB are exactly the 16 MiB an answer holds; one byte more is 413 (a
    repeated key counts each time it is answered). Metadata alone is always answered."""
    keys = [f"big{i:02d}" for i in range(16)]
    for key in keys:
        assert (await put(client, tenant, namespace, key, b"\x01" * MIB)).status == 201
    await put(client, tenant, namespace, "tiny", b"x")
    full = await entries(client, tenant, namespace, keys)
    assert [len(base64.b64decode(e["data"])) for e in full] == [MIB] * 16
    for over in ([*keys, "tiny"], ["big00"] * 17):
        resp = await read(client, tenant, namespace, {"keys": over})
        assert resp.status == 413
        error = await first_error(resp)
        assert (error["code"], error["source"]) == ("75004", {"pointer": "/keys"})
        meta = await entries(client, tenant, namespace, over, metadata_only=True)
        assert len(meta) == 17 and all("data" not in e for e in meta)
        assert sum(e["size_bytes"] for e in meta) > 16 * MIB
