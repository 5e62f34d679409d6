"""Key values: byte-exact storage with the Content-Type, ETags, conditional writes, readiness."""

import asyncio
import os
import random
import uuid

import pytest

from service.db.queries import queries
from tests.support import error_code, key_url, put

BASE = "/v2/storage/kvs"


async def test_put_creates_with_201_then_replaces_with_200(client, tenant, namespace):
    first = await put(client, tenant, namespace, "k", b"one")
    assert first.status == 201
    assert await first.read() == b""
    second = await put(client, tenant, namespace, "k", b"two")
    assert second.status == 200
    assert first.headers["ETag"] != second.headers["ETag"]
    got = await client.get(key_url(namespace, "k"), headers=tenant.headers)
    assert await got.read() == b"two"
    assert got.headers["ETag"] == second.headers["ETag"]


CONTENT_TYPES = [
    "application/octet-stream",
    "image/png",
    "application/json",
    "text/plain; charset=ISO-8859-1",
    'multipart/x; boundary="a b"',
    "x" * 255,
]


@pytest.mark.parametrize("size", [0, 1, 2, 255, 4096, 65537, 1024 * 1024 - 1, 1024 * 1024])
async def test_random_binary_values_round_trip_byte_for_byte(client, tenant, namespace, size):
    value = os.urandom(size)
    content_type = random.choice(CONTENT_TYPES)
    resp = await put(client, tenant, namespace, f"v{size}", value, {"Content-Type": content_type})
    assert resp.status == 201
    got = await client.get(key_url(namespace, f"v{size}"), headers=tenant.headers)
    assert got.status == 200
    assert got.headers["Content-Type"] == content_type
    assert await got.read() == value


async def test_awkward_bytes_are_stored_verbatim(client, tenant, namespace):
    for i, value in enumerate([b"\x00", b"\xff\xfe\x00invalid utf-8 \xc3\x28", b"\r\n\r\n", b" "]):
        assert (await put(client, tenant, namespace, f"k{i}", value)).status == 201
        got = await client.get(key_url(namespace, f"k{i}"), headers=tenant.headers)
        assert await got.read() == value


async def test_a_value_without_content_type_is_octet_stream(client, tenant, namespace):
    resp = await client.put(
        key_url(namespace, "k"),
        data=b"x",
        headers=tenant.headers,
        skip_auto_headers=["Content-Type"],
    )
    assert resp.status == 201
    got = await client.get(key_url(namespace, "k"), headers=tenant.headers)
    assert got.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize("content_type", ["x" * 256, "text/plain; name=caf\u00e9", "a\tb"])
async def test_a_content_type_that_is_not_printable_ascii_up_to_255_is_400(
    client, tenant, namespace, content_type
):
    resp = await put(client, tenant, namespace, "k", b"x", {"Content-Type": content_type})
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["source"] == {"parameter": "Content-Type"}
    assert (await client.get(key_url(namespace, "k"), headers=tenant.headers)).status == 404


@pytest.mark.parametrize("encoding", ["gzip", "br", "identity, deflate"])
async def test_an_encoded_body_is_refused_with_415_not_decoded(client, tenant, namespace, encoding):
    resp = await put(client, tenant, namespace, "k", b"x", {"Content-Encoding": encoding})
    assert resp.status == 415
    assert await error_code(resp) == "10014"


async def test_head_gives_the_get_headers_without_a_body(client, tenant, namespace):
    await put(client, tenant, namespace, "k", b"12345", {"Content-Type": "image/png"})
    resp = await client.head(key_url(namespace, "k"), headers=tenant.headers)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "image/png"
    assert resp.headers["Content-Length"] == "5"
    assert resp.headers["ETag"]
    assert await resp.read() == b""
    missing = await client.head(key_url(namespace, "nope"), headers=tenant.headers)
    assert missing.status == 404


async def test_if_none_match_on_get_answers_304(client, tenant, namespace):
    etag = (await put(client, tenant, namespace, "k", b"v")).headers["ETag"]
    for header in (etag, f"W/{etag}", f'"999999", {etag}', "*"):
        resp = await client.get(
            key_url(namespace, "k"), headers={**tenant.headers, "If-None-Match": header}
        )
        assert resp.status == 304, header
        assert resp.headers["ETag"] == etag
        assert await resp.read() == b""
    resp = await client.get(
        key_url(namespace, "k"), headers={**tenant.headers, "If-None-Match": '"999999"'}
    )
    assert resp.status == 200 and await resp.read() == b"v"


