"""Secrets on /v2/secrets: versions, ETags and check-and-set, listing, version trimming, the
tenant's limit, and bad input, each refusal in the Telnyx error shape and storing nothing."""

import asyncio
import base64
import re
from datetime import datetime

import pytest
from yarl import URL

from service.web.app import create_app
from tests.support import make_settings
from tests.support.secrets import (
    V2,
    put_secret,
    read,
    secret_names,
    secret_url,
    status_of,
    telnyx_error,
    version_rows,
    write,
)

ETAG = re.compile(r'"[0-9]+"')
METADATA = {"record_type", "name", "version", "created_at", "updated_at"}


def when(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def listing(client, tenant, **params) -> dict:
    resp = await client.get(V2, params=params, headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def walk(client, tenant, **params) -> list[str]:
    """Every name a listing gives, following its cursors; each page within its limit."""
    names, cursor = [], None
    while True:
        page = await listing(client, tenant, **params, **({"cursor": cursor} if cursor else {}))
        if "limit" in params:
            assert len(page["data"]) <= int(params["limit"])
        names += [item["name"] for item in page["data"]]
        assert page["meta"]["has_more"] == (page["meta"]["cursor"] is not None)
        cursor = page["meta"]["cursor"]
        if cursor is None:
            return names


# --- reading and writing ---------------------------------------------------------------------


async def test_a_create_is_201_with_an_etag_and_the_metadata_never_the_value(client, tenant):
    resp = await put_secret(client, tenant, "db/password", "hunter2")
    assert resp.status == 201
    assert ETAG.fullmatch(resp.headers["ETag"])
    data = (await resp.json())["data"]
    assert set(data) == METADATA
    assert (data["record_type"], data["name"], data["version"]) == ("secret", "db/password", 1)
    assert when(data["created_at"]) == when(data["updated_at"])
    assert b"hunter2" not in await resp.read()


async def test_an_update_is_200_with_version_2_and_a_new_etag(client, tenant):
    first = await put_secret(client, tenant, "s", "one")
    created = (await first.json())["data"]
    second = await put_secret(client, tenant, "s", "two")
    assert second.status == 200
    data = (await second.json())["data"]
    assert set(data) == METADATA
    assert data["version"] == 2
    assert data["created_at"] == created["created_at"]
    assert when(data["updated_at"]) >= when(created["updated_at"])
    assert ETAG.fullmatch(second.headers["ETag"])
    assert second.headers["ETag"] != first.headers["ETag"]


async def test_a_get_gives_the_current_value_and_its_metadata(client, tenant):
    await write(client, tenant, "api-key", "first value")
    etag = await write(client, tenant, "api-key", "zweiter Wert, ünïcødé 🔑")
    resp = await client.get(secret_url("api-key"), headers=tenant.headers)
    assert resp.status == 200
    assert resp.headers["ETag"] == etag
    data = (await resp.json())["data"]
    assert set(data) == METADATA | {"value", "current_version", "version_created_at"}
    assert data["value"] == "zweiter Wert, ünïcødé 🔑"
    assert (data["name"], data["record_type"]) == ("api-key", "secret")
    assert data["version"] == data["current_version"] == 2
    assert when(data["created_at"]) <= when(data["version_created_at"])
    assert data["version_created_at"] == data["updated_at"]


async def test_version_1_still_reads_the_old_value_with_its_own_etag(client, tenant):
    old = await write(client, tenant, "s", "old")
    new = await write(client, tenant, "s", "new")
    resp = await client.get(secret_url("s"), params={"version": "1"}, headers=tenant.headers)
    assert resp.status == 200
    assert resp.headers["ETag"] == old
    data = (await resp.json())["data"]
    assert (data["value"], data["version"], data["current_version"]) == ("old", 1, 2)
    assert data["version_created_at"] == data["created_at"]
    current = await read(client, tenant, "s", version="2")
    assert (current["value"], current["version"]) == ("new", 2)
    resp = await client.get(secret_url("s"), headers=tenant.headers)
    assert resp.headers["ETag"] == new


async def test_a_version_never_written_is_404_naming_the_version(client, tenant):
    await write(client, tenant, "s", "v")
    resp = await client.get(secret_url("s"), params={"version": "2"}, headers=tenant.headers)
    assert resp.status == 404
    error = await telnyx_error(resp)
    assert error["code"] == "10005" and error["source"] == {"parameter": "version"}


async def test_a_missing_secret_is_404_naming_the_secret(client, tenant):
    for params in ({}, {"version": "1"}):
        resp = await client.get(secret_url("nothing"), params=params, headers=tenant.headers)
        assert resp.status == 404
        error = await telnyx_error(resp)
        assert error["code"] == "10005" and error["source"] == {"parameter": "name"}


NAMES = [
    "a",
    "0",
    "-",
    "=",
    ".",
    "..",
    "x" * 256,
    "a_" + "b" * 254,
    "a/b/c",
    "a//b",
    "a.b",
    "a/../b",
    "./x",
    "/lead",
    "trail/",
    "A-Z_0=9.x/y",
]


@pytest.mark.parametrize("name", NAMES)
async def test_every_name_of_key_characters_round_trips(client, tenant, name):
    resp = await put_secret(client, tenant, name, f"value of {name}")
    assert resp.status == 201
    assert (await resp.json())["data"]["name"] == name
    assert (await read(client, tenant, name))["value"] == f"value of {name}"
    assert [item["name"] for item in (await listing(client, tenant))["data"]] == [name]


@pytest.mark.parametrize(
    "value",
    ["", " ", "\x00nul\x00", "line\r\nbreak", '"quoted" \\ back', "é" * 100, "😀🔐", "\u2028"],
)
async def test_values_round_trip_exactly(client, tenant, value):
    await write(client, tenant, "s", value)
    assert (await read(client, tenant, "s"))["value"] == value


async def test_a_delete_is_204_then_the_secret_and_all_its_versions_are_gone(client, tenant, db):
    await write(client, tenant, "s", "one")
    await write(client, tenant, "s", "two")
    await write(client, tenant, "kept", "x")
    resp = await client.delete(secret_url("s"), headers=tenant.headers)
    assert resp.status == 204
    assert await resp.read() == b""
    for params in ({}, {"version": "1"}, {"version": "2"}):
        assert await status_of(client, tenant, "s", **params) == 404
    assert await walk(client, tenant) == ["kept"]
    assert await version_rows(db, tenant.id, "s") == []
    again = await client.delete(secret_url("s"), headers=tenant.headers)
    assert again.status == 204
    # Created again, it starts over at version 1.
    resp = await put_secret(client, tenant, "s", "three")
    assert resp.status == 201 and (await resp.json())["data"]["version"] == 1
    assert await version_rows(db, tenant.id, "s") == [1]
    assert (await read(client, tenant, "kept"))["value"] == "x"


async def test_an_encoded_slash_names_the_same_secret_as_a_slash(client, tenant):
    resp = await client.put(
        URL(f"{V2}/user%2F1", encoded=True), json={"value": "v"}, headers=tenant.headers
    )
    assert resp.status == 201
    resp = await client.get(URL(f"{V2}/user/1", encoded=True), headers=tenant.headers)
    assert (await resp.json())["data"]["value"] == "v"
    resp = await client.put(
        URL(f"{V2}/user%2f1", encoded=True), json={"value": "w"}, headers=tenant.headers
    )
    assert resp.status == 200
    assert [item["name"] for item in (await listing(client, tenant))["data"]] == ["user/1"]


# --- listing ------------------------------------------------------------------------------------


async def test_a_listing_gives_metadata_in_byte_order_never_values(client, tenant):
    names = ["b", "B", "a/b", "a0", "a", "Z", "0", "-", "=", "a.b", "a_b", "z"]
    for name in names:
        await write(client, tenant, name, f"value-of-{name}")
    await write(client, tenant, "a", "second")
    resp = await client.get(V2, headers=tenant.headers)
    assert b"value-of-" not in await resp.read() and b"second" not in await resp.read()
    page = await resp.json()
    assert page["meta"] == {"cursor": None, "has_more": False}
    assert [item["name"] for item in page["data"]] == sorted(names, key=str.encode)
    for item in page["data"]:
        assert set(item) == METADATA and item["record_type"] == "secret"
    assert {item["name"]: item["version"] for item in page["data"]}["a"] == 2


async def test_cursor_pages_cover_every_secret_once(client, tenant):
    names = [f"s-{i:02d}" for i in range(11)]
    for name in reversed(names):
        await write(client, tenant, name, "v")
    first = await listing(client, tenant, limit="4")
    assert [item["name"] for item in first["data"]] == names[:4]
    assert first["meta"]["has_more"] is True and first["meta"]["cursor"]
    second = await listing(client, tenant, limit="4", cursor=first["meta"]["cursor"])
    assert [item["name"] for item in second["data"]] == names[4:8]
    for limit in ("1", "3", "4", "10", "11", "1000", "5000"):
        assert await walk(client, tenant, limit=limit) == names
    exact = await listing(client, tenant, limit="11")
    assert exact["meta"] == {"cursor": None, "has_more": False}


async def test_a_prefix_lists_only_the_names_under_it_and_pages_within_it(client, tenant):
    names = ["app", "app/a", "app/b", "app/c", "app0", "apq", "ap", "other/app/x"]
    for name in names:
        await write(client, tenant, name, "v")
    assert await walk(client, tenant, prefix="app/") == ["app/a", "app/b", "app/c"]
    assert await walk(client, tenant, prefix="app/", limit="1") == ["app/a", "app/b", "app/c"]
    assert await walk(client, tenant, prefix="app") == ["app", "app/a", "app/b", "app/c", "app0"]
    assert await walk(client, tenant, prefix="app", limit="2") == [
        "app",
        "app/a",
        "app/b",
        "app/c",
        "app0",
    ]
    assert await walk(client, tenant, prefix="nothing") == []
    assert await walk(client, tenant, prefix="") == sorted(names)


async def test_a_tenant_without_secrets_lists_nothing(client, tenant):
    assert await listing(client, tenant) == {
        "data": [],
        "meta": {"cursor": None, "has_more": False},
    }


# --- conditions --------------------------------------------------------------------------------


async def test_if_none_match_star_creates_but_never_overwrites(client, tenant):
    star = {"If-None-Match": "*"}
    assert (await put_secret(client, tenant, "s", "first", star)).status == 201
    resp = await put_secret(client, tenant, "s", "second", star)
    assert resp.status == 412
    error = await telnyx_error(resp)
    assert error["code"] == "75007" and error["source"] == {"parameter": "If-None-Match"}
    data = await read(client, tenant, "s")
    assert (data["value"], data["version"]) == ("first", 1)


async def test_if_match_with_the_current_etag_writes_and_a_stale_one_is_412(client, tenant):
    first = await write(client, tenant, "s", "1")
    resp = await put_secret(client, tenant, "s", "2", {"If-Match": first})
    assert resp.status == 200
    second = resp.headers["ETag"]
    stale = await put_secret(client, tenant, "s", "3", {"If-Match": first})
    assert stale.status == 412
    error = await telnyx_error(stale)
    assert error["code"] == "75007" and error["source"] == {"parameter": "If-Match"}
    assert (await put_secret(client, tenant, "s", "3", {"If-Match": f"W/{second}"})).status == 412
    assert (
        await put_secret(client, tenant, "s", "3", {"If-Match": f'"999999999", {second}'})
    ).status == 200
    data = await read(client, tenant, "s")
    assert (data["value"], data["version"]) == ("3", 3)


async def test_if_match_star_needs_the_secret_to_exist(client, tenant, db):
    resp = await put_secret(client, tenant, "new", "x", {"If-Match": "*"})
    assert resp.status == 412
    assert await status_of(client, tenant, "new") == 404
    assert await secret_names(db, tenant.id) == []
    await write(client, tenant, "new", "1")
    assert (await put_secret(client, tenant, "new", "2", {"If-Match": "*"})).status == 200
    assert (await read(client, tenant, "new"))["value"] == "2"


async def test_if_match_and_if_none_match_star_together_never_hold(client, tenant):
    both = {"If-None-Match": "*", "If-Match": "*"}
    assert (await put_secret(client, tenant, "s", "x", both)).status == 412
    assert await status_of(client, tenant, "s") == 404
    etag = await write(client, tenant, "s", "1")
    both = {"If-None-Match": "*", "If-Match": etag}
    assert (await put_secret(client, tenant, "s", "2", both)).status == 412
    assert (await read(client, tenant, "s"))["value"] == "1"


async def test_an_etag_of_a_deleted_secret_never_matches_it_created_again(client, tenant):
    old = await write(client, tenant, "s", "before")
    assert (await client.delete(secret_url("s"), headers=tenant.headers)).status == 204
    new = await write(client, tenant, "s", "after")
    assert new != old
    assert (await read(client, tenant, "s"))["version"] == 1  # the same version as the old one
    assert (await put_secret(client, tenant, "s", "overwrite", {"If-Match": old})).status == 412
    stale = await client.delete(secret_url("s"), headers={**tenant.headers, "If-Match": old})
    assert stale.status == 412
    data = await read(client, tenant, "s")
    assert (data["value"], data["version"]) == ("after", 1)
    resp = await client.get(secret_url("s"), headers=tenant.headers)
    assert resp.headers["ETag"] == new


async def test_etags_are_never_reused_across_secrets(client, tenant, other_tenant):
    etags = [await write(client, tenant, f"s{i}", "v") for i in range(5)]
    etags += [await write(client, other_tenant, f"s{i}", "v") for i in range(5)]
    etags += [await write(client, tenant, "s0", "w") for _ in range(5)]
    assert len(set(etags)) == len(etags)


async def test_a_delete_with_a_stale_if_match_is_412_and_the_secret_remains(client, tenant):
    first = await write(client, tenant, "s", "1")
    current = await write(client, tenant, "s", "2")
    for stale in (first, '"999999999"', f"W/{current}", "garbage"):
        resp = await client.delete(secret_url("s"), headers={**tenant.headers, "If-Match": stale})
        assert resp.status == 412, stale
        assert (await telnyx_error(resp))["code"] == "75007"
        data = await read(client, tenant, "s")
        assert (data["value"], data["version"]) == ("2", 2)
    resp = await client.delete(secret_url("s"), headers={**tenant.headers, "If-Match": current})
    assert resp.status == 204
    assert await status_of(client, tenant, "s") == 404
    gone = await client.delete(secret_url("s"), headers={**tenant.headers, "If-Match": "*"})
    assert gone.status == 412


@pytest.mark.parametrize(
    "condition, won, versions",
    [("If-None-Match", 201, [1]), ("If-Match", 200, [1, 2])],
    ids=["create-only", "over-one-etag"],
)
async def test_sixteen_simultaneous_conditional_puts_have_one_winner_whose_value_is_stored(
    client, tenant, db, condition, won, versions
):
    tag = "*" if condition == "If-None-Match" else await write(client, tenant, "race", "start")
    values = [f"value-{i}" for i in range(16)]
    resps = await asyncio.gather(
        *(put_secret(client, tenant, "race", v, {condition: tag}) for v in values)
    )
    statuses = [r.status for r in resps]
    assert sorted(statuses) == [won] + [412] * 15
    winner = statuses.index(won)
    data = await read(client, tenant, "race")
    assert (data["value"], data["version"]) == (values[winner], versions[-1])
    assert await version_rows(db, tenant.id, "race") == versions
    current = await client.get(secret_url("race"), headers=tenant.headers)
    assert current.headers["ETag"] == resps[winner].headers["ETag"]


async def test_simultaneous_unconditional_puts_each_write_a_version(client, tenant, db):
    resps = await asyncio.gather(*(put_secret(client, tenant, "busy", f"{i}") for i in range(16)))
    assert sorted(r.status for r in resps) == [200] * 15 + [201]
    versions = sorted([(await r.json())["data"]["version"] for r in resps])
    assert versions == list(range(1, 17))
    assert len({r.headers["ETag"] for r in resps}) == 16
    assert await version_rows(db, tenant.id, "busy") == list(range(7, 17))


# --- versions kept -----------------------------------------------------------------------------


async def test_only_the_newest_versions_kept_are_readable_and_stored(
    make_client, database_url, tenant, db
):
    client = await make_client(create_app(make_settings(database_url, secret_versions_kept=3)))
    for i in range(1, 8):
        await write(client, tenant, "s", f"value {i}")
        if i <= 2:
            await write(client, tenant, "neighbour", f"n{i}")
    for version in (5, 6, 7):
        data = await read(client, tenant, "s", version=str(version))
        assert (data["value"], data["version"], data["current_version"]) == (
            f"value {version}",
            version,
            7,
        )
    for version in (1, 2, 3, 4):
        resp = await client.get(
            secret_url("s"), params={"version": str(version)}, headers=tenant.headers
        )
        assert resp.status == 404, version
        error = await telnyx_error(resp)
        assert error["source"] == {"parameter": "version"}
        assert "3" in error["detail"]
    assert await version_rows(db, tenant.id, "s") == [5, 6, 7]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM secret_versions WHERE tenant_id = $1 AND name = 's'", tenant.id
        )
        == 3
    )
    # Trimming is per secret: the other one keeps both its versions.
    assert await version_rows(db, tenant.id, "neighbour") == [1, 2]


