"""Prometheus metrics: one registry per process, served on a port of its own; what every
process exports (the database pool and its statements). The API's HTTP series are in
service/web/metrics.py, the worker's in service/worker/metrics.py.

Labels come only from small fixed sets (route template, method, status, query name, job kind,
outcome): never a namespace id, key, tenant or token, so the number of series does not grow
with the data.
"""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import aiohttp
import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

PREFIX = "kvs"
GROUP_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """What every process exports (the database pool and queries), in a registry of its own."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self._queries: dict[str, Histogram] = {}
        self.db_query_duration = Histogram(
            f"{PREFIX}_db_query_duration_seconds",
            "Time for one named database query.",
            ["query"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._groups: dict[str, Histogram] = {}
        self.db_statement_requests = Histogram(
            f"{PREFIX}_db_statement_requests",
            "Requests answered by one statement of a coalescing group (reads, writes): "
            "1 for a request that ran alone.",
            ["group"],
            buckets=GROUP_BUCKETS,
            registry=r,
        )
        self.db_errors = Counter(
            f"{PREFIX}_db_errors_total",
            "Database errors, by SQLSTATE class.",
            ["sqlstate_class"],
            registry=r,
        )

        # Every process that opens secrets (the API's reads, the worker's rotations) counts.
        self.secret_decryption_failures = Counter(
            f"{PREFIX}_secret_decryption_failures_total",
            "Sealed secrets that failed to open: integrity (altered, or moved from another "
            "row) or missing_key (the master key that wraps it is not configured).",
            ["reason"],
            registry=r,
        )
        for reason in ("integrity", "missing_key"):
            self.secret_decryption_failures.labels(reason)

    def observe_query(self, name: str, seconds: float) -> None:
        """Times one statement, by its name in service/db/sql (a fixed set)."""
        series = self._queries.get(name)
        if series is None:
            series = self._queries[name] = self.db_query_duration.labels(name)
        series.observe(seconds)

    def observe_group(self, name: str, items: int) -> None:
        """Counts one statement of a coalescing group (service/db/coalesce.py) and its items."""
        series = self._groups.get(name)
        if series is None:
            series = self._groups[name] = self.db_statement_requests.labels(name)
        series.observe(items)

    def count_db_error(self, sqlstate_class: str) -> None:
        self.db_errors.labels(sqlstate_class).inc()

    def watch_pool(self, pool: asyncpg.Pool) -> None:
        """Exports the pool's size and connections in use, read at scrape time."""
        self.registry.register(_PoolCollector(pool))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _PoolCollector(Collector):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def collect(self):
        pool = self._pool
        family = GaugeMetricFamily(
            f"{PREFIX}_db_pool_connections", "Database pool connections.", labels=["state"]
        )
        family.add_metric(["open"], pool.get_size())
        family.add_metric(["in_use"], pool.get_size() - pool.get_idle_size())
        family.add_metric(["max"], pool.get_max_size())
        yield family


def merge_expositions(texts: Iterable[str]) -> bytes:
    """One exposition from several processes' own: each series' values summed.

    Every metric here sums meaningfully across the processes of one server: counters,
    histograms, requests in flight and pool connections. `_created` series do not, and are
    dropped.
    """
    families: dict[str, Metric] = {}
    values: dict[tuple, float] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            for sample in family.samples:
                if not sample.name.endswith("_created"):
                    key = (family.name, sample.name, tuple(sample.labels.items()))
                    values[key] = values.get(key, 0.0) + sample.value
    for (family_name, name, labels), value in values.items():
        families[family_name].add_sample(name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))
    return generate_latest(registry)


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self):
        return self._families


_EXPOSITION_HEADERS = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


@asynccontextmanager
async def serve_metrics(metrics: Metrics, host: str, port: int) -> AsyncIterator[int]:
    """Serves GET /metrics on `host:port` for the duration of the block; yields the port."""

    async def exposition(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers=_EXPOSITION_HEADERS)

    async with _metrics_server(exposition, lambda runner: web.TCPSite(runner, host, port)) as bound:
        yield bound


@asynccontextmanager
async def serve_merged_metrics(ports: list[int], listener: socket.socket) -> AsyncIterator[int]:
    """Serves GET /metrics on `listener`: the sum of what the processes serving their own
    metrics on these loopback ports export."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))

    async def fetch(child: int) -> str:
        async with session.get(f"http://127.0.0.1:{child}/metrics") as resp:
            resp.raise_for_status()
            return await resp.text()

    async def exposition(request: web.Request) -> web.Response:
        texts = await asyncio.gather(*(fetch(child) for child in ports))
        return web.Response(body=merge_expositions(texts), headers=_EXPOSITION_HEADERS)

    try:
        async with _metrics_server(
            exposition, lambda runner: web.SockSite(runner, listener)
        ) as bound:
            yield bound
    finally:
        await session.close()


@asynccontextmanager
async def _metrics_server(handler, site) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await site(runner).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