async def test_delete_is_204_and_idempotent(client, tenant, namespace):
    await put(client, tenant, namespace, "k")
    for _ in range(2):
        resp = await client.delete(key_url(namespace, "k"), headers=tenant.headers)
        assert resp.status == 204
    assert (await client.get(key_url(namespace, "k"), headers=tenant.headers)).status == 404


async def test_get_of_a_missing_key_is_404(client, tenant, namespace):
    resp = await client.get(key_url(namespace, "missing"), headers=tenant.headers)
    assert resp.status == 404
    error = (await resp.json())["errors"][0]
    assert error["code"] == "10005" and error["source"] == {"parameter": "key"}


async def test_concurrent_creates_of_one_key_give_exactly_one_201(client, tenant, namespace):
    resps = await asyncio.gather(
        *(put(client, tenant, namespace, "race", str(i).encode()) for i in range(20))
    )
    assert sorted(r.status for r in resps) == [200] * 19 + [201]


async def test_if_none_match_star_creates_only(client, tenant, namespace):
    star = {"If-None-Match": "*"}
    assert (await put(client, tenant, namespace, "k", b"1", star)).status == 201
    resp = await put(client, tenant, namespace, "k", b"2", star)
    assert resp.status == 412
    assert await error_code(resp) == "75007"
    got = await client.get(key_url(namespace, "k"), headers=tenant.headers)
    assert await got.read() == b"1"


async def test_sixteen_simultaneous_create_only_puts_have_one_winner_whose_body_is_stored(
    client, tenant, namespace
):
    bodies = [f"body-{i}".encode() for i in range(16)]
    resps = await asyncio.gather(
        *(put(client, tenant, namespace, "cas", b, {"If-None-Match": "*"}) for b in bodies)
    )
    statuses = [r.status for r in resps]
    assert sorted(statuses) == [201] + [412] * 15
    winner = bodies[statuses.index(201)]
    got = await client.get(key_url(namespace, "cas"), headers=tenant.headers)
    assert await got.read() == winner


async def test_if_match_replaces_only_that_version(client, tenant, namespace):
    etag = (await put(client, tenant, namespace, "k", b"1")).headers["ETag"]
    updated = await put(client, tenant, namespace, "k", b"2", {"If-Match": etag})
    assert updated.status == 200
    stale = await put(client, tenant, namespace, "k", b"3", {"If-Match": etag})
    assert stale.status == 412
    weak = await put(
        client, tenant, namespace, "k", b"3", {"If-Match": f"W/{updated.headers['ETag']}"}
    )
    assert weak.status == 412  # If-Match compares strongly
    assert (await put(client, tenant, namespace, "k", b"4", {"If-Match": "*"})).status == 200
    got = await client.get(key_url(namespace, "k"), headers=tenant.headers)
    assert await got.read() == b"4"
    assert (await put(client, tenant, namespace, "new", b"x", {"If-Match": "*"})).status == 412
    assert (await client.get(key_url(namespace, "new"), headers=tenant.headers)).status == 404


async def test_simultaneous_compare_and_set_has_one_winner(client, tenant, namespace):
    etag = (await put(client, tenant, namespace, "k", b"0")).headers["ETag"]
    resps = await asyncio.gather(
        *(
            put(client, tenant, namespace, "k", f"{i}".encode(), {"If-Match": etag})
            for i in range(16)
        )
    )
    statuses = [r.status for r in resps]
    assert sorted(statuses) == [200] + [412] * 15
    got = await client.get(key_url(namespace, "k"), headers=tenant.headers)
    assert await got.read() == f"{statuses.index(200)}".encode()


async def test_if_match_on_delete(client, tenant, namespace):
    etag = (await put(client, tenant, namespace, "k")).headers["ETag"]
    stale = await client.delete(
        key_url(namespace, "k"), headers={**tenant.headers, "If-Match": '"999999"'}
    )
    assert stale.status == 412
    assert (await client.get(key_url(namespace, "k"), headers=tenant.headers)).status == 200
    ok = await client.delete(key_url(namespace, "k"), headers={**tenant.headers, "If-Match": etag})
    assert ok.status == 204
    gone = await client.delete(key_url(namespace, "k"), headers={**tenant.headers, "If-Match": "*"})
    assert gone.status == 412