async def test_ten_versions_are_kept_by_default(client, tenant, db):
    for i in range(1, 13):
        await write(client, tenant, "s", f"value {i}")
    assert await db.fetchval("SELECT count(*) FROM secret_versions") == 10
    assert await version_rows(db, tenant.id, "s") == list(range(3, 13))
    assert (await read(client, tenant, "s", version="3"))["value"] == "value 3"
    for version in ("1", "2"):
        assert await status_of(client, tenant, "s", version=version) == 404
    assert (await read(client, tenant, "s"))["version"] == 12


# --- the tenant's limit ------------------------------------------------------------------------


@pytest.fixture
async def limited(make_client, database_url):
    """A client of an app that lets each tenant hold 3 secrets."""
    return await make_client(create_app(make_settings(database_url, secrets_per_tenant=3)))


async def secret_count(db, tenant) -> int:
    return await db.fetchval("SELECT secrets FROM secret_counts WHERE tenant_id = $1", tenant.id)


async def test_a_create_past_the_limit_is_409_and_stores_nothing(limited, tenant, db):
    client = limited
    for name in ("a", "b", "c"):
        assert (await put_secret(client, tenant, name, "v")).status == 201
    resp = await put_secret(client, tenant, "d", "v")
    assert resp.status == 409
    error = await telnyx_error(resp)
    assert error["code"] == "75013" and error["title"] == "Secret limit reached"
    assert "3" in error["detail"]
    assert await status_of(client, tenant, "d") == 404
    assert await walk(client, tenant) == ["a", "b", "c"]
    assert await secret_names(db, tenant.id) == ["a", "b", "c"]
    assert await db.fetchval("SELECT count(*) FROM secret_versions WHERE name = 'd'") == 0
    assert await secret_count(db, tenant) == 3
    # An update is not a new secret.
    resp = await put_secret(client, tenant, "a", "updated")
    assert resp.status == 200
    assert (await read(client, tenant, "a"))["value"] == "updated"
    # Deleting one makes room for one.
    assert (await client.delete(secret_url("b"), headers=tenant.headers)).status == 204
    assert await secret_count(db, tenant) == 2
    assert (await put_secret(client, tenant, "d", "v")).status == 201
    assert (await put_secret(client, tenant, "e", "v")).status == 409
    assert await walk(client, tenant) == ["a", "c", "d"]
    assert await secret_count(db, tenant) == 3


