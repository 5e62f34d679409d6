"""The two surfaces over the same namespaces: what quiva.ai's /storage/kv writes, /v2 reads
byte for byte, and the other way round (values that are no JSON object are carried, wrapped);
bucket settings, limits, purge and delete seen from both."""

import asyncio
import base64
import json
from contextlib import asynccontextmanager

import pytest

from service.worker.loop import Worker
from tests.api.quiva import BASE, create_bucket, entry_url, error_of, put_entry
from tests.support import drain, key_url, put

V2 = "/v2/storage/kvs"
JSON = {"Content-Type": "application/json"}


async def bucket_items(client, tenant) -> dict[str, dict]:
    """quiva's bucket list, by name."""
    resp = await client.get(BASE, headers=tenant.headers)
    assert resp.status == 200
    body = (await resp.json())["body"]
    assert body["results_total"] == len(body["results"])
    return {item["name"]: item for item in body["results"]}


async def bucket_id(client, tenant, bucket: str) -> str:
    """The bucket's namespace id on /v2."""
    return (await bucket_items(client, tenant))[bucket]["metadata"]["id"]


async def details(client, tenant, bucket: str) -> dict:
    resp = await client.get(f"{BASE}/{bucket}", headers=tenant.headers)
    assert resp.status == 200
    return (await resp.json())["body"]


async def v2_namespace(client, tenant, namespace_id) -> dict:
    resp = await client.get(f"{V2}/{namespace_id}", headers=tenant.headers)
    assert resp.status == 200
    return (await resp.json())["data"]


async def v2_value(client, tenant, namespace_id, key: str) -> tuple[bytes, str]:
    resp = await client.get(key_url(namespace_id, key), headers=tenant.headers)
    assert resp.status == 200
    return await resp.read(), resp.headers["Content-Type"]


async def put_raw(client, tenant, bucket: str, key: str, raw: bytes):
    """A quiva entry PUT of exactly these bytes."""
    return await client.put(entry_url(bucket, key), data=raw, headers={**tenant.headers, **JSON})


async def get_entry(client, tenant, bucket: str, key: str):
    return await client.get(entry_url(bucket, key), headers=tenant.headers)


async def entries(client, tenant, bucket: str, path: str = "entries", **params) -> dict:
    """A listing's (entries or search-by-key) results, by key."""
    resp = await client.get(f"{BASE}/{bucket}/{path}", params=params, headers=tenant.headers)
    assert resp.status == 200
    return {item["key"]: item for item in (await resp.json())["body"]["results"]}


