"""Namespaces: creation, lookup, listing, settings and the request to delete, scoped to one
tenant."""

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from service.db.pool import Database
from service.db.queries import queries
from service.domain.errors import (
    InvalidInput,
    NamespaceDeleting,
    NamespaceNameTaken,
    NamespaceNotFound,
    NamespaceNotReady,
)

MAX_PAGE_SIZE = 250
STATUSES = ("pending", "provision_ok", "provision_failed", "deleting", "delete_failed")
MAX_DESCRIPTION_CHARS = 1024
MAX_BYTES_LIMIT = 2**63 - 1  # max_bytes is an int64
MAX_VALUE_SIZE_LIMIT = 2**31 - 1  # max_value_size is an int32
SETTINGS = ("description", "max_bytes", "max_value_size")


@dataclass(frozen=True, slots=True)
class Usage:
    """What a namespace holds: its keys and their value bytes, exact after every committed
    write. An expired key counts until the sweeper removes it."""

    keys: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Namespace:
    id: UUID
    name: str
    status: str
    # Why provisioning or deletion failed; None otherwise.
    status_reason: str | None
    ttl_support: bool
    description: str | None
    # None: no limit on the value bytes stored.
    max_bytes: int | None
    # None: the default value limit (service/domain/keys.py DEFAULT_VALUE_LIMIT).
    max_value_size: int | None
    usage: Usage
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NamespacePage:
    """One page of a tenant's namespaces, newest first, and how many there are in all."""

    items: list[Namespace]
    page_number: int
    page_size: int
    total: int


def _namespace(row: asyncpg.Record) -> Namespace:
    fields = dict(row)
    usage = Usage(fields.pop("usage_keys") or 0, fields.pop("usage_bytes") or 0)
    return Namespace(**fields, usage=usage)


def _is_text(value: object, max_chars: int) -> bool:
    """Whether PostgreSQL can store `value` as text of at most `max_chars` characters."""
    if not isinstance(value, str) or len(value) > max_chars or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \ud800 can carry
        return False
    return True


def check_settings(settings: Mapping[str, object], value_ceiling: int) -> None:
    """Raises InvalidInput, naming the setting, unless each given setting is in range:
    `description` a string of at most MAX_DESCRIPTION_CHARS, `max_bytes` an int64 of at
    least 1, `max_value_size` an int32 of at least 1 and at most `value_ceiling`; None
    (no setting) is always allowed."""
    for field, value in settings.items():
        if field not in SETTINGS:
            raise InvalidInput(f"'{field}' is not a namespace setting.", field=field)
        if value is None:
            continue
        if field == "description":
            if not _is_text(value, MAX_DESCRIPTION_CHARS):
                raise InvalidInput(
                    f"'description' must be a string of at most {MAX_DESCRIPTION_CHARS} "
                    "characters, none of them NUL or a lone surrogate.",
                    field=field,
                )
            continue
        top = MAX_BYTES_LIMIT if field == "max_bytes" else min(MAX_VALUE_SIZE_LIMIT, value_ceiling)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise InvalidInput(f"'{field}' must be a whole number from 1 to {top}.", field=field)


async def create_namespace(
    db: Database,
    tenant_id: UUID,
    name: str,
    *,
    ttl_support: bool = True,
    description: str | None = None,
    max_bytes: int | None = None,
    max_value_size: int | None = None,
    value_ceiling: int = MAX_VALUE_SIZE_LIMIT,
) -> Namespace:
    """Creates a `pending` namespace with these settings (check_settings) and queues its
    provisioning."""
    limits = {"description": description, "max_bytes": max_bytes, "max_value_size": max_value_size}
    check_settings(limits, value_ceiling)
    try:
        row = await db.fetchrow(
            queries().create_namespace,
            tenant_id,
            name,
            ttl_support,
            description,
            max_bytes,
            max_value_size,
        )
    except asyncpg.UniqueViolationError as err:
        if err.constraint_name == "namespaces_tenant_name_live":
            raise NamespaceNameTaken(name) from err
        raise
    return _namespace(row)


async def get_namespace(db: Database, tenant_id: UUID, namespace_id: UUID) -> Namespace:
    """The tenant's namespace; NamespaceNotFound when missing or another tenant's."""
    row = await db.fetchrow(queries().get_namespace, namespace_id, tenant_id)
    if row is None:
        raise NamespaceNotFound()
    return _namespace(row)


async def find_namespace(db: Database, tenant_id: UUID, name: str) -> Namespace:
    """The tenant's namespace of this name, unless it is being deleted; NamespaceNotFound
    otherwise (another tenant's of the same name included)."""
    row = await db.fetchrow(queries().find_namespace, tenant_id, name)
    if row is None:
        raise NamespaceNotFound()
    return _namespace(row)


@dataclass(frozen=True, slots=True)
class Located:
    """What a key operation addressed by a namespace's name needs to know of it."""

    id: UUID
    status: str
    ttl_support: bool
    max_value_size: int | None


async def locate_namespace(db: Database, tenant_id: UUID, name: str) -> Located:
    """As find_namespace, in a lighter query."""
    row = await db.fetchrow(queries().locate_namespace, tenant_id, name)
    if row is None:
        raise NamespaceNotFound()
    return Located(**row)


async def list_live_namespaces(db: Database, tenant_id: UUID) -> list[Namespace]:
    """Every namespace of the tenant but those being deleted, by name."""
    return [_namespace(r) for r in await db.fetch(queries().list_live_namespaces, tenant_id)]


