"""The lease protocol of the `jobs` queue: claim, renew, hand back, retry, and the fenced
finish.

Jobs are claimed with FOR UPDATE SKIP LOCKED and leased: while leased, a job's `run_after` is
its lease expiry, so a worker that dies simply stops renewing and the job is claimed again
once the lease passes. Every change that finishes a job first checks, under row locks, that
this worker still holds the lease, so a worker that lost its lease (paused, partitioned,
presumed dead) cannot finish a job another worker took over.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

from service.db.pool import Database, Transaction
from service.db.queries import queries


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


class Leases:
    """One worker's side of the protocol, as `owner`."""

    def __init__(self, db: Database, owner: str, lease_seconds: float) -> None:
        self.db = db
        self.owner = owner
        self.lease_seconds = lease_seconds

    async def claim(self) -> Job | None:
        """Leases the oldest due job to this worker; None when none is due."""
        row = await self.db.fetchrow(queries().claim_job, self.owner, self.lease_seconds)
        return None if row is None else Job(**dict(row))

    async def renew(self, job: Job) -> None:
        """Extends the lease; LeaseLost if another worker has taken the job over."""
        renewed = await self.db.fetchval(
            queries().renew_lease, job.id, self.owner, self.lease_seconds
        )
        if renewed is None:
            raise LeaseLost()

    async def release(self, job: Job) -> None:
        """Hands the job back unfinished and raises Released: it is due again at once, and
        this attempt does not count."""
        await self.db.fetchval(queries().release_job, job.id, self.owner)
        raise Released()

    async def retry_later(self, job: Job, delay: float, error: str) -> None:
        """Gives the job back to be claimed again after `delay` seconds, with its error."""
        await self.db.fetchval(queries().retry_job, job.id, self.owner, delay, error)

    @asynccontextmanager
    async def finishing(self, job: Job) -> AsyncIterator[tuple[Transaction, str | None]]:
        """A transaction that holds the namespace's row lock and then, only if this worker
        still owns it, the job's; yields it with the namespace's status (None once the
        namespace is gone). The job's row is deleted in it first: the namespace's row may go
        in the block, and the job references it.

        Namespace first, job second: the order the API's delete request takes them in, so the
        two never deadlock. LeaseLost, and nothing changed, if the lease was taken over.
        """
        async with self.db.transaction() as tx:
            status = await tx.fetchval(queries().lock_namespace, job.namespace_id)
            if await tx.fetchval(queries().lock_owned_job, job.id, self.owner) is None:
                raise LeaseLost()
            await tx.execute(queries().delete_job, job.id)
            yield tx, status

    async def seconds_until_next(self, poll_interval: float) -> float:
        """How long until a job is due, at most `poll_interval`."""
        seconds = await self.db.fetchval(queries().seconds_until_next_job)
        return poll_interval if seconds is None else min(poll_interval, max(seconds, 0.0))