async def test_if_none_match_on_put_takes_only_a_star(client, tenant, namespace):
    resp = await put(client, tenant, namespace, "k", b"x", {"If-None-Match": '"5"'})
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["source"] == {"parameter": "If-None-Match"}


async def test_if_match_with_if_none_match_star_can_never_hold(client, tenant, namespace):
    both = {"If-None-Match": "*"}
    assert (
        await put(client, tenant, namespace, "k", b"1", {**both, "If-Match": "*"})
    ).status == 412
    etag = (await put(client, tenant, namespace, "k", b"1")).headers["ETag"]
    assert (
        await put(client, tenant, namespace, "k", b"2", {**both, "If-Match": etag})
    ).status == 412
    got = await client.get(key_url(namespace, "k"), headers=tenant.headers)
    assert await got.read() == b"1"


@pytest.mark.parametrize("method", ["PUT", "GET", "HEAD", "DELETE"])
async def test_key_operations_need_a_ready_namespace(client, tenant, db, method):
    pending = (await (await client.post(BASE, json={"name": "p"}, headers=tenant.headers)).json())[
        "data"
    ]["id"]
    resp = await client.request(method, key_url(pending, "k"), headers=tenant.headers)
    assert resp.status == 409
    if method != "HEAD":
        assert await error_code(resp) == "75002"
    listing = await client.get(key_url(pending, listing=True), headers=tenant.headers)
    assert listing.status == 409


@pytest.mark.parametrize("method", ["PUT", "GET", "HEAD", "DELETE"])
async def test_a_deleting_namespace_refuses_key_operations(client, tenant, namespace, method):
    await put(client, tenant, namespace, "k")
    await client.delete(f"{BASE}/{namespace}", headers=tenant.headers)
    resp = await client.request(method, key_url(namespace, "k"), headers=tenant.headers)
    assert resp.status == 409


@pytest.mark.parametrize("method", ["PUT", "GET", "HEAD", "DELETE"])
async def test_another_tenants_namespace_is_a_404_like_a_missing_one(
    client, tenant, other_tenant, namespace, method
):
    await put(client, tenant, namespace, "k", b"secret")
    answers = []
    for ns in (namespace, uuid.uuid4()):
        resp = await client.request(
            method, key_url(ns, "k"), headers={**other_tenant.headers, "X-Request-Id": "same"}
        )
        body = (await resp.read()).replace(str(ns).encode(), b"ID")
        answers.append((resp.status, {k: v for k, v in resp.headers.items() if k != "Date"}, body))
    assert answers[0] == answers[1]
    assert answers[0][0] == 404
    got = await client.get(key_url(namespace, "k"), headers=tenant.headers)
    assert await got.read() == b"secret"


async def test_a_bad_namespace_id_is_400(client, tenant):
    resp = await client.put("/v2/storage/kvs/not-a-uuid/keys/k", data=b"x", headers=tenant.headers)
    assert resp.status == 400 and await error_code(resp) == "10006"


async def test_a_put_racing_the_final_removal_of_its_namespace_is_404_not_500(
    client, tenant, namespace, db
):
    """The PUT's snapshot still sees a ready namespace; the removal commits under it."""
    async with db.transaction() as remover:
        await remover.execute(queries().delete_namespace_row, namespace)
        racing = asyncio.create_task(put(client, tenant, namespace, "k"))
        await asyncio.sleep(0.3)  # the PUT is now waiting on the removed row's lock
        assert not racing.done()
    resp = await racing
    assert resp.status == 404
    assert await db.fetchval("SELECT count(*) FROM kv_entries") == 0


async def test_listing_another_tenants_namespace_is_a_404_like_a_missing_one(
    client, tenant, other_tenant, namespace
):
    await put(client, tenant, namespace, "k")
    answers = []
    for ns in (namespace, uuid.uuid4()):
        resp = await client.get(
            key_url(ns, listing=True), headers={**other_tenant.headers, "X-Request-Id": "same"}
        )
        answers.append((resp.status, (await resp.read()).replace(str(ns).encode(), b"ID")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 404
