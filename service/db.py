"""The database layer: the pool's lifetime, the named queries, and driver-error classification."""

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import asyncpg

from service.errors import DatabaseFull, DatabaseTimeout, DatabaseUnavailable, ServiceError
from service.settings import Settings

if TYPE_CHECKING:
    from service.metrics import Metrics

SQL_DIR = Path(__file__).parent / "sql"
_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)

# SQLSTATEs meaning "the database is not there right now" rather than "this request is wrong":
# connection exceptions, shutdowns, and insufficient resources (too many connections, out of
# memory); of those, a full disk has an answer of its own.
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53")
_DISK_FULL_STATE = "53100"
_CANCELED_STATE = "57014"
# What makes a statement more than a read (a false match would only cost a read its retry).
_COMMENT = re.compile(r"--[^\n]*")
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|FOR|NEXTVAL|SETVAL|PG_\w+LOCK\w*)\b", re.IGNORECASE)
# How many times a statement is sent again (see Database._run), and the pause before the first
# time (doubled before each next one, with jitter).
_RETRIES = 2
_RETRY_PAUSE = 0.02
# A connection whose session is gone: the statement may have run (for writes, the outcome is
# unknown) but a read can safely be sent again on another connection.
_LOST_SESSION = (
    asyncpg.PostgresConnectionError,  # 08xxx
    asyncpg.AdminShutdownError,  # 57P01: the session was terminated
    ConnectionError,
)


class Queries:
    """Named SQL blocks from service/sql/*.sql, as attributes: `queries().claim_job`."""

    def __init__(self, directory: Path) -> None:
        self._names: dict[str, str] = {}
        self.read_only: set[str] = set()
        for path in sorted(directory.glob("*.sql")):
            parts = _BLOCK.split(path.read_text())
            for name, body in zip(parts[1::2], parts[2::2], strict=True):
                if hasattr(self, name):
                    raise ValueError(f"query {name!r} is defined twice")
                setattr(self, name, body.strip())
                self._names[body.strip()] = name
                if not _WRITES.search(_COMMENT.sub("", body)):
                    self.read_only.add(body.strip())

    def name_of(self, sql: str) -> str:
        """The name of a named query's text; "other" for any other SQL."""
        return self._names.get(sql, "other")

    def __getattr__(self, name: str) -> str:
        raise AttributeError(f"no query named {name!r} in {SQL_DIR}")


@cache
def queries() -> Queries:
    """The named queries, read once."""
    return Queries(SQL_DIR)


def classify(err: BaseException) -> ServiceError | None:
    """The service error a driver or network failure stands for, or None for a genuine bug.

    Decided by exception type and SQLSTATE, never by message text (which is localizable).
    """
    if isinstance(err, asyncpg.PostgresError):
        state = err.sqlstate or ""
        if state == _DISK_FULL_STATE:
            return DatabaseFull("The database is out of disk space; the write was not made.")
        if state.startswith(_UNAVAILABLE_STATES):
            return DatabaseUnavailable("The database is unavailable; retry shortly.")
        if state == _CANCELED_STATE:
            return DatabaseTimeout("The database did not answer in time.")
        return None
    if isinstance(err, TimeoutError):
        return DatabaseTimeout("The database did not answer in time.")
    if isinstance(err, OSError):
        return DatabaseUnavailable("The database is unavailable; retry shortly.")
    return None


