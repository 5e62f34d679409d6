"""Secrets at rest, on both surfaces: no plaintext in the database (a pg_dump holds none); a
sealed value altered, or moved to another row, is refused and counted, never returned; a
missing master key, or none at all, answers 503, never 500; the logs name what was revealed,
never a value."""

import asyncio
import base64
import logging
import shutil
import uuid
from pathlib import Path

import pytest

from service.devdb import bin_dir
from service.domain.sealing import MasterKeys, binding, new_master_key, seal
from service.logs import JsonFormatter
from service.web.app import create_app
from service.web.appkeys import METRICS
from tests.support import TEST_MASTER_KEYS, key_url, make_settings, put, require_tool
from tests.support.secrets import (
    QUIVA,
    V2,
    put_secret,
    quiva_error,
    quiva_url,
    read,
    secret_url,
    telnyx_error,
    write,
)

FAILURES = "kvs_secret_decryption_failures_total"


def failures(client, reason: str) -> float:
    """The app's count of secrets that failed to open for `reason`."""
    value = client.server.app[METRICS].registry.get_sample_value(FAILURES, {"reason": reason})
    assert value is not None, f"{FAILURES}{{reason={reason!r}}} is not exported"
    return value


def forms(data: bytes) -> list[bytes]:
    """The ways bytes may show in a dump or an answer: as they are, hex (bytea's text form),
    base64 (standard and URL-safe)."""
    return [
        data,
        data.hex().encode(),
        data.hex().upper().encode(),
        base64.b64encode(data).rstrip(b"="),
        base64.urlsafe_b64encode(data).rstrip(b"="),
    ]


def assert_nowhere_in(haystack: bytes, secret: bytes, what: str) -> None:
    for form in forms(secret):
        assert form not in haystack, f"{what} holds {form[:40]!r}"


async def sealed_row(db, tenant_id, name: str, version: int | None = None):
    return await db.fetchrow(
        "SELECT v.* FROM secret_versions v JOIN secrets s USING (tenant_id, name) "
        "WHERE v.tenant_id = $1 AND v.name = $2 AND v.version = coalesce($3, s.version)",
        tenant_id,
        name,
        version,
    )


# --- (a) no plaintext in the database -------------------------------------------------------


def pg_dump_path() -> str:
    """The pg_dump of the PostgreSQL the suite runs (the wheel's), else the system's."""
    try:
        wheel = bin_dir() / "pg_dump"
    except SystemExit:
        wheel = None
    if wheel is not None and wheel.exists():
        return str(wheel)
    for candidate in ("/usr/lib/postgresql/15/bin/pg_dump",):
        if Path(candidate).exists():
            return candidate
    return shutil.which("pg_dump") or require_tool("pg_dump", "postgresql-client")


