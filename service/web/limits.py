"""Per-process bounds on request bodies: the memory they may hold at once, and the value
limits of recently written namespaces (used by service/web/bodies.py)."""

import asyncio
import collections
import ctypes
import ctypes.util
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from uuid import UUID

from service.web.errors import BodyMemoryExhausted

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_large_buffers_to_the_os(threshold: int = 1024 * 1024) -> bool:
    """Makes glibc's malloc give each allocation of `threshold` bytes or more its own mapping,
    unmapped when freed; False where there is no glibc.

    glibc starts so (at 128 KiB) but raises the threshold to the size of each large block
    freed, so after a burst of 16 MiB uploads their buffers come from the heap and stay in the
    process's RSS when freed (374 MiB instead of 194 MiB after 64 x 16 MiB in two processes).
    A fixed threshold turns that adjustment off; values up to 1 MiB keep using the heap.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_MMAP_THRESHOLD, threshold) == 1


# How long a namespace's value limit is remembered. It only decides how early a value is
# refused: the write itself checks the limit in force, and a cached limit that would refuse
# is read again first, so a raised limit holds at once and a lowered one within this long.
_LIMIT_SECONDS = 10.0


class ValueLimits:
    """The value limits of recently written namespaces, per process."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[tuple[UUID, UUID], tuple[float, int]] = {}

    async def of(
        self,
        tenant_id: UUID,
        namespace_id: UUID,
        declared: int | None,
        read: Callable[[], Awaitable[int]],
    ) -> int:
        """The namespace's value limit for a body of `declared` length: from memory when that
        allows it, else `read()` (always, for a body of unknown length)."""
        entry = self._entries.get((tenant_id, namespace_id))
        if entry is not None and declared is not None and declared <= entry[1]:
            if time.monotonic() < entry[0] + _LIMIT_SECONDS:
                return entry[1]
        limit = await read()
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[(tenant_id, namespace_id)] = (time.monotonic(), limit)
        return limit


class BodyBudget:
    """The bytes of request bodies a process may hold at once. A request reserves its body's
    size before reading it and gives it back when answered; one that finds the budget spent
    waits its turn (first come, first served) for up to `wait` seconds, then is refused with
    BodyMemoryExhausted (503). A body larger than the whole budget is read when it is alone."""

    def __init__(self, capacity: int, wait: float) -> None:
        self.capacity = capacity
        self.wait = wait
        self.held = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future]] = collections.deque()

    def _fits(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self.capacity

    @asynccontextmanager
    async def reserve(self, size: int) -> AsyncIterator[None]:
        """Holds `size` bytes of the budget for the duration of the block."""
        if self._waiters or not self._fits(size):
            await self._wait_for(size)
        else:
            self.held += size
        try:
            yield
        finally:
            self.held -= size
            self._wake()

    async def _wait_for(self, size: int) -> None:
        waiter = (size, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.wait):
                await waiter[1]
        except BaseException as err:
            if waiter[1].done() and not waiter[1].cancelled():
                self.held -= size  # granted as the wait ended: given back
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            self._wake()
            if isinstance(err, TimeoutError):
                raise BodyMemoryExhausted(
                    "The server holds as many request bodies as it may; retry shortly."
                ) from err
            raise

    def _wake(self) -> None:
        """Hands the budget to the waiters at the front that now fit, in order."""
        while self._waiters and self._fits(self._waiters[0][0]):
            size, future = self._waiters.popleft()
            if not future.done():
                self.held += size
                future.set_result(None)
