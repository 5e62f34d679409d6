"""Namespaces: creation, lookup, listing and the request to delete, scoped to one tenant."""

import math
from uuid import UUID

import asyncpg

from service.db import Database, queries
from service.errors import NamespaceDeleting, NamespaceNameTaken, NamespaceNotFound
from service.models import NamespaceCreate, NamespaceList, NamespacePublic, PageMeta

MAX_PAGE_SIZE = 250


def _public(row: asyncpg.Record) -> NamespacePublic:
    return NamespacePublic(**dict(row))


async def create_namespace(db: Database, tenant_id: UUID, spec: NamespaceCreate) -> NamespacePublic:
    """Creates a `pending` namespace and queues its provisioning."""
    try:
        row = await db.fetchrow(queries().create_namespace, tenant_id, spec.name, spec.ttl_support)
    except asyncpg.UniqueViolationError as err:
        if err.constraint_name == "namespaces_tenant_name_live":
            raise NamespaceNameTaken(
                f"A namespace named '{spec.name}' exists already.", pointer="/name"
            ) from err
        raise
    return _public(row)


async def get_namespace(db: Database, tenant_id: UUID, namespace_id: UUID) -> NamespacePublic:
    """The tenant's namespace; NamespaceNotFound when missing or another tenant's."""
    row = await db.fetchrow(queries().get_namespace, namespace_id, tenant_id)
    if row is None:
        raise NamespaceNotFound()
    return _public(row)


async def list_namespaces(
    db: Database, tenant_id: UUID, page_number: int, page_size: int
) -> NamespaceList:
    """One page of the tenant's namespaces, newest first."""
    page_size = min(page_size, MAX_PAGE_SIZE)
    total = await db.fetchval(queries().count_namespaces, tenant_id)
    offset = (page_number - 1) * page_size
    rows = (
        []
        if offset >= total
        else await db.fetch(queries().list_namespaces, tenant_id, page_size, offset)
    )
    return NamespaceList(
        data=[_public(r) for r in rows],
        meta=PageMeta(
            page_number=page_number,
            page_size=page_size,
            total_pages=math.ceil(total / page_size),
            total_results=total,
        ),
    )


async def delete_namespace(db: Database, tenant_id: UUID, namespace_id: UUID) -> NamespacePublic:
    """Marks the namespace `deleting` and queues the removal of it and its keys."""
    row = await db.fetchrow(queries().request_namespace_delete, namespace_id, tenant_id)
    if row is not None:
        return _public(row)
    current = await get_namespace(db, tenant_id, namespace_id)
    raise NamespaceDeleting(f"Namespace {current.id} is being deleted already.", parameter="id")
