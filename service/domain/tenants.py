"""Tenants and their API keys: the key format, how keys are stored and checked, and the
operator's commands (create a tenant, add a key, revoke one).

A key is `kvs_<id>_<secret>`: 64 random bits of id, 256 of secret. Only SHA-256(secret) is
stored: a slow password hash adds nothing against a 256-bit random secret and would cost every
request. An unknown id is compared against a dummy hash, so every refusal does the same work.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from service.db.pool import Database
from service.db.queries import queries
from service.domain.errors import AuthenticationFailed, DomainError

KEY_PREFIX = "kvs"
_KEY = re.compile(r"kvs_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
# A hash to compare against when the key id is unknown, so that answer takes the same work.
_NO_SUCH_KEY = hashlib.sha256(b"no such key").digest()


class TenantExists(DomainError):
    pass


class TenantNotFound(DomainError):
    pass


class ApiKeyNotFound(DomainError):
    pass


@dataclass(frozen=True)
class ApiKey:
    """A newly made key. `token` is shown once and never stored; `id` names it for revocation."""

    id: str
    token: str
    secret_hash: bytes


@dataclass(frozen=True, slots=True)
class Presented:
    """A well-formed key as a request presents it: its id and the hash of its secret."""

    key_id: str
    secret_hash: bytes


@dataclass(frozen=True, slots=True)
class StoredKey:
    tenant_id: UUID
    secret_hash: bytes
    revoked: bool


def generate_api_key() -> ApiKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return ApiKey(key_id, f"{KEY_PREFIX}_{key_id}_{secret}", _hash(secret))


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_key(token: str) -> Presented:
    """The id and secret hash of a well-formed key; AuthenticationFailed otherwise."""
    match = _KEY.fullmatch(token)
    if not match:
        raise AuthenticationFailed("The API key is malformed.")
    return Presented(match[1], _hash(match[2]))


def parse_key_id(token: str) -> str | None:
    """The id part of a well-formed key, else None."""
    match = _KEY.fullmatch(token)
    return match[1] if match else None


async def find_key(db: Database, key_id: str) -> StoredKey | None:
    row = await db.fetchrow(queries().find_api_key, key_id)
    return None if row is None else StoredKey(row["tenant_id"], row["secret_hash"], row["revoked"])


def verify(presented: Presented, stored: StoredKey | None) -> UUID:
    """The tenant of a presented key that matches its stored one and is not revoked;
    AuthenticationFailed otherwise, after the same work either way."""
    expected = stored.secret_hash if stored is not None else _NO_SUCH_KEY
    matches = hmac.compare_digest(presented.secret_hash, expected)
    if stored is None or not matches or stored.revoked:
        raise AuthenticationFailed("The API key is unknown or revoked.")
    return stored.tenant_id


async def authenticate(db: Database, token: str) -> UUID:
    """The key's tenant; AuthenticationFailed if it is malformed, unknown or revoked."""
    presented = parse_key(token)
    return verify(presented, await find_key(db, presented.key_id))


async def create_tenant(db: Database, name: str) -> tuple[UUID, ApiKey]:
    """Creates a tenant with its first API key."""
    key = generate_api_key()
    async with db.transaction() as tx:
        try:
            tenant_id = await tx.fetchval(queries().create_tenant, name)
        except asyncpg.UniqueViolationError as err:
            raise TenantExists(f"a tenant named {name!r} exists already") from err
        await tx.execute(queries().create_api_key, key.id, tenant_id, key.secret_hash)
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
        raise ApiKeyNotFound(f"no active key with id {key_id!r}")
    return key_id


async def key_is_valid(db: Database, token: str) -> bool:
    """Whether `token` authenticates today (used to reuse the development key)."""
    try:
        await authenticate(db, token)
    except AuthenticationFailed:
        return False
    return True
