"""The connection pool: every call bounded in time, named, timed, and failing with store errors."""

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn, Protocol

import asyncpg

from service.db.coalesce import Coalescer, Group, I, R
from service.db.queries import Query
from service.db.sqlstate import LOST_SESSION, classify, error_class, is_refusal
from service.settings import Settings

# How many times a statement is sent again (see Database._run), and the pause before the first
# time (doubled before each next one, with jitter).
_RETRIES = 2
_RETRY_PAUSE = 0.02
_AD_HOC = "other"

_DRIVER_ERRORS = (asyncpg.PostgresError, OSError, TimeoutError)


class Observer(Protocol):
    """Where the pool reports each statement's duration and each failure (service/metrics.py)."""

    def observe_query(self, name: str, seconds: float) -> None: ...

    def count_db_error(self, sqlstate_class: str) -> None: ...

    def watch_pool(self, pool: asyncpg.Pool) -> None: ...

    def observe_group(self, name: str, items: int) -> None: ...


class _Statements:
    """asyncpg's four ways to run a statement, each through `_run(method, query, args)`."""

    async def _run(self, method: str, query: Query | str, args: tuple) -> Any:
        raise NotImplementedError

    async def fetch(self, query: Query | str, *args: Any) -> list[asyncpg.Record]:
        return await self._run("fetch", query, args)

    async def fetchrow(self, query: Query | str, *args: Any) -> asyncpg.Record | None:
        return await self._run("fetchrow", query, args)

    async def fetchval(self, query: Query | str, *args: Any) -> Any:
        return await self._run("fetchval", query, args)

    async def execute(self, query: Query | str, *args: Any) -> str:
        return await self._run("execute", query, args)

    async def grouped(self, group: Group[I, R], item: I) -> R:
        """The item's outcome, from a statement it may share with concurrent callers
        (service/db/coalesce.py); here, within one transaction, from its own."""
        return await group.run_one(self, item)


class Database(_Statements):
    """A connection pool whose every call is bounded in time and names its statement.

    Failures to reach the database raise StoreUnavailable, time-outs StoreTimeout, a full
    disk StoreFull and a namespace's storage limit StorageLimitReached; other database errors
    propagate unchanged for the caller to classify.
    """

    def __init__(self, pool: asyncpg.Pool, settings: Settings, observer: Observer | None) -> None:
        self.pool = pool
        self._acquire_timeout = settings.db_acquire_timeout
        # The bound on a whole call: a wait for a connection (or opening one), then the
        # statement. asyncpg's own limits can add up past it: opening a connection, the
        # statement, then a cancel request on a connection of its own.
        self._deadline = settings.db_acquire_timeout + settings.db_command_timeout
        self._observer = observer
        self._coalesce = settings.db_coalesce
        self._coalescers: dict[Group, Coalescer] = {}

    async def grouped(self, group: Group[I, R], item: I) -> R:
        """The item's outcome, from one statement with the items of the same group submitted
        by concurrent callers within this loop turn (unless `db_coalesce` is off)."""
        if not self._coalesce:
            if self._observer is not None:
                self._observer.observe_group(group.name, 1)
            return await group.run_one(self, item)
        coalescer = self._coalescers.get(group)
        if coalescer is None:
            coalescer = self._coalescers[group] = Coalescer(self, group, self._observer)
        return await coalescer.submit(item)

    def _acquire_timeout_now(self) -> float | None:
        # The time limit is for waiting until a connection is free. When one is free now (or
        # may be opened), it is skipped: asyncpg would spend a task and a timer on every request.
        pool = self.pool
        free_now = pool.get_idle_size() > 0 or pool.get_size() < pool.get_max_size()
        return None if free_now else self._acquire_timeout

    def _mapped(self, err: BaseException) -> BaseException:
        """What to raise for a driver or network failure: its store error, or itself."""
        if self._observer is not None and not is_refusal(err):
            self._observer.count_db_error(error_class(err))
        return classify(err) or err

    def _raise_mapped(self, err: BaseException) -> NoReturn:
        mapped = self._mapped(err)
        if mapped is err:
            raise err
        raise mapped from err

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator["Transaction"]:
        """A transaction on one pooled connection, committed when the block ends without an
        error. Its statements are named and timed like the pool's own; none is retried."""
        try:
            async with self.pool.acquire(timeout=self._acquire_timeout_now()) as conn:
                async with conn.transaction():
                    yield Transaction(conn, self._observer)
        except _DRIVER_ERRORS as err:
            self._raise_mapped(err)

    async def _run(self, method: str, query: Query | str, args: tuple) -> Any:
        """Runs one statement on a pooled connection. It is sent again (at most _RETRIES times,
        after a pause of tens of milliseconds), on a new connection, when the last was broken
        before sending it, and for a read (never for a write, whose outcome is then unknown),
        when the last lost its session. The whole call, retries included, ends within acquire +
        command timeout: StoreTimeout past it."""
        query = _named(query)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._deadline):
                return await self._retrying(method, query, args)
        except _NeverSent as err:
            raise self._mapped(ConnectionResetError("a broken connection at every try")) from err
        except _DRIVER_ERRORS as err:
            self._raise_mapped(err)
        finally:
            if self._observer is not None:
                self._observer.observe_query(query.name, time.perf_counter() - started)

    async def _retrying(self, method: str, query: Query, args: tuple) -> Any:
        for attempt in range(_RETRIES + 1):
            try:
                return await self._once(method, query.sql, args)
            except (_NeverSent, *LOST_SESSION) as err:
                # Sessions usually end together (a restart, a failover, an operator): the
                # pool's other connections are replaced rather than tried one by one.
                await self.pool.expire_connections()
                sent = not isinstance(err, _NeverSent)
                if attempt == _RETRIES or (sent and not query.read):
                    raise
            # A pause, so that the next try does not land in the same wave of ending sessions
            # (without one, all three tries of a read could fail within 5 ms).
            await asyncio.sleep(_RETRY_PAUSE * 2**attempt * random.uniform(0.5, 1.0))

    async def _once(self, method: str, sql: str, args: tuple) -> Any:
        # The acquisition written out: one statement per request is the hot path, and a
        # generator-based context manager costs it a few percent.
        async with self.pool.acquire(timeout=self._acquire_timeout_now()) as conn:
            try:
                return await getattr(conn, method)(sql, *args)
            except asyncpg.InternalClientError as err:
                # The connection's protocol is out of step: its session was ended while it sat
                # idle in the pool (asyncpg issue #1069). asyncpg refuses before sending
                # anything; the connection is dropped so that the pool opens a new one.
                conn.terminate()
                raise _NeverSent() from err
            except asyncpg.InterfaceError as err:
                if conn.is_closed():  # closed under the statement: a lost session
                    raise ConnectionResetError("the database connection closed") from err
                raise


