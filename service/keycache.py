"""Recently authenticated API keys, so that a request needs no query of its own to know its
tenant."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

T = TypeVar("T")


class KeyCache:
    """Remembers keys that authenticated, each for `seconds`: a revoked key keeps working in a
    process for at most that long. Holds the key's hash, never the key; never remembers a
    failure, so a new key works at once."""

    def __init__(self, seconds: float, max_entries: int = 10_000) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, bytes, UUID]] = {}
        self._lookups: dict[str, asyncio.Future] = {}

    def get(self, key_id: str) -> tuple[bytes, UUID] | None:
        """The stored hash and tenant of a key id, if remembered and still fresh."""
        entry = self._entries.get(key_id)
        if entry is None:
            return None
        expires, secret_hash, tenant_id = entry
        if time.monotonic() >= expires:
            del self._entries[key_id]
            return None
        return secret_hash, tenant_id

    def put(self, key_id: str, secret_hash: bytes, tenant_id: UUID) -> None:
        if self.seconds <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # rare; simpler than LRU bookkeeping on every request
        self._entries[key_id] = (time.monotonic() + self.seconds, secret_hash, tenant_id)

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
