"""Tenants and the rotation of their API keys (operator commands, not API routes)."""

from uuid import UUID

import asyncpg

from service.auth import ApiKey, authenticate, generate_api_key, parse_key_id
from service.db import Database, queries
from service.errors import AuthenticationFailed


class TenantExists(Exception):
    pass


class TenantNotFound(Exception):
    pass


class KeyNotFound(Exception):
    pass


async def create_tenant(db: Database, name: str) -> tuple[UUID, ApiKey]:
    """Creates a tenant with its first API key."""
    key = generate_api_key()
    async with db.transaction() as conn:
        try:
            tenant_id = await conn.fetchval(queries().create_tenant, name)
        except asyncpg.UniqueViolationError as err:
            raise TenantExists(f"a tenant named {name!r} exists already") from err
        await conn.execute(queries().create_api_key, key.id, tenant_id, key.secret_hash)
    return tenant_id, key


async def create_key(db: Database, tenant_name: str) -> ApiKey:
    """Adds an API key to a tenant; its other keys keep working until revoked."""
    tenant_id = await db.fetchval(queries().find_tenant, tenant_name)
    if tenant_id is None:
        raise TenantNotFound(f"no tenant named {tenant_name!r}")
    key = generate_api_key()
    await db.execute(queries().create_api_key, key.id, tenant_id, key.secret_hash)
    return key


async def revoke_key(db: Database, key_or_id: str) -> str:
    """Revokes a key given by its id or in full; returns the id."""
    key_id = parse_key_id(key_or_id) or key_or_id
    if await db.fetchval(queries().revoke_api_key, key_id) is None:
        raise KeyNotFound(f"no active key with id {key_id!r}")
    return key_id


async def key_is_valid(db: Database, token: str) -> bool:
    """Whether `token` authenticates today (used to reuse the development key)."""
    try:
        await authenticate(db, token)
    except AuthenticationFailed:
        return False
    return True
