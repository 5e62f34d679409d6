"""The `kvs` command: serve, worker, migrate, tenant, API key and secrets management, and the
dev stack."""

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from pydantic import SecretStr

from service.db.listener import Listener
from service.db.migrations import MigrationError, apply_migrations
from service.db.pool import Database, open_database
from service.domain import secrets, tenants
from service.domain.sealing import InvalidMasterKeys, MasterKeys, configured_keys, new_master_key
from service.logs import configure_logging
from service.metrics import serve_metrics
from service.settings import Settings
from service.web import supervisor
from service.worker.loop import Worker
from service.worker.metrics import WorkerMetrics

log = logging.getLogger("kvs")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    args.command(settings, args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kvs", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve_cmd = sub.add_parser("serve", help="serve the HTTP API")
    serve_cmd.add_argument("--host", help="overrides KVS_HOST")
    serve_cmd.add_argument("--port", type=int, help="overrides KVS_PORT")
    serve_cmd.set_defaults(command=cmd_serve)

    sub.add_parser("worker", help="run the provisioning worker").set_defaults(command=cmd_worker)
    sub.add_parser("migrate", help="apply pending migrations").set_defaults(command=cmd_migrate)
    sub.add_parser(
        "dev",
        help="embedded PostgreSQL, migrations, dev key, API and worker (what `make run` runs)",
    ).set_defaults(command=cmd_dev)

    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = tenant.add_parser("create", help="create a tenant and print its first API key")
    create.add_argument("name")
    create.set_defaults(command=cmd_tenant_create)

    key = sub.add_parser("key", help="rotate API keys").add_subparsers(
        required=True, metavar="ACTION"
    )
    key_create = key.add_parser("create", help="add an API key to a tenant and print it")
    key_create.add_argument("tenant")
    key_create.set_defaults(command=cmd_key_create)
    key_revoke = key.add_parser("revoke", help="revoke an API key, given by id or in full")
    key_revoke.add_argument("key")
    key_revoke.set_defaults(command=cmd_key_revoke)

    secrets_cmd = sub.add_parser(
        "secrets", help="master keys of the secrets: generate, rotate, status"
    ).add_subparsers(required=True, metavar="ACTION")
    new_key = secrets_cmd.add_parser(
        "new-key", help="print a new master key as 'id:base64', for KVS_SECRETS_MASTER_KEYS"
    )
    new_key.add_argument("id", help="the key's id, e.g. 2026-12")
    new_key.set_defaults(command=cmd_secrets_new_key)
    rotate = secrets_cmd.add_parser(
        "rotate",
        help="have the worker re-wrap every data key under the first of KVS_SECRETS_MASTER_KEYS",
    )
    rotate.add_argument("--wait", action="store_true", help="wait until it is finished")
    rotate.set_defaults(command=cmd_secrets_rotate)
    secrets_cmd.add_parser(
        "status", help="how many data keys each master key wraps, and the last rotation"
    ).set_defaults(command=cmd_secrets_status)
    return parser


def _run_with_db(settings: Settings, action: Callable[[Database], Awaitable[Any]]) -> Any:
    """`action`'s result on the database of DATABASE_URL or, when it is unset, on the
    development database `kvs dev` keeps in KVS_DATA_DIR (started for the command if it is
    not running, and stopped again after); says on stderr which one it used."""
    with _database(settings) as settings:

        async def run() -> Any:
            async with open_database(settings, max_size=2) as db:
                return await action(db)

        return asyncio.run(run())


@contextmanager
def _database(settings: Settings) -> Iterator[Settings]:
    """The settings with a database: DATABASE_URL's, or the development database, started
    (and migrated) for the block if it was not running."""
    if settings.database_url is not None:
        print("kvs: using the database of DATABASE_URL", file=sys.stderr)
        yield settings
        return
    from service import devdb

    embedded = devdb.EmbeddedPostgres(settings.data_dir / "postgres")
    was_running = embedded.is_running()
    url = _start_dev_database(embedded)
    print(
        f"kvs: using the development database {url} (data in {embedded.datadir}"
        f"{'' if was_running else '; started for this command'})",
        file=sys.stderr,
    )
    try:
        dev = settings.model_copy(update={"database_url": SecretStr(url)})
        asyncio.run(_migrate(dev))
        yield dev
    finally:
        if not was_running:
            embedded.stop()


def _start_dev_database(embedded) -> str:
    """Starts the embedded server (or finds it running) with its `kvs` database; its URL."""
    admin_url = embedded.start()
    asyncio.run(_ensure_database(admin_url, "kvs"))
    return embedded.url("kvs")


def _fail(message: str) -> None:
    print(f"kvs: {message}", file=sys.stderr)
    raise SystemExit(1)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    if _master_keys(settings) is None:
        log.warning("no secrets master keys (KVS_SECRETS_MASTER_KEYS): secrets answer 503")
    host, port = args.host or settings.host, args.port or settings.port
    status = supervisor.run(settings, host, port)
    if status:
        raise SystemExit(status)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> None:
    _master_keys(settings)

    async def run() -> None:
        metrics = WorkerMetrics()
        async with (
            serve_metrics(metrics, settings.metrics_host, settings.worker_metrics_port),
            open_database(settings, observer=metrics) as db,
            Listener(settings) as listener,
        ):
            worker = Worker(db, settings, metrics=metrics, listener=listener)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, worker.stop)
            await worker.run()

    asyncio.run(run())


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    try:
        applied = asyncio.run(_migrate(settings))
    except MigrationError as err:
        _fail(str(err))
    for m in applied:
        print(f"applied {m.version:04d}_{m.name}")
    if not applied:
        print("schema is up to date")


