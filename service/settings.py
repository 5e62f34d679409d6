"""The service's configuration: one typed object, read from the environment and passed in."""

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting, with its default. The README lists them; keep the two in step."""

    model_config = SettingsConfigDict(
        env_prefix="KVS_", extra="ignore", frozen=True, populate_by_name=True
    )

    database_url: SecretStr | None = Field(default=None, validation_alias="DATABASE_URL")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Serving processes sharing the port; 0 means one per CPU.
    processes: int = Field(default=0, ge=0)

    # Metrics are served on their own port, never the public one; 0 picks a free port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)

    db_pool_max: int = Field(default=10, ge=1)
    db_connect_timeout: float = Field(default=5.0, gt=0)
    # Upper bound on one database call; past it the request answers 503 instead of hanging.
    db_command_timeout: float = Field(default=10.0, gt=0)
    # How long a request may wait for a free pool connection before answering 503.
    db_acquire_timeout: float = Field(default=5.0, gt=0)
    retry_after_seconds: int = Field(default=1, ge=1)
    # How long a process remembers an API key that authenticated: the longest a revoked key
    # keeps working. 0 checks every request against the database.
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    # Prepared statements cached per connection. 0 behind PgBouncer in transaction mode, where
    # consecutive statements may run on different server connections.
    db_statement_cache_size: int = Field(default=100, ge=0)
    # Key reads and writes of concurrent requests share statements (and writes one commit):
    # docs/PERFORMANCE.md, "Coalescing". Off, each request runs its own.
    db_coalesce: bool = True
    # Failed authentications allowed per client address and minute (per serving process);
    # past it the address gets 429 until its allowance refills. 0 turns the limit off.
    auth_failures_per_minute: int = Field(default=60, ge=0)
    # Proxies in front of the service that append the peer to X-Forwarded-For (an ingress:
    # 1). The client address is then taken from that header; 0 uses the TCP peer.
    trusted_proxies: int = Field(default=0, ge=0)

    # Slow clients: a connection is closed when it has not sent a complete request head this
    # long after it opened or after its last answer (idle keep-alive included); a request
    # body must arrive within body_timeout seconds, else 408.
    idle_timeout: float = Field(default=15.0, gt=0)
    body_timeout: float = Field(default=60.0, gt=0)

    # The largest max_value_size a namespace may set (a namespace without one takes 1 MiB).
    # At most 256 MiB: PostgreSQL holds at most 1 GB in one value, and an upload takes about
    # three times its size in memory while it is stored.
    max_value_size_ceiling: int = Field(default=16 * 1024 * 1024, ge=1, le=256 * 1024 * 1024)
    # Bytes of request bodies (values being uploaded) one serving process holds at once, one
    # tenant at most a quarter of it; a request past either waits up to body_memory_wait
    # seconds for room, then gets 503. The
    # process's memory for bodies is up to about three times this (the body, and the copies
    # the database driver makes as it sends it).
    body_memory_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    body_memory_wait: float = Field(default=2.0, ge=0)

    # quiva.ai's surface has no `pending` bucket: a bucket create answers once the worker has
    # provisioned it, waiting up to this long (then 503 with Retry-After; the bucket is usable
    # as soon as the worker gets to it).
    bucket_ready_timeout: float = Field(default=10.0, ge=0)
    # The name this deployment gives its PostgreSQL cluster, in quiva.ai's bucket details.
    cluster_name: str = "kvs"

    # Secrets' master keys, `id:base64,id:base64,…` of 32 random bytes each (`kvs secrets
    # new-key`): the first wraps new data keys, all of them unwrap. Unset, the secrets routes
    # answer 503 and everything else works.
    secrets_master_keys: SecretStr | None = None
    # Versions kept of each secret: a write destroys those older than the newest this many.
    secret_versions_kept: int = Field(default=10, ge=1, le=1000)
    secrets_per_tenant: int = Field(default=10_000, ge=1)
    # Data keys one rotation batch re-wraps in one short transaction.
    secret_rotation_batch_size: int = Field(default=1000, ge=1, le=100_000)

    # On SIGTERM the server stops listening; open connections may carry one more request
    # (answered with `Connection: close`) for this long, then running requests get
    # shutdown_timeout seconds more (service/web/runner.py).
    drain_seconds: float = Field(default=5.0, ge=0)
    shutdown_timeout: float = Field(default=15.0, ge=0)

    worker_poll_interval: float = Field(default=5.0, gt=0)
    worker_lease_seconds: float = Field(default=30.0, gt=0)
    worker_max_attempts: int = Field(default=5, ge=1)
    worker_backoff_base: float = Field(default=1.0, ge=0)
    worker_backoff_max: float = Field(default=60.0, ge=0)
    delete_batch_size: int = Field(default=1000, ge=1)
    sweep_interval: float = Field(default=5.0, gt=0)
    # Small, so each sweep statement holds its row locks only briefly.
    sweep_batch_size: int = Field(default=500, ge=1)

    # How often the worker reads the service-wide gauges (namespaces, queue, storage totals).
    stats_interval: float = Field(default=15.0, gt=0)

    migrations_dir: Path = REPO_ROOT / "migrations"
    openapi_file: Path = REPO_ROOT / "openapi" / "openapi.yaml"
    quiva_openapi_file: Path = REPO_ROOT / "openapi" / "quiva.yaml"
    data_dir: Path = REPO_ROOT / ".data"
    log_level: str = "INFO"
    # The fraction of requests answered below 400 within a second that get an access log
    # line; every other request always gets one. 1: every request (a line costs about 5 % of
    # a GET's CPU).
    access_log_sample: float = Field(default=1.0, ge=0, le=1)
    # Comma-separated `name=action` pairs that make the worker fail on purpose
    # (actions: error, crash, sleep:SECONDS). For fault tests only; empty in production.
    failpoints: str = ""

    @field_validator("database_url", "secrets_master_keys", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return value or None

    def dsn(self) -> str:
        """The PostgreSQL URL, or a clear error when none is configured."""
        if self.database_url is None:
            raise SystemExit("DATABASE_URL is not set")
        return self.database_url.get_secret_value()
