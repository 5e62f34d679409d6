"""The same wrk load against this tree and an earlier revision, alternated, on one PostgreSQL:
what a change costs, measured side by side (the machine's drift hits both alike).

    .venv/bin/python bench/compare.py REV [--op put|get|list] [--rounds 4] [--seconds 8] [--rate N]

REV is checked out into a temporary git worktree and served by the same interpreter. Each
tree gets a database of its own, migrated by its own migrations, with 100,000 1 KiB keys in
one namespace; `kvs serve` (one process per CPU) and `kvs worker` of each run side by side,
and wrk runs against one and then the other (the other first in every other round),
`--rounds` times: at full speed, or with
`--rate N` offering N requests a second in all (for latency at a given load). Prints each run's
rate and p99, the medians and their ratio. Needs wrk (Debian's `wrk`).
"""

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import aiohttp
import asyncpg

from service.devdb import temporary_postgres

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
KEYS = 100_000
sys.path.insert(0, str(BENCH))
from run import CONNECTIONS, copy_keys, free_port, process, wrk  # noqa: E402 - the bench's own helpers


@contextmanager
def worktree(rev: str):
    """The revision, checked out in a temporary directory for the block."""
    directory = Path(tempfile.mkdtemp(prefix="kvs-compare-")) / "tree"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(directory), rev],
        check=True,
        capture_output=True,
    )
    try:
        yield directory
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(directory)])
        shutil.rmtree(directory.parent, ignore_errors=True)


def kvs(tree: Path, *args: str, env: dict) -> str:
    """`kvs ARGS` of that tree (its `service` package comes first on the path)."""
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


async def create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def namespace_with_keys(port: int, token: str, dsn: str) -> str:
    """A provisioned namespace holding KEYS keys of 1 KiB; its id."""
    base = f"http://127.0.0.1:{port}/v2/storage/kvs"
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(base, json={"name": "bench"}) as resp:
            namespace = (await resp.json())["data"]["id"]
        for _ in range(200):
            async with session.get(f"{base}/{namespace}") as resp:
                if (await resp.json())["data"]["status"] == "provision_ok":
                    break
            await asyncio.sleep(0.05)
    conn = await asyncpg.connect(dsn)
    await copy_keys(conn, namespace, KEYS)
    await conn.close()
    return namespace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the revision to compare this tree against")
    parser.add_argument("--op", choices=["put", "get", "list"], default="put")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=float, help="offered requests/s, all connections together")
    args = parser.parse_args()
    delay_ms = round(CONNECTIONS * 1000 / args.rate, 2) if args.rate else 0
    script = BENCH / "lua" / "kv.lua"
    # Served from a neutral directory: each process imports the `service` of its PYTHONPATH.
    os.chdir(tempfile.gettempdir())
    rates: dict[str, list[float]] = {args.rev: [], "this tree": []}
    p99s: dict[str, list[float]] = {args.rev: [], "this tree": []}
    with ExitStack() as stack:
        postgres = stack.enter_context(temporary_postgres())
        trees = {args.rev: stack.enter_context(worktree(args.rev)), "this tree": REPO}
        targets = {}
        for number, (name, tree) in enumerate(trees.items()):
            dsn = asyncio.run(create_database(postgres.url(), f"compare{number}"))
            port = free_port()
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("KVS_")},
                "DATABASE_URL": dsn,
                "KVS_PORT": str(port),
                "KVS_METRICS_PORT": "0",
                "KVS_WORKER_METRICS_PORT": "0",
                "PYTHONPATH": str(tree),
            }
            kvs(tree, "migrate", env=env)
            token = kvs(tree, "tenant", "create", "bench", env=env).split("KV_API_KEY=")[1].strip()
            serve = [sys.executable, "-m", "service", "serve"]
            stack.enter_context(process(*serve, env=env, port=port))
            stack.enter_context(process(sys.executable, "-m", "service", "worker", env=env))
            namespace = asyncio.run(namespace_with_keys(port, token, dsn))
            targets[name] = (f"http://127.0.0.1:{port}", namespace, token)
            wrk(targets[name][0], script, args.op, namespace, token, KEYS, 1024, seconds=2)
        for round_ in range(args.rounds):
            # Each goes first every other round: whatever one run leaves behind (dirty pages,
            # WAL, garbage to vacuum) weighs on the next, and so on both alike.
            order = list(targets.items())
            for name, (url, namespace, token) in order if round_ % 2 == 0 else order[::-1]:
                load = wrk(
                    url,
                    script,
                    args.op,
                    namespace,
                    token,
                    KEYS,
                    1024,
                    delay_ms,
                    seconds=args.seconds,
                )
                rates[name].append(load.rate)
                p99s[name].append(load.p99_ms)
                print(
                    f"round {round_ + 1}: {name:>10}  {args.op.upper()} {load.rate:8,.0f}/s"
                    f"  p99 {load.p99_ms:6.2f} ms"
                )
    base, head = (statistics.median(r) for r in rates.values())
    base_p99, head_p99 = (statistics.median(p) for p in p99s.values())
    print(
        f"median {args.op.upper()} 1 KiB: {args.rev} {base:,.0f}/s (p99 {base_p99:.2f} ms),"
        f" this tree {head:,.0f}/s (p99 {head_p99:.2f} ms); rate ratio {head / base:.2f}"
    )


if __name__ == "__main__":
    main()
