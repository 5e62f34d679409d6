"""quiva.ai's secrets surface at /secrets: put, list (names, or values with reveal), get and
delete; the same secrets as /v2/secrets; errors as `{"error": "<sentence>"}`."""

import asyncio
import json

import pytest
from yarl import URL

from service.web.app import create_app
from tests.support import make_settings
from tests.support.secrets import (
    QUIVA,
    quiva_error,
    quiva_url,
    read,
    secret_names,
    secret_url,
    status_of,
    version_rows,
    write,
)

SUCCESS = {"message": "success"}


async def put(client, tenant, key, value):
    """A PUT /secrets of {"key", "value"}; the response."""
    return await client.put(QUIVA, json={"key": key, "value": value}, headers=tenant.headers)


async def store(client, tenant, key: str, value: str) -> None:
    resp = await put(client, tenant, key, value)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == SUCCESS


async def listed(client, tenant, **params) -> list:
    resp = await client.get(QUIVA, params=params, headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert isinstance(body, list)
    return body


async def got(client, tenant, key: str) -> dict:
    resp = await client.get(quiva_url(key), headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_put_is_success_and_reads_back_as_key_and_value(client, tenant):
    await store(client, tenant, "stripe/api-key", "sk_live_123")
    assert await got(client, tenant, "stripe/api-key") == {
        "key": "stripe/api-key",
        "value": "sk_live_123",
    }
    await store(client, tenant, "stripe/api-key", "sk_live_456")
    assert await got(client, tenant, "stripe/api-key") == {
        "key": "stripe/api-key",
        "value": "sk_live_456",
    }


@pytest.mark.parametrize("value", ["", "a\x00b", "ünïcødé 😀", '{"json": "inside"}', "x" * 65536])
async def test_values_round_trip_exactly(client, tenant, value):
    await store(client, tenant, "k", value)
    assert (await got(client, tenant, "k"))["value"] == value


@pytest.mark.parametrize("key", [".", "..", "a/../b", "./x", "/lead", "trail/", "a//b", "k" * 256])
async def test_every_name_of_key_characters_round_trips(client, tenant, key):
    await store(client, tenant, key, f"value of {key}")
    assert await got(client, tenant, key) == {"key": key, "value": f"value of {key}"}
    assert await listed(client, tenant) == [{"key": key}]
    resp = await client.delete(quiva_url(key), headers=tenant.headers)
    assert resp.status == 200
    assert await listed(client, tenant) == []


async def test_an_encoded_slash_names_the_same_secret_as_a_slash(client, tenant):
    await store(client, tenant, "user/1", "v")
    for path in ("/secrets/user/1", "/secrets/user%2F1", "/secrets/user%2f1"):
        resp = await client.get(URL(path, encoded=True), headers=tenant.headers)
        assert await resp.json() == {"key": "user/1", "value": "v"}, path


async def test_a_listing_is_a_bare_array_of_keys_in_key_order_without_values(client, tenant):
    keys = ["b", "A", "a/1", "a-1", "a.1", "a=1", "Z9", "0", "a_1", "a"]
    for key in keys:
        await store(client, tenant, key, f"value-of-{key}")
    resp = await client.get(QUIVA, headers=tenant.headers)
    assert b"value-of-" not in await resp.read()
    assert await resp.json() == [{"key": key} for key in sorted(keys, key=str.encode)]
    for flag in ("false", "0"):
        assert await listed(client, tenant, reveal=flag) == [
            {"key": key} for key in sorted(keys, key=str.encode)
        ]


async def test_reveal_lists_the_current_values(client, tenant):
    await store(client, tenant, "b", "bee")
    await store(client, tenant, "a", "old")
    await store(client, tenant, "a", "ay")
    for flag in ("true", "1"):
        assert await listed(client, tenant, reveal=flag) == [
            {"key": "a", "value": "ay"},
            {"key": "b", "value": "bee"},
        ]


async def test_limit_is_honoured_with_and_without_reveal(client, tenant):
    keys = [f"k{i}" for i in range(5)]
    for key in reversed(keys):
        await store(client, tenant, key, key.upper())
    assert await listed(client, tenant, limit="2") == [{"key": "k0"}, {"key": "k1"}]
    assert await listed(client, tenant, limit="1", reveal="true") == [{"key": "k0", "value": "K0"}]
    assert len(await listed(client, tenant, limit="5")) == 5
    assert len(await listed(client, tenant, limit="100000")) == 5
    assert [s["value"] for s in await listed(client, tenant, limit="3", reveal="true")] == [
        "K0",
        "K1",
        "K2",
    ]


async def test_a_listing_without_limit_gives_the_first_100(client, tenant):
    keys = [f"k{i:03d}" for i in range(101)]
    for key in keys:
        await store(client, tenant, key, "v")
    assert await listed(client, tenant) == [{"key": key} for key in keys[:100]]
    assert len(await listed(client, tenant, reveal="true")) == 100
    assert len(await listed(client, tenant, limit="101")) == 101


async def test_a_listing_past_one_page_of_names_gives_every_secret(client, tenant, db):
    """Names are read 1000 a query: a limit past that still gets them all, in order."""
    # Straight into the table (a listing without reveal opens no value): 1003 PUTs take long.
    await db.execute(
        "INSERT INTO secrets (tenant_id, name, version, revision) "
        "SELECT $1, 'k' || lpad(i::text, 4, '0'), 1, nextval('secret_revisions') "
        "FROM generate_series(0, 1002) i",
        tenant.id,
    )
    keys = [f"k{i:04d}" for i in range(1003)]
    assert await listed(client, tenant, limit="1003") == [{"key": key} for key in keys]
    assert await listed(client, tenant, limit="5000") == [{"key": key} for key in keys]
    assert await listed(client, tenant, limit="1001") == [{"key": key} for key in keys[:1001]]


async def test_a_revealing_listing_past_8_mib_of_values_is_400_saying_how_many_fit(client, tenant):
    """Each value is counted as stored, 28 bytes more than its UTF-8: 127 values of 64 KiB
    fit in 8 MiB, 128 do not."""
    value = "v" * 65536
    names = [f"big{i:03d}" for i in range(128)]
    for start in range(0, len(names), 16):
        await asyncio.gather(*(store(client, tenant, n, value) for n in names[start : start + 16]))
    resp = await client.get(
        QUIVA, params={"reveal": "true", "limit": "128"}, headers=tenant.headers
    )
    assert resp.status == 400
    message = await quiva_error(resp)
    assert "at most 127" in message and "'limit'" in message
    assert value not in message
    found = await listed(client, tenant, reveal="true", limit="127")
    assert [s["key"] for s in found] == names[:127]
    assert all(s["value"] == value for s in found)
    assert len(await listed(client, tenant, limit="128")) == 128  # names only: no budget


async def test_fields_besides_key_and_value_are_ignored(client, tenant):
    resp = await client.put(
        QUIVA, json={"key": "k", "value": "v", "description": "x"}, headers=tenant.headers
    )
    assert resp.status == 200 and await resp.json() == SUCCESS
    assert await got(client, tenant, "k") == {"key": "k", "value": "v"}


async def test_a_tenant_without_secrets_lists_an_empty_array(client, tenant):
    assert await listed(client, tenant) == []
    assert await listed(client, tenant, reveal="true") == []


async def test_a_delete_is_success_then_the_secret_is_not_found(client, tenant, db):
    await store(client, tenant, "k", "v1")
    await store(client, tenant, "k", "v2")
    await store(client, tenant, "other", "v")
    resp = await client.delete(quiva_url("k"), headers=tenant.headers)
    assert resp.status == 200 and await resp.json() == SUCCESS
    for method in ("GET", "DELETE"):
        resp = await client.request(method, quiva_url("k"), headers=tenant.headers)
        assert resp.status == 404
        assert await resp.json() == {"error": "resource not found"}
    assert await listed(client, tenant) == [{"key": "other"}]
    assert await version_rows(db, tenant.id, "k") == []


async def test_a_missing_secret_is_resource_not_found(client, tenant):
    for method in ("GET", "DELETE"):
        resp = await client.request(method, quiva_url("never"), headers=tenant.headers)
        assert resp.status == 404
        assert await resp.json() == {"error": "resource not found"}


async def test_a_secret_written_on_either_surface_reads_on_the_other(client, tenant):
    await store(client, tenant, "from-quiva", "q1")
    data = await read(client, tenant, "from-quiva")
    assert (data["value"], data["version"]) == ("q1", 1)
    await store(client, tenant, "from-quiva", "q2")
    data = await read(client, tenant, "from-quiva")
    assert (data["value"], data["version"]) == ("q2", 2)
    assert (await read(client, tenant, "from-quiva", version="1"))["value"] == "q1"

    await write(client, tenant, "from-v2", "t1")
    assert await got(client, tenant, "from-v2") == {"key": "from-v2", "value": "t1"}
    await write(client, tenant, "from-v2", "t2")
    assert await got(client, tenant, "from-v2") == {"key": "from-v2", "value": "t2"}
    assert await listed(client, tenant, reveal="true") == [
        {"key": "from-quiva", "value": "q2"},
        {"key": "from-v2", "value": "t2"},
    ]
    v2 = await (await client.get("/v2/secrets", headers=tenant.headers)).json()
    assert [item["name"] for item in v2["data"]] == ["from-quiva", "from-v2"]

    # Deleted on one surface, gone from both.
    assert (await client.delete(secret_url("from-quiva"), headers=tenant.headers)).status == 204
    resp = await client.get(quiva_url("from-quiva"), headers=tenant.headers)
    assert resp.status == 404
    resp = await client.delete(quiva_url("from-v2"), headers=tenant.headers)
    assert resp.status == 200
    assert await status_of(client, tenant, "from-v2") == 404
    assert await listed(client, tenant) == []


async def test_a_put_past_the_tenants_limit_is_refused_and_stores_nothing(
    make_client, database_url, tenant, db
):
    client = await make_client(create_app(make_settings(database_url, secrets_per_tenant=2)))
    await store(client, tenant, "a", "v")
    await store(client, tenant, "b", "v")
    resp = await put(client, tenant, "c", "v")
    assert resp.status == 400
    assert "2" in await quiva_error(resp)
    assert await secret_names(db, tenant.id) == ["a", "b"]
    await store(client, tenant, "a", "updated")
    assert (await got(client, tenant, "a"))["value"] == "updated"


def raw(body) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


BAD_PUTS = [
    (b"", "JSON"),
    (b"nope", "JSON"),
    (b'{"key": "k", ', "JSON"),
    (b"[]", "object"),
    (b'[{"key": "k", "value": "v"}]', "object"),
    (b'"k"', "object"),
    ({}, "'key' is required"),
    ({"value": "v"}, "'key' is required"),
    ({"key": "k"}, "'value' is required"),
    ({"key": 1, "value": "v"}, "'key'"),
    ({"key": None, "value": "v"}, "'key'"),
    ({"key": ["k"], "value": "v"}, "'key'"),
    ({"key": "k", "value": 1}, "string"),
    ({"key": "k", "value": None}, "string"),
    ({"key": "k", "value": {"a": 1}}, "string"),
    ({"key": "k", "value": ["v"]}, "string"),
    ({"key": "k", "value": True}, "string"),
    (b'{"key": "k", "value": "\\ud800"}', "surrogate"),
    ({"key": "_reserved", "value": "v"}, "reserved"),
    ({"key": "", "value": "v"}, "name"),
    ({"key": "a b", "value": "v"}, "name"),
    ({"key": "a~b", "value": "v"}, "name"),
    ({"key": "x" * 257, "value": "v"}, "name"),
    ({"key": "k", "value": "x" * 65537}, "65536"),
    ({"key": "k", "value": "é" * 32768 + "a"}, "65536"),
]


@pytest.mark.parametrize(("body", "says"), BAD_PUTS)
async def test_a_bad_put_is_400_with_a_sentence_and_stores_nothing(client, tenant, db, body, says):
    await store(client, tenant, "k", "original")
    resp = await client.put(QUIVA, data=raw(body), headers=tenant.headers)
    assert resp.status == 400, await resp.text()
    message = await quiva_error(resp)
    assert says in message, message
    assert await got(client, tenant, "k") == {"key": "k", "value": "original"}
    assert await secret_names(db, tenant.id) == ["k"]
    assert await version_rows(db, tenant.id, "k") == [1]


@pytest.mark.parametrize("key", ["_x", "a b", "a~b", "x" * 257, "é", ""])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_an_invalid_key_in_the_path_is_400(client, tenant, method, key):
    resp = await client.request(method, quiva_url(key), headers=tenant.headers)
    assert resp.status == 400, await resp.text()
    await quiva_error(resp)


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "abc"}, {"limit": "-1"}, {"reveal": "yes"}, {"reveal": ""}]
)
async def test_bad_listing_parameters_are_400(client, tenant, params):
    await store(client, tenant, "k", "v")
    resp = await client.get(QUIVA, params=params, headers=tenant.headers)
    assert resp.status == 400, await resp.text()
    message = await quiva_error(resp)
    assert next(iter(params)) in message


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", QUIVA),
        ("DELETE", QUIVA),
        ("PATCH", QUIVA),
        ("PUT", str(quiva_url("k"))),
        ("POST", str(quiva_url("k"))),
        ("PATCH", str(quiva_url("k"))),
    ],
)
async def test_an_unknown_method_answers_in_the_error_shape(client, tenant, method, url):
    await store(client, tenant, "k", "v")
    resp = await client.request(
        method, url, json={"key": "k", "value": "changed"}, headers=tenant.headers
    )
    assert resp.status == 405, await resp.text()
    await quiva_error(resp)
    assert "Allow" in resp.headers
    assert (await got(client, tenant, "k"))["value"] == "v"


async def test_without_valid_credentials_every_route_is_401_in_the_error_shape(client, tenant):
    await store(client, tenant, "k", "v")
    for method, url in (
        ("GET", QUIVA),
        ("PUT", QUIVA),
        ("GET", quiva_url("k")),
        ("DELETE", quiva_url("k")),
    ):
        for headers in ({}, {"Authorization": "Bearer kvs_nope"}):
            resp = await client.request(
                method, url, json={"key": "k", "value": "changed"}, headers=headers
            )
            assert resp.status == 401, (method, url)
            await quiva_error(resp)
            assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert await got(client, tenant, "k") == {"key": "k", "value": "v"}
