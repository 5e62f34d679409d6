"""Prometheus metrics: served on their own port, counting what happened, with bounded labels."""

import re
import subprocess

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from service.db.pool import open_database
from service.domain import keys as kv
from service.domain.namespaces import update_namespace
from service.web.appkeys import METRICS_PORT
from service.worker.loop import Worker
from service.worker.metrics import WorkerMetrics
from service.worker.periodic import refresh_stats, sweep_expired
from tests.support import drain, key_url, put, require_tool
from tests.support.workers import add_keys, new_namespace

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def scrape(client) -> str:
    port = client.server.app[METRICS_PORT]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200
            return await resp.text()


def samples(text: str) -> dict[tuple, float]:
    """(name, sorted label items) -> value, for every sample in an exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def test_requests_are_counted_by_route_method_and_status(client, tenant, namespace):
    for i in range(3):
        await put(client, tenant, namespace, f"k{i}", b"12345")
    await client.get(key_url(namespace, "missing"), headers=tenant.headers)
    text = await scrape(client)
    route = "/v2/storage/kvs/{id}/keys/{key}"
    assert value(text, "kvs_http_requests_total", route=route, method="PUT", status="201") == 3
    assert value(text, "kvs_http_requests_total", route=route, method="GET", status="404") == 1
    assert value(text, "kvs_http_request_body_bytes_total", route=route, method="PUT") == 15
    assert value(text, "kvs_http_request_duration_seconds_count", route=route, method="PUT") == 3
    assert value(text, "kvs_http_requests_in_flight") == 0
    assert value(text, "kvs_db_query_duration_seconds_count", query="put_entry") == 3
    assert value(text, "kvs_db_pool_connections", state="max") == 10
    assert value(text, "kvs_db_errors_total", sqlstate_class="23") == 0


async def test_methods_outside_http_s_standard_set_count_as_other(client, tenant):
    # Methods the HTTP parser knows (WebDAV's, among others) but no route here serves.
    for method in ("PROPFIND", "MKCOL", "LOCK", "UNLOCK", "SEARCH"):
        resp = await client.request(method, "/v2/storage/kvs", headers=tenant.headers)
        assert resp.status == 405
    text = await scrape(client)
    route = "unmatched"  # as every 405: no route matched the method
    assert value(text, "kvs_http_requests_total", route=route, method="other", status="405") == 5
    assert "PROPFIND" not in text and "MKCOL" not in text


async def test_the_public_port_does_not_serve_metrics(client):
    assert (await client.get("/metrics")).status == 404


async def test_the_series_count_does_not_grow_with_namespaces_and_no_label_names_one(
    client, tenant, db, settings
):
    async def exercise(ns_id):
        await put(client, tenant, ns_id, "k")
        await client.get(key_url(ns_id, "k"), headers=tenant.headers)
        await client.get(f"/v2/storage/kvs/{ns_id}", headers=tenant.headers)

    first = await new_namespace(db, tenant.id, "first")
    await drain(Worker(db, settings))
    await exercise(first.id)
    before = len(samples(await scrape(client)))
    for i in range(30):
        ns = await new_namespace(db, tenant.id, f"more-{i}")
        await drain(Worker(db, settings))
        await exercise(ns.id)
    text = await scrape(client)
    assert len(samples(text)) == before
    assert not UUID.search(text)
    assert tenant.token.split("_")[1] not in text


async def test_worker_metrics_count_jobs_and_expired_keys(db, tenant, settings):
    metrics = WorkerMetrics()
    worker = Worker(db, settings, metrics=metrics)
    for i in range(4):
        await new_namespace(db, tenant.id, f"ns-{i}")
    await drain(worker)
    await db.execute(
        "INSERT INTO kv_entries (namespace_id, key, value, content_type, size_bytes, expires_at,"
        " version, created_version) SELECT id, 'k', '', 'a/b', 0, now() - interval '1 s', 1, 1"
        " FROM namespaces"
    )
    await sweep_expired(worker.context)
    text = metrics.exposition().decode()
    assert value(text, "kvs_worker_jobs_claimed_total", kind="provision") == 4
    assert value(text, "kvs_worker_jobs_total", kind="provision", outcome="succeeded") == 4
    assert value(text, "kvs_worker_jobs_total", kind="sweep", outcome="succeeded") == 1
    assert value(text, "kvs_worker_expired_keys_total") == 4


async def test_each_statement_of_a_transaction_is_timed_by_its_name(db, tenant, settings):
    """Pass: provisioning's transaction (locks, storage record, status, job row) shows in
    kvs_db_query_duration_seconds under each statement's name, once each."""
    metrics = WorkerMetrics()
    await new_namespace(db, tenant.id, "timed")
    async with open_database(settings, observer=metrics) as observed:
        await drain(Worker(observed, settings, metrics=metrics))
    text = metrics.exposition().decode()
    for name in (
        "lock_namespace",
        "lock_owned_job",
        "delete_job",
        "create_namespace_storage",
        "finish_provisioning",
    ):
        assert value(text, "kvs_db_query_duration_seconds_count", query=name) == 1, name


