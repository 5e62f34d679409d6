"""Recently authenticated API keys, so that a request needs no query of its own to know its
tenant, and so that the failed-authentication limit never holds back a key that works."""

import asyncio
import hmac
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

T = TypeVar("T")

# How long a key that authenticated is known to this process as one that works: its lookups
# are not guesses, so the failed-authentication limit of its address does not hold them back.
VOUCH_SECONDS = 900.0


class KeyCache:
    """Remembers keys that authenticated: each is served from memory for `seconds` (a revoked
    key keeps working in a process for at most that long), and vouched for, against the
    failed-authentication limit, for VOUCH_SECONDS. Holds the key's hash, never the key; never
    remembers a failure, so a new key works at once. Past `max_entries`, the keys that
    authenticated longest ago are forgotten first."""

    def __init__(self, seconds: float, max_entries: int = 10_000) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, bytes, UUID]] = {}  # id -> (verified, hash, tenant)
        self._lookups: dict[str, asyncio.Future] = {}

    def get(self, key_id: str) -> tuple[bytes, UUID] | None:
        """The stored hash and tenant of a key id, if it authenticated within `seconds`."""
        entry = self._entries.get(key_id)
        if entry is None or time.monotonic() >= entry[0] + self.seconds:
            return None
        return entry[1], entry[2]

    def vouches(self, key_id: str, secret_hash: bytes) -> bool:
        """Whether this very key (id and secret) authenticated within VOUCH_SECONDS."""
        entry = self._entries.get(key_id)
        if entry is None:
            return False
        if time.monotonic() >= entry[0] + max(VOUCH_SECONDS, self.seconds):
            del self._entries[key_id]
            return False
        return hmac.compare_digest(entry[1], secret_hash)

    def put(self, key_id: str, secret_hash: bytes, tenant_id: UUID) -> None:
        self._entries.pop(key_id, None)  # re-inserted last: the dict is oldest first
        if len(self._entries) >= self.max_entries:
            for oldest in list(itertools.islice(self._entries, self.max_entries // 10 or 1)):
                del self._entries[oldest]
        self._entries[key_id] = (time.monotonic(), secret_hash, tenant_id)

    def forget(self, key_id: str, secret_hash: bytes) -> None:
        """Drops this very key (id and secret) once it fails to authenticate: revoked since.
        A guess at its secret leaves it be."""
        entry = self._entries.get(key_id)
        if entry is not None and hmac.compare_digest(entry[1], secret_hash):
            del self._entries[key_id]

    def looking_up(self, name: str) -> bool:
        """Whether the lookup `name` is under way (a new request would join it)."""
        return name in self._lookups

    async def lookup_once(self, name: str, fetch: Callable[[], Awaitable[T]]) -> T:
        """`fetch()`'s result, shared by every request that asks for the lookup `name` while
        it runs: a client's burst on a key not yet remembered costs one query, not one each."""
        lookup = self._lookups.get(name)
        if lookup is None:
            lookup = self._lookups[name] = asyncio.ensure_future(fetch())
            lookup.add_done_callback(lambda done: self._finished(name, done))
        return await asyncio.shield(lookup)

    def _finished(self, name: str, lookup: asyncio.Future) -> None:
        self._lookups.pop(name, None)
        if not lookup.cancelled():
            lookup.exception()  # retrieved here too, in case every waiter has gone
