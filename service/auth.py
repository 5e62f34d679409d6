"""API keys: their format, how they are stored, and how a request proves its tenant."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from uuid import UUID

from aiohttp import web

from service.appkeys import AUTH_LIMITER, DATABASE, KEY_CACHE, SETTINGS, TENANT
from service.db import Database, queries
from service.errors import AuthenticationFailed, TooManyFailures
from service.keycache import KeyCache
from service.ratelimit import FailureLimiter, client_address

KEY_PREFIX = "kvs"
_KEY = re.compile(r"kvs_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
# A hash to compare against when the key id is unknown, so that answer takes the same work.
_NO_SUCH_KEY = hashlib.sha256(b"no such key").digest()


@dataclass(frozen=True)
class ApiKey:
    """A newly made key. `token` is shown once and never stored; `id` names it for revocation."""

    id: str
    token: str
    secret_hash: bytes


def generate_api_key() -> ApiKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return ApiKey(key_id, f"{KEY_PREFIX}_{key_id}_{secret}", _hash(secret))


def parse_key_id(token: str) -> str | None:
    """The id part of a well-formed key, else None."""
    match = _KEY.fullmatch(token)
    return match[1] if match else None


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def authenticate(db: Database, token: str, cache: KeyCache | None = None) -> UUID:
    """The key's tenant, from the database; AuthenticationFailed if the key is malformed,
    unknown or revoked.

    With a cache, concurrent lookups of the same key share one query and a key that
    authenticates is remembered; callers ask `remembered_tenant` first, which needs no query.
    """
    match = _KEY.fullmatch(token)
    if not match:
        raise AuthenticationFailed("The API key is malformed.")
    key_id, secret = match[1], match[2]
    if cache is not None:
        # Shared only by requests presenting the same secret: a client's burst, never guesses.
        row = await cache.lookup_once(
            _lookup_key(token), lambda: db.fetchrow(queries().find_api_key, key_id)
        )
    else:
        row = await db.fetchrow(queries().find_api_key, key_id)
    stored = row["secret_hash"] if row else _NO_SUCH_KEY
    matches = hmac.compare_digest(_hash(secret), stored)
    if row is None or not matches or row["revoked"]:
        raise AuthenticationFailed("The API key is unknown or revoked.")
    if cache is not None:
        cache.put(key_id, stored, row["tenant_id"])
    return row["tenant_id"]


def _lookup_key(token: str) -> str:
    """What identifies a lookup in progress: a hash of the whole key, id and secret."""
    return hashlib.sha256(token.encode()).hexdigest()


def remembered_tenant(token: str, cache: KeyCache) -> UUID | None:
    """The tenant of a well-formed key the cache remembers with this very secret, else None."""
    match = _KEY.fullmatch(token)
    remembered = cache.get(match[1]) if match else None
    if remembered is not None and hmac.compare_digest(_hash(match[2]), remembered[0]):
        return remembered[1]
    return None


def token_from_headers(request: web.Request) -> str:
    """The key a request presents as `Authorization: Bearer` or `X-Api-Key`."""
    authorization = request.headers.getall("Authorization", [])
    api_key = request.headers.getall("X-Api-Key", [])
    if len(authorization) + len(api_key) == 0:
        raise AuthenticationFailed(
            "Send an API key as 'Authorization: Bearer <key>' or 'X-Api-Key'."
        )
    if len(authorization) > 1 or len(api_key) > 1:
        raise AuthenticationFailed("Send exactly one API key.")
    if authorization:
        scheme, _, token = authorization[0].strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("The Authorization header must use the Bearer scheme.")
        token = token.strip()
        if api_key and api_key[0].strip() != token:
            raise AuthenticationFailed("Authorization and X-Api-Key name different keys.")
        return token
    return api_key[0].strip()


def tenant_of(request: web.Request) -> UUID:
    """The authenticated tenant of a request under /v2."""
    return request[TENANT]


def public(handler):
    """Marks a handler under /v2 as needing no API key."""
    handler.public = True
    return handler


@web.middleware
async def auth_middleware(request: web.Request, handler):
    """Every route under /v2 needs a valid key, unless marked public; the tenant is kept on
    the request. Unknown paths under /v2 need one too, so they reveal nothing. An address that
    failed too often is answered 429 before its key is looked at (service/ratelimit.py)."""
    if getattr(request.match_info.handler, "public", False):
        return await handler(request)
    if request.path == "/v2" or request.path.startswith("/v2/"):
        limiter, cache = request.app[AUTH_LIMITER], request.app[KEY_CACHE]
        address = client_address(request, request.app[SETTINGS].trusted_proxies)
        retry_after = limiter.retry_after(address)
        if retry_after is not None:
            raise TooManyFailures(retry_after)
        token = _token_or_failure(request, limiter, address)
        tenant = remembered_tenant(token, cache)
        if tenant is None:
            tenant = await _authenticate_limited(request, token, limiter, address)
        request[TENANT] = tenant
    return await handler(request)


async def _authenticate_limited(
    request: web.Request, token: str, limiter: FailureLimiter, address: str
) -> UUID:
    """authenticate() for a key the cache does not remember with this secret. Unless it joins
    a lookup already under way for the same key, it holds one of the address's attempts while
    it runs, so concurrent guesses cannot all pass before the first one fails."""
    cache = request.app[KEY_CACHE]
    holding = parse_key_id(token) is not None and not cache.looking_up(_lookup_key(token))
    if holding:
        retry_after = limiter.begin(address)
        if retry_after is not None:
            raise TooManyFailures(retry_after)
    try:
        return await authenticate(request.app[DATABASE], token, cache)
    except AuthenticationFailed:
        limiter.failed(address)
        raise
    finally:
        if holding:
            limiter.end(address)


def _token_or_failure(request: web.Request, limiter: FailureLimiter, address: str) -> str:
    try:
        return token_from_headers(request)
    except AuthenticationFailed:
        limiter.failed(address)
        raise
