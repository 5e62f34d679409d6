"""Prometheus metrics: one registry per process, served on a port of its own.

Labels come only from small fixed sets (route template, method, status, query name, job kind,
outcome): never a namespace id, key, tenant or token, so the number of series does not grow
with the data.
"""

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from service.db import Database, queries

PREFIX = "kvs"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_PROVISION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)

NAMESPACE_STATUSES = ("pending", "provision_ok", "provision_failed", "deleting", "delete_failed")
JOB_KINDS = ("provision", "delete")
JOB_STATES = ("due", "leased", "waiting")


class Metrics:
    """What every process exports (the database pool and queries), in a registry of its own."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self._queries: dict[str, Histogram] = {}
        self.db_query_duration = Histogram(
            f"{PREFIX}_db_query_duration_seconds",
            "Time for one named database query.",
            ["query"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.db_errors = Counter(
            f"{PREFIX}_db_errors_total",
            "Database errors, by SQLSTATE class.",
            ["sqlstate_class"],
            registry=r,
        )

    def query_duration(self, sql: str) -> Histogram:
        """The latency series of a named query (by its text; "other" for any other SQL)."""
        series = self._queries.get(sql)
        if series is None:
            name = queries().name_of(sql)
            series = self.db_query_duration.labels(name)
            if name != "other":  # only named queries are a fixed set worth remembering
                self._queries[sql] = series
        return series

    def watch_pool(self, db: Database) -> None:
        """Exports the pool's size and connections in use, read at scrape time."""
        self.registry.register(_PoolCollector(db))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class ApiMetrics(Metrics):
    """What `kvs serve` exports: the database, and the HTTP requests it answers."""

    def __init__(self) -> None:
        super().__init__()
        self._routes: dict[tuple[str, str], RouteSeries] = {}
        r = self.registry
        self.http_requests = Counter(
            f"{PREFIX}_http_requests_total",
            "HTTP requests answered.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.http_in_flight = Gauge(
            f"{PREFIX}_http_requests_in_flight", "HTTP requests being answered.", registry=r
        )
        self.http_request_bytes = Counter(
            f"{PREFIX}_http_request_body_bytes_total",
            "Declared request body bytes received.",
            ["route", "method"],
            registry=r,
        )
        self.http_response_bytes = Counter(
            f"{PREFIX}_http_response_body_bytes_total",
            "Response body bytes sent.",
            ["route", "method"],
            registry=r,
        )

    def route_series(self, route: str, method: str) -> "RouteSeries":
        """The HTTP series of one route template and method; methods outside HTTP's standard
        set count as "other", so no client can add series."""
        if method not in HTTP_METHODS:
            method = "other"
        series = self._routes.get((route, method))
        if series is None:
            series = self._routes[route, method] = RouteSeries(self, route, method)
        return series


# HTTP's standard methods; any other a client sends is counted as "other".
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


class RouteSeries:
    """The series of one (route, method), looked up once: prometheus-client's `labels()`
    validates and locks on every call, a cost each request would otherwise pay four times."""

    __slots__ = (
        "_by_status",
        "_metrics",
        "duration",
        "method",
        "request_bytes",
        "response_bytes",
        "route",
    )

    def __init__(self, metrics: ApiMetrics, route: str, method: str) -> None:
        self.route, self.method, self._metrics = route, method, metrics
        self.duration = metrics.http_duration.labels(route, method)
        self.request_bytes = metrics.http_request_bytes.labels(route, method)
        self.response_bytes = metrics.http_response_bytes.labels(route, method)
        self._by_status: dict[int, Counter] = {}

    def observe(self, status: int, seconds: float, request_bytes: int, response_bytes: int) -> None:
        """Records one answered request."""
        requests = self._by_status.get(status)
        if requests is None:
            requests = self._by_status[status] = self._metrics.http_requests.labels(
                self.route, self.method, str(status)
            )
        requests.inc()
        self.duration.observe(seconds)
        self.request_bytes.inc(request_bytes)
        self.response_bytes.inc(response_bytes)


class WorkerMetrics(Metrics):
    """What `kvs worker` exports: the database, its jobs, and the service-wide gauges."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.jobs_claimed = Counter(
            f"{PREFIX}_worker_jobs_claimed_total",
            "Jobs this worker took from the queue, by kind.",
            ["kind"],
            registry=r,
        )
        self.jobs = Counter(
            f"{PREFIX}_worker_jobs_total",
            "Worker jobs run, by kind (provision, delete, sweep) and outcome.",
            ["kind", "outcome"],
            registry=r,
        )
        self.expired_keys = Counter(
            f"{PREFIX}_worker_expired_keys_total",
            "Expired keys removed by the sweeper.",
            registry=r,
        )
        self.last_loop = Gauge(
            f"{PREFIX}_worker_last_loop_timestamp_seconds",
            "When the worker last completed a loop without error (Unix time).",
            registry=r,
        )

        self.provision_duration = Histogram(
            f"{PREFIX}_worker_provision_duration_seconds",
            "Time from a namespace's creation (pending) to provision_ok.",
            buckets=_PROVISION_BUCKETS,
            registry=r,
        )
        # Service-wide figures the worker refreshes every stats_interval seconds. Every worker
        # replica exports the same values: aggregate them with max(), not sum().
        self.stats_refreshed = Gauge(
            f"{PREFIX}_stats_refreshed_timestamp_seconds",
            "When the service-wide gauges were last read from the database (Unix time).",
            registry=r,
        )
        self.namespaces = Gauge(
            f"{PREFIX}_namespaces", "Namespaces, by status.", ["status"], registry=r
        )
        self.queue_jobs = Gauge(
            f"{PREFIX}_worker_queue_jobs",
            "Jobs in the queue, by kind and state (due, leased, waiting to retry).",
            ["kind", "state"],
            registry=r,
        )
        self.queue_oldest = Gauge(
            f"{PREFIX}_worker_queue_oldest_job_age_seconds",
            "Age of the oldest queued job of each kind; 0 when there is none.",
            ["kind"],
            registry=r,
        )
        self.stored_keys = Gauge(
            f"{PREFIX}_stored_keys", "Live keys stored (PostgreSQL's running count).", registry=r
        )
        self.stored_bytes = Gauge(
            f"{PREFIX}_stored_bytes",
            "On-disk size of stored keys and values, with TOAST and indexes.",
            registry=r,
        )
        for status in NAMESPACE_STATUSES:
            self.namespaces.labels(status)
        for kind in JOB_KINDS:
            self.queue_oldest.labels(kind)
            for state in JOB_STATES:
                self.queue_jobs.labels(kind, state)


class _PoolCollector(Collector):
    def __init__(self, db: Database) -> None:
        self._db = db

    def collect(self):
        pool = self._db.pool
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

    async with _metrics_server(exposition, host, port) as bound:
        yield bound


@asynccontextmanager
async def serve_merged_metrics(ports: list[int], host: str, port: int) -> AsyncIterator[int]:
    """Serves GET /metrics on `host:port`: the sum of what the processes serving their own
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
        async with _metrics_server(exposition, host, port) as bound:
            yield bound
    finally:
        await session.close()


@asynccontextmanager
async def _metrics_server(handler, host: str, port: int) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
