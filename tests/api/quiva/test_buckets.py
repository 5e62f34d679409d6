"""quiva.ai's buckets: created ready, idempotent creates, create-or-update by PUT, details and
listing filled from the namespace, purge and asynchronous deletion."""

import asyncio

from service.db.pool import open_database
from service.domain import keys as kv
from service.web.app import create_app
from tests.api.quiva import BASE, create_bucket, entry_url, error_of, put_entry
from tests.support import drain, make_settings
from tests.support.workers import add_keys, wait_until


async def listed(client, tenant) -> dict:
    resp = await client.get(BASE, headers=tenant.headers)
    assert resp.status == 200
    return {item["name"]: item for item in (await resp.json())["body"]["results"]}


async def details(client, tenant, bucket) -> dict:
    resp = await client.get(f"{BASE}/{bucket}", headers=tenant.headers)
    assert resp.status == 200
    body = await resp.json()
    assert body["metadata"]["bucket"] == bucket and body["metadata"]["duration"]
    return body["body"]


async def test_a_created_bucket_is_ready_at_once_with_its_settings(quiva, tenant):
    await create_bucket(
        quiva,
        tenant,
        "Product_Catalog",
        description="catalog",
        max_bytes=10_000,
        max_value_size=2048,
        compression=False,
        history=1,
        replicas=1,
        storage="file",
    )
    await put_entry(quiva, tenant, "Product_Catalog", "sku-1", {"name": "keyboard"})
    got = await details(quiva, tenant, "Product_Catalog")
    assert got["status"]["description"] == "catalog" and got["status"]["bytes"] == 20
    assert got["config"] == {
        "bucket": "Product_Catalog",
        "max_bytes": 10_000,
        "max_value_size": 2048,
        "history": 1,
        "num_replicas": 1,
    }
    assert got["stream_info"]["state"]["messages"] == 1
    item = (await listed(quiva, tenant))["Product_Catalog"]
    assert item["entry_total"] == 1 and item["description"] == "catalog"
    assert item["metadata"]["status"] == "provision_ok"


async def test_a_bucket_without_settings_shows_no_limit_and_the_default_value_size(quiva, tenant):
    await create_bucket(quiva, tenant, "plain")
    got = await details(quiva, tenant, "plain")
    assert got["config"]["max_bytes"] == -1 and got["config"]["max_value_size"] == 1024 * 1024
    assert got["status"]["description"] == ""


async def test_a_create_repeated_with_the_same_settings_succeeds_and_with_others_is_refused(
    quiva, tenant
):
    await create_bucket(quiva, tenant, "b", max_bytes=500)
    await create_bucket(quiva, tenant, "b", max_bytes=500)
    resp = await quiva.post(BASE, json={"bucket": "b", "max_bytes": 501}, headers=tenant.headers)
    status, word, message = await error_of(resp)
    assert (status, word) == (400, "validation_error") and "max_bytes" in message
    assert (await details(quiva, tenant, "b"))["config"]["max_bytes"] == 500
    assert list(await listed(quiva, tenant)) == ["b"]


async def test_put_creates_a_new_bucket_and_changes_only_what_it_names(quiva, tenant):
    resp = await quiva.put(f"{BASE}/prefs", json={"max_bytes": 300}, headers=tenant.headers)
    assert resp.status == 200 and await resp.json() == {"message": "success"}
    await put_entry(quiva, tenant, "prefs", "k", {})
    resp = await quiva.put(
        f"{BASE}/prefs", json={"description": "d", "max_value_size": 64}, headers=tenant.headers
    )
    assert resp.status == 200
    got = await details(quiva, tenant, "prefs")
    assert (got["status"]["description"], got["config"]["max_bytes"]) == ("d", 300)
    assert got["config"]["max_value_size"] == 64 and got["stream_info"]["state"]["messages"] == 1
    resp = await quiva.put(f"{BASE}/prefs", json={"max_bytes": -1}, headers=tenant.headers)
    assert resp.status == 200
    assert (await details(quiva, tenant, "prefs"))["config"]["max_bytes"] == -1


async def test_concurrent_puts_of_a_new_name_make_one_bucket(quiva, tenant):
    answers = await asyncio.gather(
        *(
            quiva.put(f"{BASE}/raced", json={"description": str(i)}, headers=tenant.headers)
            for i in range(8)
        )
    )
    assert [r.status for r in answers] == [200] * 8
    assert list(await listed(quiva, tenant)) == ["raced"]


