"""The layer every request passes, whatever its surface: its id, its metrics and log line,
the drain at shutdown, and the answer to its Expect header."""

import logging
import os
import random
import re
import time
from collections.abc import Iterable

from aiohttp import HttpVersion11, hdrs, web

from service.web.appkeys import (
    CONTINUE_PENDING,
    ERRORS,
    METRICS,
    REQUEST_ID,
    SETTINGS,
    SHUTTING_DOWN,
)
from service.web.errors import ExpectationFailed
from service.web.metrics import ApiMetrics, RouteSeries

log = logging.getLogger(__name__)
access_log = logging.getLogger("kvs.access")

_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# A request answered more slowly than this is always logged, whatever the sample.
SLOW_SECONDS = 1.0


def assign_request_id(request: web.Request) -> str:
    """The request's id: the caller's X-Request-Id when it is sane, else a new one."""
    given = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = given if _CLIENT_REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
    return request[REQUEST_ID]


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """Every route's answer to an Expect header: 417 in its surface's shape for anything but
    `100-continue` (aiohttp's own answer is plain text), else 100 Continue. HTTP/1.0 has no
    interim responses, so there the header is ignored."""
    if request.version != HttpVersion11:
        return None
    if request.headers.get(hdrs.EXPECT, "").lower() != "100-continue":
        return expectation_failed(request)
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0
    return None


def answer_before_middlewares(request: web.Request, err: Exception) -> web.Response:
    """The answer to a failure found before the middlewares run (an Expect header), in the
    request's surface's shape, counted and logged here since no middleware will."""
    assign_request_id(request)
    response = request.config_dict[ERRORS].response(request, err)
    series = request.config_dict[METRICS].route_series(route_of(request), request.method)
    sample = request.config_dict[SETTINGS].access_log_sample
    record(request, series, response.status, 0.0, response.content_length or 0, sample)
    return response


def expectation_failed(request: web.Request) -> web.Response:
    """The 417 for an Expect header other than `100-continue`."""
    return answer_before_middlewares(
        request, ExpectationFailed("Only 'Expect: 100-continue' is supported.", parameter="Expect")
    )


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


def front_middleware(metrics: ApiMetrics, access_log_sample: float):
    """What every request goes through, in one layer (each layer costs a call per request):

    - an id, the caller's X-Request-Id when sane, echoed in X-Request-Id;
    - counted, timed and logged (one JSON line that never holds the API key or the value;
      of the requests answered below 400 within SLOW_SECONDS, the fraction
      `access_log_sample`);
    - a failure that no surface answered (on the routes outside every surface) answered in
      the root app's error shape;
    - while shutting down, `Connection: close` on every answer, so the server closes each
      keep-alive connection right after an answer, never while a client may be sending on it;
      likewise after refusing a request whose client still waits for `100 Continue`, whose
      body may or may not follow.
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
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = request.app[ERRORS].response(request, exc)
            except Exception as err:
                response = request.app[ERRORS].response(request, err)
            status, response_bytes = response.status, response.content_length or 0
            response.headers["X-Request-Id"] = request_id
            if request.app[SHUTTING_DOWN].is_set() or request.get(CONTINUE_PENDING):
                response.force_close()
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.http_in_flight.dec()
            seconds = time.perf_counter() - started
            record(request, series, status, seconds, response_bytes, access_log_sample)

    return middleware


def record(
    request: web.Request,
    series: RouteSeries,
    status: int,
    seconds: float,
    response_bytes: int,
    sample: float = 1.0,
) -> None:
    """Counts and times one answered request and writes its log line (which never holds the
    API key or the value): always for a failure (400 and up) or a slow answer, else with the
    probability `sample`."""
    request_bytes = request.content_length or 0
    series.observe(status, seconds, request_bytes, response_bytes)
    if status < 400 and seconds < SLOW_SECONDS and sample < 1.0 and random.random() >= sample:
        return
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
