"""Statements shared by concurrent requests: what requests of one kind submit within one turn
of the event loop goes to the database as one statement (docs/PERFORMANCE.md, "Coalescing").

A request that comes alone waits for nobody: its group is flushed at the end of the loop turn
in which it was submitted (microseconds later) and runs as the request's own statement. When
many are in flight, those that arrive while others' statements run form the next group, which
runs at once on another pooled connection: a group never waits for an earlier one.
"""

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from service.db.pool import Database, _Statements

I = TypeVar("I")  # noqa: E741 - an item, as in the Group protocol
R = TypeVar("R")


class Group(Protocol[I, R]):
    """A kind of statement that concurrent requests may share. Hashable: a Database keeps one
    Coalescer per Group."""

    name: str  # the metric label of its groups
    max_items: int  # the most items one statement takes

    async def run_one(self, db: "_Statements", item: I) -> R:
        """The outcome of one item, by the statement it would have on its own."""

    async def run_many(self, db: "Database", items: Sequence[I]) -> Sequence[R | BaseException]:
        """The outcome of each item (in their order), or the error that is that item's alone.
        An error raised instead fails every item: it is what each would have got alone."""

    def weight(self, item: I) -> int:
        """How much of a group's budget (`max_weight`) the item takes: its bytes, say."""

    max_weight: int


class Observer(Protocol):
    def observe_group(self, name: str, items: int) -> None: ...


class Coalescer(Generic[I, R]):
    """Collects the items of one Group submitted within a loop turn and runs them together."""

    def __init__(self, db: "Database", group: Group[I, R], observer: Observer | None) -> None:
        self._db, self._group, self._observer = db, group, observer
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()

    def submit(self, item: I) -> "asyncio.Future[R]":
        """A future of the item's outcome. Cancelling it (its request went away) leaves the
        group's statement, and so the item, to run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((item, future))
        return future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        group = self._group
        start, weight = 0, 0
        for end, (item, _) in enumerate(pending):
            w = group.weight(item)
            if end > start and (end - start >= group.max_items or weight + w > group.max_weight):
                self._start(pending[start:end])
                start, weight = end, 0
            weight += w
        self._start(pending[start:])

    def _start(self, members: list[tuple[I, "asyncio.Future[R]"]]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(members))
        self._running.add(task)  # the loop holds tasks weakly
        task.add_done_callback(self._running.discard)

    async def _run(self, members: list[tuple[I, "asyncio.Future[R]"]]) -> None:
        group = self._group
        if self._observer is not None:
            self._observer.observe_group(group.name, len(members))
        outcomes: Sequence[Any]
        try:
            if len(members) == 1:
                outcomes = [await group.run_one(self._db, members[0][0])]
            else:
                outcomes = await group.run_many(self._db, [item for item, _ in members])
        except Exception as err:  # every member gets what failed them all
            outcomes = [err] * len(members)
        except BaseException:  # cancelled, at shutdown
            for _, future in members:
                future.cancel()
            raise
        _settle(members, outcomes)


def _settle(members: list[tuple[Any, asyncio.Future]], outcomes: Sequence[Any]) -> None:
    for (_, future), outcome in zip(members, outcomes, strict=True):
        if future.done():  # cancelled: its request went away
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
