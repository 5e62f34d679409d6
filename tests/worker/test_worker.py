"""The provisioning worker: wake-ups, leases, crashes, races, retries and deletion."""

import asyncio
import contextlib
import time

import pytest

from service.db.pool import open_database
from service.domain.namespaces import delete_namespace
from service.worker.loop import Worker
from tests.support import closed_port, drain, make_settings
from tests.support.workers import WorkerProcess, add_keys, new_namespace, status_of, wait_until


@contextlib.asynccontextmanager
async def running(worker: Worker):
    task = asyncio.create_task(worker.run(), name="test-worker")
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=10)


async def test_notify_provisions_a_new_namespace_well_under_a_second(db, tenant, database_url):
    """The worker polls only every 60 s here, so only NOTIFY can wake it in time."""
    proc = await WorkerProcess(database_url, worker_poll_interval="60").start()
    try:
        await wait_until(
            lambda: db.fetchval(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'LISTEN%kvs_jobs%'"
            )
        )
        created = time.monotonic()
        ns = await new_namespace(db, tenant.id)
        await wait_until(lambda: _is(db, ns.id, "provision_ok"), timeout=5, interval=0.005)
        assert time.monotonic() - created < 1.0
    finally:
        assert await proc.stop() == 0
    assert [j["outcome"] for j in proc.jobs()] == ["succeeded"]


async def _is(db, namespace_id, status):
    return await status_of(db, namespace_id) == status


async def test_polling_finds_work_when_notify_is_lost(db, tenant, settings):
    await db.execute("ALTER TABLE jobs DISABLE TRIGGER jobs_notify")
    async with running(Worker(db, settings)):
        await asyncio.sleep(0.1)
        ns = await new_namespace(db, tenant.id)
        await wait_until(lambda: _is(db, ns.id, "provision_ok"), timeout=5)


@pytest.mark.parametrize(
    "failpoint",
    [
        "provision.start",
        "provision.before_commit",
        "delete.start",
        "delete.after_batch",
        "delete.before_commit",
    ],
)
async def test_a_job_whose_worker_is_sigkilled_is_finished_by_another_after_the_lease(
    db, tenant, database_url, failpoint
):
    ns = await new_namespace(db, tenant.id)
    if failpoint.startswith("delete"):
        await drain(Worker(db, make_settings(database_url)))
        await add_keys(db, ns.id, 2500)
        await delete_namespace(db, tenant.id, ns.id)
    doomed = await WorkerProcess(
        database_url,
        failpoints=f"{failpoint}=sleep:60",
        worker_lease_seconds="1",
        delete_batch_size="1000",
    ).start()
    await doomed.wait_for(lambda e: e.get("failpoint") == failpoint)
    await doomed.kill()

    survivor = await WorkerProcess(
        database_url, worker_lease_seconds="1", delete_batch_size="1000"
    ).start()
    try:
        if failpoint.startswith("provision"):
            await wait_until(lambda: _is(db, ns.id, "provision_ok"))
            assert await db.fetchval("SELECT count(*) FROM namespace_storage") == 1
        else:
            await wait_until(lambda: _is(db, ns.id, None))
            assert await db.fetchval("SELECT count(*) FROM kv_entries") == 0
        assert await db.fetchval("SELECT count(*) FROM jobs") == 0
    finally:
        await survivor.stop()
    done = survivor.jobs("succeeded")
    assert len(done) == 1 and done[0]["attempt"] == 2


async def test_a_late_finish_from_a_worker_that_lost_its_lease_is_refused(db, tenant, settings):
    ns = await new_namespace(db, tenant.id)
    first, second = Worker(db, settings, owner="first"), Worker(db, settings, owner="second")
    stale = await first.claim()
    await db.execute("UPDATE jobs SET run_after = now() - interval '1 second'")  # lease ran out
    current = await second.claim()
    assert current.id == stale.id

    assert await first.process(stale) == "lease_lost"
    assert await status_of(db, ns.id) == "pending"
    assert await second.process(current) == "succeeded"
    assert await status_of(db, ns.id) == "provision_ok"


async def test_two_workers_racing_on_100_namespaces_provision_each_exactly_once(
    db, tenant, database_url
):
    workers = [await WorkerProcess(database_url).start() for _ in range(2)]
    try:
        created = await asyncio.gather(
            *(new_namespace(db, tenant.id, f"ns-{i}") for i in range(100))
        )
        await wait_until(
            lambda: db.fetchval(
                "SELECT count(*) = 100 FROM namespaces WHERE status = 'provision_ok'"
            ),
            timeout=30,
        )
    finally:
        for w in workers:
            assert await w.stop() == 0
    done = [j["namespace_id"] for w in workers for j in w.jobs("succeeded")]
    assert sorted(done) == sorted(str(ns.id) for ns in created)
    assert await db.fetchval("SELECT count(*) FROM namespace_storage") == 100


