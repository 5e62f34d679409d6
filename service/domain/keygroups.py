"""Key reads and key writes of concurrent requests as groups that share one statement
(service/db/coalesce.py): each item keeps exactly the outcome its own statement would give.

Reads: GET and HEAD of any namespaces, one `get_entry_group` statement, one snapshot; batch
reads likewise, one `get_entries_group` statement.
Writes: PUT in all its forms and DELETE, one `write_entry_group` statement that runs the
items in turn in one transaction (migrations/0007 kv_write_group), so a group commits once.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import asyncpg

from service.db.pool import Database, _Statements
from service.db.queries import queries
from service.domain.errors import StorageLimitReached

# Values up to this many bytes in all share a write group; a larger one runs on its own, so
# that small writes do not wait behind it.
WRITE_GROUP_BYTES = 1024 * 1024
# A write group's items run one after another in one transaction, which holds the row locks
# of all until it commits: the cap bounds that time (and the wait of its first request), while
# more items than this share one commit's cost little further.
MAX_WRITE_ITEMS = 64
MAX_READ_ITEMS = 256
# Keys of batch reads in one statement (four batches of the most keys one may hold).
BATCH_GROUP_KEYS = 4096


@dataclass(frozen=True, slots=True)
class Read:
    namespace_id: UUID
    tenant_id: UUID
    key: str
    with_value: bool
    known_versions: list[int]  # If-None-Match: the value is left out at one of these


class _Reads:
    name = "reads"
    max_items = MAX_READ_ITEMS
    max_weight = MAX_READ_ITEMS

    def weight(self, item: Read) -> int:
        return 1

    async def run_one(self, db: _Statements, item: Read) -> asyncpg.Record | None:
        q = queries()
        if item.with_value:
            return await db.fetchrow(
                q.get_entry, item.namespace_id, item.tenant_id, item.key, item.known_versions
            )
        return await db.fetchrow(q.head_entry, item.namespace_id, item.tenant_id, item.key)

    async def run_many(self, db: Database, items: Sequence[Read]) -> list[asyncpg.Record | None]:
        held = [(i, v) for i, item in enumerate(items, 1) for v in item.known_versions]
        rows = await db.fetch(
            queries().get_entry_group,
            [item.namespace_id for item in items],
            [item.tenant_id for item in items],
            [item.key for item in items],
            [item.with_value for item in items],
            [i for i, _ in held],
            [v for _, v in held],
        )
        found: list[asyncpg.Record | None] = [None] * len(items)
        for row in rows:
            if row["status"] is not None:
                found[row["i"] - 1] = row
        return found


READS = _Reads()


@dataclass(frozen=True, slots=True)
class BatchRead:
    namespace_id: UUID
    tenant_id: UUID
    keys: list[str]
    with_values: bool
    byte_budget: int  # values are left out when those found total more


class _BatchReads:
    name = "batch_reads"
    max_items = MAX_READ_ITEMS
    max_weight = BATCH_GROUP_KEYS

    def weight(self, item: BatchRead) -> int:
        return len(item.keys)

    async def run_one(self, db: _Statements, item: BatchRead) -> list[asyncpg.Record]:
        return await db.fetch(
            queries().get_entries,
            item.namespace_id,
            item.tenant_id,
            item.keys,
            item.with_values,
            item.byte_budget,
        )

    async def run_many(
        self, db: Database, items: Sequence[BatchRead]
    ) -> list[list[asyncpg.Record]]:
        places = [(b, k, i) for b, item in enumerate(items, 1) for i, k in enumerate(item.keys, 1)]
        rows = await db.fetch(
            queries().get_entries_group,
            [item.namespace_id for item in items],
            [item.tenant_id for item in items],
            [item.with_values for item in items],
            [item.byte_budget for item in items],
            [b for b, _, _ in places],
            [key for _, key, _ in places],
            [i for _, _, i in places],
        )
        found: list[list[asyncpg.Record]] = [[] for _ in items]
        for row in rows:
            if row["status"] is not None:  # else the namespace is not the tenant's: no rows
                found[row["b"] - 1].append(row)
        return found


BATCH_READS = _BatchReads()

# A write's kind in kv_write_group: put, put if match, delete, delete if match.
Kind = Literal["p", "m", "d", "c"]


@dataclass(frozen=True, slots=True)
class Write:
    kind: Kind
    namespace_id: UUID
    tenant_id: UUID
    key: str
    value: bytes | None = None
    content_type: str | None = None
    ttl_seconds: int | None = None
    if_absent: bool = False
    versions: list[int] | None = None  # for 'm' and 'c'; None: any live version
    limits: tuple[int, int] = (0, 0)  # a put's default value limit and ceiling


class _Writes:
    name = "writes"
    max_items = MAX_WRITE_ITEMS
    max_weight = WRITE_GROUP_BYTES

    def weight(self, item: Write) -> int:
        return len(item.value) if item.value is not None else 0

    async def run_one(self, db: _Statements, item: Write) -> asyncpg.Record | None:
        q, limits = queries(), item.limits
        args = (item.namespace_id, item.tenant_id, item.key)
        if item.kind == "p":
            value = (item.value, item.content_type, item.ttl_seconds, item.if_absent)
            return await db.fetchrow(q.put_entry, *args, *value, *limits)
        if item.kind == "m":
            value = (item.value, item.content_type, item.ttl_seconds, item.versions)
            return await db.fetchrow(q.put_entry_if_match, *args, *value, *limits)
        return await db.fetchrow(q.delete_entry, *args, item.kind == "c", item.versions)

    async def run_many(
        self, db: Database, items: Sequence[Write]
    ) -> list[asyncpg.Record | BaseException | None]:
        # Rows are locked in namespace and key order (the same key in arrival order), as by
        # every group, so that two groups never wait on each other's rows.
        order = sorted(range(len(items)), key=lambda i: (items[i].namespace_id, items[i].key))
        ordered = [items[i] for i in order]
        conditions = [
            (j, v) for j, item in enumerate(ordered, 1) if item.versions for v in item.versions
        ]
        try:
            rows = await db.fetch(
                queries().write_entry_group,
                [item.kind for item in ordered],
                [item.namespace_id for item in ordered],
                [item.tenant_id for item in ordered],
                [item.key for item in ordered],
                [item.value for item in ordered],
                [item.content_type for item in ordered],
                [item.ttl_seconds for item in ordered],
                [item.if_absent for item in ordered],
                [j for j, _ in conditions],
                [v for _, v in conditions],
                [item.limits[0] for item in ordered],
                [item.limits[1] for item in ordered],
            )
        except (asyncpg.PostgresError, StorageLimitReached):
            # One item's error undid the whole group (nothing of it was written): each item
            # runs again on its own, in arrival order, so that only that item's request fails.
            # A failure of the database itself (or a write's unknown outcome) is raised: the
            # same for every item alike.
            return [await _outcome(self.run_one(db, item)) for item in items]
        found: list[asyncpg.Record | BaseException | None] = [None] * len(items)
        for row in rows:
            found[order[row["item"] - 1]] = row
        return found


async def _outcome(call) -> object:
    try:
        return await call
    except Exception as err:  # that item's own outcome
        return err


WRITES = _Writes()
