"""The kinds of job in the queue, each a handler with the namespace statuses it works between.

A new kind is one function and one entry in JOBS; the loop (service/worker/loop.py) only
dispatches.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.db.pool import Database
from service.db.queries import queries
from service.domain.sealing import MasterKeys
from service.failpoints import Failpoints
from service.settings import Settings
from service.worker.leases import Job, Leases

if TYPE_CHECKING:
    from service.worker.metrics import WorkerMetrics


@dataclass(frozen=True)
class WorkerContext:
    """What a job handler or a periodic task may use."""

    db: Database
    leases: Leases
    settings: Settings
    failpoints: Failpoints
    metrics: "WorkerMetrics"
    stopping: Callable[[], bool]
    # The secrets' master keys (None: none configured, and rotation waits for a worker that
    # has them).
    keys: MasterKeys | None = None


Handler = Callable[[WorkerContext, Job], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    run: Handler
    # The namespace's status while the job is to be done, and after its last attempt failed.
    working_status: str
    failed_status: str
    # How a failure reason starts: "<what> failed after N attempts: …".
    what: str


async def provision(ctx: WorkerContext, job: Job) -> None:
    """Creates the namespace's storage record and makes it `provision_ok`, atomically."""
    await ctx.failpoints.hit("provision.start")
    waited = None
    async with ctx.leases.finishing(job) as (tx, status):
        await ctx.failpoints.hit("provision.before_commit")
        if status == "pending":
            await tx.execute(queries().create_namespace_storage, job.namespace_id)
            waited = await tx.fetchval(queries().finish_provisioning, job.namespace_id)
    if waited is not None:
        ctx.metrics.provision_duration.observe(waited)


async def delete(ctx: WorkerContext, job: Job) -> None:
    """Removes the namespace's keys in short batches, then the namespace itself.

    Each batch is its own short transaction, so a namespace with millions of keys never
    holds locks that other requests wait on; a crash between batches resumes where it was. A
    stopping worker hands the job back between batches.
    """
    await ctx.failpoints.hit("delete.start")
    batch = ctx.settings.delete_batch_size
    while True:
        if ctx.stopping():
            await ctx.leases.release(job)
        await ctx.leases.renew(job)
        result = await ctx.db.execute(queries().delete_key_batch, job.namespace_id, batch)
        await ctx.failpoints.hit("delete.after_batch")
        if int(result.split()[-1]) < batch:
            break
    async with ctx.leases.finishing(job) as (tx, status):
        await ctx.failpoints.hit("delete.before_commit")
        if status == "deleting":
            await tx.execute(queries().delete_namespace_row, job.namespace_id)


JOBS: dict[str, JobKind] = {
    "provision": JobKind(provision, "pending", "provision_failed", "Provisioning"),
    "delete": JobKind(delete, "deleting", "delete_failed", "Deletion"),
}
JOB_KINDS = tuple(JOBS)


async def give_up(leases: Leases, job: Job, error: str) -> None:
    """Ends the job: its namespace, if still in the job's working status, shows the failed
    status and why."""
    kind = JOBS[job.kind]
    reason = f"{kind.what} failed after {job.attempts} attempts: {error}"
    async with leases.finishing(job) as (tx, status):
        if status == kind.working_status:
            await tx.execute(
                queries().set_namespace_status, job.namespace_id, kind.failed_status, reason
            )