def object_of(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    raw = b'{"a":"' + b"x" * (size - 8) + b'"}'
    assert len(raw) == size
    return raw


async def test_an_entry_written_through_quiva_is_read_through_v2_byte_for_byte(quiva, tenant):
    await create_bucket(quiva, tenant, "prefs")
    raw = b'{ "z" : 1,\n\t"a": [ 1 ,2 ],  "big": 123456789012345678901234567890 ,"e":"\\u00e9"}'
    resp = await put_raw(quiva, tenant, "prefs", "user/1", raw)
    assert resp.status == 200 and await resp.json() == {"message": "success"}
    namespace_id = await bucket_id(quiva, tenant, "prefs")
    assert (await v2_namespace(quiva, tenant, namespace_id))["name"] == "prefs"
    assert await v2_value(quiva, tenant, namespace_id, "user/1") == (raw, "application/json")
    # quiva reads the same bytes back as the entry's value.
    resp = await get_entry(quiva, tenant, "prefs", "user/1")
    assert raw in await resp.read()
    assert (await resp.json())["body"] == {"key": "user/1", "value": json.loads(raw)}


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
OBJECT = b'{"name": "J\xc3\xa9r\xc3\xb4me", "tags": ["a"], "n": 1}'


@pytest.mark.parametrize(
    ("content_type", "raw", "encoding"),
    [
        ("application/json", OBJECT, None),
        ("application/json; charset=utf-8", OBJECT, None),
        ("application/ld+json", OBJECT, None),
        ("application/json", b'[1, 2, {"a": null}]', "json"),
        ("application/json", b"123456789012345678901234567890", "json"),
        ("text/plain", "h\u00e9llo, w\u00f6rld\n".encode(), "text"),
        ("text/plain", b'{"a": 1}', "text"),
        ("text/plain", b"caf\xe9 \xff", "base64"),
        ("image/png", PNG, "base64"),
        ("application/json", b'{"a": ', "base64"),
    ],
    ids=[
        "object",
        "object-charset",
        "object-ld+json",
        "array",
        "big-number",
        "text",
        "object-as-text",
        "invalid-utf8-text",
        "png",
        "invalid-json",
    ],
)
async def test_a_key_written_through_v2_reads_through_quiva_as_object_or_wrapped(
    quiva, tenant, content_type, raw, encoding
):
    await create_bucket(quiva, tenant, "mixed")
    namespace_id = await bucket_id(quiva, tenant, "mixed")
    resp = await put(quiva, tenant, namespace_id, "user-7", raw, {"Content-Type": content_type})
    assert resp.status == 201
    resp = await get_entry(quiva, tenant, "mixed", "user-7")
    assert resp.status == 200
    found = [
        (await resp.json())["body"],
        (await entries(quiva, tenant, "mixed"))["user-7"],
        (await entries(quiva, tenant, "mixed", "search-by-key", search="user*"))["user-7"],
    ]
    if encoding is None:
        expected = {"key": "user-7", "value": json.loads(raw)}
    else:
        if encoding == "json":
            data = json.loads(raw)
        elif encoding == "text":
            data = raw.decode()
        else:
            data = base64.b64encode(raw).decode()
        carried = {"content_type": content_type, "encoding": encoding, "data": data}
        expected = {"key": "user-7", "value": carried, "wrapped": True}
    assert found == [expected] * 3
    if encoding == "base64":
        assert base64.b64decode(found[0]["value"]["data"]) == raw


SETTINGS = ("description", "max_bytes", "max_value_size")


async def test_v2_shows_a_quiva_bucket_and_quiva_shows_settings_changed_through_v2(quiva, tenant):
    given = {"description": "Preferences", "max_bytes": 5000, "max_value_size": 200}
    await create_bucket(quiva, tenant, "User_Prefs", **given)
    resp = await quiva.get(V2, headers=tenant.headers)
    (listed,) = (await resp.json())["data"]
    assert listed["name"] == "User_Prefs" and listed["status"] == "provision_ok"
    assert {k: listed[k] for k in SETTINGS} == given
    got = await v2_namespace(quiva, tenant, listed["id"])
    assert got["name"] == "User_Prefs" and {k: got[k] for k in SETTINGS} == given
    # /v2 itself still refuses the name.
    resp = await quiva.post(V2, json={"name": "User_Prefs"}, headers=tenant.headers)
    assert resp.status == 400

    changed = {"description": "Changed", "max_bytes": 9000, "max_value_size": 300}
    resp = await quiva.patch(f"{V2}/{listed['id']}", json=changed, headers=tenant.headers)
    assert resp.status == 200
    body = await details(quiva, tenant, "User_Prefs")
    assert body["status"]["description"] == "Changed"
    assert (body["config"]["max_bytes"], body["config"]["max_value_size"]) == (9000, 300)
    assert (await bucket_items(quiva, tenant))["User_Prefs"]["description"] == "Changed"

    resp = await quiva.put(f"{BASE}/User_Prefs", json={"max_bytes": -1}, headers=tenant.headers)
    assert resp.status == 200
    body = await details(quiva, tenant, "User_Prefs")
    assert (body["config"]["max_bytes"], body["config"]["max_value_size"]) == (-1, 300)
    got = await v2_namespace(quiva, tenant, listed["id"])
    assert {k: got[k] for k in SETTINGS} == {**changed, "max_bytes": None}
    resp = await quiva.put(
        f"{BASE}/User_Prefs", json={"max_value_size": -1}, headers=tenant.headers
    )
    assert resp.status == 200
    assert (await details(quiva, tenant, "User_Prefs"))["config"]["max_value_size"] == 1048576
    assert (await v2_namespace(quiva, tenant, listed["id"]))["max_value_size"] is None


async def assert_unavailable(resp) -> None:
    assert (await error_of(resp))[:2] == (503, "unavailable")
    assert resp.headers["Retry-After"].isdigit()


async def test_a_v2_namespace_not_yet_provisioned_is_unavailable_to_quiva_until_it_is(
    client, tenant, worker
):
    resp = await client.post(V2, json={"name": "later"}, headers=tenant.headers)
    assert resp.status == 201
    created = (await resp.json())["data"]
    item = (await bucket_items(client, tenant))["later"]
    assert item["metadata"] == {"id": created["id"], "status": "pending"}
    await assert_unavailable(await get_entry(client, tenant, "later", "k"))
    await assert_unavailable(await put_raw(client, tenant, "later", "k", b'{"a": 1}'))

    await drain(worker)
    assert (await bucket_items(client, tenant))["later"]["metadata"]["status"] == "provision_ok"
    assert (await error_of(await get_entry(client, tenant, "later", "k")))[:2] == (
        404,
        "not_found",
    )
    await put_entry(client, tenant, "later", "k", {"a": 1})
    resp = await get_entry(client, tenant, "later", "k")
    assert (await resp.json())["body"] == {"key": "k", "value": {"a": 1}}


async def chunks(raw: bytes):
    for i in range(0, len(raw), 7):
        yield raw[i : i + 7]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_entry_over_max_value_size_is_refused_and_one_at_it_is_stored(
    quiva, tenant, chunked
):
    await create_bucket(quiva, tenant, "small", max_value_size=100)

    async def write(raw: bytes):
        body = chunks(raw) if chunked else raw
        return await quiva.put(
            entry_url("small", "k"), data=body, headers={**tenant.headers, **JSON}
        )

    status, word, message = await error_of(await write(object_of(101)))
    assert (status, word) == (400, "validation_error") and "100 bytes" in message
    assert (await error_of(await get_entry(quiva, tenant, "small", "k")))[0] == 404
    assert (await write(object_of(100))).status == 200
    namespace_id = await bucket_id(quiva, tenant, "small")
    assert await v2_value(quiva, tenant, namespace_id, "k") == (object_of(100), "application/json")


async def test_writes_past_max_bytes_are_refused_until_an_entry_is_deleted(quiva, tenant):
    await create_bucket(quiva, tenant, "capped", max_bytes=50)
    namespace_id = await bucket_id(quiva, tenant, "capped")
    for key in ("a", "b"):
        assert (await put_raw(quiva, tenant, "capped", key, object_of(20))).status == 200
    # A new entry, and an overwrite that grows, would each take the bucket past 50 bytes.
    for key, size in (("c", 20), ("a", 31)):
        status, word, message = await error_of(
            await put_raw(quiva, tenant, "capped", key, object_of(size))
        )
        assert (status, word) == (400, "validation_error") and "full" in message
    assert (await error_of(await get_entry(quiva, tenant, "capped", "c")))[0] == 404
    assert (await v2_value(quiva, tenant, namespace_id, "a"))[0] == object_of(20)
    usage = (await v2_namespace(quiva, tenant, namespace_id))["usage"]
    assert usage == {"keys": 2, "bytes": 40}
    assert (await details(quiva, tenant, "capped"))["status"]["bytes"] == 40

    resp = await quiva.delete(entry_url("capped", "b"), headers=tenant.headers)
    assert resp.status == 200
    assert (await put_raw(quiva, tenant, "capped", "c", object_of(20))).status == 200
    assert (await v2_value(quiva, tenant, namespace_id, "c"))[0] == object_of(20)
    usage = (await v2_namespace(quiva, tenant, namespace_id))["usage"]
    assert usage == {"keys": 2, "bytes": 40}


async def test_purge_removes_every_entry_and_keeps_the_settings(quiva, tenant):
    await create_bucket(quiva, tenant, "purged", max_bytes=60)
    for key in ("a", "b/c", "d"):
        assert (await put_raw(quiva, tenant, "purged", key, object_of(20))).status == 200
    assert (await error_of(await put_raw(quiva, tenant, "purged", "e", object_of(20))))[0] == 400
    resp = await quiva.delete(f"{BASE}/purged/purge", headers=tenant.headers)
    assert resp.status == 200 and await resp.json() == {"message": "success"}
    assert await entries(quiva, tenant, "purged") == {}
    namespace_id = await bucket_id(quiva, tenant, "purged")
    assert (await v2_namespace(quiva, tenant, namespace_id))["usage"] == {"keys": 0, "bytes": 0}
    assert (await details(quiva, tenant, "purged"))["config"]["max_bytes"] == 60
    # The full bucket has room again, as much as before and no more.
    for key in ("x", "y", "z"):
        assert (await put_raw(quiva, tenant, "purged", key, object_of(20))).status == 200
    assert (await error_of(await put_raw(quiva, tenant, "purged", "w", b"{}")))[0] == 400
    assert list(await entries(quiva, tenant, "purged")) == ["x", "y", "z"]


@asynccontextmanager
async def worker_running(db, settings):
    """A worker provisioning what is created inside the block, and stopped after it."""
    worker = Worker(db, settings)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stop()
        await task


async def test_a_deleted_bucket_is_gone_at_once_and_its_name_can_be_created_again(
    client, tenant, db, settings
):
    async with worker_running(db, settings):
        await create_bucket(client, tenant, "gone", description="old", max_bytes=1000)
    await put_entry(client, tenant, "gone", "k", {"old": True})
    old_id = await bucket_id(client, tenant, "gone")
    # No worker runs: the namespace stays `deleting` rather than being removed.
    resp = await client.delete(f"{BASE}/gone", headers=tenant.headers)
    assert resp.status == 200 and await resp.json() == {"message": "success"}
    assert "gone" not in await bucket_items(client, tenant)
    resp = await client.get(f"{BASE}/gone", headers=tenant.headers)
    assert (await error_of(resp))[:2] == (404, "not_found")
    assert (await error_of(await get_entry(client, tenant, "gone", "k")))[:2] == (404, "not_found")
    assert (await v2_namespace(client, tenant, old_id))["status"] == "deleting"

    async with worker_running(db, settings):
        await create_bucket(client, tenant, "gone")
    assert await bucket_id(client, tenant, "gone") != old_id
    assert await entries(client, tenant, "gone") == {}
    body = await details(client, tenant, "gone")
    assert (body["status"]["description"], body["config"]["max_bytes"]) == ("", -1)
    assert (await error_of(await get_entry(client, tenant, "gone", "k")))[0] == 404
