"""How a request proves its tenant with an API key, for every surface that takes one.

A surface's sub-application puts `auth_middleware` inside its error middleware: every route of
the surface then needs a valid key unless marked `public`, and so do the paths no route of it
matches, so that those reveal nothing. A route outside every surface has no tenant.
"""

import hashlib
import hmac
from uuid import UUID

from aiohttp import web

from service.domain import tenants
from service.domain.errors import AuthenticationFailed
from service.domain.tenants import Presented
from service.web.appkeys import AUTH_LIMITER, DATABASE, KEY_CACHE, SETTINGS, TENANT
from service.web.errors import TooManyFailures
from service.web.keycache import KeyCache
from service.web.ratelimit import FailureLimiter, client_address


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
    """The authenticated tenant of a request to a surface's route."""
    return request[TENANT]


def public(handler):
    """Marks a surface's handler as needing no API key."""
    handler.public = True
    return handler


@web.middleware
async def auth_middleware(request: web.Request, handler):
    """Authenticates the request's key and keeps its tenant on the request.

    A key this process has seen authenticate is served from memory, whatever its address has
    done. Otherwise an address that failed too often is answered 429 before its key is
    looked at (service/web/ratelimit.py), unless its key authenticated here within
    VOUCH_SECONDS (service/web/keycache.py): one misconfigured client behind a shared address
    must not lock out the tenants that share it.
    """
    if getattr(request.match_info.handler, "public", False):
        return await handler(request)
    config = request.config_dict
    cache = config[KEY_CACHE]
    try:
        token = token_from_headers(request)
        presented = tenants.parse_key(token)
    except AuthenticationFailed as err:
        token, presented, refusal = None, None, err
    if presented is not None:
        remembered = cache.get(presented.key_id)
        if remembered is not None and hmac.compare_digest(remembered[0], presented.secret_hash):
            request[TENANT] = remembered[1]
            return await handler(request)
    limiter = config[AUTH_LIMITER]
    address = client_address(request, config[SETTINGS].trusted_proxies)
    vouched = presented is not None and cache.vouches(presented.key_id, presented.secret_hash)
    if not vouched:
        retry_after = limiter.retry_after(address)
        if retry_after is not None:
            raise TooManyFailures(retry_after)
    if presented is None:
        limiter.failed(address)
        raise refusal
    request[TENANT] = await _authenticate(request, token, presented, limiter, address, vouched)
    return await handler(request)


async def _authenticate(
    request: web.Request,
    token: str,
    presented: Presented,
    limiter: FailureLimiter,
    address: str,
    vouched: bool,
) -> UUID:
    """The tenant of a key the cache does not remember as fresh, from the database.

    Concurrent lookups of the same key share one query. Unless it joins one already under way,
    or its key is vouched for, a lookup holds one of the address's attempts while it runs, so
    concurrent guesses cannot all pass before the first one fails.
    """
    config = request.config_dict
    cache: KeyCache = config[KEY_CACHE]
    lookup = hashlib.sha256(token.encode()).hexdigest()  # id and secret: never shared by guesses
    holding = not vouched and not cache.looking_up(lookup)
    if holding:
        retry_after = limiter.begin(address)
        if retry_after is not None:
            raise TooManyFailures(retry_after)
    try:
        stored = await cache.lookup_once(
            lookup, lambda: tenants.find_key(config[DATABASE], presented.key_id)
        )
        tenant_id = tenants.verify(presented, stored)
    except AuthenticationFailed:
        cache.forget(presented.key_id, presented.secret_hash)
        limiter.failed(address)
        raise
    finally:
        if holding:
            limiter.end(address)
    cache.put(presented.key_id, presented.secret_hash, tenant_id)
    return tenant_id
