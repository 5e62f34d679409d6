"""One serving process: it serves the API until SIGTERM or SIGINT, then drains and exits
cleanly. Several of them share a port under the supervisor (service/web/supervisor.py).

The shutdown sequence of each process, in order (on Kubernetes a preStop pause has already
taken the pod out of its Service, so new connections have stopped arriving):
1. the listening socket closes: new connections are refused, never accepted and then dropped.
   Under a supervisor, the process then waits until every process's listener is closed: a
   client told to reconnect in step 2 could otherwise land in the queue of a sibling's
   listener just before it closes, and the kernel resets what that queue holds;
2. readiness (`/readyz`) answers 503, and every answer on an open connection carries
   `Connection: close`, so each keep-alive
   connection is closed by the server right after an answer, never while a client may be
   sending on it; this lasts until no connection is left or `drain_seconds` have passed;
3. connections still idle are closed; requests still running get `shutdown_timeout` seconds;
4. the database pool closes and the process exits 0.
"""

import asyncio
import errno
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from service.settings import Settings
from service.web.app import create_app, errors_for_path
from service.web.appkeys import METRICS, METRICS_PORT, REQUEST_ID, SHUTTING_DOWN
from service.web.errors import BadRequest
from service.web.front import expectation_failed
from service.web.limits import return_large_buffers_to_the_os
from service.web.metrics import ApiMetrics

log = logging.getLogger("kvs")

_Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


# A request line in what the parser was fed: the answer to a malformed request takes the shape
# of the surface its path names.
_REQUEST_LINE = re.compile(rb"(?:^|\n)[A-Z]{3,7} (/[^ \r\n?]*)")
_PEEK_BYTES = 8192  # aiohttp's longest request line is 8190 bytes


class _ContractErrorsHandler(RequestHandler):
    """aiohttp's connection handler, answering what its HTTP parser refuses (malformed request
    lines and headers, oversized headers, conflicting framing) in the JSON shape of the surface
    the request line's path names (the root app's when none can be read), instead of plain
    text, counting it (route "unmatched", method "other") and logging it as the client's
    mistake rather than a server error. The parser's message is not repeated: it quotes the
    request's bytes, which may hold a key.
    """

    metrics: ApiMetrics
    app: web.Application

    def data_received(self, data: bytes) -> None:
        # The start of the last two chunks: where a refused head's request line is, unless the
        # head was sent in more pieces than that. Copied, so that an idle connection holds a
        # few KiB rather than the last chunks of its upload.
        self._seen = (getattr(self, "_seen", (b"", b""))[1], data[:_PEEK_BYTES])
        super().data_received(data)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already being sent")
        log.warning("malformed request", extra={"status": status, "reason": type(exc).__name__})
        detail = (
            "A request line or header is longer than 8190 bytes."
            if isinstance(exc, LineTooLong)
            else "The request is not valid HTTP/1.1."
        )
        request[REQUEST_ID] = os.urandom(16).hex()
        lines = _REQUEST_LINE.findall(b"".join(getattr(self, "_seen", ())))
        path = lines[-1].decode("latin-1") if lines else "/"
        response = errors_for_path(self.app, path).response(request, BadRequest(detail))
        response.force_close()
        self.metrics.route_series("unmatched", "other").observe(
            response.status, 0.0, 0, response.content_length or 0
        )
        return response


class _ContractErrorsServer(web.Server):
    metrics: ApiMetrics
    app: web.Application

    def __call__(self) -> RequestHandler:
        handler = _ContractErrorsHandler(self, loop=self._loop, **self._kwargs)
        handler.metrics, handler.app = self.metrics, self.app
        return handler


def _expectations_in_contract_shape(handler: _Handler) -> _Handler:
    """`handler`, answering in the contract's shape the 417 that aiohttp raises for a bad
    Expect header on a path or method no route matches (its error routes take no Expect
    handler of ours, and the error is raised before any middleware runs)."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPExpectationFailed:
            return expectation_failed(request)

    return handle


class ContractErrorsRunner(web.AppRunner):
    """An AppRunner whose connections answer HTTP parse errors and unroutable expectations in
    the contract's JSON shape. aiohttp has no public hook for those answers; the server is the
    narrowest place."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _ContractErrorsServer
        server.metrics, server.app = self.app[METRICS], self.app
        server.request_handler = _expectations_in_contract_shape(server.request_handler)
        return server


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}

