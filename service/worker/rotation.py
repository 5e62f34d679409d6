"""Re-wrapping every secret's data key under one master key (`kvs secrets rotate`), in
batches, beside live traffic.

Each batch is one transaction: it locks the rotation's row (so two workers never work on it
at once), takes the next versions in key order, re-wraps those under another master key and
records where the next batch starts. A worker that dies loses only its open batch. Values are
never decrypted: only data keys are unwrapped and wrapped again.

A pass ends at the last key. Data keys written meanwhile by a process whose first master key
is another one (during a rollout) are then still under it: another pass takes them, up to
MAX_PASSES, after which the rotation ends with an error saying what remains.
"""

import logging
from uuid import UUID

from service.db.queries import queries
from service.domain.sealing import MasterKeyMissing, SealBroken, Sealed, binding, rewrap
from service.worker.jobs import WorkerContext

log = logging.getLogger(__name__)

MAX_PASSES = 3
_BEFORE_ALL = (UUID(int=0), "", 0)


async def rotate_batch(ctx: WorkerContext) -> bool:
    """Runs one batch of the rotation under way, if any; True when more is due at once."""
    keys = ctx.keys
    if keys is None:
        return False
    q = queries()
    async with ctx.db.transaction() as tx:
        rotation = await tx.fetchrow(q.claim_rotation)
        if rotation is None:
            return False
        where = (rotation["after_tenant_id"], rotation["after_name"], rotation["after_version"])
        try:
            target = keys.get(rotation["target_key_id"])
        except MasterKeyMissing as err:
            error = f"The worker does not hold master key '{err.key_id}', the rotation's target."
            if rotation["last_error"] != error:
                log.error("secret rotation cannot go on", extra={"target": err.key_id})
                await tx.execute(q.rotation_error, rotation["id"], error)
            return False
        batch = ctx.settings.secret_rotation_batch_size
        rows = await tx.fetch(
            q.rotation_batch, *(_BEFORE_ALL if where[0] is None else where), batch
        )
        done: list[tuple[UUID, str, int, bytes]] = []
        unreadable, error = 0, None
        for row in rows:
            if row["master_key_id"] == target.id:
                continue
            owner = (row["tenant_id"], row["name"], row["version"])
            try:
                sealed = rewrap(
                    keys,
                    binding(*owner),
                    Sealed(row["master_key_id"], row["wrapped_key"], b""),
                    target,
                )
            except (MasterKeyMissing, SealBroken) as err:
                reason = "missing_key" if isinstance(err, MasterKeyMissing) else "integrity"
                ctx.metrics.secret_decryption_failures.labels(reason).inc()
                unreadable += 1
                error = (
                    f"{unreadable} data keys in the last batch could not be unwrapped ({reason})"
                )
                continue
            done.append((*owner, sealed.wrapped_key))
        if done:
            columns = list(zip(*done, strict=True))
            await tx.execute(q.store_rewrapped, *columns[:3], target.id, columns[3])
        ctx.metrics.secrets_rewrapped.inc(len(done))
        if len(rows) == batch:
            last = rows[-1]
            after, finished = (last["tenant_id"], last["name"], last["version"]), False
        else:
            # The end of a pass: done unless keys under another master key remain.
            remaining = await tx.fetchval(q.data_keys_not_under, target.id)
            after = (None, None, None)
            finished = not remaining or rotation["passes"] + 1 >= MAX_PASSES
            if remaining and finished:
                error = (
                    f"After {MAX_PASSES} passes, data keys under other master keys remain: "
                    "see `kvs secrets status`."
                )
        await tx.execute(
            q.advance_rotation, rotation["id"], *after, len(done), unreadable, error, finished
        )
    if finished:
        log.info(
            "secret rotation finished",
            extra={"target": target.id, "rewrapped": rotation["rewrapped"] + len(done)},
        )
    return not finished
