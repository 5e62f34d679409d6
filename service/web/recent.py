"""What a process remembers of recent database reads, for a few seconds: only where whatever
is remembered is checked again by the statement that relies on it."""

import itertools
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Recent(Generic[V]):
    """Values by key, each for `seconds` after it was put; past `max_entries`, the ones put
    longest ago are forgotten first, a tenth at a time."""

    def __init__(self, seconds: float, max_entries: int = 10_000) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, V]] = {}

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() >= entry[0] + self.seconds:
            return None
        return entry[1]

    def put(self, key: Hashable, value: V) -> None:
        self._entries.pop(key, None)  # re-inserted last: oldest first
        if len(self._entries) >= self.max_entries:
            for oldest in list(itertools.islice(self._entries, self.max_entries // 10 or 1)):
                del self._entries[oldest]
        self._entries[key] = (time.monotonic(), value)

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)
