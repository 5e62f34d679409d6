"""`make bench`: the service against PostgreSQL's own ceiling, a bare aiohttp app and etcd, side
by side in one run on this machine, with one table of figures, ratios and targets.

    .venv/bin/python bench/run.py [--quick]

Starts its own durable PostgreSQL (initdb defaults: fsync and synchronous_commit on), the
service as a user runs it (`kvs serve` and `kvs worker`), a bare aiohttp app and etcd, each on
127.0.0.1, and stops them all by PID. Needs wrk and etcd (Debian's `wrk` and `etcd-server`,
installed when missing and run as root). Writes the table to bench/results/latest.md too.
"""

import argparse
import asyncio
import base64
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import aiohttp
import asyncpg

from service.db.migrations import apply_migrations
from service.db.pool import open_database
from service.db.queries import queries
from service.devdb import bin_dir, temporary_postgres
from service.domain import tenants
from service.domain.keys import DEFAULT_VALUE_LIMIT
from service.domain.namespaces import create_namespace
from service.domain.sealing import MasterKeys, binding, new_master_key, seal
from service.settings import REPO_ROOT, Settings
from service.worker.loop import Worker

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
CONNECTIONS = 32  # every HTTP workload and pgbench run, as in the reference figures
MIB = 1024 * 1024
HUGE_VALUE = 16 * MIB  # the default ceiling of max_value_size


@dataclass
class Mode:
    keys: int
    seconds: int
    reps: int
    soak_seconds: int


QUICK = Mode(keys=20_000, seconds=5, reps=1, soak_seconds=30)
FULL = Mode(keys=100_000, seconds=15, reps=3, soak_seconds=300)


@dataclass
class Load:
    """One wrk or pgbench run."""

    rate: float
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    failures: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core, by process tree


@dataclass
class Results:
    figures: dict[str, list[Load]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    # Process trees whose CPU each run records, e.g. {"kvs": pid, "postgres": pid}.
    watch: dict[str, int] = field(default_factory=dict)

    def run(self, name: str, load: Callable[[], Load]) -> None:
        """Runs one load and records it with the CPU the watched processes and the whole
        machine spent meanwhile."""
        before = {label: tree_cpu_seconds(pid) for label, pid in self.watch.items()}
        busy_before, total_before = machine_cpu()
        started = time.monotonic()
        result = load()
        elapsed = time.monotonic() - started
        for label, pid in self.watch.items():
            result.cpu[label] = 100 * (tree_cpu_seconds(pid) - before[label]) / elapsed
        busy, total = machine_cpu()
        result.cpu["machine"] = (
            100 * (os.cpu_count() or 1) * (busy - busy_before) / (total - total_before)
        )
        self.figures.setdefault(name, []).append(result)
        cpu = " ".join(f"{k} {v:.0f}%" for k, v in result.cpu.items())
        print(
            f"  {name}: {result.rate:,.0f}/s p99 {result.p99_ms:.2f} ms, failed "
            f"{result.failures}; CPU {cpu}"
        )

    def rate(self, name: str) -> float:
        return statistics.median(load.rate for load in self.figures[name])

    def p99(self, name: str) -> float:
        return statistics.median(load.p99_ms for load in self.figures[name])

    def p50(self, name: str) -> float:
        return statistics.median(load.p50_ms for load in self.figures[name])


# ---------------------------------------------------------------- processes and tools


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


@contextmanager
def process(*args: str, env: dict | None = None, port: int | None = None):
    """A process for the duration of the block, stopped by its PID (SIGTERM, then SIGKILL)."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if port is not None:
            wait_port(port)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ensure_tools() -> None:
    missing = [
        pkg for tool, pkg in (("wrk", "wrk"), ("etcd", "etcd-server")) if not shutil.which(tool)
    ]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"bench needs: apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
    )


def process_tree(pid: int) -> Iterator[int]:
    """A process and its descendants, as they are now."""
    pending = [pid]
    while pending:
        current = pending.pop()
        yield current
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pending.extend(int(c) for c in children)


def _proc(pid: int, name: str) -> str:
    """/proc/<pid>/<name>, or "" when the process has just gone (opening then fails with
    FileNotFoundError, reading an opened file with ProcessLookupError)."""
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    found = (re.search(r"VmRSS:\s+(\d+)", _proc(p, "status")) for p in process_tree(pid))
    return sum(int(m[1]) for m in found if m) / 1024


@contextmanager
def peak_rss(pid: int):
    """Samples the RSS of a process tree every 10 ms for the block; yields [peak MiB]."""
    peak, done = [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], rss_mib(pid))

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join()


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, in seconds, including
    descendants that have exited (PostgreSQL backends of pgbench connections)."""
    total = 0
    for p in process_tree(pid):
        stat = _proc(p, "stat")
        if stat:
            fields = stat.rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int]:
    """Busy and total jiffies of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def wrk(
    url: str, script: Path, *args: object, seconds: int, connections: int = CONNECTIONS
) -> Load:
    """A closed-loop wrk run (2 threads, or 1 for 1 connection); its rate, latency
    percentiles and failed requests."""
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            *map(str, args),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def percentile(p: str) -> float:
        found = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.MULTILINE)
        if found is None:  # seen once in a long run: report it, keep the run's other figures
            print(f"no {p}th percentile in wrk's output:\n{out}", file=sys.stderr)
            return float("nan")
        return float(found[1]) * _UNITS[found[2]]

    failures = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures += sum(map(int, errors.groups())) if errors else 0
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    return Load(rate, percentile("50"), percentile("99"), failures)


def pgbench(dsn: str, script: str, seconds: int, defines: dict[str, str]) -> Load:
    """pgbench with prepared statements at the same concurrency as the HTTP runs."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [
                str(bin_dir() / "pgbench"),
                "-n",
                "-M",
                "prepared",
                "-T",
                str(seconds),
                f"-c{CONNECTIONS}",
                "-j2",
                *(f"-D{k}={v}" for k, v in defines.items()),
                "-f",
                f.name,
                dsn,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    latency = float(re.search(r"latency average = ([\d.]+) ms", out)[1])
    return Load(
        float(re.search(r"tps = ([\d.]+)", out)[1]), latency, 0.0, int(failed[1]) if failed else 0
    )