async def test_the_limit_is_per_tenant(limited, tenant, other_tenant):
    client = limited
    for name in ("a", "b", "c"):
        await write(client, tenant, name, "v")
    for name in ("a", "b", "c"):
        assert (await put_secret(client, other_tenant, name, "w")).status == 201
    assert (await put_secret(client, other_tenant, "d", "w")).status == 409


async def test_a_refused_create_does_not_take_up_room(limited, tenant, db):
    """Creates refused for the limit, conditions or input do not count toward it."""
    client = limited
    await write(client, tenant, "a", "v")
    await write(client, tenant, "b", "v")
    assert (await put_secret(client, tenant, "x", "v", {"If-Match": "*"})).status == 412
    assert (await put_secret(client, tenant, "x", 5)).status == 400
    assert (await put_secret(client, tenant, "c", "v")).status == 201
    for _ in range(3):
        assert (await put_secret(client, tenant, "d", "v")).status == 409
    assert await secret_count(db, tenant) == 3
    await client.delete(secret_url("a"), headers=tenant.headers)
    assert (await put_secret(client, tenant, "d", "v")).status == 201


async def test_simultaneous_creates_fill_the_limit_exactly(limited, tenant, db):
    client = limited
    resps = await asyncio.gather(*(put_secret(client, tenant, f"s{i}", "v") for i in range(10)))
    statuses = [r.status for r in resps]
    assert sorted(statuses) == [201] * 3 + [409] * 7
    created = sorted(f"s{i}" for i, status in enumerate(statuses) if status == 201)
    assert await walk(client, tenant) == created
    assert await secret_names(db, tenant.id) == created
    assert await db.fetchval("SELECT count(*) FROM secret_versions") == 3
    assert await secret_count(db, tenant) == 3


