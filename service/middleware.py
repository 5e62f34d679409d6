"""The layer every request passes: its id, its JSON error answer, its metrics and log line."""

import json
import logging
import os
import re
import time
from collections.abc import Iterable

from aiohttp import HttpVersion11, hdrs, web

from service import errors
from service.appkeys import METRICS, REQUEST_ID, SETTINGS, SHUTTING_DOWN
from service.db import classify
from service.errors import ErrorCode, ServiceError
from service.metrics import ApiMetrics, RouteSeries

log = logging.getLogger(__name__)
access_log = logging.getLogger("kvs.access")

_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# aiohttp's own HTTP errors (unknown route, wrong method, oversized body) by status.
_HTTP_ERRORS: dict[int, tuple[ErrorCode, str]] = {
    404: (errors.NOT_FOUND, "The requested resource or URL could not be found."),
    405: (errors.METHOD_NOT_ALLOWED, "This method is not allowed on this resource."),
    413: (errors.PAYLOAD_TOO_LARGE, "The request body is too large."),
    417: (errors.EXPECTATION_FAILED, "Only 'Expect: 100-continue' is supported."),
}


def error_document(
    error: ErrorCode,
    detail: str,
    request_id: str,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
) -> dict:
    """The contract's JSON body for one error."""
    entry: dict = {"code": error.code, "title": error.title, "detail": detail}
    if pointer is not None:
        entry["source"] = {"pointer": pointer}
    elif parameter is not None:
        entry["source"] = {"parameter": parameter}
    entry["meta"] = {"request_id": request_id}
    return {"errors": [entry]}


def error_response(
    request: web.Request,
    error: ErrorCode,
    detail: str,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The contract's JSON error answer for one error, with the headers its status needs."""
    headers = dict(headers or {})
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if error.status == 503:
        headers["Retry-After"] = str(request.app[SETTINGS].retry_after_seconds)
    headers["X-Request-Id"] = request[REQUEST_ID]
    body = error_document(error, detail, request[REQUEST_ID], pointer=pointer, parameter=parameter)
    response = web.json_response(body, status=error.status, headers=headers, dumps=json.dumps)
    if error.status == 408:
        response.force_close()  # the rest of the body may still be on its way
    return response


def assign_request_id(request: web.Request) -> str:
    """The request's id: the caller's X-Request-Id when it is sane, else a new one."""
    given = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = given if _CLIENT_REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
    return request[REQUEST_ID]


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """Every route's answer to an Expect header: 417 in the contract's shape for anything but
    `100-continue` (aiohttp's own answer is plain text), else 100 Continue. HTTP/1.0 has no
    interim responses, so there the header is ignored."""
    if request.version != HttpVersion11:
        return None
    if request.headers.get(hdrs.EXPECT, "").lower() != "100-continue":
        return expectation_failed(request)
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0
    return None


def expectation_failed(request: web.Request) -> web.Response:
    """The 417 for an Expect header other than `100-continue`, counted and logged here:
    aiohttp sends it without running the middlewares."""
    assign_request_id(request)
    response = error_response(
        request,
        errors.EXPECTATION_FAILED,
        "Only 'Expect: 100-continue' is supported.",
        parameter="Expect",
    )
    series = request.app[METRICS].route_series(route_of(request), request.method)
    record(request, series, response.status, 0.0, response.content_length or 0)
    return response


def with_expect_handler(routes: Iterable[web.AbstractRouteDef]) -> list[web.AbstractRouteDef]:
    """The routes, each given `expect_continue` unless it has an Expect handler of its own."""
    return [
        web.RouteDef(r.method, r.path, r.handler, {"expect_handler": expect_continue, **r.kwargs})
        if isinstance(r, web.RouteDef)
        else r
        for r in routes
    ]


def route_of(request: web.Request) -> str:
    """The route template that matched (a small fixed set), or "unmatched"."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def _mapped_error(request: web.Request, handler_error: Exception) -> web.Response:
    """The JSON error answer for a failure raised by a handler; re-raises redirects."""
    try:
        raise handler_error
    except ServiceError as err:
        retry_after = getattr(err, "retry_after", None)
        return error_response(
            request,
            err.error,
            err.detail,
            pointer=err.pointer,
            parameter=err.parameter,
            headers=None if retry_after is None else {"Retry-After": str(retry_after)},
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error, detail = _HTTP_ERRORS.get(exc.status, (errors.BAD_REQUEST, exc.reason))
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(request, error, detail, headers=headers)
    except Exception as err:
        mapped = classify(err)
        if mapped is not None:
            log.warning("database failure: %s", type(err).__name__)
            return error_response(request, mapped.error, mapped.detail)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(request, errors.UNEXPECTED_ERROR, "An unexpected error occurred.")


def front_middleware(metrics: ApiMetrics):
    """What every request goes through, in one layer (each layer costs a call per request):

    - an id, the caller's X-Request-Id when sane, echoed in X-Request-Id;
    - domain errors, aiohttp's HTTP errors and database failures mapped to JSON error answers;
    - counted, timed and logged (one JSON line that never holds the API key or the value);
    - while shutting down, `Connection: close` on every answer, so the server closes each
      keep-alive connection right after an answer, never while a client may be sending on it.
    """

    @web.middleware
    async def middleware(request: web.Request, handler):
        request_id = assign_request_id(request)
        series = metrics.route_series(route_of(request), request.method)
        started = time.perf_counter()
        metrics.http_in_flight.inc()
        status, response_bytes = 500, 0
        try:
            try:
                response = await handler(request)
            except Exception as err:
                response = _mapped_error(request, err)
            status, response_bytes = response.status, response.content_length or 0
            response.headers["X-Request-Id"] = request_id
            if request.app[SHUTTING_DOWN].is_set():
                response.force_close()
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.http_in_flight.dec()
            record(request, series, status, time.perf_counter() - started, response_bytes)

    return middleware


def record(
    request: web.Request, series: RouteSeries, status: int, seconds: float, response_bytes: int
) -> None:
    """Counts and times one answered request and writes its log line (which never holds the
    API key or the value)."""
    request_bytes = request.content_length or 0
    series.observe(status, seconds, request_bytes, response_bytes)
    access_log.info(
        "request",
        extra={
            "method": series.method,
            "route": series.route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "request_bytes": request_bytes,
            "response_bytes": response_bytes,
            "request_id": request[REQUEST_ID],
        },
    )
