"""A limit on failed authentications per client address, so API keys cannot be guessed fast.

Each address has a bucket of `limit` attempts that refills at `limit` per minute; each failed
authentication takes one. While an address's bucket is empty, its requests are answered 429
before any key is checked, so a guesser learns nothing more, unless the key authenticated in
this process within VOUCH_SECONDS (service/web/keycache.py). Requests with valid keys never
take from the bucket. The limit is per serving process: with N processes an address may fail
up to N times the limit in a minute.
"""

import math
import time

from aiohttp import web

# Buckets kept at most; past it, full ones (addresses that stopped failing) are dropped.
MAX_TRACKED = 100_000


class FailureLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when)
        self._running: dict[str, int] = {}  # address -> attempts under way

    def _tokens(self, address: str, now: float) -> float:
        tokens, when = self._buckets.get(address, (self.per_minute, now))
        return min(self.per_minute, tokens + (now - when) * self._rate)

    def retry_after(self, address: str) -> int | None:
        """Seconds until the address may try again, or None if it may now."""
        if not self.per_minute or (address not in self._buckets and address not in self._running):
            return None
        left = self._tokens(address, time.monotonic()) - self._running.get(address, 0)
        return None if left >= 1 else max(1, math.ceil((1 - left) / self._rate))

    def begin(self, address: str) -> int | None:
        """Holds one of the address's attempts while its outcome is unknown; as retry_after,
        and when that is None the attempt is held until end()."""
        retry_after = self.retry_after(address)
        if retry_after is None and self.per_minute:
            self._running[address] = self._running.get(address, 0) + 1
        return retry_after

    def end(self, address: str) -> None:
        """Releases an attempt held by begin() (a failure is recorded by failed())."""
        if address in self._running:
            self._running[address] -= 1
            if not self._running[address]:
                del self._running[address]

    def failed(self, address: str) -> None:
        """Takes one attempt from the address's bucket."""
        if not self.per_minute:
            return
        now = time.monotonic()
        if len(self._buckets) >= MAX_TRACKED:
            self._prune(now)
        self._buckets[address] = (self._tokens(address, now) - 1, now)

    def _prune(self, now: float) -> None:
        full = [a for a in self._buckets if self._tokens(a, now) >= self.per_minute]
        for address in full or list(self._buckets)[: MAX_TRACKED // 10]:
            del self._buckets[address]


def client_address(request: web.BaseRequest, trusted_proxies: int) -> str:
    """The client's address: the peer's, or with `trusted_proxies` proxies in front, the
    X-Forwarded-For entry the outermost of them appended (entries further left are whatever
    the client chose to send)."""
    if trusted_proxies:
        forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies]
    return request.remote or "unknown"