async def _migrate(settings: Settings) -> list:
    conn = await asyncpg.connect(settings.dsn(), timeout=settings.db_connect_timeout)
    try:
        return await apply_migrations(conn, settings.migrations_dir)
    finally:
        await conn.close()


def cmd_tenant_create(settings: Settings, args: argparse.Namespace) -> None:
    try:
        tenant_id, key = _run_with_db(settings, lambda db: tenants.create_tenant(db, args.name))
    except tenants.TenantExists as err:
        _fail(str(err))
    print(f"tenant {args.name} ({tenant_id})")
    _print_key(key)


def cmd_key_create(settings: Settings, args: argparse.Namespace) -> None:
    try:
        key = _run_with_db(settings, lambda db: tenants.create_key(db, args.tenant))
    except tenants.TenantNotFound as err:
        _fail(str(err))
    _print_key(key)


def cmd_key_revoke(settings: Settings, args: argparse.Namespace) -> None:
    try:
        key_id = _run_with_db(settings, lambda db: tenants.revoke_key(db, args.key))
    except tenants.ApiKeyNotFound as err:
        _fail(str(err))
    print(f"revoked key {key_id}")


def _master_keys(settings: Settings) -> MasterKeys | None:
    """The configured master keys; a clear failure, never quoting them, when malformed."""
    try:
        return configured_keys(settings.secrets_master_keys)
    except InvalidMasterKeys as err:
        _fail(f"KVS_SECRETS_MASTER_KEYS: {err}")


def _with_dev_master_key(settings: Settings, *, create: bool) -> Settings:
    """The settings with the development master key of KVS_DATA_DIR when no master key is
    configured: created (mode 0600) when `create`, else only if it exists."""
    if settings.secrets_master_keys is not None:
        return settings
    path = settings.data_dir / "dev-master-key"
    if not path.exists():
        if not create:
            return settings
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(new_master_key("dev-1") + "\n")
        print(f"kvs: created a development master key for secrets in {path}")
    elif create:
        print(f"kvs: secrets are sealed with the development master key in {path}")
    os.environ["KVS_SECRETS_MASTER_KEYS"] = path.read_text().strip()
    return Settings()


def cmd_secrets_new_key(settings: Settings, args: argparse.Namespace) -> None:
    try:
        print(new_master_key(args.id))
    except InvalidMasterKeys as err:
        _fail(str(err))