class Database:
    """A connection pool whose every call is bounded in time and raises service errors.

    Failures to reach the database become DatabaseUnavailable (503), time-outs DatabaseTimeout
    (504) and a full disk DatabaseFull (507); other database errors propagate unchanged for the
    caller to classify.
    """

    def __init__(
        self, pool: asyncpg.Pool, settings: Settings, metrics: "Metrics | None" = None
    ) -> None:
        self.pool = pool
        self._acquire_timeout = settings.db_acquire_timeout
        # The bound on a whole call: a wait for a connection (or opening one), then the
        # statement. asyncpg's own limits can add up past it: opening a connection, the
        # statement, then a cancel request on a connection of its own.
        self._deadline = settings.db_acquire_timeout + settings.db_command_timeout
        self._metrics = metrics

    def _acquire_timeout_now(self) -> float | None:
        # The time limit is for waiting until a connection is free. When one is free now (or
        # may be opened), it is skipped: asyncpg would spend a task and a timer on every request.
        pool = self.pool
        free_now = pool.get_idle_size() > 0 or pool.get_size() < pool.get_max_size()
        return None if free_now else self._acquire_timeout

    def _mapped(self, err: asyncpg.PostgresError | OSError | TimeoutError) -> BaseException:
        """What to raise for a driver or network failure: its service error, or itself."""
        if self._metrics is not None:
            self._metrics.db_errors.labels(_error_class(err)).inc()
        return classify(err) or err

    def _raise_mapped(self, err: asyncpg.PostgresError | OSError | TimeoutError) -> NoReturn:
        """Raises the service error a driver or network failure stands for, or the failure."""
        mapped = self._mapped(err)
        if mapped is err:
            raise err
        raise mapped from err

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self.pool.acquire(timeout=self._acquire_timeout_now()) as conn:
                yield conn
        except (asyncpg.PostgresError, OSError, TimeoutError) as err:
            self._raise_mapped(err)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def _run(self, method: str, query: str, args: tuple) -> Any:
        """Runs one statement on a pooled connection. It is sent again (at most _RETRIES times,
        after a pause of tens of milliseconds), on a new connection, when the last was broken
        before sending it, and for a read (never for a write, whose outcome is then unknown),
        when the last lost its session. The whole call, retries included, ends within acquire +
        command timeout: DatabaseTimeout (504) past it."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._deadline):
                return await self._retrying(method, query, args)
        except _NeverSent as err:
            raise self._mapped(ConnectionResetError("a broken connection at every try")) from err
        except (asyncpg.PostgresError, OSError, TimeoutError) as err:
            self._raise_mapped(err)
        finally:
            if self._metrics is not None:
                self._metrics.query_duration(query).observe(time.perf_counter() - started)

    async def _retrying(self, method: str, query: str, args: tuple) -> Any:
        for attempt in range(_RETRIES + 1):
            try:
                return await self._once(method, query, args)
            except (_NeverSent, *_LOST_SESSION) as err:
                # Sessions usually end together (a restart, a failover, an operator): the
                # pool's other connections are replaced rather than tried one by one.
                await self.pool.expire_connections()
                sent = not isinstance(err, _NeverSent)
                if attempt == _RETRIES or (sent and query not in queries().read_only):
                    raise
            # A pause, so that the next try does not land in the same wave of ending sessions
            # (without one, all three tries of a read could fail within 5 ms).
            await asyncio.sleep(_RETRY_PAUSE * 2**attempt * random.uniform(0.5, 1.0))

    async def _once(self, method: str, query: str, args: tuple) -> Any:
        # The body of connection(), written out: one statement per request is the hot path,
        # and a generator-based context manager costs it a few percent.
        async with self.pool.acquire(timeout=self._acquire_timeout_now()) as conn:
            try:
                return await getattr(conn, method)(query, *args)
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

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self._run("fetch", query, args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self._run("fetchrow", query, args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._run("fetchval", query, args)

    async def execute(self, query: str, *args: Any) -> str:
        return await self._run("execute", query, args)


class _NeverSent(Exception):
    """A statement was not sent: its connection was broken beforehand."""


def _error_class(err: BaseException) -> str:
    """A metric label for a database error: its SQLSTATE class, or what failed on our side."""
    if isinstance(err, asyncpg.PostgresError) and err.sqlstate:
        return err.sqlstate[:2]
    return "timeout" if isinstance(err, TimeoutError) else "connection"


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
    settings: Settings, *, max_size: int | None = None, metrics: "Metrics | None" = None
) -> AsyncIterator[Database]:
    """A Database for the duration of the block; the pool is closed on exit."""
    pool = await create_pool(settings, max_size=max_size)
    try:
        db = Database(pool, settings, metrics)
        if metrics is not None:
            metrics.watch_pool(db)
        yield db
    finally:
        try:
            await asyncio.wait_for(pool.close(), timeout=settings.db_command_timeout)
        except TimeoutError:
            pool.terminate()
