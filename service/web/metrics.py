"""What `kvs serve` exports besides the database: the HTTP requests it answers."""

from prometheus_client import Counter, Gauge, Histogram

from service.metrics import LATENCY_BUCKETS, PREFIX, Metrics


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
            buckets=LATENCY_BUCKETS,
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

        self.secret_reads = Counter(
            f"{PREFIX}_secret_reads_total", "Secret values revealed (opened).", registry=r
        )
        self.secret_writes = Counter(
            f"{PREFIX}_secret_writes_total", "Secret versions written.", registry=r
        )

    # The secret store's observer (service/domain/secrets.py).
    def secrets_read(self, count: int) -> None:
        self.secret_reads.inc(count)

    def secret_written(self) -> None:
        self.secret_writes.inc()

    def secret_decryption_failed(self, reason: str) -> None:
        self.secret_decryption_failures.labels(reason).inc()

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
