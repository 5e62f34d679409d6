"""What `kvs worker` exports besides the database: its jobs and the service-wide gauges."""

from prometheus_client import Counter, Gauge, Histogram

from service.metrics import PREFIX, Metrics
from service.worker.jobs import JOB_KINDS

NAMESPACE_STATUSES = ("pending", "provision_ok", "provision_failed", "deleting", "delete_failed")
JOB_STATES = ("due", "leased", "waiting")
_PROVISION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


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
        self.secrets_rewrapped = Counter(
            f"{PREFIX}_worker_secret_data_keys_rewrapped_total",
            "Secret data keys re-wrapped under another master key by rotations.",
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
            f"{PREFIX}_stored_keys",
            "Keys stored in all namespaces (their exact usage; expired keys until swept).",
            registry=r,
        )
        self.stored_bytes = Gauge(
            f"{PREFIX}_stored_bytes",
            "Value bytes stored in all namespaces (their exact usage; expired keys until swept).",
            registry=r,
        )
        self.storage_disk_bytes = Gauge(
            f"{PREFIX}_storage_disk_bytes",
            "On-disk size of the key table, with TOAST and indexes.",
            registry=r,
        )
        self.namespaces_near_limit = Gauge(
            f"{PREFIX}_namespaces_near_limit",
            "Namespaces with max_bytes whose usage is above 90 % of it.",
            registry=r,
        )
        self.secret_data_keys = Gauge(
            f"{PREFIX}_secret_data_keys",
            "Secret data keys (one per kept version) wrapped by each master key: an old "
            "master key may be removed once it wraps none.",
            ["master_key_id"],
            registry=r,
        )
        # The ids exported so far, so that a key that comes to wrap nothing shows 0.
        self.master_key_ids: set[str] = set()
        for status in NAMESPACE_STATUSES:
            self.namespaces.labels(status)
        for kind in JOB_KINDS:
            self.queue_oldest.labels(kind)
            for state in JOB_STATES:
                self.queue_jobs.labels(kind, state)