def cmd_secrets_rotate(settings: Settings, args: argparse.Namespace) -> None:
    keys = _master_keys(_with_dev_master_key(settings, create=False))
    if keys is None:
        _fail("no master keys are configured: set KVS_SECRETS_MASTER_KEYS, new key first")
    target = keys.current.id

    async def rotate(db: Database) -> secrets.Rotation:
        started, rotation = await secrets.request_rotation(db, target)
        if not started and rotation.target_key_id != target:
            _fail(
                f"a rotation to master key '{rotation.target_key_id}' is under way; "
                "run this again once `kvs secrets status` shows it finished"
            )
        print(
            f"rotation {rotation.id} to master key '{target}' "
            f"{'requested' if started else 'is under way'}; the worker re-wraps in batches"
        )
        while args.wait and rotation.finished_at is None:
            await asyncio.sleep(1)
            rotation = await secrets.latest_rotation(db)
            print(f"  re-wrapped {rotation.rewrapped} data keys", flush=True)
        return rotation

    rotation = _run_with_db(settings, rotate)
    if rotation.finished_at is not None:
        _print_rotation(rotation)
        if rotation.last_error:
            raise SystemExit(1)


def cmd_secrets_status(settings: Settings, args: argparse.Namespace) -> None:
    keys = _master_keys(_with_dev_master_key(settings, create=False))
    configured = () if keys is None else keys.ids

    async def status(db: Database):
        return await secrets.master_key_usage(db), await secrets.latest_rotation(db)

    usage, rotation = _run_with_db(settings, status)
    print("master key    data keys  here")
    for key_id in sorted(set(usage) | set(configured), key=lambda k: (k not in configured, k)):
        role = (
            "current: wraps new data keys"
            if configured and key_id == configured[0]
            else "configured: unwraps"
            if key_id in configured
            else "NOT CONFIGURED: its secrets cannot be read here"
        )
        print(f"{key_id:<12}  {usage.get(key_id, 0):>9}  {role}")
    if rotation is not None:
        _print_rotation(rotation)


def _print_rotation(rotation: secrets.Rotation) -> None:
    state = (
        f"finished {rotation.finished_at:%Y-%m-%d %H:%M:%S}"
        if rotation.finished_at
        else "under way"
    )
    print(
        f"rotation {rotation.id} to '{rotation.target_key_id}' (requested "
        f"{rotation.requested_at:%Y-%m-%d %H:%M:%S}): {state}, {rotation.rewrapped} re-wrapped"
        f", {rotation.unreadable} unreadable"
    )
    if rotation.last_error:
        print(f"  error: {rotation.last_error}")


def _print_key(key: tenants.ApiKey) -> None:
    print(f"key id {key.id}; the key is shown only now:")
    print(f"export KV_API_KEY={key.token}")


def cmd_dev(settings: Settings, args: argparse.Namespace) -> None:
    """Everything `make run` promises, in one process tree that Ctrl-C ends."""
    from service import devdb

    embedded = None
    if settings.database_url is None:
        embedded = devdb.EmbeddedPostgres(settings.data_dir / "postgres")
        os.environ["DATABASE_URL"] = _start_dev_database(embedded)
        settings = Settings()
        print(f"kvs: PostgreSQL at {embedded.url('kvs')} (data in {embedded.datadir})")
    worker = None
    try:
        cmd_migrate(settings, args)
        settings = _with_dev_master_key(settings, create=True)
        token = asyncio.run(_dev_key(settings))
        worker = subprocess.Popen([sys.executable, "-m", "service", "worker"])
        print(
            f"kvs: API on http://{settings.host}:{settings.port} with a provisioning worker; "
            "Ctrl-C stops both. Paste this into another shell:\n"
        )
        print(f"export KV_API_KEY={token}\n", flush=True)
        cmd_serve(settings, argparse.Namespace(host=None, port=None))
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        if embedded is not None:
            embedded.stop()


async def _ensure_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')  # a fixed name, not input
    finally:
        await conn.close()


async def _dev_key(settings: Settings) -> str:
    """The development tenant's key: the one kept in the data dir while it still works."""
    async with open_database(settings, max_size=2) as db:
        return await _dev_key_in(db, settings)


async def _dev_key_in(db: Database, settings: Settings) -> str:
    path = settings.data_dir / "dev-api-key"
    if path.exists():
        token = path.read_text().strip()
        if await tenants.key_is_valid(db, token):
            return token
    try:
        _, key = await tenants.create_tenant(db, "dev")
    except tenants.TenantExists:
        key = await tenants.create_key(db, "dev")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key.token + "\n")
    return key.token