async def test_worker_gauges_show_namespaces_queue_and_storage(db, tenant, settings):
    metrics = WorkerMetrics()
    worker = Worker(db, settings, metrics=metrics)
    ready = await new_namespace(db, tenant.id, "ready")
    await drain(worker)
    for i in range(3):
        await new_namespace(db, tenant.id, f"waiting-{i}")
    await db.execute(  # one provisioning job backing off before its retry
        "UPDATE jobs SET run_after = now() + interval '1 h' WHERE id = (SELECT min(id) FROM jobs)"
    )
    async with db.pool.acquire() as conn:
        await add_keys(conn, ready.id, 250)
        # A backend reports its row counts to the statistics at most once a second; ask now.
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await conn.execute("SELECT 1")
    await refresh_stats(worker.context)
    text = metrics.exposition().decode()
    assert value(text, "kvs_namespaces", status="provision_ok") == 1
    assert value(text, "kvs_namespaces", status="pending") == 3
    assert value(text, "kvs_namespaces", status="deleting") == 0
    assert value(text, "kvs_worker_queue_jobs", kind="provision", state="due") == 2
    assert value(text, "kvs_worker_queue_jobs", kind="provision", state="waiting") == 1
    assert value(text, "kvs_worker_queue_jobs", kind="delete", state="due") == 0
    assert value(text, "kvs_worker_queue_oldest_job_age_seconds", kind="provision") > 0
    assert value(text, "kvs_worker_queue_oldest_job_age_seconds", kind="delete") == 0
    assert value(text, "kvs_stored_keys") == 250
    stored = await db.fetchval("SELECT sum(size_bytes) FROM kv_entries")
    assert value(text, "kvs_stored_bytes") == stored > 0
    assert value(text, "kvs_storage_disk_bytes") > 8192
    assert value(text, "kvs_namespaces_near_limit") == 0
    assert value(text, "kvs_stats_refreshed_timestamp_seconds") > 0
    assert value(text, "kvs_worker_provision_duration_seconds_count") == 1
    assert 0 < value(text, "kvs_worker_provision_duration_seconds_sum") < 5


async def test_promtool_finds_both_expositions_clean(client, tenant, namespace, db, settings):
    """Needs Debian's `prometheus` package for promtool; .ci/run installs it."""
    promtool = require_tool("promtool", "prometheus")
    await put(client, tenant, namespace, "k")
    worker_metrics = WorkerMetrics()
    await refresh_stats(Worker(db, settings, metrics=worker_metrics).context)
    for exposition in (await scrape(client), worker_metrics.exposition().decode()):
        result = subprocess.run(  # noqa: ASYNC221 - a short local check
            [promtool, "check", "metrics"],
            input=exposition,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


async def test_a_417_sent_before_the_middlewares_is_logged_and_counted_once(
    client, tenant, namespace, caplog
):
    caplog.set_level("INFO", logger="kvs.access")
    resp = await client.put(
        key_url(namespace, "k"),
        data=b"v",
        headers={**tenant.headers, "Expect": "teapot", "X-Request-Id": "req-417"},
    )
    assert resp.status == 417
    lines = [r for r in caplog.records if r.name == "kvs.access" and r.getMessage() == "request"]
    assert [(r.route, r.status, r.request_id) for r in lines] == [
        ("/v2/storage/kvs/{id}/keys/{key}", 417, "req-417")
    ]
    text = await scrape(client)
    route = "/v2/storage/kvs/{id}/keys/{key}"
    assert value(text, "kvs_http_requests_total", route=route, method="PUT", status="417") == 1


async def test_each_request_writes_one_json_log_line_without_the_key_or_value(
    client, tenant, namespace, caplog
):
    from service.logs import JsonFormatter

    caplog.set_level("INFO", logger="kvs.access")
    await put(client, tenant, namespace, "k", b"secret-value", {"X-Request-Id": "req-1"})
    lines = [r for r in caplog.records if r.name == "kvs.access" and r.getMessage() == "request"]
    assert len(lines) == 1
    entry = lines[0]
    assert (entry.method, entry.route, entry.status) == (
        "PUT",
        "/v2/storage/kvs/{id}/keys/{key}",
        201,
    )
    assert entry.request_id == "req-1" and entry.request_bytes == 12
    assert entry.duration_ms >= 0
    formatted = JsonFormatter().format(entry)
    assert tenant.token not in formatted and "secret-value" not in formatted


async def test_a_sampled_access_log_still_logs_every_failure_and_counts_every_request(
    make_client, settings, tenant, namespace, caplog
):
    from service.web.app import create_app

    client = await make_client(create_app(settings.model_copy(update={"access_log_sample": 0})))
    caplog.set_level("INFO", logger="kvs.access")
    for i in range(5):
        assert (await put(client, tenant, namespace, f"k{i}", b"v")).status == 201
    missing = await client.get(key_url(namespace, "absent"), headers=tenant.headers)
    assert missing.status == 404
    lines = [r for r in caplog.records if r.name == "kvs.access" and r.getMessage() == "request"]
    assert [(r.method, r.status) for r in lines] == [("GET", 404)]
    text = await scrape(client)
    route = "/v2/storage/kvs/{id}/keys/{key}"
    assert value(text, "kvs_http_requests_total", route=route, method="PUT", status="201") == 5


async def test_namespaces_above_90_percent_of_max_bytes_are_counted(db, tenant, settings):
    """Pass: of three namespaces with max_bytes 100 holding 91, 90 and 150 bytes (a limit
    lowered below the usage), two count; one without max_bytes never does."""
    metrics = WorkerMetrics()
    worker = Worker(db, settings, metrics=metrics)
    held = {"above": 91, "at": 90, "over": 150, "unlimited": 10_000}
    namespaces = {name: await new_namespace(db, tenant.id, name) for name in held}
    await drain(worker)
    for name, size in held.items():
        await kv.put_value(db, tenant.id, namespaces[name].id, "k", b"x" * size, "a/b")
        if name != "unlimited":
            await update_namespace(db, tenant.id, namespaces[name].id, {"max_bytes": 100})
    await refresh_stats(worker.context)
    text = metrics.exposition().decode()
    assert value(text, "kvs_namespaces_near_limit") == 2
    assert value(text, "kvs_stored_bytes") == sum(held.values())
