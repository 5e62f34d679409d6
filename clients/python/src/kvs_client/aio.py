"""The asyncio client: the exchanges of kvs_client._core carried by an httpx.AsyncClient."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from kvs_client import _core
from kvs_client._core import Exchange, KvEntry, KvListResponse
from kvs_client.errors import KvConflict, KvError
from kvs_client.keys import KvKey

T = TypeVar("T")


class AsyncTransaction:
    """What a transaction's callback works with: reads that become checks, writes buffered
    until the callback returns (Redocly's KvTransaction)."""

    def __init__(self, kv: AsyncKv, state: _core.TransactionState) -> None:
        self._kv, self._state = kv, state

    async def get(self, key: KvKey) -> Any:
        """The key's value as this transaction sees it, or None."""
        entry = (await self.get_many([key]))[0]
        return None if entry is None else entry.value

    async def get_many(self, keys: Iterable[KvKey]) -> list[KvEntry[Any] | None]:
        """The keys' entries as this transaction sees them, in their order, None if missing."""
        return await self._kv._run(self._state.get_many(keys))

    async def set(self, key: KvKey, value: Any, ttl_in_seconds: int | None = None) -> KvEntry[Any]:
        """Writes the value when the transaction commits; the entry."""
        return self._state.set(key, value, ttl_in_seconds)

    async def delete(self, key: KvKey) -> None:
        """Deletes the key when the transaction commits."""
        self._state.delete(key)


class AsyncKv:
    """The namespace `namespace` of the service at `base_url`, as Redocly's KV storage.
    An async context manager: leaving it closes its connections."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        namespace: str,
        *,
        timeout: float = 30.0,
        transaction_attempts: int = _core.TRANSACTION_ATTEMPTS,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=_core.namespace_url(base_url, namespace),
            headers=_core.headers(api_key),
            timeout=timeout,
        )
        self._attempts = transaction_attempts

    async def __aenter__(self) -> AsyncKv:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, exchange: Exchange[T]) -> T:
        try:
            request = next(exchange)
            while True:
                answer = await self._http.request(
                    request.method,
                    request.path,
                    params=request.params,
                    content=request.body,
                    headers=request.headers,
                )
                request = exchange.send(
                    _core.HttpResponse(
                        answer.status_code, answer.content, answer.headers.get("content-type")
                    )
                )
        except StopIteration as done:
            return done.value

    async def get(self, key: KvKey) -> Any:
        """The key's value, or None when it is missing or expired."""
        return await self._run(_core.get(key))

    async def set(self, key: KvKey, value: Any, ttl_in_seconds: int | None = None) -> KvEntry[Any]:
        """Stores the value as JSON, expiring after `ttl_in_seconds` when given; the entry.
        TypeError/ValueError for a value JSON cannot carry, KvValueTooLarge over the limit."""
        return await self._run(_core.set_(key, value, ttl_in_seconds))

    async def delete(self, key: KvKey) -> None:
        """Deletes the key (done also when it did not exist)."""
        await self._run(_core.delete(key))

    async def get_many(self, keys: Iterable[KvKey]) -> list[KvEntry[Any] | None]:
        """The keys' entries in their order, None for a missing key."""
        return await self._run(_core.get_many(keys))

    async def list(
        self,
        prefix: KvKey | None = None,
        start: KvKey | None = None,
        end: KvKey | None = None,
        *,
        limit: int = 100,
        reverse: bool = False,
        cursor: str | None = None,
    ) -> KvListResponse[Any]:
        """A page (at most `limit` entries) of the keys with the prefix (the prefix itself
        excluded), from `start` (inclusive) to `end` (exclusive), in key order or `reverse`;
        pass its `cursor` for the next page."""
        return await self._run(_core.list_(prefix, start, end, limit, reverse, cursor))

    async def transaction(self, fn: Callable[[AsyncTransaction], Awaitable[T]]) -> T:
        """fn's result, once its reads were still current and its writes made, atomically.
        On a conflict fn runs again (after a growing, jittered pause), up to
        `transaction_attempts` times, then KvConflict. An exception from fn writes nothing
        and propagates."""
        conflict: KvError | None = None
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(_core.backoff_seconds(attempt - 1))
            state = _core.TransactionState()
            try:
                result = await fn(AsyncTransaction(self, state))
            except BaseException:
                state.abort()
                raise
            conflict = await self._run(state.commit())
            if conflict is None:
                return result
        assert conflict is not None
        raise KvConflict(self._attempts, conflict.code, conflict.detail)
