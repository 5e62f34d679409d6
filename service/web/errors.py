"""Errors of the HTTP layer, common to every API surface, and the one way a surface turns any
failure into its own error answer.

Request errors name the request's own parameter (a query parameter, a header) or JSON pointer:
they are found before the domain is called. Each surface has an ErrorShape: its code table and
its body; `error_middleware` makes it the one place that surface's failures become answers.
"""

import logging
from typing import Protocol

from aiohttp import web

from service.db.sqlstate import classify
from service.domain.errors import DomainError

log = logging.getLogger(__name__)


class RequestError(Exception):
    """A request refused before the domain saw it; `parameter` or `pointer` says where."""

    def __init__(
        self, message: str, *, parameter: str | None = None, pointer: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter
        self.pointer = pointer


class BadRequest(RequestError):
    pass


class MissingField(RequestError):
    pass


class InvalidId(RequestError):
    pass


class UnknownRoute(RequestError):
    pass


class MethodNotAllowed(RequestError):
    def __init__(self, message: str, allow: str | None) -> None:
        super().__init__(message)
        self.allow = allow


class BodyTooLarge(RequestError):
    pass


class UnsupportedEncoding(RequestError):
    pass


class ExpectationFailed(RequestError):
    pass


class BodyTimeout(RequestError):
    pass


class TooManyFailures(RequestError):
    """The client's address failed authentication too often (service/web/ratelimit.py)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed authentications from this address; retry later.")
        self.retry_after = retry_after


class ShuttingDown(RequestError):
    pass


class BodyMemoryExhausted(RequestError):
    """The process holds as many request bodies as its budget allows (service/web/bodies.py):
    unavailable for now, worth a retry shortly."""


class ErrorShape(Protocol):
    """How one API surface answers a failure: its status, code and body."""

    def response(self, request: web.Request, err: Exception) -> web.Response: ...


# aiohttp's own HTTP errors (no route, wrong method, oversized body, bad Expect), as ours.
_HTTP_ERRORS = {
    404: (UnknownRoute, "The requested resource or URL could not be found."),
    413: (BodyTooLarge, "The request body is too large."),
    417: (ExpectationFailed, "Only 'Expect: 100-continue' is supported."),
}


def normalized(request: web.Request, err: Exception) -> Exception:
    """The failure as the exception a surface maps: aiohttp's HTTP errors become request
    errors and driver failures store errors. A failure that means neither (a bug) is logged
    here and returned unchanged: every surface answers it with its "unexpected error"."""
    if isinstance(err, web.HTTPException):
        if err.status == 405:
            return MethodNotAllowed(
                "This method is not allowed on this resource.", err.headers.get("Allow")
            )
        kind, message = _HTTP_ERRORS.get(err.status, (BadRequest, err.reason))
        return kind(message)
    if isinstance(err, RequestError | DomainError):
        return err
    mapped = classify(err)
    if mapped is not None:
        log.warning("database failure: %s", type(err).__name__)
        return mapped
    log.exception("unhandled error on %s %s", request.method, request.path, exc_info=err)
    return err


def error_middleware(shape: ErrorShape):
    """A surface's middleware that answers every failure of its routes in its shape (a
    redirect passes through)."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return shape.response(request, exc)
        except Exception as err:
            return shape.response(request, err)

    return middleware
