"""Per-process bounds on request bodies: the memory they may hold at once, and the value
limits of recently written namespaces (used by service/web/bodies.py)."""

import asyncio
import collections
import ctypes
import ctypes.util
from collections.abc import Awaitable, Callable, Hashable
from uuid import UUID

from service.web.errors import BodyMemoryExhausted
from service.web.recent import Recent

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
    """The value limits of recently written namespaces, per process; past `max_entries`, the
    ones read longest ago are forgotten first."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._limits: Recent[int] = Recent(_LIMIT_SECONDS, max_entries)

    async def of(
        self,
        tenant_id: UUID,
        namespace_id: UUID,
        declared: int | None,
        read: Callable[[], Awaitable[int]],
    ) -> int:
        """The namespace's value limit for a body of `declared` length: from memory when that
        allows it, else `read()` (always, for a body of unknown length)."""
        remembered = self._limits.get((tenant_id, namespace_id))
        if remembered is not None and declared is not None and declared <= remembered:
            return remembered
        limit = await read()
        self._limits.put((tenant_id, namespace_id), limit)
        return limit


class BodyBudget:
    """The bytes of request bodies a process may hold at once. A request reserves its body's
    size before reading it and gives it back when answered. Each owner (a tenant) may hold at
    most a quarter of the budget, so that one tenant's slow uploads cannot hold everyone's
    (a body larger than that is read when its owner holds nothing, one larger than the whole
    budget when nothing is held at all).

    A request that cannot have its bytes now waits, for up to `wait` seconds, then is refused
    with BodyMemoryExhausted (503). The budget goes to waiters in the order they came; one
    that waits only for its own owner's bodies to finish lets the others pass.
    """

    def __init__(self, capacity: int, wait: float) -> None:
        self.capacity = capacity
        self.share = max(capacity // 4, 1)
        self.wait = wait
        self.held = 0
        self._held_by: dict[Hashable, int] = {}
        self._waiters: collections.deque[tuple[int, Hashable, asyncio.Future]] = collections.deque()

    def held_by(self, owner: Hashable) -> int:
        return self._held_by.get(owner, 0)

    def _fits_budget(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self.capacity

    def _fits_share(self, size: int, owner: Hashable) -> bool:
        own = self._held_by.get(owner, 0)
        return own == 0 or own + size <= self.share

    def _take(self, size: int, owner: Hashable) -> None:
        self.held += size
        self._held_by[owner] = self._held_by.get(owner, 0) + size

    def _give(self, size: int, owner: Hashable) -> None:
        self.held -= size
        left = self._held_by.get(owner, 0) - size
        if left > 0:
            self._held_by[owner] = left
        else:  # an empty body's 0 bytes may be given back after the owner's last others
            self._held_by.pop(owner, None)

    async def acquire(self, size: int, owner: Hashable = None) -> None:
        """Takes `size` bytes of the budget on `owner`'s share, waiting as above; every
        acquire is to be followed by one release of the same."""
        if not self._waiters and self._fits_budget(size) and self._fits_share(size, owner):
            self._take(size, owner)
        else:
            await self._wait_for(size, owner)

    def release(self, size: int, owner: Hashable = None) -> None:
        self._give(size, owner)
        if self._waiters:
            self._wake()

    def reserve(self, size: int, owner: Hashable = None) -> "_Reservation":
        """`size` bytes of the budget for the duration of an `async with` block."""
        return _Reservation(self, size, owner)

    async def _wait_for(self, size: int, owner: Hashable) -> None:
        waiter = (size, owner, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        self._wake()
        granted = waiter[2]
        if granted.done():
            return
        try:
            async with asyncio.timeout(self.wait):
                await granted
        except BaseException as err:
            if granted.done() and not granted.cancelled():
                self._give(size, owner)  # granted as the wait ended: given back
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            self._wake()
            if isinstance(err, TimeoutError):
                raise BodyMemoryExhausted(
                    "The server holds as many request bodies as it may; retry shortly."
                ) from err
            raise

    def _wake(self) -> None:
        """Hands the budget to the waiters that now may have it, in the order they came."""
        for waiter in list(self._waiters):
            size, owner, future = waiter
            if future.done():  # cancelled: its task removes it
                continue
            if not self._fits_budget(size):
                break
            if self._fits_share(size, owner):
                self._waiters.remove(waiter)
                self._take(size, owner)
                future.set_result(None)


class _Reservation:
    # A class, not a generator-based context manager: it is on every PUT's path.
    __slots__ = ("budget", "owner", "size")

    def __init__(self, budget: BodyBudget, size: int, owner: Hashable) -> None:
        self.budget, self.size, self.owner = budget, size, owner

    async def __aenter__(self) -> None:
        await self.budget.acquire(self.size, self.owner)

    async def __aexit__(self, *exc: object) -> None:
        self.budget.release(self.size, self.owner)
