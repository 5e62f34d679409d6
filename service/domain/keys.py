"""Keys and their values inside a namespace. Every operation is one SQL statement that also
checks the namespace, so each costs one database round trip; reads and writes of concurrent
requests share theirs (service/domain/keygroups.py)."""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from service.db.pool import Database
from service.db.queries import queries
from service.domain import keygroups
from service.domain.errors import (
    InvalidInput,
    InvalidKey,
    KeyNotFound,
    NamespaceNotFound,
    NamespaceNotReady,
    PreconditionFailed,
    ReadTooLarge,
    TtlNotSupported,
    ValueTooLarge,
)
from service.domain.keygroups import BatchRead, Read, Write
from service.domain.namespaces import MAX_VALUE_SIZE_LIMIT

# A namespace without max_value_size takes values up to this, the Telnyx contract's limit.
DEFAULT_VALUE_LIMIT = 1024 * 1024
MAX_TTL_SECONDS = 9_223_372_036
MAX_LIST_LIMIT = 1000
DEFAULT_CONTENT_TYPE = "application/octet-stream"

_KEY = re.compile(r"[A-Za-z0-9\-_/=.]{1,256}")
_KEY_CHARS = re.compile(r"[A-Za-z0-9\-_/=.]{0,256}")
# Greater than every key: keys are made of characters below 0x7f.
_ABOVE_ALL_KEYS = "\x7f"

# "Any live version" as a write's condition.
AnyVersion = Literal["*"]


def validate_key(name: str) -> str:
    """The key name if the contract allows it; InvalidKey otherwise."""
    if not _KEY.fullmatch(name):
        raise InvalidKey("A key is 1 to 256 characters from a-z A-Z 0-9 - _ / = .")
    if name.startswith("_"):
        raise InvalidKey("Keys starting with '_' are reserved.")
    return name


@dataclass(frozen=True)
class Written:
    created: bool
    version: int
    expires_at: datetime | None


@dataclass(frozen=True)
class Entry:
    version: int
    content_type: str
    size_bytes: int
    expires_at: datetime | None
    value: bytes | None  # None when the caller already holds this version, or for HEAD


def effective_value_limit(max_value_size: int | None, value_ceiling: int) -> int:
    """The largest value a namespace takes: its max_value_size (else the default), never
    above the server's ceiling."""
    return min(DEFAULT_VALUE_LIMIT if max_value_size is None else max_value_size, value_ceiling)


async def value_limit(
    db: Database, tenant_id: UUID, namespace_id: UUID, value_ceiling: int, *, ttl: bool = False
) -> int:
    """The largest value the namespace takes now. Raises as a write would when there is no
    such namespace for this tenant, it is not ready, or `ttl` is asked of one without TTL
    support, so that a request can be refused before its value is read."""
    row = await db.fetchrow(queries().namespace_value_limit, namespace_id, tenant_id)
    check_ready(row, ttl=ttl)
    return effective_value_limit(row["max_value_size"], value_ceiling)


def check_ready(row: asyncpg.Record | None, *, ttl: bool = False) -> None:
    """Raises unless the row is of a namespace that exists for this tenant and takes key
    operations (with a TTL, when `ttl`)."""
    if row is None:
        raise NamespaceNotFound()
    if row["status"] != "provision_ok":
        raise NamespaceNotReady(row["status"])
    if ttl and not row["ttl_support"]:
        raise TtlNotSupported()


async def put_value(
    db: Database,
    tenant_id: UUID,
    namespace_id: UUID,
    key: str,
    value: bytes,
    content_type: str,
    *,
    ttl_seconds: int | None = None,
    if_match: list[int] | AnyVersion | None = None,
    if_absent: bool = False,
    value_ceiling: int = MAX_VALUE_SIZE_LIMIT,
) -> Written:
    """Stores the value; `created` tells a new key (or one that had expired) from a replaced one.

    `if_absent` writes only if no live value exists; `if_match` only over one of those
    versions (or over any live value for "*"). Either failing raises PreconditionFailed. A
    value over the namespace's limit (effective_value_limit) raises ValueTooLarge; growth past
    its max_bytes, StorageLimitReached. Nothing is stored when any of them is raised.
    """
    kind, versions = (
        ("p", None) if if_match is None else ("m", None if if_match == "*" else if_match)
    )
    write = Write(
        kind,
        namespace_id,
        tenant_id,
        key,
        value=value,
        content_type=content_type,
        ttl_seconds=ttl_seconds,
        if_absent=if_absent,
        versions=versions,
        limits=(DEFAULT_VALUE_LIMIT, value_ceiling),
    )
    try:
        row = await db.grouped(keygroups.WRITES, write)
    except asyncpg.ForeignKeyViolationError as err:
        # The namespace was removed between this statement's snapshot and its insert.
        raise NamespaceNotFound() from err
    check_ready(row, ttl=ttl_seconds is not None)
    if len(value) > row["value_limit"]:
        raise ValueTooLarge(row["value_limit"])
    if row["version"] is None:
        raise PreconditionFailed(
            "The key exists." if if_absent else "The key's current version does not match.",
            field="if_absent" if if_absent else "if_match",
        )
    return Written(row["created"], row["version"], row["expires_at"])


