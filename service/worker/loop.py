"""The worker's loop: takes due jobs from the queue and runs their kind's handler
(service/worker/jobs.py), and runs the periodic tasks (service/worker/periodic.py) when due.
It only dispatches: what a job does, and how leases work (service/worker/leases.py), live
beside it.
"""

import asyncio
import logging
import os
import random
import socket
import time
import uuid

from service.db.listener import Listener
from service.db.pool import Database
from service.domain.errors import STORE_DOWN
from service.domain.sealing import configured_keys
from service.failpoints import Failpoints
from service.settings import Settings
from service.worker.jobs import JOBS, WorkerContext, give_up
from service.worker.leases import Job, LeaseLost, Leases, Released
from service.worker.metrics import WorkerMetrics
from service.worker.periodic import PERIODIC

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "kvs_jobs"


class Worker:
    """Runs jobs until stop() is called; wakes on NOTIFY, with polling as the fallback."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        owner: str | None = None,
        metrics: WorkerMetrics | None = None,
        listener: Listener | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or WorkerMetrics()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leases = Leases(db, self.owner, settings.worker_lease_seconds)
        self._listener = listener
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self.context = WorkerContext(
            db=db,
            leases=self.leases,
            settings=settings,
            failpoints=Failpoints(settings.failpoints),
            metrics=self.metrics,
            stopping=self._stop.is_set,
            keys=configured_keys(settings.secrets_master_keys),
        )
        self._next_run = {task.name: 0.0 for task in PERIODIC}

    def stop(self) -> None:
        """Asks run() to return after the current job is finished or released."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Runs until stop(); LISTENs on the process's listener, or on one of its own."""
        if self._listener is None:
            async with Listener(self.settings) as listener:
                return await self._run(listener)
        return await self._run(self._listener)

    async def _run(self, listener: Listener) -> None:
        log.info("worker started", extra={"owner": self.owner})
        unsubscribe = await listener.subscribe(NOTIFY_CHANNEL, lambda _: self._wake.set())
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    busy = await self.run_once()
                    busy = await self._run_due_tasks() or busy
                    self.metrics.last_loop.set(time.time())
                    if busy:
                        continue
                    next_task = min(self._next_run.values()) - time.monotonic()
                    poll = self.settings.worker_poll_interval
                    delay = min(await self.leases.seconds_until_next(poll), next_task)
                except STORE_DOWN as err:
                    log.warning("database unavailable: %s", err.message)
                    delay = self.settings.worker_poll_interval
                except Exception:
                    # A bug or an unmigrated schema: say so loudly, keep the worker alive.
                    log.exception("worker loop failed")
                    delay = self.settings.worker_poll_interval
                await self._sleep(delay)
        finally:
            unsubscribe()
            log.info("worker stopped", extra={"owner": self.owner})

    async def run_once(self) -> bool:
        """Claims and runs one due job; False when none is due."""
        job = await self.claim()
        if job is None:
            return False
        await self.process(job)
        return True

    async def _run_due_tasks(self) -> bool:
        """Runs each periodic task that is due; True if one has more to do at once."""
        more = False
        for task in PERIODIC:
            if time.monotonic() < self._next_run[task.name]:
                continue
            if await task.run(self.context):
                more = True
            else:
                self._next_run[task.name] = time.monotonic() + task.interval(self.settings)
        return more

    async def claim(self) -> Job | None:
        """Leases the oldest due job to this worker."""
        job = await self.leases.claim()
        if job is not None:
            self.metrics.jobs_claimed.labels(job.kind).inc()
        return job

    async def process(self, job: Job) -> str:
        """Runs a claimed job to an outcome: succeeded, retried, failed, lease_lost,
        released or interrupted (the database went away)."""
        started = time.monotonic()
        outcome, error = "succeeded", None
        try:
            if job.attempts > self.settings.worker_max_attempts:
                # Earlier attempts died without recording an outcome (crashes, lost leases).
                outcome, error = "failed", job.last_error or "the worker running it was lost"
                await give_up(self.leases, job, error)
            else:
                await JOBS[job.kind].run(self.context, job)
        except LeaseLost:
            outcome = "lease_lost"
        except Released:
            outcome = "released"
        except STORE_DOWN:
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

    async def _fail(self, job: Job, error: str) -> str:
        """Schedules a retry with backoff, or gives up after the last attempt."""
        try:
            if job.attempts >= self.settings.worker_max_attempts:
                await give_up(self.leases, job, error)
                return "failed"
            delay = min(
                self.settings.worker_backoff_max,
                self.settings.worker_backoff_base * 2 ** (job.attempts - 1),
            )
            delay *= random.uniform(0.5, 1.0)  # jitter, so failed jobs do not retry in step
            await self.leases.retry_later(job, delay, error)
            return "retried"
        except (LeaseLost, *STORE_DOWN):
            return "interrupted"

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
