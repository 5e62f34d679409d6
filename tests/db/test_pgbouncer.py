"""The API through PgBouncer in transaction mode, as README's "Running on Kubernetes" documents.

Needs Debian's `pgbouncer` package (.ci/run installs it).
"""

import asyncio
import os

import aiohttp
from yarl import URL

from tests.support import KVS, closed_port, require_tool, stop_processes, worker_env
from tests.support.rawhttp import wait_until_serving

CLIENTS, ROUNDS = 16, 10


async def start_pgbouncer(database_url: str, tmp_path) -> tuple[asyncio.subprocess.Process, int]:
    """PgBouncer on loopback in transaction mode with two server connections, so the API's
    statements are spread over connections its pool does not choose."""
    pgbouncer = require_tool("pgbouncer", "pgbouncer")
    target, port = URL(database_url), closed_port()
    (tmp_path / "users.txt").write_text(f'"{target.user}" ""\n')
    (tmp_path / "pgbouncer.ini").write_text(
        f"""[databases]
kvs = host={target.host} port={target.port} dbname={target.path.lstrip("/")} user={target.user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {tmp_path / "users.txt"}
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
"""
    )
    # PgBouncer refuses to run as root; it reads its files first, then switches user.
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = await asyncio.create_subprocess_exec(
        pgbouncer, *as_user, str(tmp_path / "pgbouncer.ini"), stderr=asyncio.subprocess.PIPE
    )
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return proc, port
        except OSError:
            if proc.returncode is not None:
                raise AssertionError((await proc.stderr.read()).decode()) from None
            await asyncio.sleep(0.05)
    raise AssertionError("pgbouncer did not start")


async def test_the_api_works_through_pgbouncer_in_transaction_mode(database_url, tenant, tmp_path):
    bouncer, bouncer_port = await start_pgbouncer(database_url, tmp_path)
    api_port = closed_port()
    pooled = str(URL(database_url).with_port(bouncer_port).with_path("/kvs"))
    api_env = worker_env(
        pooled, port=str(api_port), db_statement_cache_size="0", log_level="WARNING"
    )
    procs = [
        bouncer,
        await asyncio.create_subprocess_exec(*KVS, "serve", env=api_env),
        # The worker LISTENs for new jobs, which needs a session: it connects directly.
        await asyncio.create_subprocess_exec(*KVS, "worker", env=worker_env(database_url)),
    ]
    api = f"http://127.0.0.1:{api_port}"
    try:
        await wait_until_serving(api_port)
        async with aiohttp.ClientSession(headers=tenant.headers) as session:
            async with session.post(f"{api}/v2/storage/kvs", json={"name": "bounced"}) as resp:
                assert resp.status == 201
                ns = (await resp.json())["data"]["id"]
            for _ in range(100):
                async with session.get(f"{api}/v2/storage/kvs/{ns}") as resp:
                    if (await resp.json())["data"]["status"] == "provision_ok":
                        break
                await asyncio.sleep(0.05)
            keys = f"{api}/v2/storage/kvs/{ns}/keys"

            async def client(n: int) -> list[str]:
                problems = []
                for i in range(ROUNDS):
                    value = f"{n}:{i}".encode() * 10
                    async with session.put(f"{keys}/c{n}-{i}", data=value) as resp:
                        if resp.status != 201:
                            problems.append(f"PUT {resp.status} {await resp.text()}")
                    async with session.get(f"{keys}/c{n}-{i}") as resp:
                        if resp.status != 200 or await resp.read() != value:
                            problems.append(f"GET {resp.status}")
                return problems

            results = await asyncio.gather(*(client(n) for n in range(CLIENTS)))
            assert [p for problems in results for p in problems] == []
            async with session.get(keys) as resp:
                assert resp.status == 200
                assert len((await resp.json())["data"]) == CLIENTS * ROUNDS
    finally:
        await stop_processes(*procs)
