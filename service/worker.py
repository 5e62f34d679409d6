"""The provisioning worker: provisions and deletes namespaces from the `jobs` queue, and sweeps
expired keys.

Jobs are claimed with FOR UPDATE SKIP LOCKED and leased; every change that finishes a job
first checks, under row locks, that this worker still holds the lease, so a worker that lost
its lease (paused, partitioned, presumed dead) cannot finish a job another worker took over.
"""

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from service.db import Database, queries
from service.errors import DATABASE_DOWN
from service.failpoints import Failpoints
from service.metrics import JOB_KINDS, JOB_STATES, NAMESPACE_STATUSES, WorkerMetrics
from service.settings import Settings

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "kvs_jobs"
_FAILED_STATUS = {"provision": "provision_failed", "delete": "delete_failed"}
_WORKING_STATUS = {"provision": "pending", "delete": "deleting"}


class LeaseLost(Exception):
    """Another worker owns the job now; this one must not touch it."""


class Released(Exception):
    """The worker is stopping and handed the job back unfinished."""


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    namespace_id: UUID
    attempts: int
    last_error: str | None


class Worker:
    """Runs jobs until stop() is called; wakes on NOTIFY, with polling as the fallback."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        owner: str | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics or WorkerMetrics()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.failpoints = Failpoints(settings.failpoints)
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._next_sweep = 0.0
        self._next_stats = 0.0

    def stop(self) -> None:
        """Asks run() to return after the current job is finished or released."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        log.info("worker started", extra={"owner": self.owner})
        try:
            while not self._stop.is_set():
                await self._ensure_listener()
                self._wake.clear()
                try:
                    if time.monotonic() >= self._next_stats:
                        await self.refresh_stats()
                        self._next_stats = time.monotonic() + self.settings.stats_interval
                    ran = await self.run_once()
                    self.metrics.last_loop.set(time.time())
                    if ran:
                        continue
                    if time.monotonic() >= self._next_sweep:
                        if await self.sweep_once() == self.settings.sweep_batch_size:
                            continue  # more are expired: jobs first, then the next batch
                        self._next_sweep = time.monotonic() + self.settings.sweep_interval
                    delay = min(
                        await self._seconds_until_next_job(),
                        min(self._next_sweep, self._next_stats) - time.monotonic(),
                    )
                except DATABASE_DOWN as err:
                    log.warning("database unavailable: %s", err.detail)
                    delay = self.settings.worker_poll_interval
                except Exception:
                    # A bug or an unmigrated schema: say so loudly, keep the worker alive.
                    log.exception("worker loop failed")
                    delay = self.settings.worker_poll_interval
                await self._sleep(delay)
        finally:
            await self._close_listener()
            log.info("worker stopped", extra={"owner": self.owner})

    async def run_once(self) -> bool:
        """Claims and runs one due job; False when none is due."""
        job = await self.claim()
        if job is None:
            return False
        await self.process(job)
        return True

    async def sweep_once(self) -> int:
        """Deletes one small batch of expired keys; returns how many went.

        Expired keys are never served whether or not they are swept: sweeping only reclaims
        their space, so it goes in small batches that never hold locks for long.
        """
        try:
            result = await self.db.execute(queries().sweep_expired, self.settings.sweep_batch_size)
        except DATABASE_DOWN:
            self.metrics.jobs.labels("sweep", "interrupted").inc()
            raise
        except Exception:
            self.metrics.jobs.labels("sweep", "failed").inc()
            raise
        self.metrics.jobs.labels("sweep", "succeeded").inc()
        swept = int(result.split()[-1])
        self.metrics.expired_keys.inc(swept)
        if swept:
            log.info("swept expired keys", extra={"expired_keys": swept})
        return swept

    async def refresh_stats(self) -> None:
        """Reads the service-wide gauges: namespaces by status, the queue, storage totals."""
        q = queries()
        namespaces = {r["status"]: r["n"] for r in await self.db.fetch(q.namespace_counts)}
        for status in NAMESPACE_STATUSES:
            self.metrics.namespaces.labels(status).set(namespaces.get(status, 0))
        queue = {(r["kind"], r["state"]): r for r in await self.db.fetch(q.queue_depth)}
        for kind in JOB_KINDS:
            rows = [queue[kind, state] for state in JOB_STATES if (kind, state) in queue]
            for state in JOB_STATES:
                row = queue.get((kind, state))
                self.metrics.queue_jobs.labels(kind, state).set(row["n"] if row else 0)
            oldest = max((r["oldest_seconds"] for r in rows), default=0.0)
            self.metrics.queue_oldest.labels(kind).set(oldest)
        storage = await self.db.fetchrow(q.storage_totals)
        self.metrics.stored_keys.set(storage["keys"])
        self.metrics.stored_bytes.set(storage["bytes"])
        self.metrics.stats_refreshed.set(time.time())

    async def claim(self) -> Job | None:
        """Leases the oldest due job to this worker."""
        row = await self.db.fetchrow(
            queries().claim_job, self.owner, self.settings.worker_lease_seconds
        )
        if row is None:
            return None
        self.metrics.jobs_claimed.labels(row["kind"]).inc()
        return Job(**dict(row))

    async def process(self, job: Job) -> str:
        """Runs a claimed job to an outcome: succeeded, retried, failed, lease_lost,
        released or interrupted (the database went away)."""
        started = time.monotonic()
        outcome, error = "succeeded", None
        try:
            if job.attempts > self.settings.worker_max_attempts:
                # Earlier attempts died without recording an outcome (crashes, lost leases).
                outcome, error = "failed", job.last_error or "the worker running it was lost"
                await self._give_up(job, error)
            elif job.kind == "provision":
                await self._provision(job)
            else:
                await self._delete(job)
        except LeaseLost:
            outcome = "lease_lost"
        except Released:
            outcome = "released"
        except DATABASE_DOWN:
            # The lease runs out and the job is claimed again once the database is back.
            outcome = "interrupted"
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            outcome = await self._fail(job, error)
        self.metrics.jobs.labels(job.kind, outcome).inc()
        log.info(
            "job",
            extra={
                "job_id": job.id,
                "kind": job.kind,
                "namespace_id": str(job.namespace_id),
                "attempt": job.attempts,
                "outcome": outcome,
                "error": error,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return outcome

    async def _provision(self, job: Job) -> None:
        """Creates the namespace's storage record and makes it `provision_ok`, atomically."""
        await self.failpoints.hit("provision.start")
        async with self.db.transaction() as conn:
            status = await self._lock_job(conn, job)
            await self.failpoints.hit("provision.before_commit")
            waited = None
            if status == "pending":
                await conn.execute(queries().create_namespace_storage, job.namespace_id)
                waited = await conn.fetchval(queries().finish_provisioning, job.namespace_id)
            await conn.execute(queries().delete_job, job.id)
        if waited is not None:
            self.metrics.provision_duration.observe(waited)

    async def _delete(self, job: Job) -> None:
        """Removes the namespace's keys in short batches, then the namespace itself.

        Each batch is its own short transaction, so a namespace with millions of keys never
        holds locks that other requests wait on; a crash between batches resumes where it was.
        """
        await self.failpoints.hit("delete.start")
        batch = self.settings.delete_batch_size
        while True:
            if self._stop.is_set():
                await self.db.fetchval(queries().release_job, job.id, self.owner)
                raise Released()
            renewed = await self.db.fetchval(
                queries().renew_lease, job.id, self.owner, self.settings.worker_lease_seconds
            )
            if renewed is None:
                raise LeaseLost()
            result = await self.db.execute(queries().delete_key_batch, job.namespace_id, batch)
            await self.failpoints.hit("delete.after_batch")
            if int(result.split()[-1]) < batch:
                break
        async with self.db.transaction() as conn:
            status = await self._lock_job(conn, job)
            await self.failpoints.hit("delete.before_commit")
            await conn.execute(queries().delete_job, job.id)
            if status == "deleting":
                await conn.execute(queries().delete_namespace_row, job.namespace_id)

    async def _fail(self, job: Job, error: str) -> str:
        """Schedules a retry with backoff, or gives up after the last attempt."""
        try:
            if job.attempts >= self.settings.worker_max_attempts:
                await self._give_up(job, error)
                return "failed"
            delay = min(
                self.settings.worker_backoff_max,
                self.settings.worker_backoff_base * 2 ** (job.attempts - 1),
            )
            delay *= random.uniform(0.5, 1.0)  # jitter, so failed jobs do not retry in step
            await self.db.fetchval(queries().retry_job, job.id, self.owner, delay, error)
            return "retried"
        except (LeaseLost, *DATABASE_DOWN):
            return "interrupted"

    async def _give_up(self, job: Job, error: str) -> None:
        """Ends the job: the namespace shows the failed status and why."""
        verb = "Provisioning" if job.kind == "provision" else "Deletion"
        reason = f"{verb} failed after {job.attempts} attempts: {error}"
        async with self.db.transaction() as conn:
            status = await self._lock_job(conn, job)
            if status == _WORKING_STATUS[job.kind]:
                await conn.execute(
                    queries().set_namespace_status,
                    job.namespace_id,
                    _FAILED_STATUS[job.kind],
                    reason,
                )
            await conn.execute(queries().delete_job, job.id)

    async def _lock_job(self, conn: asyncpg.Connection, job: Job) -> str | None:
        """Locks the namespace, then the job if this worker still owns it; the namespace status.

        Namespace first, job second: the order the API's delete request takes them in.
        """
        status = await conn.fetchval(queries().lock_namespace, job.namespace_id)
        if await conn.fetchval(queries().lock_owned_job, job.id, self.owner) is None:
            raise LeaseLost()
        return status

    async def _seconds_until_next_job(self) -> float:
        seconds = await self.db.fetchval(queries().seconds_until_next_job)
        poll = self.settings.worker_poll_interval
        return poll if seconds is None else min(poll, max(seconds, 0.0))

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _ensure_listener(self) -> None:
        """Keeps a LISTEN connection open; without one the worker still polls."""
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(
                self.settings.dsn(), timeout=self.settings.db_connect_timeout
            )
            await self._listener.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as err:
            self._listener = None
            log.warning("cannot LISTEN, polling only: %s", type(err).__name__)

    async def _close_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close(timeout=self.settings.db_connect_timeout)
