"""Work the worker does on a timer rather than from the queue: each task with the setting
that gives its interval. A new task is one function and one entry in PERIODIC."""

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from service.db.queries import queries
from service.domain.errors import STORE_DOWN
from service.domain.secrets import master_key_usage
from service.settings import Settings
from service.worker.jobs import JOB_KINDS, WorkerContext
from service.worker.metrics import JOB_STATES, NAMESPACE_STATUSES
from service.worker.rotation import rotate_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    interval: Callable[[Settings], float]
    # Returns True when more is due at once (the sweep found a full batch).
    run: Callable[[WorkerContext], Awaitable[bool]]


async def sweep_expired(ctx: WorkerContext) -> int:
    """Deletes one small batch of expired keys; returns how many went.

    Expired keys are never served whether or not they are swept: sweeping only reclaims
    their space, so it goes in small batches that never hold locks for long.
    """
    try:
        result = await ctx.db.execute(queries().sweep_expired, ctx.settings.sweep_batch_size)
    except STORE_DOWN:
        ctx.metrics.jobs.labels("sweep", "interrupted").inc()
        raise
    except Exception:
        ctx.metrics.jobs.labels("sweep", "failed").inc()
        raise
    ctx.metrics.jobs.labels("sweep", "succeeded").inc()
    swept = int(result.split()[-1])
    ctx.metrics.expired_keys.inc(swept)
    if swept:
        log.info("swept expired keys", extra={"expired_keys": swept})
    return swept


async def _sweep(ctx: WorkerContext) -> bool:
    return await sweep_expired(ctx) == ctx.settings.sweep_batch_size


async def refresh_stats(ctx: WorkerContext) -> bool:
    """Reads the service-wide gauges: namespaces by status, the queue, usage and storage."""
    q, db, metrics = queries(), ctx.db, ctx.metrics
    namespaces = {r["status"]: r["n"] for r in await db.fetch(q.namespace_counts)}
    for status in NAMESPACE_STATUSES:
        metrics.namespaces.labels(status).set(namespaces.get(status, 0))
    queue = {(r["kind"], r["state"]): r for r in await db.fetch(q.queue_depth)}
    for kind in JOB_KINDS:
        rows = [queue[kind, state] for state in JOB_STATES if (kind, state) in queue]
        for state in JOB_STATES:
            row = queue.get((kind, state))
            metrics.queue_jobs.labels(kind, state).set(row["n"] if row else 0)
        oldest = max((r["oldest_seconds"] for r in rows), default=0.0)
        metrics.queue_oldest.labels(kind).set(oldest)
    storage = await db.fetchrow(q.storage_totals)
    metrics.stored_keys.set(storage["keys"])
    metrics.stored_bytes.set(storage["bytes"])
    metrics.storage_disk_bytes.set(storage["disk_bytes"])
    metrics.namespaces_near_limit.set(storage["near_limit"])
    wrapped = await master_key_usage(db)
    for key_id in set(wrapped) | metrics.master_key_ids:
        metrics.secret_data_keys.labels(key_id).set(wrapped.get(key_id, 0))
    metrics.master_key_ids.update(wrapped)
    metrics.stats_refreshed.set(time.time())
    return False


PERIODIC: tuple[Periodic, ...] = (
    Periodic("stats", lambda s: s.stats_interval, refresh_stats),
    Periodic("sweep", lambda s: s.sweep_interval, _sweep),
    Periodic("rotate", lambda s: s.worker_poll_interval, rotate_batch),
)