async def test_a_create_the_worker_does_not_finish_in_time_is_503_and_usable_later(
    make_client, database_url, tenant, worker
):
    client = await make_client(create_app(make_settings(database_url, bucket_ready_timeout=0.2)))
    resp = await client.post(BASE, json={"bucket": "slow"}, headers=tenant.headers)
    status, word, message = await error_of(resp)
    assert (status, word) == (503, "unavailable") and "provisioned" in message
    assert resp.headers["Retry-After"] == "1"
    entry = await client.get(f"{BASE}/slow/entries/k", headers=tenant.headers)
    assert (await error_of(entry))[:2] == (503, "unavailable")
    await drain(worker)
    await put_entry(client, tenant, "slow", "k", {"ready": True})
    # A retried create of the same bucket now succeeds at once.
    await create_bucket(client, tenant, "slow")


async def test_a_bucket_whose_provisioning_failed_answers_internal_error(quiva, tenant, db):
    await create_bucket(quiva, tenant, "broken")
    await db.execute("UPDATE namespaces SET status = 'provision_failed' WHERE name = 'broken'")
    resp = await quiva.get(f"{BASE}/broken/entries", headers=tenant.headers)
    status, word, message = await error_of(resp)
    assert (status, word) == (500, "internal_error") and "provision" in message


async def test_delete_removes_the_bucket_from_every_answer_at_once(quiva, tenant):
    await create_bucket(quiva, tenant, "gone")
    await put_entry(quiva, tenant, "gone", "k", {"v": 1})
    resp = await quiva.delete(f"{BASE}/gone", headers=tenant.headers)
    assert resp.status == 200 and await resp.json() == {"message": "success"}
    assert "gone" not in await listed(quiva, tenant)
    for path in ("", "/entries", "/entries/k"):
        resp = await quiva.get(f"{BASE}/gone{path}", headers=tenant.headers)
        assert (await error_of(resp))[:2] == (404, "not_found")
    again = await quiva.delete(f"{BASE}/gone", headers=tenant.headers)
    assert (await error_of(again))[:2] == (404, "not_found")
    await create_bucket(quiva, tenant, "gone")
    resp = await quiva.get(f"{BASE}/gone/entries", headers=tenant.headers)
    assert (await resp.json())["body"]["results"] == []


async def test_purge_removes_every_entry_and_keeps_the_settings(quiva, tenant, settings):
    await create_bucket(quiva, tenant, "p", max_bytes=100_000, description="kept")
    for i in range(25):
        await put_entry(quiva, tenant, "p", f"k{i:02}", {"i": i})
    resp = await quiva.delete(f"{BASE}/p/purge", headers=tenant.headers)
    assert resp.status == 200 and await resp.json() == {"message": "success"}
    got = await details(quiva, tenant, "p")
    assert got["status"]["bytes"] == 0 and got["stream_info"]["state"]["messages"] == 0
    assert got["config"]["max_bytes"] == 100_000 and got["status"]["description"] == "kept"
    await put_entry(quiva, tenant, "p", "after", {"new": True})
    resp = await quiva.get(f"{BASE}/p/entries", headers=tenant.headers)
    assert [e["key"] for e in (await resp.json())["body"]["results"]] == ["after"]


async def test_purge_runs_in_batches_and_keeps_keys_written_after_it_began(db, tenant, namespace):
    await add_keys(db, namespace, 30)
    # A key whose version is above every version handed out so far: written after the purge
    # took its watermark, as a concurrent write would be.
    await db.execute(
        "INSERT INTO kv_entries (namespace_id, key, value, content_type, size_bytes, version,"
        " created_version) SELECT $1, 'later', '\\x00', 'a/b', 1, v, v"
        " FROM (SELECT nextval('kv_versions') + 1000000 AS v) s",
        namespace,
    )
    assert await kv.purge_values(db, tenant.id, namespace, batch=7) == 30
    left = await db.fetch("SELECT key FROM kv_entries WHERE namespace_id = $1", namespace)
    assert [r["key"] for r in left] == ["later"]


