"""Running the API: serve until SIGTERM or SIGINT, then drain and exit cleanly.

The shutdown sequence, in order (on Kubernetes a preStop pause has already taken the pod out
of its Service, so new connections have stopped arriving):
1. readiness (`/readyz`) answers 503 and the listening socket closes: new connections are
   refused, never accepted and then dropped;
2. every answer on an open connection carries `Connection: close`, so each keep-alive
   connection is closed by the server right after an answer, never while a client may be
   sending on it; this lasts until no connection is left or `drain_seconds` have passed;
3. connections still idle are closed; requests still running get `shutdown_timeout` seconds;
4. the database pool closes and the process exits 0.
"""

import asyncio
import logging
import signal
import time

from aiohttp import web

from service.app import create_app
from service.appkeys import SHUTTING_DOWN
from service.settings import Settings

log = logging.getLogger("kvs")


async def serve(settings: Settings, host: str, port: int) -> None:
    """Serves the API on host:port until SIGTERM or SIGINT, then shuts down as above."""
    app = create_app(settings)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=settings.shutdown_timeout
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("serving", extra={"host": host, "port": port})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        app[SHUTTING_DOWN].set()
        await site.stop()
        log.info("draining", extra={"connections": len(runner.server.connections)})
        await _drain(runner, settings.drain_seconds)
        log.info("stopping", extra={"connections": len(runner.server.connections)})
    finally:
        await runner.cleanup()
    log.info("stopped")


async def _drain(runner: web.AppRunner, seconds: float) -> None:
    """Waits until every client connection has closed, or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    # aiohttp signals no "last connection closed" event, so poll.
    while runner.server.connections and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
