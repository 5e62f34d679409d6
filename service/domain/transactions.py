"""Atomic transactions over the keys of one namespace: checks on keys' versions (or their
absence), then sets and deletes, applied all or nothing in one database transaction
(migrations/0006 kv_transact), linearizable with single-key requests."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from service.db.pool import Database
from service.db.queries import queries
from service.db.sqlstate import CHECK_FAILED_STATE
from service.domain.errors import (
    BatchRefused,
    CheckFailed,
    NamespaceNotFound,
    TransactionTooLarge,
    TtlNotSupported,
    ValueTooLarge,
)
from service.domain.keys import DEFAULT_VALUE_LIMIT, check_ready
from service.domain.namespaces import MAX_VALUE_SIZE_LIMIT

MAX_CHECKS = 100
MAX_OPERATIONS = 1000
MAX_VALUE_BYTES = 10 * 1024 * 1024
# Versions are bigint; a check at a version no row can have always fails.
MAX_VERSION = 2**63 - 1
NO_VERSION = -1
# Two transactions (or a transaction and a namespace purge) can still deadlock on rows they
# lock in different orders; PostgreSQL then undoes one, which is simply run again.
_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Check:
    """Holds when `key` is live at `version`, or absent (or expired) when `version` is None."""

    key: str
    version: int | None


@dataclass(frozen=True, slots=True)
class Set:
    key: str
    value: bytes
    content_type: str
    ttl_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    key: str


Operation = Set | Delete


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one operation did: a set's new `version`, whether it `created` the key (nothing
    live was there) and its expiry; a delete's `deleted` (a live key went)."""

    key: str
    version: int | None = None
    created: bool | None = None
    expires_at: datetime | None = None
    deleted: bool | None = None


def validate(checks: list[Check], operations: list[Operation]) -> None:
    """Raises BatchRefused or TransactionTooLarge unless the transaction keeps the
    limits: at most MAX_CHECKS checks and MAX_OPERATIONS operations, not both empty, no key
    twice in either list, values totalling at most MAX_VALUE_BYTES."""
    if not checks and not operations:
        raise BatchRefused("A transaction needs a check or an operation.", field="")
    if len(checks) > MAX_CHECKS:
        raise BatchRefused(f"A transaction has at most {MAX_CHECKS} checks.", field="/checks")
    if len(operations) > MAX_OPERATIONS:
        raise BatchRefused(
            f"A transaction has at most {MAX_OPERATIONS} operations.", field="/operations"
        )
    for name, items in (("checks", checks), ("operations", operations)):
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            first = seen.setdefault(item.key, i)
            if first != i:
                raise BatchRefused(
                    f"Key '{item.key}' is in {name} {first} and {i}; each key once.",
                    field=f"/{name}/{i}/key",
                )
    if sum(len(op.value) for op in operations if isinstance(op, Set)) > MAX_VALUE_BYTES:
        raise TransactionTooLarge(MAX_VALUE_BYTES)


async def transact(
    db: Database,
    tenant_id: UUID,
    namespace_id: UUID,
    checks: list[Check],
    operations: list[Operation],
    *,
    value_ceiling: int = MAX_VALUE_SIZE_LIMIT,
) -> list[Outcome]:
    """Applies the operations, in one transaction, if every check holds; their outcomes in
    order. Raises (and changes nothing) as validate() does; CheckFailed for the first check
    that does not hold; as a single write would for the namespace (missing, not ready, no TTL
    support, a value over its limit, growth past max_bytes)."""
    validate(checks, operations)
    sets = [op if isinstance(op, Set) else None for op in operations]
    args = (
        namespace_id,
        tenant_id,
        [c.key for c in checks],
        [c.version for c in checks],
        [op.key for op in operations],
        [None if s is None else s.value for s in sets],
        [None if s is None else s.content_type for s in sets],
        [None if s is None else s.ttl_seconds for s in sets],
        DEFAULT_VALUE_LIMIT,
        value_ceiling,
    )
    for attempt in range(_RETRIES + 1):
        try:
            rows = await db.fetch(queries().transact, *args)
            break
        except asyncpg.ForeignKeyViolationError as err:
            raise NamespaceNotFound() from err  # removed while this ran
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            if attempt == _RETRIES:
                raise
        except asyncpg.PostgresError as err:
            if err.sqlstate != CHECK_FAILED_STATE:
                raise
            index = int(err.detail or "0")
            raise CheckFailed(index, checks[index].key, checks[index].version) from err
    namespace, done = (rows[0], rows[1:]) if rows else (None, [])
    check_ready(namespace)
    for i, op in enumerate(sets):
        if op is not None and op.ttl_seconds is not None and not namespace["ttl_support"]:
            raise TtlNotSupported(field=f"/operations/{i}/ttl_secs")
        if op is not None and len(op.value) > namespace["value_limit"]:
            raise ValueTooLarge(namespace["value_limit"], field=f"/operations/{i}/data")
    outcomes: list[Outcome | None] = [None] * len(operations)
    for row in done:
        i = row["op"] - 1
        outcomes[i] = Outcome(
            operations[i].key, row["version"], row["created"], row["expires_at"], row["deleted"]
        )
    return outcomes  # type: ignore[return-value]  # every operation has its row