# How often a waiter looks again at a pending namespace: soon at first (provisioning takes
# milliseconds when the worker is up), then less often.
_READY_POLL_FIRST = 0.01
_READY_POLL_MAX = 0.25


async def wait_until_provisioned(
    db: Database, tenant_id: UUID, namespace_id: UUID, timeout: float
) -> Namespace:
    """The namespace once it is no longer `pending`, looked at until `timeout` seconds have
    passed; NamespaceNotReady("pending") if it still is by then (the worker is down or behind:
    it will be provisioned when the worker is back)."""
    deadline = time.monotonic() + timeout
    pause = _READY_POLL_FIRST
    while True:
        ns = await get_namespace(db, tenant_id, namespace_id)
        left = deadline - time.monotonic()
        if ns.status != "pending":
            return ns
        if left <= 0:
            raise NamespaceNotReady("pending")
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, _READY_POLL_MAX)


async def list_namespaces(
    db: Database, tenant_id: UUID, page_number: int, page_size: int
) -> NamespacePage:
    """One page of the tenant's namespaces, newest first (at most MAX_PAGE_SIZE a page)."""
    page_size = min(page_size, MAX_PAGE_SIZE)
    total = await db.fetchval(queries().count_namespaces, tenant_id)
    offset = (page_number - 1) * page_size
    rows = (
        []
        if offset >= total
        else await db.fetch(queries().list_namespaces, tenant_id, page_size, offset)
    )
    return NamespacePage([_namespace(r) for r in rows], page_number, page_size, total)


async def update_namespace(
    db: Database,
    tenant_id: UUID,
    namespace_id: UUID,
    changes: Mapping[str, object],
    *,
    value_ceiling: int = MAX_VALUE_SIZE_LIMIT,
) -> Namespace:
    """Changes the settings named in `changes` (None removes one) and returns the namespace.

    All or nothing, in one transaction. A new max_bytes holds for every write that commits
    after it, even one in flight; it may be below the current usage, which then refuses growth
    until the usage is below it. A namespace being deleted cannot be changed.
    """
    check_settings(changes, value_ceiling)
    q = queries()

    def given(field: str) -> tuple[bool, object]:
        return field in changes, changes.get(field)

    async with db.transaction() as tx:
        current = await tx.fetchrow(q.lock_namespace_settings, namespace_id, tenant_id)
        if current is None:
            raise NamespaceNotFound()
        if current["status"] == "deleting":
            raise NamespaceDeleting(namespace_id)
        await tx.execute(
            q.update_namespace_settings,
            namespace_id,
            tenant_id,
            *given("description"),
            *given("max_bytes"),
            *given("max_value_size"),
        )
        if "max_bytes" in changes:
            await tx.execute(q.lock_namespace_usage, namespace_id)
            if changes["max_bytes"] is not None:
                await tx.execute(q.gather_namespace_usage, namespace_id)
        row = await tx.fetchrow(q.get_namespace, namespace_id, tenant_id)
    return _namespace(row)


# How often put_namespace starts again when a concurrent create or delete of the same name
# changed what it found.
_PUT_ATTEMPTS = 5


async def put_namespace(
    db: Database,
    tenant_id: UUID,
    name: str,
    settings: Mapping[str, object],
    *,
    value_ceiling: int = MAX_VALUE_SIZE_LIMIT,
) -> Namespace:
    """Changes the given settings of the tenant's namespace of this name (update_namespace),
    or creates it with them, with TTL support, when there is none (create_namespace)."""
    check_settings(settings, value_ceiling)
    for _ in range(_PUT_ATTEMPTS):
        try:
            current = await find_namespace(db, tenant_id, name)
        except NamespaceNotFound:
            try:
                return await create_namespace(
                    db, tenant_id, name, value_ceiling=value_ceiling, **settings
                )
            except NamespaceNameTaken:
                continue  # created meanwhile: update it
        if not settings:
            return current
        try:
            return await update_namespace(
                db, tenant_id, current.id, settings, value_ceiling=value_ceiling
            )
        except (NamespaceNotFound, NamespaceDeleting):
            continue  # deleted meanwhile: create it anew
    raise NamespaceNameTaken(name)


async def ensure_namespace(
    db: Database,
    tenant_id: UUID,
    name: str,
    settings: Mapping[str, object],
    *,
    value_ceiling: int = MAX_VALUE_SIZE_LIMIT,
) -> Namespace:
    """The tenant's namespace of this name with exactly these settings (every one of
    SETTINGS, None for none): created with TTL support, or the one that exists already with
    them. NamespaceNameTaken, naming a setting that differs, when one exists with others."""
    check_settings(settings, value_ceiling)
    for _ in range(_PUT_ATTEMPTS):
        try:
            return await create_namespace(
                db, tenant_id, name, value_ceiling=value_ceiling, **settings
            )
        except NamespaceNameTaken:
            try:
                current = await find_namespace(db, tenant_id, name)
            except NamespaceNotFound:
                continue  # deleted meanwhile: create it
        differing = [field for field in SETTINGS if getattr(current, field) != settings[field]]
        if differing:
            raise NamespaceNameTaken(name, differing=differing[0])
        return current
    raise NamespaceNameTaken(name)


async def delete_namespace(db: Database, tenant_id: UUID, namespace_id: UUID) -> Namespace:
    """Marks the namespace `deleting` and queues the removal of it and its keys."""
    row = await db.fetchrow(queries().request_namespace_delete, namespace_id, tenant_id)
    if row is not None:
        return _namespace(row)
    current = await get_namespace(db, tenant_id, namespace_id)
    raise NamespaceDeleting(current.id)