async def get_value(
    db: Database,
    tenant_id: UUID,
    namespace_id: UUID,
    key: str,
    *,
    with_value: bool = True,
    known_versions: list[int] | None = None,
) -> Entry:
    """The live value and its metadata; KeyNotFound if absent or expired.

    The value is left out when `with_value` is false or its version is in `known_versions`.
    """
    read = Read(namespace_id, tenant_id, key, with_value, known_versions or [])
    row = await db.grouped(keygroups.READS, read)
    check_ready(row)
    if row["version"] is None:
        raise KeyNotFound()
    value = row["value"] if with_value else None
    return Entry(row["version"], row["content_type"], row["size_bytes"], row["expires_at"], value)


MAX_BATCH_KEYS = 1000


@dataclass(frozen=True, slots=True)
class FoundEntry:
    """A key found by a batch read; `value` is None when only metadata was asked for."""

    key: str
    version: int
    content_type: str
    size_bytes: int
    updated_at: datetime
    expires_at: datetime | None
    value: bytes | None


async def get_values(
    db: Database,
    tenant_id: UUID,
    namespace_id: UUID,
    keys: list[str],
    *,
    with_values: bool,
    byte_budget: int,
) -> list[FoundEntry | None]:
    """The live entries of `keys` in their order, None for a missing or expired one, all
    from one snapshot (one statement). ReadTooLarge, and nothing read, when `with_values` and
    the values found total more than `byte_budget`."""
    batch = BatchRead(namespace_id, tenant_id, keys, with_values, byte_budget)
    rows = await db.grouped(keygroups.BATCH_READS, batch)
    check_ready(rows[0] if rows else None)
    found = rows[0]["found_bytes"] if rows else None
    if with_values and found is not None and found > byte_budget:
        raise ReadTooLarge(found, byte_budget)
    return [
        None
        if r["version"] is None
        else FoundEntry(
            keys[r["i"] - 1],
            r["version"],
            r["content_type"],
            r["size_bytes"],
            r["updated_at"],
            r["expires_at"],
            r["value"],
        )
        for r in rows
        if r["i"] is not None
    ]


async def delete_value(
    db: Database,
    tenant_id: UUID,
    namespace_id: UUID,
    key: str,
    *,
    if_match: list[int] | AnyVersion | None = None,
) -> None:
    """Deletes the key; deleting an absent key succeeds unless `if_match` is given."""
    versions = None if if_match in (None, "*") else if_match
    kind = "d" if if_match is None else "c"
    row = await db.grouped(
        keygroups.WRITES, Write(kind, namespace_id, tenant_id, key, versions=versions)
    )
    check_ready(row)
    if if_match is not None and row["deleted"] == 0:
        raise PreconditionFailed("The key's current version does not match.", field="if_match")


@dataclass(frozen=True)
class ListQuery:
    """Which keys a listing wants: those from `start` (inclusive) to `end` (exclusive) that
    begin with `prefix`, after the key `after` (a previous page's last), in byte order or
    reversed."""

    prefix: str = ""
    start: str | None = None
    end: str | None = None
    after: str | None = None
    limit: int = MAX_LIST_LIMIT
    reverse: bool = False
    with_values: bool = False
    with_total: bool = False


# A listing with values takes keys while the values before them total less than this, so that a
# page of 1,000 keys of 16 MiB does not hold 16 GB.
LISTING_VALUE_BYTES = 8 * 1024 * 1024


def validate_key_fragment(value: str, field: str) -> str:
    """A prefix or range bound: key characters, at most 256."""
    if not _KEY_CHARS.fullmatch(value):
        raise InvalidInput(
            f"'{field}' may hold only key characters (a-z A-Z 0-9 - _ / = .), at most 256.",
            field=field,
        )
    return value


def is_key(name: str) -> bool:
    """Whether `name` is made of key characters, 1 to 256 of them."""
    return _KEY.fullmatch(name) is not None


