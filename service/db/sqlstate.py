"""What a driver or network failure means for the caller, decided by exception type and
SQLSTATE, never by message text (asyncpg's own source says messages are localizable)."""

import asyncpg

from service.domain.errors import (
    DomainError,
    StorageLimitReached,
    StoreFull,
    StoreTimeout,
    StoreUnavailable,
)

# SQLSTATEs meaning "the database is not there right now" rather than "this request is wrong":
# connection exceptions, shutdowns, and insufficient resources (too many connections, out of
# memory); of those, a full disk has an answer of its own.
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53")
_DISK_FULL_STATE = "53100"
_CANCELED_STATE = "57014"
# Raised by the usage triggers (migrations/0004) and by a transaction's failed check
# (migrations/0006): refusals, not failures of the database.
_STORAGE_LIMIT_STATE = "KV001"
CHECK_FAILED_STATE = "KV002"

# A connection whose session is gone: the statement may have run (for writes, the outcome is
# unknown) but a read can safely be sent again on another connection.
LOST_SESSION = (
    asyncpg.PostgresConnectionError,  # 08xxx
    asyncpg.AdminShutdownError,  # 57P01: the session was terminated
    ConnectionError,
)


def classify(err: BaseException) -> DomainError | None:
    """The store error a driver or network failure stands for, or None for a genuine bug."""
    if isinstance(err, asyncpg.PostgresError):
        state = err.sqlstate or ""
        if state == _STORAGE_LIMIT_STATE:
            usage, needed, limit = (int(n) for n in (err.detail or "0 0 0").split())
            return StorageLimitReached(usage, needed, limit)
        if state == _DISK_FULL_STATE:
            return StoreFull("The database is out of disk space; the write was not made.")
        if state.startswith(_UNAVAILABLE_STATES):
            return StoreUnavailable("The database is unavailable; retry shortly.")
        if state == _CANCELED_STATE:
            return StoreTimeout("The database did not answer in time.")
        return None
    if isinstance(err, TimeoutError):
        return StoreTimeout("The database did not answer in time.")
    if isinstance(err, OSError):
        return StoreUnavailable("The database is unavailable; retry shortly.")
    return None


def is_refusal(err: BaseException) -> bool:
    """Whether the database refused the statement for what it asked (not a database error)."""
    return isinstance(err, asyncpg.PostgresError) and err.sqlstate in (
        _STORAGE_LIMIT_STATE,
        CHECK_FAILED_STATE,
    )


def error_class(err: BaseException) -> str:
    """A metric label for a database error: its SQLSTATE class, or what failed on our side."""
    if isinstance(err, asyncpg.PostgresError) and err.sqlstate:
        return err.sqlstate[:2]
    return "timeout" if isinstance(err, TimeoutError) else "connection"