# ---------------------------------------------------------------- the same SQL as the service


def pgbench_script(query: str, params: dict[int, str], sets: str = "") -> str:
    """A service query (service/db/sql/) with its $n parameters replaced, as one pgbench line."""
    sql = getattr(queries(), query).sql
    for n in sorted(params, reverse=True):  # $10 before $1
        sql = sql.replace(f"${n}", params[n])
    lines = [line.split("--")[0] for line in sql.splitlines()]
    return sets + " ".join(line.strip() for line in lines if line.strip()) + ";\n"


KEY = "('key' || lpad(:k::text, 6, '0'))"
RANDOM_KEY = "\\set k random(1, {keys})\n"


def pgbench_scripts(keys: int) -> dict[str, str]:
    ns = {1: ":ns::uuid", 2: ":tenant::uuid"}
    sets = RANDOM_KEY.format(keys=keys)
    put = {
        **ns,
        3: KEY,
        4: "decode(:val, 'base64')",
        5: "'application/octet-stream'",
        6: "NULL::float8",
        7: "false",
        8: str(DEFAULT_VALUE_LIMIT),
        9: str(Settings().max_value_size_ceiling),
    }
    start = f"\\set k random(1, {max(keys - 100, 1)})\n"
    return {
        "get": pgbench_script("get_entry", {**ns, 3: KEY, 4: "'{}'::bigint[]"}, sets),
        "put": pgbench_script("put_entry", put, sets),
        "list": pgbench_script(
            "list_entries", {**ns, 3: KEY, 4: "''", 5: "chr(127)", 6: "101", 7: "false"}, start
        ),
        # 100 random keys, drawn in the statement (pgbench has no arrays of variables).
        "batch": pgbench_script(
            "get_entries",
            {
                **ns,
                3: "(SELECT array_agg('key' || lpad((1 + floor(random() * "
                f"{keys}))::int::text, 6, '0')) FROM generate_series(1, 100))",
                4: "true",
                5: str(16 * MIB),
            },
        ),
        # As kv.lua's txn: checks of two keys nothing writes, at the version copy_keys gave
        # them; sets of two others.
        "txn": pgbench_script(
            "transact",
            {
                **ns,
                3: f"ARRAY[{KEY.replace(':k', ':a')}, {KEY.replace(':k', ':b')}]",
                4: "ARRAY[:a, :b]::bigint[]",
                5: f"ARRAY[{KEY.replace(':k', ':c')}, {KEY.replace(':k', ':d')}]",
                6: "ARRAY[decode(:val, 'base64'), decode(:val, 'base64')]",
                7: "ARRAY['application/json', 'application/json']",
                8: "ARRAY[NULL, NULL]::float8[]",
                9: str(DEFAULT_VALUE_LIMIT),
                10: str(Settings().max_value_size_ceiling),
            },
            "\\set a random(1, 500)\n\\set b random(501, 1000)\n"
            f"\\set c random(1001, {(keys + 1000) // 2})\n"
            f"\\set d random({(keys + 1000) // 2 + 1}, {keys})\n",
        ),
    }