async def pg_dump(database_url: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        pg_dump_path(),
        "--no-owner",
        f"--dbname={database_url}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out


async def test_a_dump_of_the_database_holds_no_value_in_any_form(
    client, tenant, other_tenant, db, database_url
):
    canary = uuid.uuid4().hex
    values = {
        "db/password": f"correct-horse-battery-staple-{canary}",
        "api-key": f"sk_live_{canary}_ünïcødé_🔑",
        "big": f"{canary}-" * 1500,
        "tiny": canary[:16],
    }
    for name, value in values.items():
        await write(client, tenant, name, f"old version of {value}")
        await write(client, tenant, name, value)
    await client.put(
        QUIVA, json={"key": "quiva", "value": f"via quiva {canary}"}, headers=other_tenant.headers
    )
    old = [f"old version of {value}" for value in values.values()]
    dump = await pg_dump(database_url)

    # The dump does hold the secrets' rows, the sealed bytes in bytea's hex form.
    for name in values:
        assert name.encode() in dump
        row = await sealed_row(db, tenant.id, name)
        assert row["ciphertext"].hex().encode() in dump
        assert row["wrapped_key"].hex().encode() in dump
    assert await db.fetchval("SELECT count(*) FROM secret_versions") == 2 * len(values) + 1
    for value in [*values.values(), *old, f"via quiva {canary}"]:
        assert_nowhere_in(dump, value.encode(), "the dump")
    # Nor in the sealed bytes themselves, nor any fragment of the canary.
    assert_nowhere_in(dump, canary.encode(), "the dump")
    assert_nowhere_in(dump, canary[:12].encode(), "the dump")
    # Nor the master key that unwraps them all.
    material = base64.b64decode(TEST_MASTER_KEYS.partition(":")[2])
    assert_nowhere_in(dump, material, "the dump")
    assert TEST_MASTER_KEYS.partition(":")[2].encode() not in dump


async def test_each_version_is_sealed_under_a_data_key_of_its_own(client, tenant, db):
    """The same value written twice, or by two names, never gives the same sealed bytes."""
    for name in ("a", "b"):
        for _ in range(2):
            await write(client, tenant, name, "the same value")
    rows = await db.fetch("SELECT wrapped_key, ciphertext, master_key_id FROM secret_versions")
    assert len(rows) == 4
    assert len({r["ciphertext"] for r in rows}) == 4
    assert len({r["wrapped_key"] for r in rows}) == 4
    assert len({r["ciphertext"][:12] for r in rows}) == 4  # nonces
    assert {r["master_key_id"] for r in rows} == {"test-1"}
    for r in rows:
        assert len(r["wrapped_key"]) == 12 + 32 + 16
        assert len(r["ciphertext"]) == 12 + len("the same value") + 16


# --- (b) an altered sealed value ---------------------------------------------------------------

VALUE = "the-value-that-must-never-leak-0123456789"


async def assert_refused_unreadable(client, tenant, name: str, row, **params) -> None:
    """A read of the secret on both surfaces is 500, with neither value nor sealed bytes."""
    resp = await client.get(secret_url(name), params=params, headers=tenant.headers)
    body = await resp.read()
    assert resp.status == 500, body
    error = await telnyx_error(resp)
    assert error["code"] == "75014" and error["title"] == "Secret unreadable"
    assert "ETag" not in resp.headers
    assert_no_leak(body, row)
    if params:
        return
    for url, query in ((quiva_url(name), {}), (QUIVA, {"reveal": "true"})):
        resp = await client.get(url, params=query, headers=tenant.headers)
        body = await resp.read()
        assert resp.status == 500, body
        await quiva_error(resp)
        assert_no_leak(body, row)


def assert_no_leak(body: bytes, row) -> None:
    assert_nowhere_in(body, VALUE.encode(), "the answer")
    assert_nowhere_in(body, row["ciphertext"], "the answer")
    assert_nowhere_in(body, row["wrapped_key"], "the answer")


def flipped(blob: bytes, where: str) -> bytes:
    """The blob with one bit changed, or cut short."""
    if where == "truncated":
        return blob[:11]
    if where == "empty":
        return b""
    i = {"nonce": 0, "body": 12, "tag": len(blob) - 1}[where]
    return blob[:i] + bytes([blob[i] ^ 0x01]) + blob[i + 1 :]


@pytest.mark.parametrize("where", ["nonce", "body", "tag", "truncated", "empty"])
@pytest.mark.parametrize("column", ["ciphertext", "wrapped_key"])
async def test_an_altered_sealed_value_is_refused_and_counted_never_returned(
    client, tenant, db, column, where
):
    await write(client, tenant, "s", VALUE)
    row = await sealed_row(db, tenant.id, "s")
    await db.execute(
        f"UPDATE secret_versions SET {column} = $3 WHERE tenant_id = $1 AND name = $2",
        tenant.id,
        "s",
        flipped(row[column], where),
    )
    before = failures(client, "integrity")
    await assert_refused_unreadable(client, tenant, "s", row)
    assert failures(client, "integrity") == before + 3
    assert failures(client, "missing_key") == 0
    # Its metadata still lists, and writing it again mends it.
    listed = await (await client.get(V2, headers=tenant.headers)).json()
    assert [item["name"] for item in listed["data"]] == ["s"]
    assert (await put_secret(client, tenant, "s", "rewritten")).status == 200
    assert (await read(client, tenant, "s"))["value"] == "rewritten"
    await assert_refused_unreadable(client, tenant, "s", row, version="1")


async def test_an_altered_old_version_spoils_only_itself(client, tenant, db):
    await write(client, tenant, "s", VALUE)
    await write(client, tenant, "s", "current")
    row = await sealed_row(db, tenant.id, "s", 1)
    await db.execute(
        "UPDATE secret_versions SET ciphertext = $1 WHERE name = 's' AND version = 1",
        flipped(row["ciphertext"], "body"),
    )
    await assert_refused_unreadable(client, tenant, "s", row, version="1")
    assert (await read(client, tenant, "s"))["value"] == "current"
    assert (await read(client, tenant, "s", version="2"))["value"] == "current"
    assert failures(client, "integrity") == 1


async def test_a_master_key_id_changed_to_another_configured_key_is_an_integrity_failure(
    make_client, database_url, tenant, db
):
    """The wrap is bound to its master key's id: relabelled, it fails to open."""
    keys = f"{TEST_MASTER_KEYS},{new_master_key('test-2')}"
    client = await make_client(create_app(make_settings(database_url, secrets_master_keys=keys)))
    await write(client, tenant, "s", VALUE)
    row = await sealed_row(db, tenant.id, "s")
    assert row["master_key_id"] == "test-1"
    await db.execute("UPDATE secret_versions SET master_key_id = 'test-2'")
    await assert_refused_unreadable(client, tenant, "s", row)
    assert failures(client, "integrity") == 3


async def test_a_sealed_value_that_is_not_utf8_is_an_integrity_failure(client, tenant, db):
    """Sealed rightly (key and binding) but not UTF-8, as a faulty writer would leave it."""
    await write(client, tenant, "s", VALUE)
    row = await sealed_row(db, tenant.id, "s")
    sealed = seal(MasterKeys.parse(TEST_MASTER_KEYS), binding(tenant.id, "s", 1), b"\xff\xfe\xc3(")
    await db.execute(
        "UPDATE secret_versions SET wrapped_key = $1, ciphertext = $2 WHERE name = 's'",
        sealed.wrapped_key,
        sealed.ciphertext,
    )
    await assert_refused_unreadable(client, tenant, "s", row)
    assert failures(client, "integrity") == 3


# --- (c) a sealed value moved to another row ------------------------------------------------


async def copy_version(db, source: tuple, target: tuple, *, create: bool = True, **swap) -> None:
    """Copies the sealed bytes of version (tenant, name, version) `source` to `target`,
    creating the target secret (its current version being the target's) when `create`."""
    if create:
        await db.execute(
            "INSERT INTO secrets (tenant_id, name, version, revision) "
            "VALUES ($1, $2, $3, nextval('secret_revisions'))",
            *target,
        )
    else:
        await db.execute(
            "UPDATE secrets SET version = $3, revision = nextval('secret_revisions') "
            "WHERE tenant_id = $1 AND name = $2",
            *target,
        )
    await db.execute(
        "INSERT INTO secret_versions "
        "(tenant_id, name, version, revision, master_key_id, wrapped_key, ciphertext) "
        "SELECT $1, $2, $3, (SELECT revision FROM secrets WHERE tenant_id = $1 AND name = $2), "
        "v.master_key_id, v.wrapped_key, v.ciphertext FROM secret_versions v "
        "WHERE v.tenant_id = $4 AND v.name = $5 AND v.version = $6 "
        "ON CONFLICT (tenant_id, name, version) DO UPDATE SET "
        "wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext",
        *target,
        *source,
    )


async def test_a_version_copied_to_another_tenants_secret_is_refused(
    client, tenant, other_tenant, db
):
    await write(client, tenant, "s", VALUE)
    row = await sealed_row(db, tenant.id, "s")
    await copy_version(db, (tenant.id, "s", 1), (other_tenant.id, "s", 1))
    assert (await sealed_row(db, other_tenant.id, "s"))["ciphertext"] == row["ciphertext"]
    await assert_refused_unreadable(client, other_tenant, "s", row)
    assert failures(client, "integrity") == 3
    assert (await read(client, tenant, "s"))["value"] == VALUE


async def test_a_version_copied_over_another_tenants_existing_secret_is_refused(
    client, tenant, other_tenant, db
):
    await write(client, tenant, "s", VALUE)
    await write(client, other_tenant, "mine", "other tenant's own")
    row = await sealed_row(db, tenant.id, "s")
    await copy_version(db, (tenant.id, "s", 1), (other_tenant.id, "mine", 1), create=False)
    await assert_refused_unreadable(client, other_tenant, "mine", row)


async def test_a_version_copied_to_another_name_of_the_same_tenant_is_refused(client, tenant, db):
    await write(client, tenant, "s", VALUE)
    row = await sealed_row(db, tenant.id, "s")
    await copy_version(db, (tenant.id, "s", 1), (tenant.id, "copy", 1))
    await assert_refused_unreadable(client, tenant, "copy", row)
    assert failures(client, "integrity") == 3


async def test_a_version_copied_to_another_version_of_the_same_secret_is_refused(
    client, tenant, db
):
    await write(client, tenant, "s", VALUE)
    await write(client, tenant, "s", "second")
    row = await sealed_row(db, tenant.id, "s", 1)
    # Version 2 now holds version 1's sealed bytes: a rollback to the old value.
    await copy_version(db, (tenant.id, "s", 1), (tenant.id, "s", 2), create=False)
    await assert_refused_unreadable(client, tenant, "s", row)
    assert (await read(client, tenant, "s", version="1"))["value"] == VALUE


async def test_a_data_key_swapped_between_rows_is_refused(client, tenant, db):
    await write(client, tenant, "a", VALUE)
    await write(client, tenant, "b", "bee")
    row = await sealed_row(db, tenant.id, "a")
    await db.execute(
        "UPDATE secret_versions SET wrapped_key = "
        "(SELECT wrapped_key FROM secret_versions WHERE name = 'b') WHERE name = 'a'"
    )
    resp = await client.get(secret_url("a"), headers=tenant.headers)
    assert resp.status == 500
    assert_no_leak(await resp.read(), row)
    assert (await read(client, tenant, "b"))["value"] == "bee"


# --- (d) the master key that wraps a secret is not configured ---------------------------------


async def test_a_secret_whose_master_key_is_absent_is_503_naming_the_key(
    make_client, client, database_url, tenant, db
):
    await write(client, tenant, "s", VALUE)
    other = await make_client(
        create_app(make_settings(database_url, secrets_master_keys=new_master_key("other")))
    )
    resp = await other.get(secret_url("s"), headers=tenant.headers)
    assert resp.status == 503
    error = await telnyx_error(resp)
    assert error["code"] == "75015"
    assert "'test-1'" in error["detail"]
    assert resp.headers["Retry-After"]
    row = await sealed_row(db, tenant.id, "s")
    assert_no_leak(await resp.read(), row)
    for url, query in ((quiva_url("s"), {}), (QUIVA, {"reveal": "true"})):
        resp = await other.get(url, params=query, headers=tenant.headers)
        assert resp.status == 503
        assert "'test-1'" in await quiva_error(resp)
        assert_no_leak(await resp.read(), row)
    assert failures(other, "missing_key") == 3
    assert failures(other, "integrity") == 0
    assert failures(client, "missing_key") == 0

    # What needs no value still works, and new secrets are sealed under the key it has.
    listed = await (await other.get(V2, headers=tenant.headers)).json()
    assert [item["name"] for item in listed["data"]] == ["s"]
    await write(other, tenant, "new", "sealed under other")
    assert (await read(other, tenant, "new"))["value"] == "sealed under other"
    assert (await sealed_row(db, tenant.id, "new"))["master_key_id"] == "other"
    resp = await client.get(secret_url("new"), headers=tenant.headers)
    assert resp.status == 503 and "'other'" in (await telnyx_error(resp))["detail"]
    # An overwrite seals the next version under the current key: readable again.
    await write(other, tenant, "s", "rewritten")
    assert (await read(other, tenant, "s"))["value"] == "rewritten"


async def test_with_the_old_key_configured_too_both_generations_read(
    make_client, client, database_url, tenant
):
    await write(client, tenant, "old", "under test-1")
    keys = f"{new_master_key('test-2')},{TEST_MASTER_KEYS}"
    both = await make_client(create_app(make_settings(database_url, secrets_master_keys=keys)))
    await write(both, tenant, "new", "under test-2")
    assert (await read(both, tenant, "old"))["value"] == "under test-1"
    assert (await read(both, tenant, "new"))["value"] == "under test-2"
    assert failures(both, "missing_key") == failures(both, "integrity") == 0


# --- (e) no master keys at all -----------------------------------------------------------------

SECRET_ROUTES = [
    ("PUT", secret_url("s"), {"value": "v"}, {}),
    ("GET", secret_url("s"), None, {}),
    ("GET", secret_url("s"), None, {"version": "1"}),
    ("DELETE", secret_url("s"), None, {}),
    ("GET", V2, None, {}),
    ("PUT", QUIVA, {"key": "s", "value": "v"}, {}),
    ("GET", QUIVA, None, {}),
    ("GET", QUIVA, None, {"reveal": "true"}),
    ("GET", quiva_url("s"), None, {}),
    ("DELETE", quiva_url("s"), None, {}),
]


@pytest.mark.parametrize("unset", [None, "", "  "])
async def test_without_master_keys_every_secrets_route_is_503_and_the_rest_works(
    make_client, client, database_url, tenant, namespace, db, unset
):
    await write(client, tenant, "s", VALUE)
    keyless = await make_client(create_app(make_settings(database_url, secrets_master_keys=unset)))
    for method, url, body, params in SECRET_ROUTES:
        resp = await keyless.request(method, url, json=body, params=params, headers=tenant.headers)
        where = (method, str(url), params)
        assert resp.status == 503, where
        assert resp.headers["Retry-After"], where
        raw = await resp.read()
        assert VALUE.encode() not in raw, where
        if str(url).startswith(V2):
            error = await telnyx_error(resp)
            assert error["code"] == "75015", where
            message = error["detail"]
        else:
            message = await quiva_error(resp)
        assert "master key" in message and "KVS_SECRETS_MASTER_KEYS" in message, where
    # Nothing was written or deleted.
    data = await read(client, tenant, "s")
    assert (data["value"], data["version"]) == (VALUE, 1)
    # Namespaces and keys do not need the master keys.
    assert (await put(keyless, tenant, namespace, "k", b"value")).status == 201
    resp = await keyless.get(key_url(namespace, "k"), headers=tenant.headers)
    assert resp.status == 200 and await resp.read() == b"value"
    resp = await keyless.get("/v2/storage/kvs", headers=tenant.headers)
    assert resp.status == 200 and len((await resp.json())["data"]) == 1
    resp = await keyless.post("/v2/storage/kvs", json={"name": "more"}, headers=tenant.headers)
    assert resp.status in (201, 202), await resp.text()
    resp = await keyless.delete(key_url(namespace, "k"), headers=tenant.headers)
    assert resp.status == 204


async def test_without_master_keys_bad_input_is_still_400(make_client, database_url, tenant):
    keyless = await make_client(create_app(make_settings(database_url, secrets_master_keys=None)))
    resp = await keyless.put(secret_url("_bad"), json={"value": "v"}, headers=tenant.headers)
    assert resp.status == 400
    resp = await keyless.put(QUIVA, json={"key": "k"}, headers=tenant.headers)
    assert resp.status == 400


# --- (f) logs ------------------------------------------------------------------------------------


def record_texts(record: logging.LogRecord) -> list[str]:
    """Everything a record could put in a log: its message, arguments, every field, and its
    line as the service writes it."""
    texts = [record.getMessage(), str(record.msg), repr(record.args)]
    texts += [f"{k}={v!r}" for k, v in record.__dict__.items()]
    texts.append(JsonFormatter().format(record))
    return texts


async def test_a_reveal_is_logged_with_who_what_and_which_request_never_the_value(
    client, tenant, db, caplog
):
    caplog.set_level(logging.DEBUG)
    value = f"log-canary-{uuid.uuid4().hex}-ünï"
    await write(client, tenant, "db/password", f"{value}-v1")
    await write(client, tenant, "db/password", value)
    resp = await client.get(
        secret_url("db/password"), headers={**tenant.headers, "X-Request-Id": "reveal-req-1"}
    )
    assert resp.status == 200 and resp.headers["X-Request-Id"] == "reveal-req-1"
    generated = await client.get(
        secret_url("db/password"), params={"version": "1"}, headers=tenant.headers
    )
    assert generated.status == 200
    quiva = await client.get(quiva_url("db/password"), headers=tenant.headers)
    revealed_all = await client.get(QUIVA, params={"reveal": "true"}, headers=tenant.headers)
    assert quiva.status == revealed_all.status == 200
    await client.get(V2, headers=tenant.headers)
    # A failed open is logged too, and with no value either.
    await db.execute("UPDATE secret_versions SET ciphertext = '\\x00'::bytea WHERE version = 1")
    assert (
        await client.get(secret_url("db/password"), params={"version": "1"}, headers=tenant.headers)
    ).status == 500
    await client.put(secret_url("db/password"), data=b'{"value": 1}', headers=tenant.headers)

    reveals = [r for r in caplog.records if r.getMessage() == "secret revealed"]
    assert [(r.request_id, r.secret_version) for r in reveals] == [
        ("reveal-req-1", 2),
        (generated.headers["X-Request-Id"], 1),
        (quiva.headers["X-Request-Id"], 2),
        (revealed_all.headers["X-Request-Id"], 2),
    ]
    for r in reveals:
        assert r.levelno == logging.INFO
        assert r.tenant_id == str(tenant.id)
        assert r.secret_name == "db/password"
    failed = [r for r in caplog.records if r.getMessage() == "secret decryption failed"]
    assert len(failed) == 1 and failed[0].reason == "integrity"
    assert failed[0].secret_version == 1
    assert any(r.name == "kvs.access" for r in caplog.records)

    for r in caplog.records:
        for text in record_texts(r):
            assert "log-canary" not in text, (r.name, r.getMessage())
            assert value not in text
    assert "log-canary" not in caplog.text


# --- (g) counted ---------------------------------------------------------------------------------


def counter(client, name: str) -> float:
    value = client.server.app[METRICS].registry.get_sample_value(name)
    assert value is not None, f"{name} is not exported"
    return value


async def test_reads_and_writes_are_counted_and_refusals_are_not(client, tenant, db):
    for i in range(3):
        await write(client, tenant, f"s{i}", "v")
    await write(client, tenant, "s0", "w")
    await client.put(QUIVA, json={"key": "q", "value": "v"}, headers=tenant.headers)
    assert (await put_secret(client, tenant, "s0", "x", {"If-None-Match": "*"})).status == 412
    assert (await put_secret(client, tenant, "s0", 5)).status == 400
    assert counter(client, "kvs_secret_writes_total") == 5

    await read(client, tenant, "s0")
    await read(client, tenant, "s0", version="1")
    await client.get(quiva_url("s1"), headers=tenant.headers)
    assert (
        await client.get(QUIVA, params={"reveal": "true"}, headers=tenant.headers)
    ).status == 200
    assert counter(client, "kvs_secret_reads_total") == 3 + 4
    # Listing names, missing secrets and failed opens reveal nothing.
    await client.get(QUIVA, headers=tenant.headers)
    await client.get(V2, headers=tenant.headers)
    assert (await client.get(secret_url("nothing"), headers=tenant.headers)).status == 404
    await db.execute("UPDATE secret_versions SET ciphertext = '\\x00'::bytea WHERE name = 's2'")
    assert (await client.get(secret_url("s2"), headers=tenant.headers)).status == 500
    assert counter(client, "kvs_secret_reads_total") == 7
    assert failures(client, "integrity") == 1


async def test_answers_that_carry_a_value_are_kept_by_no_cache(client, tenant):
    await write(client, tenant, "cached", "not-for-caches")
    revealing = [
        await client.get(secret_url("cached"), headers=tenant.headers),
        await client.get(quiva_url("cached"), headers=tenant.headers),
        await client.get(QUIVA, params={"reveal": "true"}, headers=tenant.headers),
    ]
    for resp in revealing:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store", resp.url