# How long a supervised process waits for its siblings to close their listeners before it
# drains anyway: they take milliseconds unless one is stuck.
_SIBLINGS_TIMEOUT = 2.0


class PortInUse(Exception):
    """Another server listens on the address: refuse to start, rather than share its port."""


def bind_listener(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket listening on host:port; PortInUse if anything else holds it.

    `reuse_port` makes a socket that others of the same group may join (SO_REUSEPORT), as the
    supervisor's serving processes do; the supervisor checks first that the port is free.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise PortInUse(f"{host}:{port} is in use by another process") from err
        raise
    sock.setblocking(False)
    return sock


async def serve(
    settings: Settings, listener: socket.socket, *, supervisor: socket.socket | None = None
) -> None:
    """Serves the API on `listener` until SIGTERM or SIGINT, then shuts down as above.

    `supervisor`: a supervised process's channel (service/web/supervisor.py), on which it
    reports the port of its own metrics server, then that its listener is closed, and hears
    that every listener is. The channel closing means the supervisor is gone: the process
    then stops as on SIGTERM, so that it never serves without one.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    # A supervised process starts with them blocked (service/web/supervisor.py): one already
    # sent is delivered now, to the handler.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    channel = None if supervisor is None else _Supervisor(supervisor, stop)
    return_large_buffers_to_the_os()
    app = create_app(settings)
    runner = ContractErrorsRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout,
        # aiohttp closes a connection whose request head is not complete this long after it
        # opened or after its last answer: the bound on slowloris and idle connections.
        keepalive_timeout=settings.idle_timeout,
    )
    await runner.setup()
    try:
        site = web.SockSite(runner, listener)
        await site.start()
        host, port = listener.getsockname()[:2]
        if channel is not None:
            await channel.report_serving(app[METRICS_PORT])
        log.info("serving", extra={"host": host, "port": port})
        await stop.wait()
        await site.stop()
        if channel is not None:
            await channel.until_every_listener_closed()
        app[SHUTTING_DOWN].set()
        log.info("draining", extra={"connections": len(runner.server.connections)})
        await _drain(runner, settings.drain_seconds)
        log.info("stopping", extra={"connections": len(runner.server.connections)})
    finally:
        await runner.cleanup()
        if channel is not None:
            channel.close()
    log.info("stopped")


class _Supervisor:
    """A serving process's side of its channel to the supervisor."""

    def __init__(self, sock: socket.socket, stop: asyncio.Event) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._every_listener_closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read(stop), name="kvs-supervisor-channel")

    async def _read(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.sock_recv(self._sock, 16)
            except OSError:
                data = b""
            if not data:
                if not stop.is_set():
                    log.error("the supervisor is gone: stopping")
                    stop.set()
                self._every_listener_closed.set()
                return
            if b"!" in data:
                self._every_listener_closed.set()

    async def report_serving(self, metrics_port: int) -> None:
        await asyncio.get_running_loop().sock_sendall(self._sock, f"{metrics_port}\n".encode())

    async def until_every_listener_closed(self) -> None:
        """Tells the supervisor this process's listener is closed; returns when it answers
        that every process's is, or after `_SIBLINGS_TIMEOUT`."""
        try:
            await asyncio.get_running_loop().sock_sendall(self._sock, b"closed\n")
            async with asyncio.timeout(_SIBLINGS_TIMEOUT):
                await self._every_listener_closed.wait()
        except (OSError, TimeoutError):
            log.warning("draining without word that every listener is closed")

    def close(self) -> None:
        self._reader.cancel()
        self._sock.close()


async def _drain(runner: web.AppRunner, seconds: float) -> None:
    """Waits until every client connection has closed, or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    # aiohttp signals no "last connection closed" event, so poll.
    while runner.server.connections and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