# ---------------------------------------------------------------- set-up


@dataclass
class Setup:
    dsn: str
    tenant: UUID
    token: str
    namespace: UUID
    big_values: UUID  # where the 64 KiB writes go, so that GET 1 KiB keeps reading 1 KiB values
    huge_values: UUID  # max_value_size 16 MiB, for the 16 MiB uploads
    transactions: UUID  # the same keys, where the transactions write (kv.lua's txn)
    # The quiva.ai surface's bucket: a namespace of the same keys, each a 1 KiB JSON object.
    bucket: str = "bench-json"


# Secrets: the tenant's, key000001 up, each 1 KiB of text sealed under this master key.
MASTER_KEYS = new_master_key("bench")
SECRETS = 10_000


async def prepare(dsn: str, keys: int) -> Setup:
    """Schema, a tenant with 10 provisioned namespaces, `keys` 1 KiB keys in the first."""
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn, REPO_ROOT / "migrations")
    settings = Settings(database_url=dsn, metrics_port=0)
    async with open_database(settings) as db:
        tenant, key = await tenants.create_tenant(db, "bench")
        spaces = [await create_namespace(db, tenant, f"bench-{i}") for i in range(9)]
        spaces.append(await create_namespace(db, tenant, "bench-huge", max_value_size=HUGE_VALUE))
        bucket = await create_namespace(db, tenant, Setup.bucket)
        worker = Worker(db, settings)
        while await worker.run_once():
            pass
    await copy_keys(conn, spaces[0].id, keys)
    await copy_keys(conn, spaces[2].id, keys)
    await copy_keys(conn, bucket.id, keys, json_objects=True)
    await copy_secrets(conn, tenant, SECRETS, MasterKeys.parse(MASTER_KEYS))
    await conn.execute("CHECKPOINT")
    await conn.close()
    return Setup(dsn, tenant, key.token, spaces[0].id, spaces[1].id, spaces[-1].id, spaces[2].id)


def json_object(size: int) -> bytes:
    """A JSON object of `size` bytes, as a quiva.ai entry is."""
    return b'{"data": "' + os.urandom(size).hex()[: size - 12].encode() + b'"}'


async def copy_keys(
    conn: asyncpg.Connection, namespace, keys: int, *, json_objects: bool = False
) -> None:
    """`keys` random 1 KiB values (JSON objects if `json_objects`), key000001 up, copied
    straight into the namespace (the usage triggers count them), then the table analyzed."""
    kind = "application/json" if json_objects else "application/octet-stream"
    records = (
        (
            namespace,
            f"key{i:06d}",
            json_object(1024) if json_objects else os.urandom(1024),
            kind,
            1024,
            i,
            i,
        )
        for i in range(1, keys + 1)
    )
    columns = ["namespace_id", "key", "value", "content_type", "size_bytes", "version"]
    await conn.copy_records_to_table(
        "kv_entries", records=records, columns=[*columns, "created_version"]
    )
    await conn.execute("SELECT setval('kv_versions', $1)", keys + 1)
    await conn.execute("VACUUM ANALYZE")


