"""The process's one LISTEN connection, shared by everything that waits for a NOTIFY.

LISTEN needs a session of its own (a pooled connection is handed to other statements between
uses), and one per waiter would cost the database a backend each. So a process holds one, and
reopens it with backoff whenever it is lost. Notifications sent while it was down are lost:
every subscriber is told of each (re)connection, so that it can look again for what it missed.
"""

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from service.settings import Settings

log = logging.getLogger(__name__)

# A notification's payload, or None for "(re)connected: anything may have been missed".
Callback = Callable[[str | None], None]

_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0
_CONNECTION_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Listener:
    """LISTENs on the channels its subscribers name, for the duration of `async with`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._subscribers: dict[str, list[Callback]] = {}
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def __aenter__(self) -> "Listener":
        self._task = asyncio.create_task(self._keep_connected(), name="kvs-listener")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._close()

    async def subscribe(self, channel: str, callback: Callback) -> Callable[[], None]:
        """Calls `callback` with each notification on `channel`, and with None once connected
        and after every reconnection; returns the function that ends the subscription."""
        callbacks = self._subscribers.setdefault(channel, [])
        callbacks.append(callback)
        if self.connected:
            try:
                if len(callbacks) == 1:
                    await self._conn.add_listener(channel, self._deliver)
                callback(None)
            except _CONNECTION_ERRORS:
                self._lost.set()

        def unsubscribe() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe

    def _deliver(self, conn: object, pid: int, channel: str, payload: str) -> None:
        for callback in list(self._subscribers.get(channel, ())):
            callback(payload)

    async def _keep_connected(self) -> None:
        pause = _BACKOFF_FIRST
        while True:
            try:
                await self._connect()
                pause = _BACKOFF_FIRST
                await self._lost.wait()
                log.warning("LISTEN connection lost; reconnecting")
            except _CONNECTION_ERRORS as err:
                log.warning("cannot LISTEN, retrying: %s", type(err).__name__)
            await self._close()
            await asyncio.sleep(pause)
            pause = min(pause * 2, _BACKOFF_MAX)

    async def _connect(self) -> None:
        self._lost.clear()
        conn = await asyncpg.connect(
            self._settings.dsn(), timeout=self._settings.db_connect_timeout
        )
        conn.add_termination_listener(lambda _: self._lost.set())
        self._conn = conn
        for channel in list(self._subscribers):
            await conn.add_listener(channel, self._deliver)
        for callbacks in list(self._subscribers.values()):
            for callback in list(callbacks):
                callback(None)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=self._settings.db_connect_timeout)
            except _CONNECTION_ERRORS:
                conn.terminate()