async def test_a_bucket_deleted_and_created_again_elsewhere_is_found_anew(quiva, tenant):
    """This process remembers which namespace a bucket name names; a delete and create of
    the same name that it did not see (here through /v2) still reach the new namespace."""
    await create_bucket(quiva, tenant, "again")
    await put_entry(quiva, tenant, "again", "old", {"v": 1})
    old_id = (await listed(quiva, tenant))["again"]["metadata"]["id"]
    resp = await quiva.delete(f"/v2/storage/kvs/{old_id}", headers=tenant.headers)
    assert resp.status == 200
    resp = await quiva.post("/v2/storage/kvs", json={"name": "again"}, headers=tenant.headers)
    new_id = (await resp.json())["data"]["id"]
    await create_bucket(quiva, tenant, "again")  # waits until the new one is provisioned
    resp = await quiva.get(entry_url("again", "old"), headers=tenant.headers)
    assert await error_of(resp) == (404, "not_found", "The entry does not exist.")
    resp = await quiva.get(f"{BASE}/again/entries", headers=tenant.headers)
    assert resp.status == 200 and (await resp.json())["body"]["results"] == []
    await put_entry(quiva, tenant, "again", "new", {"v": 2})
    resp = await quiva.get(f"/v2/storage/kvs/{new_id}/keys/new", headers=tenant.headers)
    assert resp.status == 200 and await resp.json() == {"v": 2}


async def test_a_value_limit_changed_elsewhere_holds_at_once(quiva, tenant):
    await create_bucket(quiva, tenant, "limits", max_value_size=100)
    await put_entry(quiva, tenant, "limits", "small", {"v": 1})  # the bucket is remembered
    namespace_id = (await listed(quiva, tenant))["limits"]["metadata"]["id"]
    bigger = {"pad": "x" * 150}
    resp = await quiva.patch(
        f"/v2/storage/kvs/{namespace_id}", json={"max_value_size": 1000}, headers=tenant.headers
    )
    assert resp.status == 200
    await put_entry(quiva, tenant, "limits", "bigger", bigger)
    resp = await quiva.patch(
        f"/v2/storage/kvs/{namespace_id}", json={"max_value_size": 50}, headers=tenant.headers
    )
    assert resp.status == 200
    resp = await quiva.put(
        entry_url("limits", "bigger"), json={"pad": "y" * 60}, headers=tenant.headers
    )
    status, word, message = await error_of(resp)
    assert (status, word) == (400, "validation_error") and "50 bytes" in message
    resp = await quiva.get(entry_url("limits", "bigger"), headers=tenant.headers)
    assert (await resp.json())["body"]["value"] == bigger


async def test_purge_goes_on_past_a_batch_in_which_a_key_was_rewritten_meanwhile(
    db, tenant, namespace, settings
):
    """A key the purge picked but another request rewrote before the purge's delete reached
    it is kept, and the purge still removes every other key written before it began."""
    await add_keys(db, namespace, 12)
    async with open_database(settings) as other, other.transaction() as tx:
        # Lock the first key, as a writer about to rewrite it would.
        await tx.execute("SELECT 1 FROM kv_entries WHERE key = 'key-1' FOR UPDATE")
        purge = asyncio.create_task(kv.purge_values(db, tenant.id, namespace, batch=5))
        await wait_until(
            lambda: db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            )
        )
        await tx.execute(
            "UPDATE kv_entries SET version = nextval('kv_versions') WHERE key = 'key-1'"
        )
    assert await purge == 11
    left = await db.fetch("SELECT key FROM kv_entries WHERE namespace_id = $1", namespace)
    assert [r["key"] for r in left] == ["key-1"]


async def test_an_entry_refused_for_a_bucket_deleted_elsewhere_says_the_bucket_is_gone(
    quiva, tenant
):
    await create_bucket(quiva, tenant, "gone-elsewhere")
    await put_entry(quiva, tenant, "gone-elsewhere", "k", {"v": 1})  # the bucket is remembered
    namespace_id = (await listed(quiva, tenant))["gone-elsewhere"]["metadata"]["id"]
    resp = await quiva.delete(f"/v2/storage/kvs/{namespace_id}", headers=tenant.headers)
    assert resp.status == 200
    for body in (b"[1]", b"{bad", b'{"v": 2}'):
        resp = await quiva.put(entry_url("gone-elsewhere", "k"), data=body, headers=tenant.headers)
        assert await error_of(resp) == (404, "not_found", "The bucket does not exist.")