async def test_simultaneous_creates_and_deletes_keep_the_count_exact(limited, tenant, db):
    client = limited
    for name in ("a", "b", "c"):
        await write(client, tenant, name, "v")
    deletes = [client.delete(secret_url(n), headers=tenant.headers) for n in ("a", "b", "c")]
    creates = [put_secret(client, tenant, f"n{i}", "v") for i in range(6)]
    await asyncio.gather(*deletes, *creates)
    stored = await secret_names(db, tenant.id)
    assert len(stored) <= 3
    assert await secret_count(db, tenant) == len(stored)


# --- bad input ---------------------------------------------------------------------------------

BAD_BODIES = [
    (b"", ""),
    (b"nope", ""),
    (b'{"value": ', ""),
    (b"\xff\xfe{}", ""),
    (b'{"value": "\xc3\x28"}', ""),
    (b"[]", ""),
    (b'["value"]', ""),
    (b'"value"', ""),
    (b"null", ""),
    (b"{}", "/value"),
    (b'{"Value": "x"}', "/Value"),
    (b'{"value": 1}', "/value"),
    (b'{"value": 1.5}', "/value"),
    (b'{"value": null}', "/value"),
    (b'{"value": true}', "/value"),
    (b'{"value": {"a": "b"}}', "/value"),
    (b'{"value": ["x"]}', "/value"),
    (b'{"value": "x", "name": "s"}', "/name"),
    (b'{"value": "x", "version": 2}', "/version"),
    (b'{"value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", ""),
    (b'{"value": 1' + b"0" * 5000 + b"}", ""),
    (b'{"value": NaN}', "/value"),
    (b'{"value": "\\ud800"}', "/value"),
    (b'{"value": "a\\udc00b"}', "/value"),
    (b'{"value": "\\ude00\\ud83d"}', "/value"),
]


@pytest.mark.parametrize(
    ("body", "pointer"), BAD_BODIES, ids=[f"{i}:{b[:24]!r}" for i, (b, _) in enumerate(BAD_BODIES)]
)
async def test_a_bad_body_is_400_and_stores_nothing(client, tenant, db, body, pointer):
    await write(client, tenant, "existing", "original")
    for name in ("new", "existing"):
        resp = await client.put(secret_url(name), data=body, headers=tenant.headers)
        assert resp.status == 400, await resp.text()
        error = await telnyx_error(resp)
        assert error["code"] in ("10015", "10004")
        assert error["source"] == {"pointer": pointer}
    assert await status_of(client, tenant, "new") == 404
    data = await read(client, tenant, "existing")
    assert (data["value"], data["version"]) == ("original", 1)
    assert await secret_names(db, tenant.id) == ["existing"]
    assert await version_rows(db, tenant.id, "existing") == [1]


def json_of(value: str) -> bytes:
    """A body whose value is `value` as it goes between the JSON string's quotes."""
    return b'{"value": "' + value.encode() + b'"}'


# (raw value as it goes in the JSON string, its UTF-8 bytes)
SIZES = [
    ("x" * 65536, 65536),
    ("é" * 32768, 65536),
    ("€" * 21845 + "a", 65536),
    ("😀" * 16384, 65536),
    ("\\u00e9" * 32768, 65536),  # escaped in the JSON: the body is far larger than the value
    ("\\n" * 65536, 65536),
    ("x" * 65537, 65537),
    ("é" * 32768 + "a", 65537),
    ("€" * 21846, 65538),
    ("😀" * 16384 + "a", 65537),
    ("\\u00e9" * 32769, 65538),
    ("x" * 200_000, 200_000),
]


@pytest.mark.parametrize(("raw", "size"), SIZES, ids=[f"{s}-{i}" for i, (_, s) in enumerate(SIZES)])
async def test_a_value_is_at_most_65536_bytes_of_utf8(client, tenant, db, raw, size):
    resp = await client.put(secret_url("big"), data=json_of(raw), headers=tenant.headers)
    if size <= 65536:
        assert resp.status == 201, await resp.text()
        value = (await read(client, tenant, "big"))["value"]
        assert len(value.encode()) == size
        return
    assert resp.status == 413, await resp.text()
    error = await telnyx_error(resp)
    assert error["code"] == "75004" and error["source"] == {"pointer": "/value"}
    assert "65536" in error["detail"]
    assert await status_of(client, tenant, "big") == 404
    assert await secret_names(db, tenant.id) == []


async def test_a_too_large_value_leaves_the_current_version(client, tenant):
    await write(client, tenant, "s", "small")
    resp = await put_secret(client, tenant, "s", "x" * 65537)
    assert resp.status == 413
    data = await read(client, tenant, "s")
    assert (data["value"], data["version"]) == ("small", 1)


BAD_NAMES = [
    "_reserved",
    "_",
    "x" * 257,
    "a b",
    "a~b",
    "~",
    "a%b",
    "é",
    "a\tb",
    "a+b",
    "a:b",
    "a@b",
    "a\\b",
    "a\u0000b",
    "a\nb",
]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
async def test_an_invalid_name_is_400_on_every_route(client, tenant, db, method, name):
    resp = await client.request(
        method,
        secret_url(name),
        json={"value": "v"} if method == "PUT" else None,
        headers=tenant.headers,
    )
    assert resp.status == 400, await resp.text()
    error = await telnyx_error(resp)
    assert error["code"] == "10015" and error["source"] == {"parameter": "name"}
    assert await secret_names(db, tenant.id) == []


async def test_an_invalid_name_in_the_raw_path_is_400(client, tenant, db):
    for raw in ("/v2/secrets/a%20b", "/v2/secrets/a~b", "/v2/secrets/%5Fx", "/v2/secrets/%C3%A9"):
        resp = await client.put(raw, json={"value": "v"}, headers=tenant.headers)
        assert resp.status == 400, raw
        assert (await telnyx_error(resp))["source"] == {"parameter": "name"}
    assert await secret_names(db, tenant.id) == []


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
async def test_an_empty_name_is_refused(client, tenant, db, method):
    resp = await client.request(
        method, f"{V2}/", json={"value": "v"} if method == "PUT" else None, headers=tenant.headers
    )
    assert resp.status in (400, 404, 405), await resp.text()
    await telnyx_error(resp)
    assert await secret_names(db, tenant.id) == []


@pytest.mark.parametrize("version", ["0", "abc", "-1", "1.5", "", "0x1", " 1", "1e3", "9" * 30])
async def test_a_version_that_is_not_a_positive_whole_number_is_400(client, tenant, version):
    await write(client, tenant, "s", "v")
    resp = await client.get(secret_url("s"), params={"version": version}, headers=tenant.headers)
    assert resp.status == 400, await resp.text()
    error = await telnyx_error(resp)
    assert error["code"] == "10015" and error["source"] == {"parameter": "version"}


@pytest.mark.parametrize("version", [str(2**62), "3562008607030077440", "0" * 40 + "7"])
async def test_a_version_within_bounds_that_was_never_written_is_404(client, tenant, version):
    await write(client, tenant, "s", "v")
    resp = await client.get(secret_url("s"), params={"version": version}, headers=tenant.headers)
    assert resp.status == 404, await resp.text()


@pytest.mark.parametrize("version", [str(2**62 + 1), "9" * 19])
async def test_a_version_above_the_bound_is_400_with_the_bound(client, tenant, version):
    resp = await client.get(secret_url("s"), params={"version": version}, headers=tenant.headers)
    assert resp.status == 400, await resp.text()
    assert str(2**62) in (await telnyx_error(resp))["detail"]


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor", ["!!!", "nope", b64("abc"), b64("r:abc"), b64("f:a b"), b64("f:"), "Zg", "\u00e9"]
)
async def test_a_cursor_the_server_did_not_issue_is_400(client, tenant, cursor):
    await write(client, tenant, "s", "v")
    resp = await client.get(V2, params={"cursor": cursor}, headers=tenant.headers)
    assert resp.status == 400, await resp.text()
    error = await telnyx_error(resp)
    assert error["code"] == "10015" and error["source"] == {"parameter": "cursor"}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"prefix": "a b"}, "prefix"),
        ({"prefix": "~"}, "prefix"),
        ({"prefix": "x" * 257}, "prefix"),
    ],
)
async def test_bad_listing_parameters_are_400(client, tenant, params, parameter):
    resp = await client.get(V2, params=params, headers=tenant.headers)
    assert resp.status == 400, await resp.text()
    error = await telnyx_error(resp)
    assert error["source"] == {"parameter": parameter}