class Transaction(_Statements):
    """The statements of one transaction: named and timed as the pool's, never retried (a
    statement of a transaction cannot be sent again on its own). Their driver errors are
    mapped once, as they leave `Database.transaction()`."""

    def __init__(self, conn: asyncpg.Connection, observer: Observer | None) -> None:
        self._conn = conn
        self._observer = observer

    async def _run(self, method: str, query: Query | str, args: tuple) -> Any:
        query = _named(query)
        started = time.perf_counter()
        try:
            return await getattr(self._conn, method)(query.sql, *args)
        finally:
            if self._observer is not None:
                self._observer.observe_query(query.name, time.perf_counter() - started)


def _named(query: Query | str) -> Query:
    """A named statement as is; ad-hoc SQL (tests, one-off tools) as "other", never retried."""
    return Query(_AD_HOC, query, read=False) if isinstance(query, str) else query


class _NeverSent(Exception):
    """A statement was not sent: its connection was broken beforehand."""


async def create_pool(settings: Settings, *, max_size: int | None = None) -> asyncpg.Pool:
    """A pool that opens connections on demand, so the process starts while the database is down."""
    return await asyncpg.create_pool(
        settings.dsn(),
        min_size=0,
        max_size=max_size or settings.db_pool_max,
        timeout=settings.db_connect_timeout,
        command_timeout=settings.db_command_timeout,
        statement_cache_size=settings.db_statement_cache_size,
        reset=_rollback_if_in_transaction,
    )


async def _rollback_if_in_transaction(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool.

    asyncpg's default reset (UNLISTEN, RESET ALL, advisory unlocks, ...) is a second round trip
    for every request. Pool connections never take session state: LISTEN and the migration
    lock use connections of their own. So only an interrupted transaction needs undoing.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


@asynccontextmanager
async def open_database(
    settings: Settings, *, max_size: int | None = None, observer: Observer | None = None
) -> AsyncIterator[Database]:
    """A Database for the duration of the block; the pool is closed on exit."""
    pool = await create_pool(settings, max_size=max_size)
    try:
        if observer is not None:
            observer.watch_pool(pool)
        yield Database(pool, settings, observer)
    finally:
        try:
            await asyncio.wait_for(pool.close(), timeout=settings.db_command_timeout)
        except TimeoutError:
            pool.terminate()
