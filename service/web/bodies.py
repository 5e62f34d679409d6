"""Request bodies that become stored values: each refused as early as its namespace's value
limit allows, and all of a process's held at once kept within one memory budget."""

from uuid import UUID

from aiohttp import HttpVersion11, hdrs, web

from service.domain import keys as kv
from service.domain.errors import ValueTooLarge
from service.web.appkeys import BODY_BUDGET, CONTINUE_PENDING, DATABASE, SETTINGS, VALUE_LIMITS
from service.web.auth import tenant_of
from service.web.front import expectation_failed
from service.web.parsing import body_deadline


async def value_limit(
    request: web.Request, tenant_id: UUID, namespace_id: UUID, *, ttl: bool = False
) -> int:
    """The largest value the namespace takes, as far as this request's declared length needs
    to know (service/web/limits.py ValueLimits). Reading it refuses, before the body, a write
    to a namespace that is missing, not ready, or (`ttl`) without TTL support."""
    db = request.config_dict[DATABASE]
    ceiling = request.config_dict[SETTINGS].max_value_size_ceiling
    return await request.config_dict[VALUE_LIMITS].of(
        tenant_id,
        namespace_id,
        request.content_length,
        lambda: kv.value_limit(db, tenant_id, namespace_id, ceiling, ttl=ttl),
    )


async def expect_when_read(request: web.Request) -> web.StreamResponse | None:
    """The Expect handler of a route that stores its body: `100 Continue` is sent only when
    the handler reads the body (received_value), so that a request refused before (unknown
    or unready namespace, value over its limit) never has its body sent. 417 for any other
    expectation."""
    if request.version != HttpVersion11:
        return None
    if request.headers.get(hdrs.EXPECT, "").lower() != "100-continue":
        return expectation_failed(request)
    request[CONTINUE_PENDING] = True
    return None


class received_value:
    """`async with received_value(request, limit) as value`: the request body as a value to
    store, held within the process's body budget (service/web/limits.py BodyBudget) until the
    block ends, by when it is stored.

    ValueTooLarge before any of it is read when the declared length is over `limit`, and as
    soon as it passes `limit` whatever its framing; BodyTimeout unless it arrives within
    `body_timeout`. (A class rather than a generator-based context manager: it is on every
    PUT's path.)
    """

    __slots__ = ("limit", "owner", "request", "size")

    def __init__(self, request: web.Request, limit: int) -> None:
        self.request, self.limit = request, limit

    async def __aenter__(self) -> bytearray:
        request, limit = self.request, self.limit
        declared = request.content_length
        if declared is not None and declared > limit:
            raise ValueTooLarge(limit)
        self.size, self.owner = limit if declared is None else declared, tenant_of(request)
        budget = request.config_dict[BODY_BUDGET]
        await budget.acquire(self.size, self.owner)
        try:
            if request.get(CONTINUE_PENDING):
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0
                request[CONTINUE_PENDING] = False
            async with body_deadline(request):
                return await _read(request, declared, limit)
        except BaseException:
            budget.release(self.size, self.owner)
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.request.config_dict[BODY_BUDGET].release(self.size, self.owner)


async def _read(request: web.Request, declared: int | None, limit: int) -> bytearray:
    if declared is not None:
        # Read into one buffer of the declared size: growing one would copy it as it grows.
        body = bytearray(declared)
        view, end = memoryview(body), 0
        async for chunk in request.content.iter_any():
            view[end : end + len(chunk)] = chunk
            end += len(chunk)
        view.release()
        del body[end:]
        return body
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise ValueTooLarge(limit)
    return body