async def copy_secrets(
    conn: asyncpg.Connection, tenant: UUID, count: int, keys: MasterKeys, size: int = 1024
) -> None:
    """`count` secrets key000001 up of `size` bytes of text, sealed as a write seals them and
    copied straight into the tables, then analyzed."""
    sealed = [
        seal(keys, binding(tenant, f"key{i:06d}", 1), os.urandom(size // 2).hex().encode())
        for i in range(1, count + 1)
    ]
    await conn.copy_records_to_table(
        "secrets",
        records=((tenant, f"key{i:06d}", 1, i) for i in range(1, count + 1)),
        columns=["tenant_id", "name", "version", "revision"],
    )
    await conn.copy_records_to_table(
        "secret_versions",
        records=(
            (tenant, f"key{i:06d}", 1, i, s.master_key_id, s.wrapped_key, s.ciphertext)
            for i, s in enumerate(sealed, 1)
        ),
        columns=[
            "tenant_id",
            "name",
            "version",
            "revision",
            "master_key_id",
            "wrapped_key",
            "ciphertext",
        ],
    )
    await conn.execute(
        "INSERT INTO secret_counts VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE"
        " SET secrets = secret_counts.secrets + $2",
        tenant,
        count,
    )
    await conn.execute("SELECT setval('secret_revisions', $1)", count + 1)
    await conn.execute("ANALYZE secrets, secret_versions")


async def add_namespaces(dsn: str, tenant: UUID, count: int) -> None:
    """`count` more provisioned namespaces, straight into the tables."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "WITH ns AS (INSERT INTO namespaces (tenant_id, name, status, ttl_support)"
        " SELECT $1, 'more-' || g, 'provision_ok', true FROM generate_series(1, $2) g"
        " RETURNING id) INSERT INTO namespace_storage (namespace_id) SELECT id FROM ns",
        tenant,
        count,
    )
    await conn.execute("VACUUM ANALYZE")
    await conn.close()


async def housekeep(dsn: str) -> None:
    """Between write runs, as the reference figures did: no run pays for another's garbage."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("VACUUM kv_entries")
    await conn.execute("CHECKPOINT")
    await conn.close()


async def prefill_etcd(port: int, keys: int) -> None:
    value = base64.b64encode(os.urandom(1024)).decode()
    url = f"http://127.0.0.1:{port}/v3/kv/put"
    async with aiohttp.ClientSession() as session:

        async def writer(start: int) -> None:
            for i in range(start, keys + 1, 32):
                key = base64.b64encode(f"key{i:06d}".encode()).decode()
                async with session.post(url, json={"key": key, "value": value}) as resp:
                    resp.raise_for_status()

        await asyncio.gather(*(writer(s) for s in range(1, 33)))


async def set_max_bytes(port: int, setup: Setup, max_bytes: int | None) -> None:
    url = f"http://127.0.0.1:{port}/v2/storage/kvs/{setup.namespace}"
    headers = {"Authorization": f"Bearer {setup.token}"}
    async with aiohttp.ClientSession() as session:
        async with session.patch(url, json={"max_bytes": max_bytes}, headers=headers) as resp:
            assert resp.status == 200, resp.status


async def huge_puts(port: int, setup: Setup, count: int) -> tuple[int, float]:
    """`count` PUTs of HUGE_VALUE bytes at once, each sent again after its Retry-After when
    answered 503; (how many 503 answers there were, seconds until all were stored)."""
    body = os.urandom(HUGE_VALUE)
    headers = {"Authorization": f"Bearer {setup.token}"}
    refused = 0
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def put(i: int) -> None:
            nonlocal refused
            url = f"http://127.0.0.1:{port}/v2/storage/kvs/{setup.huge_values}/keys/huge{i}"
            while True:
                async with session.put(url, data=body, headers=headers) as resp:
                    if resp.status != 503:
                        assert resp.status in (200, 201), resp.status
                        return
                    refused += 1
                    await asyncio.sleep(float(resp.headers["Retry-After"]))

        await asyncio.gather(*(put(i) for i in range(count)))
    return refused, time.monotonic() - started


async def concurrent_puts(port: int, setup: Setup, count: int, size: int) -> None:
    body = os.urandom(size)
    headers = {"Authorization": f"Bearer {setup.token}"}
    async with aiohttp.ClientSession() as session:

        async def put(i: int) -> None:
            url = f"http://127.0.0.1:{port}/v2/storage/kvs/{setup.namespace}/keys/big{i}"
            async with session.put(url, data=body, headers=headers) as resp:
                assert resp.status in (200, 201), resp.status

        await asyncio.gather(*(put(i) for i in range(count)))


# ---------------------------------------------------------------- the run


def run(mode: Mode, results: Results) -> None:
    ensure_tools()
    with temporary_postgres() as postgres:
        print(f"PostgreSQL up; prefilling {mode.keys:,} keys of 1 KiB")
        setup = asyncio.run(prepare(postgres.url(), mode.keys))
        measure(mode, setup, results, postgres.datadir)


def measure(mode: Mode, setup: Setup, results: Results, pgdata: Path) -> None:
    kv_lua, etcd_lua = BENCH / "lua" / "kv.lua", BENCH / "lua" / "etcd.lua"
    port = free_port()
    processes = os.cpu_count() or 1
    env = {
        **os.environ,
        "DATABASE_URL": setup.dsn,
        "KVS_PORT": str(port),
        "KVS_METRICS_PORT": "0",
        "KVS_WORKER_METRICS_PORT": "0",
        "KVS_PROCESSES": str(processes),
        "KVS_SECRETS_MASTER_KEYS": MASTER_KEYS,
    }
    base = f"http://127.0.0.1:{port}"
    args = (setup.namespace, setup.token, mode.keys)
    quiva = (setup.bucket, setup.token, mode.keys)
    scripts = pgbench_scripts(mode.keys)
    value_1k = base64.b64encode(os.urandom(1024)).decode()
    value_64k = base64.b64encode(os.urandom(64 * 1024)).decode()
    defines = {"ns": str(setup.namespace), "tenant": str(setup.tenant)}
    big = (setup.big_values, setup.token, mode.keys)
    big_defines = {**defines, "ns": str(setup.big_values), "val": value_64k}
    txn = (setup.transactions, setup.token, mode.keys)
    txn_defines = {**defines, "ns": str(setup.transactions), "val": value_1k}
    s = mode.seconds
    # The same service with every request on its own statement, beside it (idle while the
    # other runs): what coalescing (docs/PERFORMANCE.md) gains, and that alone it costs nothing.
    single_port = free_port()
    single_env = {**env, "KVS_PORT": str(single_port), "KVS_DB_COALESCE": "false"}
    single = f"http://127.0.0.1:{single_port}"

    with (
        process(sys.executable, "-m", "service", "serve", env=env, port=port) as server,
        process(sys.executable, "-m", "service", "worker", env=env),
        process(
            sys.executable, "-m", "service", "serve", env=single_env, port=single_port
        ) as single_server,
    ):
        print(f"kvs serve ({processes} processes) on {base}, without coalescing on {single}")
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        watch = {"kvs": server.pid, "postgres": postmaster}
        single_watch = {"kvs": single_server.pid, "postgres": postmaster}
        results.watch = watch
        for op in ("get", "put", "list"):
            wrk(base, kv_lua, op, *args, seconds=2)  # warm-up
            wrk(single, kv_lua, op, *args, seconds=2)

        def uncoalesced(name: str, load: Callable[[], Load]) -> None:
            results.watch = single_watch
            try:
                results.run(name, load)
            finally:
                results.watch = watch

        for rep in range(mode.reps):
            print(f"repetition {rep + 1} of {mode.reps}")
            results.run("kvs GET 1 KiB", lambda: wrk(base, kv_lua, "get", *args, seconds=s))
            uncoalesced(
                "kvs GET 1 KiB, no coalescing",
                lambda: wrk(single, kv_lua, "get", *args, seconds=s),
            )
            results.run("pgbench get_entry", lambda: pgbench(setup.dsn, scripts["get"], s, defines))
            results.run("quiva GET 1 KiB", lambda: wrk(base, kv_lua, "qget", *quiva, seconds=s))
            results.run(
                "secret GET 1 KiB",
                lambda: wrk(base, kv_lua, "sget", "-", setup.token, SECRETS, seconds=s),
            )
            results.run("kvs LIST 100", lambda: wrk(base, kv_lua, "list", *args, seconds=s))
            results.run(
                "pgbench list_entries", lambda: pgbench(setup.dsn, scripts["list"], s, defines)
            )
            results.run(
                "kvs LIST 100, total", lambda: wrk(base, kv_lua, "ltotal", *args, seconds=s)
            )
            results.run("kvs batch read 100", lambda: wrk(base, kv_lua, "batch", *args, seconds=s))
            results.run(
                "pgbench get_entries 100", lambda: pgbench(setup.dsn, scripts["batch"], s, defines)
            )
            asyncio.run(housekeep(setup.dsn))
            results.run("kvs PUT 1 KiB", lambda: wrk(base, kv_lua, "put", *args, 1024, seconds=s))
            asyncio.run(housekeep(setup.dsn))
            uncoalesced(
                "kvs PUT 1 KiB, no coalescing",
                lambda: wrk(single, kv_lua, "put", *args, 1024, seconds=s),
            )
            asyncio.run(housekeep(setup.dsn))
            results.run(
                "quiva PUT 1 KiB", lambda: wrk(base, kv_lua, "qput", *quiva, 1024, seconds=s)
            )
            asyncio.run(housekeep(setup.dsn))
            # The same writes with a max_bytes that is never reached: what checking costs.
            asyncio.run(set_max_bytes(port, setup, 2**62))
            results.run(
                "kvs PUT 1 KiB, max_bytes",
                lambda: wrk(base, kv_lua, "put", *args, 1024, seconds=s),
            )
            asyncio.run(set_max_bytes(port, setup, None))
            asyncio.run(housekeep(setup.dsn))
            results.run(
                "pgbench put_entry 1 KiB",
                lambda: pgbench(setup.dsn, scripts["put"], s, {**defines, "val": value_1k}),
            )
            asyncio.run(housekeep(setup.dsn))
            results.run("kvs PUT 64 KiB", lambda: wrk(base, kv_lua, "put", *big, 65536, seconds=s))
            asyncio.run(housekeep(setup.dsn))
            results.run(
                "pgbench put_entry 64 KiB",
                lambda: pgbench(setup.dsn, scripts["put"], s, big_defines),
            )
            asyncio.run(housekeep(setup.dsn))
            results.run(
                "kvs transaction 2+2", lambda: wrk(base, kv_lua, "txn", *txn, 1024, seconds=s)
            )
            asyncio.run(housekeep(setup.dsn))
            results.run(
                "pgbench transact 2+2",
                lambda: pgbench(setup.dsn, scripts["txn"], s, txn_defines),
            )
            asyncio.run(housekeep(setup.dsn))

        # Latency at half the peak rate: each connection pauses so that all together offer it.
        for op in ("GET", "PUT"):
            half = results.rate(f"kvs {op} 1 KiB") / 2
            delay_ms = round(CONNECTIONS * 1000 / half, 2)
            results.run(
                f"kvs {op} 1 KiB at half peak",
                lambda op=op, delay=delay_ms: wrk(
                    base, kv_lua, op.lower(), *args, 1024, delay, seconds=max(s, 10)
                ),
            )

        # Latency with one client, where no request has company: coalescing must add nothing.
        for op in ("GET", "PUT"):
            for name, url, record in (
                ("", base, results.run),
                (", no coalescing", single, uncoalesced),
            ):
                record(
                    f"kvs {op} 1 KiB, 1 client{name}",
                    lambda op=op, url=url: wrk(
                        url, kv_lua, op.lower(), *args, 1024, seconds=s, connections=1
                    ),
                )

        # Memory: the peak while 64 1 MiB uploads run at once (three times), then a steady
        # mixed load.
        before = rss_mib(server.pid)
        with peak_rss(server.pid) as peak:
            for _ in range(3):
                asyncio.run(concurrent_puts(port, setup, 64, MIB))
        results.notes["rss_before"] = f"{before:.1f}"
        results.notes["rss_after_uploads"] = f"{peak[0]:.1f}"
        # The same with 64 uploads of 16 MiB at once, into a namespace whose values may be
        # that large: the body budget holds them back (503, then sent again).
        before = rss_mib(server.pid)
        with peak_rss(server.pid) as peak:
            refused, seconds = asyncio.run(huge_puts(port, setup, 64))
        results.notes["rss_huge"] = f"{before:.1f} {peak[0]:.1f} {refused} {seconds:.1f}"
        samples = []
        soak = subprocess.Popen(
            [
                "wrk",
                "-t2",
                f"-c{CONNECTIONS}",
                f"-d{mode.soak_seconds}s",
                "-s",
                str(kv_lua),
                base,
                "--",
                "mixed",
                *map(str, args),
            ],
            stdout=subprocess.DEVNULL,
        )
        while soak.poll() is None:
            time.sleep(min(5, mode.soak_seconds / 10))
            samples.append(rss_mib(server.pid))
        results.notes["rss_soak"] = " ".join(f"{v:.0f}" for v in samples)

        # Namespace count: the same GET and PUT with 10 namespaces, then with 100,000, back to
        # back so that nothing else differs.
        asyncio.run(housekeep(setup.dsn))
        results.run(
            "kvs GET 1 KiB, 10 namespaces", lambda: wrk(base, kv_lua, "get", *args, seconds=s)
        )
        results.run(
            "kvs PUT 1 KiB, 10 namespaces", lambda: wrk(base, kv_lua, "put", *args, 1024, seconds=s)
        )
        asyncio.run(add_namespaces(setup.dsn, setup.tenant, 100_000 - 10))
        asyncio.run(housekeep(setup.dsn))
        results.run(
            "kvs GET 1 KiB, 100k namespaces", lambda: wrk(base, kv_lua, "get", *args, seconds=s)
        )
        results.run(
            "kvs PUT 1 KiB, 100k namespaces",
            lambda: wrk(base, kv_lua, "put", *args, 1024, seconds=s),
        )

    ceiling_port = free_port()
    with process(
        sys.executable,
        str(BENCH / "ceiling.py"),
        str(ceiling_port),
        str(processes),
        port=ceiling_port,
    ) as ceiling:
        results.watch = {"aiohttp": ceiling.pid}
        ceiling_lua = BENCH / "lua" / "ceiling.lua"
        wrk(f"http://127.0.0.1:{ceiling_port}", ceiling_lua, seconds=2)
        for _ in range(mode.reps):
            results.run(
                f"bare aiohttp GET ({processes} processes)",
                lambda: wrk(f"http://127.0.0.1:{ceiling_port}", ceiling_lua, seconds=s),
            )

    etcd_port, peer_port = free_port(), free_port()
    etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
    with process(
        "etcd",
        "--name",
        "bench",
        "--data-dir",
        str(pgdata.parent / "etcd"),
        "--listen-client-urls",
        etcd_url,
        "--advertise-client-urls",
        etcd_url,
        "--listen-peer-urls",
        peer_url,
        "--initial-advertise-peer-urls",
        peer_url,
        "--initial-cluster",
        f"bench={peer_url}",
        "--quota-backend-bytes",
        str(8 * 1024 * MIB),
        port=etcd_port,
    ) as etcd:
        results.watch = {"etcd": etcd.pid}
        print(f"etcd on {etcd_url}; prefilling {mode.keys:,} keys")
        asyncio.run(prefill_etcd(etcd_port, mode.keys))
        for _ in range(mode.reps):
            results.run(
                "etcd range", lambda: wrk(etcd_url, etcd_lua, "range", mode.keys, seconds=s)
            )
            results.run(
                "etcd put 1 KiB", lambda: wrk(etcd_url, etcd_lua, "put", mode.keys, seconds=s)
            )


# ---------------------------------------------------------------- the table


def table(results: Results, processes: int) -> list[list[str]]:
    r = results.rate
    rss = [float(v) for v in results.notes["rss_soak"].split()]
    warm = rss[len(rss) // 3 :]  # after warm-up
    upload_growth = float(results.notes["rss_after_uploads"]) - float(results.notes["rss_before"])
    rows = [
        ("GET 1 KiB / etcd range", r("kvs GET 1 KiB"), r("etcd range"), 2.0),
        # Requests sharing statements against each on its own statement, side by side.
        ("GET 1 KiB / no coalescing", r("kvs GET 1 KiB"), r("kvs GET 1 KiB, no coalescing"), None),
        ("PUT 1 KiB / no coalescing", r("kvs PUT 1 KiB"), r("kvs PUT 1 KiB, no coalescing"), None),
        # quiva.ai's surface: a bucket is found by name (one more statement) and an entry is
        # checked to be a JSON object.
        ("quiva GET entry / kvs GET 1 KiB", r("quiva GET 1 KiB"), r("kvs GET 1 KiB"), 0.7),
        ("quiva PUT entry / kvs PUT 1 KiB", r("quiva PUT 1 KiB"), r("kvs PUT 1 KiB"), 0.7),
        # A secret read opens two AES-GCM seals and logs the reveal; a key read does neither.
        ("secret GET / kvs GET 1 KiB", r("secret GET 1 KiB"), r("kvs GET 1 KiB"), 0.7),
        (
            "PUT 1 KiB, max_bytes / without",
            r("kvs PUT 1 KiB, max_bytes"),
            r("kvs PUT 1 KiB"),
            0.7,
        ),
        (
            "GET 1 KiB / bare aiohttp GET",
            r("kvs GET 1 KiB"),
            r(f"bare aiohttp GET ({processes} processes)"),
            0.4,
        ),
        ("PUT 1 KiB / etcd put", r("kvs PUT 1 KiB"), r("etcd put 1 KiB"), 1.5),
        ("PUT 1 KiB / pgbench put_entry", r("kvs PUT 1 KiB"), r("pgbench put_entry 1 KiB"), 1.0),
        ("PUT 64 KiB / pgbench put_entry", r("kvs PUT 64 KiB"), r("pgbench put_entry 64 KiB"), 0.9),
        ("LIST 100 / pgbench list_entries", r("kvs LIST 100"), r("pgbench list_entries"), 0.7),
        # total=true counts every key from the page's start on: half the namespace on average.
        ("LIST 100, total / LIST 100", r("kvs LIST 100, total"), r("kvs LIST 100"), None),
        # A batch read answers 100 keys: its keys per second against as many single GETs.
        (
            "batch read 100, keys/s / GET 1 KiB",
            100 * r("kvs batch read 100"),
            r("kvs GET 1 KiB"),
            None,
        ),
        (
            "batch read 100 / pgbench get_entries",
            r("kvs batch read 100"),
            r("pgbench get_entries 100"),
            0.5,
        ),
        # A transaction of 2 checks and 2 sets against the two single PUTs it replaces.
        ("transaction 2+2 / 2 x PUT 1 KiB", r("kvs transaction 2+2"), r("kvs PUT 1 KiB") / 2, None),
        (
            "transaction 2+2 / pgbench transact",
            r("kvs transaction 2+2"),
            r("pgbench transact 2+2"),
            0.5,
        ),
        (
            "GET, 100k namespaces / 10",
            r("kvs GET 1 KiB, 100k namespaces"),
            r("kvs GET 1 KiB, 10 namespaces"),
            0.9,
        ),
        (
            "PUT, 100k namespaces / 10",
            r("kvs PUT 1 KiB, 100k namespaces"),
            r("kvs PUT 1 KiB, 10 namespaces"),
            0.9,
        ),
    ]
    out = [["measure", "kvs", "reference", "ratio", "target", "result"]]
    for name, ours, theirs, target in rows:
        ratio = ours / theirs
        if target is None:  # a cost to know, with no target set
            aim, verdict = "", "measured"
        else:
            aim, verdict = f"≥ {target}", "pass" if ratio >= target else "short"
        out.append([name, f"{ours:,.0f}/s", f"{theirs:,.0f}/s", f"{ratio:.2f}", aim, verdict])
    for op in ("GET", "PUT"):
        name = f"kvs {op} 1 KiB at half peak"
        p99 = results.p99(name)
        out.append(
            [
                f"p99, {op} 1 KiB at half peak ({r(name):,.0f}/s)",
                f"{p99:.2f} ms",
                "",
                "",
                "< 10 ms",
                "pass" if p99 < 10 else "short",
            ]
        )
    for op in ("GET", "PUT"):
        # "No worse": within a tenth (and 0.1 ms) of the same service without coalescing.
        ours, theirs = (
            results.p50(f"kvs {op} 1 KiB, 1 client{n}") for n in ("", ", no coalescing")
        )
        out.append(
            [
                f"p50, {op} 1 KiB at 1 client / no coalescing",
                f"{ours:.2f} ms",
                f"{theirs:.2f} ms",
                f"{ours / theirs:.2f}",
                "≤ 1.1",
                "pass" if ours <= max(1.1 * theirs, theirs + 0.1) else "short",
            ]
        )
    out.append(
        [
            "RSS peak growth, 64 x 1 MiB PUTs at once (x3)",
            f"{upload_growth:.1f} MiB",
            "",
            "",
            "< 192 MiB",
            "pass" if upload_growth < 192 else "short",
        ]
    )
    huge_before, huge_peak, huge_refused, huge_seconds = results.notes["rss_huge"].split()
    out.append(
        [
            "RSS peak, 64 x 16 MiB PUTs at once",
            f"{float(huge_peak):.0f} MiB (from {float(huge_before):.0f}; {huge_refused} x 503,"
            f" all stored in {huge_seconds} s)",
            "",
            "",
            "< 1 GiB",
            "pass" if float(huge_peak) < 1024 else "short",
        ]
    )
    drift = max(warm) - warm[0]
    flat = drift <= max(0.05 * warm[0], 10)
    out.append(
        [
            "RSS over the mixed run after warm-up",
            f"{warm[0]:.0f} → {warm[-1]:.0f} MiB (max {max(warm):.0f})",
            "",
            "",
            "flat (±5 %)",
            "pass" if flat else "short",
        ]
    )
    return out


def render(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def machine() -> str:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    mem = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    etcd_version = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout
    postgres = subprocess.run(
        [str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    return "\n".join(
        [
            f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- CPUs: {os.cpu_count()} ({cpu[1] if cpu else 'unknown'}),"
            f" memory {int(mem[1]) // 1024**2} GiB",
            f"- {platform.platform()}, Python {platform.python_version()}",
            f"- {postgres} (embedded, durable, initdb defaults), {wrk_version.strip()}, "
            f"etcd {etcd_version.split()[2] if etcd_version else '?'}",
            f"- every load: {CONNECTIONS} connections, 2 wrk threads or pgbench -j2 -M prepared,"
            " all on this host over 127.0.0.1",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short repetition (~3 min)")
    mode = QUICK if parser.parse_args().quick else FULL
    results = Results()
    started = time.monotonic()
    run(mode, results)
    processes = os.cpu_count() or 1
    kind = "quick" if mode is QUICK else "full"
    figures = [["figure", "rate (median)", "p50", "p99", "failed", "CPU, % of one core"]] + [
        [
            name,
            f"{results.rate(name):,.0f}/s",
            f"{statistics.median(x.p50_ms for x in loads):.2f} ms",
            f"{results.p99(name):.2f} ms",
            str(sum(x.failures for x in loads)),
            ", ".join(
                f"{label} {statistics.median(x.cpu[label] for x in loads):.0f}"
                for label in loads[0].cpu
            ),
        ]
        for name, loads in results.figures.items()
    ]
    report = (
        f"# Benchmark ({kind}: {mode.reps} x {mode.seconds} s per figure, {mode.keys:,} keys)\n\n"
        f"{machine()}\n\n## Targets\n\n{render(table(results, processes))}\n\n"
        f"## Figures\n\n{render(figures)}\n\n(pgbench p50 is its average latency; `machine` is"
        f" the whole host's CPU, load generator included, out of {100 * processes}.) "
        f"RSS of `kvs serve` in MiB: {results.notes['rss_before']} before the uploads, "
        f"{results.notes['rss_after_uploads']} at their peak; during the mixed run: "
        f"{results.notes['rss_soak']}.\nTook {time.monotonic() - started:.0f} s.\n"
    )
    print("\n" + report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(report)


if __name__ == "__main__":
    main()