def _prefix_end(prefix: str) -> str:
    """The smallest string above every string that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else _ABOVE_ALL_KEYS


@dataclass(slots=True)
class KeyInfo:
    """A listed key: what a listing tells of it without its value."""

    key: str
    size_bytes: int
    updated_at: datetime
    content_type: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeyPage:
    """One page of a listing; `has_more` when keys beyond its last remain. With values
    asked for, `values` holds each item's (version, value); with the total, `total` counts
    the keys within the query's bounds after its cursor, this page's included."""

    items: list[KeyInfo]
    has_more: bool
    values: list[tuple[int, bytes]] | None = None
    total: int | None = None

    @property
    def last_key(self) -> str | None:
        return self.items[-1].key if self.items else None


async def list_values(
    db: Database, tenant_id: UUID, namespace_id: UUID, query: ListQuery
) -> KeyPage:
    """One page of live keys in byte order (or reversed), in one statement. A page with
    values stops early (`has_more`) once they reach LISTING_VALUE_BYTES."""
    low = max(query.prefix, query.start or "")
    high = min(_prefix_end(query.prefix), query.end or _ABOVE_ALL_KEYS)
    limit = min(query.limit, MAX_LIST_LIMIT)
    q = queries()
    if query.with_values:
        sql = q.list_entries_with_values_reverse if query.reverse else q.list_entries_with_values
        extra: tuple = (query.with_total, LISTING_VALUE_BYTES)
    else:
        sql = q.list_entries_reverse if query.reverse else q.list_entries
        extra = (query.with_total,)
    bound = query.after or (_ABOVE_ALL_KEYS if query.reverse else "")
    rows = await db.fetch(sql, namespace_id, tenant_id, low, bound, high, limit + 1, *extra)
    check_ready(rows[0] if rows else None)
    total = rows[0]["total"]
    rows = [r for r in rows if r["key"] is not None]
    more = len(rows) > limit
    if query.with_values:
        fitting = [r for r in rows[:limit] if r["fits"]]
        more = more or len(fitting) < len(rows)
        rows = fitting
    else:
        del rows[limit:]
    items = [
        KeyInfo(r["key"], r["size_bytes"], r["updated_at"], r["content_type"], r["expires_at"])
        for r in rows
    ]
    values = [(r["version"], r["value"]) for r in rows] if query.with_values else None
    return KeyPage(items, more, values, total)


@dataclass(frozen=True, slots=True)
class KeyPattern:
    """Keys matching a wildcard pattern: `*` stands for any run of characters (none
    included), `?` for one. `prefix` is the part before the first wildcard, which bounds the
    key range read; `like` is the same pattern for SQL's LIKE."""

    text: str
    prefix: str
    like: str


def parse_key_pattern(text: str, field: str = "search") -> KeyPattern:
    """A pattern of key characters and wildcards, at most 256 characters; InvalidInput
    otherwise. A pattern without wildcards matches that one key."""
    literal = text.replace("*", "").replace("?", "")
    if not 1 <= len(text) <= 256 or not _KEY_CHARS.fullmatch(literal):
        raise InvalidInput(
            f"'{field}' must be 1 to 256 key characters (a-z A-Z 0-9 - _ / = .) and the "
            "wildcards * (any characters) and ? (one character).",
            field=field,
        )
    cut = min((i for i in (text.find("*"), text.find("?")) if i >= 0), default=len(text))
    # `_` is a key character and LIKE's one-character wildcard: escaped (`\\` is never in a key).
    like = "".join("%" if c == "*" else "_" if c == "?" else "\\_" if c == "_" else c for c in text)
    return KeyPattern(text, text[:cut], like)


@dataclass(frozen=True, slots=True)
class StoredValue:
    key: str
    content_type: str
    value: bytes


@dataclass(frozen=True, slots=True)
class ValuePage:
    """Values of matching keys, in key order; `truncated` when more matched within the
    limit but their values would have taken the page past its byte budget."""

    items: list[StoredValue]
    truncated: bool


async def list_values_matching(
    db: Database,
    tenant_id: UUID,
    namespace_id: UUID,
    pattern: KeyPattern | None,
    limit: int,
    byte_budget: int,
) -> ValuePage:
    """Up to `limit` live keys matching `pattern` (every key when None) with their values, in
    key order, in one statement. A page takes keys while the values before them total less
    than `byte_budget` bytes: so it holds at most that plus its last value."""
    low, like = ("", "%") if pattern is None else (pattern.prefix, pattern.like)
    rows = await db.fetch(
        queries().list_entry_values,
        namespace_id,
        tenant_id,
        low,
        _prefix_end(low),
        like,
        min(limit, MAX_LIST_LIMIT),
        byte_budget,
    )
    check_ready(rows[0] if rows else None)
    items = [
        StoredValue(r["key"], r["content_type"], r["value"])
        for r in rows
        if r["key"] is not None and r["fits"]
    ]
    truncated = any(r["key"] is not None and not r["fits"] for r in rows)
    return ValuePage(items, truncated)


async def purge_values(db: Database, tenant_id: UUID, namespace_id: UUID, batch: int) -> int:
    """Deletes every key the namespace holds when the purge begins, in batches of `batch`
    keys, each its own short transaction (so that no lock is held for long); keys written
    while it runs may stay. Returns how many keys went."""
    q = queries()
    watermark = await db.fetchval(q.purge_watermark)
    removed = 0
    while True:
        row = await db.fetchrow(q.purge_entries, namespace_id, tenant_id, watermark, batch)
        check_ready(row)
        removed += row["deleted"]
        # Not `deleted`: a picked key that another request rewrote or removed meanwhile is
        # not deleted here, and more may be left.
        if row["picked"] < batch:
            return removed