async def test_failures_are_retried_with_backoff_then_end_in_provision_failed(
    db, tenant, database_url
):
    settings = make_settings(
        database_url, failpoints="provision.start=error", worker_max_attempts=3
    )
    ns = await new_namespace(db, tenant.id)
    async with running(Worker(db, settings)):
        await wait_until(lambda: _is(db, ns.id, "provision_failed"), timeout=10)
    reason = await db.fetchval("SELECT status_reason FROM namespaces WHERE id = $1", ns.id)
    assert reason == (
        "Provisioning failed after 3 attempts: FailpointError: failpoint provision.start"
    )
    assert await db.fetchval("SELECT count(*) FROM jobs") == 0


async def test_a_failure_that_clears_is_retried_to_success(db, tenant, database_url):
    settings = make_settings(database_url, failpoints="provision.start=error:2")
    ns = await new_namespace(db, tenant.id)
    async with running(Worker(db, settings)):
        await wait_until(lambda: _is(db, ns.id, "provision_ok"), timeout=10)


async def test_a_job_whose_attempts_all_died_is_failed_on_its_next_claim(db, tenant, settings):
    ns = await new_namespace(db, tenant.id)
    await db.execute(
        "UPDATE jobs SET attempts = $1, last_error = NULL", settings.worker_max_attempts
    )
    await drain(Worker(db, settings))
    assert await status_of(db, ns.id) == "provision_failed"
    assert "the worker running it was lost" in await db.fetchval(
        "SELECT status_reason FROM namespaces WHERE id = $1", ns.id
    )


async def test_delete_removes_every_key_in_separate_batches_and_resumes_after_a_crash(
    db, tenant, database_url
):
    """Each batch commits on its own: a crash after the first leaves exactly 1000 keys gone."""
    ns = await new_namespace(db, tenant.id)
    await drain(Worker(db, make_settings(database_url)))
    await add_keys(db, ns.id, 2500)
    await delete_namespace(db, tenant.id, ns.id)

    crashing = await WorkerProcess(
        database_url,
        failpoints="delete.after_batch=crash",
        worker_lease_seconds="1",
        delete_batch_size="1000",
    ).start()
    assert await crashing.proc.wait() == -9
    assert await db.fetchval("SELECT count(*) FROM kv_entries") == 1500

    settings = make_settings(database_url, worker_lease_seconds=1, delete_batch_size=1000)
    async with running(Worker(db, settings)):
        await wait_until(lambda: _is(db, ns.id, None), timeout=10)
    for table in ("kv_entries", "namespace_storage", "jobs", "namespaces"):
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_delete_failures_end_in_delete_failed_and_deletion_can_be_retried(
    db, tenant, database_url
):
    ns = await new_namespace(db, tenant.id)
    await drain(Worker(db, make_settings(database_url)))
    await delete_namespace(db, tenant.id, ns.id)
    failing = make_settings(database_url, failpoints="delete.start=error", worker_max_attempts=2)
    async with running(Worker(db, failing)):
        await wait_until(lambda: _is(db, ns.id, "delete_failed"), timeout=10)
    assert (
        await db.fetchval("SELECT status_reason FROM namespaces WHERE id = $1", ns.id)
    ).startswith("Deletion failed after 2 attempts")

    assert (await delete_namespace(db, tenant.id, ns.id)).status == "deleting"
    await drain(Worker(db, make_settings(database_url)))
    assert await status_of(db, ns.id) is None


async def test_stop_hands_back_a_delete_in_progress(db, tenant, database_url):
    ns = await new_namespace(db, tenant.id)
    await drain(Worker(db, make_settings(database_url)))
    await add_keys(db, ns.id, 3000)
    await delete_namespace(db, tenant.id, ns.id)
    settings = make_settings(
        database_url, failpoints="delete.after_batch=sleep:0.3", delete_batch_size=1000
    )
    async with running(Worker(db, settings)):
        await wait_until(lambda: db.fetchval("SELECT count(*) < 3000 FROM kv_entries"))
    job = await db.fetchrow("SELECT lease_owner, attempts, run_after <= now() AS due FROM jobs")
    assert job["lease_owner"] is None and job["attempts"] == 0 and job["due"]
    await drain(Worker(db, make_settings(database_url)))
    assert await status_of(db, ns.id) is None


async def test_the_worker_keeps_looping_while_the_database_is_unreachable(caplog):
    settings = make_settings(
        f"postgresql://postgres@127.0.0.1:{closed_port()}/none", db_connect_timeout=0.5
    )
    async with open_database(settings) as unreachable:
        async with running(Worker(unreachable, settings)):
            await asyncio.sleep(1.0)
    unavailable = [r for r in caplog.records if r.getMessage().startswith("database unavailable")]
    assert len(unavailable) >= 2