@pytest.mark.parametrize("header", ['"5"', 'W/"5"', "abc", '*, "5"', "**"])
async def test_if_none_match_other_than_a_star_is_400_and_stores_nothing(
    client, tenant, db, header
):
    resp = await put_secret(client, tenant, "s", "v", {"If-None-Match": header})
    assert resp.status == 400, await resp.text()
    error = await telnyx_error(resp)
    assert error["source"] == {"parameter": "If-None-Match"}
    assert await secret_names(db, tenant.id) == []
    etag = await write(client, tenant, "s", "v")
    resp = await put_secret(client, tenant, "s", "w", {"If-None-Match": header, "If-Match": etag})
    assert resp.status == 400
    assert (await read(client, tenant, "s"))["value"] == "v"


async def test_a_body_past_the_request_limit_is_413(client, tenant, db):
    resp = await client.put(
        secret_url("s"), data=json_of("x" * (2 * 1024 * 1024)), headers=tenant.headers
    )
    assert resp.status == 413
    assert (await telnyx_error(resp))["code"] == "75004"
    assert await secret_names(db, tenant.id) == []


async def test_secrets_need_authentication(client, tenant):
    await write(client, tenant, "s", "v")
    for method, url in (
        ("GET", secret_url("s")),
        ("PUT", secret_url("s")),
        ("DELETE", secret_url("s")),
        ("GET", V2),
    ):
        for headers in ({}, {"Authorization": "Bearer kvs_nope"}):
            resp = await client.request(method, url, json={"value": "x"}, headers=headers)
            assert resp.status == 401, (method, url, headers)
            assert (await telnyx_error(resp))["code"] == "10009"
            assert b'"v"' not in await resp.read()
    assert (await read(client, tenant, "s"))["value"] == "v"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", secret_url("s")),
        ("PATCH", secret_url("s")),
        ("POST", V2),
        ("PUT", V2),
        ("DELETE", V2),
    ],
)
async def test_other_methods_are_405(client, tenant, method, url):
    resp = await client.request(method, url, json={"value": "x"}, headers=tenant.headers)
    assert resp.status == 405
    assert (await telnyx_error(resp))["code"] == "75001"
