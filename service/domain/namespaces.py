"""Namespaces: creation, lookup, listing and the request to delete, scoped to one tenant."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from service.db.pool import Database
from service.db.queries import queries
from service.domain.errors import NamespaceDeleting, NamespaceNameTaken, NamespaceNotFound

MAX_PAGE_SIZE = 250
STATUSES = ("pending", "provision_ok", "provision_failed", "deleting", "delete_failed")


@dataclass(frozen=True, slots=True)
class Namespace:
    id: UUID
    name: str
    status: str
    # Why provisioning or deletion failed; None otherwise.
    status_reason: str | None
    ttl_support: bool
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
    return Namespace(**dict(row))


async def create_namespace(
    db: Database, tenant_id: UUID, name: str, *, ttl_support: bool = True
) -> Namespace:
    """Creates a `pending` namespace and queues its provisioning."""
    try:
        row = await db.fetchrow(queries().create_namespace, tenant_id, name, ttl_support)
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


async def delete_namespace(db: Database, tenant_id: UUID, namespace_id: UUID) -> Namespace:
    """Marks the namespace `deleting` and queues the removal of it and its keys."""
    row = await db.fetchrow(queries().request_namespace_delete, namespace_id, tenant_id)
    if row is not None:
        return _namespace(row)
    current = await get_namespace(db, tenant_id, namespace_id)
    raise NamespaceDeleting(current.id)
