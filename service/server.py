"""Running the API: one process per CPU sharing the port, each serving until SIGTERM or SIGINT,
then draining and exiting cleanly.

With several processes (`KVS_PROCESSES`), a supervisor forks them; each binds the port with
SO_REUSEPORT, so the kernel spreads connections across them. The supervisor serves their
metrics, summed, on the metrics port; it forwards SIGTERM and SIGINT (one that comes while the
processes start is held until they serve; a process signalled on its own stops the others too),
and if one process dies unexpectedly it stops the others and exits 1, so the pod restarts whole.

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
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable

import uvloop
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from service import errors
from service.app import create_app
from service.appkeys import METRICS, METRICS_PORT, SHUTTING_DOWN
from service.metrics import ApiMetrics, serve_merged_metrics
from service.middleware import error_document, expectation_failed
from service.settings import Settings

log = logging.getLogger("kvs")

_Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def run(settings: Settings, host: str, port: int) -> int:
    """Serves the API until SIGTERM or SIGINT; the exit status."""
    processes = settings.processes or os.cpu_count() or 1
    if processes == 1:
        uvloop.run(serve(settings, host, port))
        return 0
    return _supervise(settings, host, port, processes)


class _ContractErrorsHandler(RequestHandler):
    """aiohttp's connection handler, answering what its HTTP parser refuses (malformed request
    lines and headers, oversized headers, conflicting framing) in the contract's JSON shape
    instead of plain text, counting it (route "unmatched", method "other") and logging it as
    the client's mistake rather than a server error. The parser's message is not repeated: it
    quotes the request's bytes, which may hold a key.
    """

    metrics: ApiMetrics

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
        error = errors.BAD_REQUEST
        detail = (
            "A request line or header is longer than 8190 bytes."
            if isinstance(exc, LineTooLong)
            else "The request is not valid HTTP/1.1."
        )
        request_id = os.urandom(16).hex()
        response = web.json_response(
            error_document(error, detail, request_id),
            status=error.status,
            headers={"X-Request-Id": request_id},
        )
        response.force_close()
        self.metrics.route_series("unmatched", "other").observe(
            error.status, 0.0, 0, response.content_length or 0
        )
        return response


class _ContractErrorsServer(web.Server):
    metrics: ApiMetrics

    def __call__(self) -> RequestHandler:
        handler = _ContractErrorsHandler(self, loop=self._loop, **self._kwargs)
        handler.metrics = self.metrics
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
        server.metrics = self.app[METRICS]
        server.request_handler = _expectations_in_contract_shape(server.request_handler)
        return server


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}

# How long a supervised process waits for its siblings to close their listeners before it
# drains anyway: they take milliseconds unless one is stuck.
_SIBLINGS_TIMEOUT = 2.0


async def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    supervisor: socket.socket | None = None,
) -> None:
    """Serves the API on host:port until SIGTERM or SIGINT, then shuts down as above.

    `supervisor`: a supervised process's channel, on which it reports the port of its own
    metrics server, then that its listener is closed, and hears that every listener is.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    # A supervised process starts with them blocked (see _supervise): one already sent is
    # delivered now, to the handler.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
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
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port)
        await site.start()
        if supervisor is not None:
            supervisor.sendall(f"{app[METRICS_PORT]}\n".encode())
        log.info("serving", extra={"host": host, "port": port})
        await stop.wait()
        await site.stop()
        if supervisor is not None:
            await _until_every_listener_closed(supervisor)
        app[SHUTTING_DOWN].set()
        log.info("draining", extra={"connections": len(runner.server.connections)})
        await _drain(runner, settings.drain_seconds)
        log.info("stopping", extra={"connections": len(runner.server.connections)})
    finally:
        await runner.cleanup()
    log.info("stopped")


async def _until_every_listener_closed(supervisor: socket.socket) -> None:
    """Tells the supervisor this process's listener is closed; returns when it answers that
    every process's is, or after `_SIBLINGS_TIMEOUT`."""
    loop = asyncio.get_running_loop()
    supervisor.setblocking(False)
    try:
        await loop.sock_sendall(supervisor, b"closed\n")
        async with asyncio.timeout(_SIBLINGS_TIMEOUT):
            await loop.sock_recv(supervisor, 1)
    except (OSError, TimeoutError):
        log.warning("draining without word that every listener is closed")


async def _drain(runner: web.AppRunner, seconds: float) -> None:
    """Waits until every client connection has closed, or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    # aiohttp signals no "last connection closed" event, so poll.
    while runner.server.connections and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def _supervise(settings: Settings, host: str, port: int, processes: int) -> int:
    """Forks the serving processes and watches them; the exit status."""
    # Each process serves its metrics on a loopback port of its own; the supervisor sums them.
    child_settings = settings.model_copy(update={"metrics_host": "127.0.0.1", "metrics_port": 0})
    # Until this process and each child have their handlers, SIGTERM and SIGINT wait instead of
    # killing them: a supervisor killed while its children start would leave them serving.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    children: dict[int, socket.socket] = {}
    for _ in range(processes):
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            for channel in (ours, *children.values()):
                channel.close()
            status = 1
            try:
                uvloop.run(serve(child_settings, host, port, reuse_port=True, supervisor=theirs))
                status = 0
            except BaseException:
                log.exception("serving process failed")
            finally:
                os._exit(status)
        theirs.close()
        children[pid] = ours
    ports = []
    for channel in children.values():
        line = _read_line(channel)  # empty if the process died before serving
        if line:
            ports.append(int(line))
    if len(ports) < processes:
        _signal_all(children, signal.SIGTERM)
        _wait_all(children)
        return 1
    return uvloop.run(_watch(settings, children, ports))


def _read_line(channel: socket.socket) -> str:
    """One line from a process's channel, read byte by byte so that nothing after it is
    consumed; empty if the channel closed first."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = channel.recv(1)
        if not byte:
            return ""
        line += byte
    return line.decode()


async def _watch(settings: Settings, children: dict[int, socket.socket], ports: list[int]) -> int:
    """Serves the summed metrics, forwards signals and tells the processes when every listener
    is closed, until every process has exited."""
    loop = asyncio.get_running_loop()
    stopping = False
    listening = set(children)

    def stop(sig: signal.Signals) -> None:
        nonlocal stopping
        stopping = True
        _signal_all(children, sig)

    async def until_closed(pid: int, channel: socket.socket) -> None:
        channel.setblocking(False)
        await loop.sock_recv(channel, 16)  # "closed", or nothing if the process has exited
        listening.discard(pid)
        if not stopping:
            stop(signal.SIGTERM)
        if not listening:
            for each in children.values():
                try:
                    each.send(b"!")
                except OSError:
                    pass  # that process has exited

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    status = 0
    watchers = [asyncio.create_task(until_closed(*child)) for child in children.items()]
    async with serve_merged_metrics(ports, settings.metrics_host, settings.metrics_port):
        running = set(children)
        while running:
            await asyncio.sleep(0.1)
            for pid in list(running):
                done, code = os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 - never blocks
                if done == 0:
                    continue
                running.discard(pid)
                if code != 0 or not stopping:
                    # A negative exit code names the signal that ended it, as subprocess's do.
                    exited = {"pid": pid, "exit_code": os.waitstatus_to_exitcode(code)}
                    log.error("a serving process exited", extra=exited)
                    status = 1
                    if not stopping:
                        stop(signal.SIGTERM)
    for watcher in watchers:
        watcher.cancel()
    return status


def _signal_all(children: dict[int, socket.socket], sig: signal.Signals) -> None:
    for pid in children:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_all(children: dict[int, socket.socket]) -> None:
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
