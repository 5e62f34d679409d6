"""A real Prometheus scrapes a real `kvs serve` and `kvs worker`; the test asks Prometheus.

Needs Debian's `prometheus` package (.ci/run installs it).
"""

import asyncio
import sys
import time

import aiohttp
import yaml

from tests.support import KVS, closed_port, require_tool, stop_processes, worker_env
from tests.support.rawhttp import wait_until_serving

PUTS, MISSES = 7, 3


async def query(session: aiohttp.ClientSession, base: str, promql: str) -> dict[str, float]:
    """Instant query; {job: value} over the result vector."""
    async with session.get(f"{base}/api/v1/query", params={"query": promql}) as resp:
        body = await resp.json()
    assert body["status"] == "success", body
    return {r["metric"].get("job", ""): float(r["value"][1]) for r in body["data"]["result"]}


async def eventually(check, timeout: float = 30.0):
    """Retries `check` (an async function returning a truthy value) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.5)


async def test_prometheus_scrapes_the_api_and_the_worker(database_url, tenant, tmp_path):
    prometheus = require_tool("prometheus", "prometheus")
    api_port, api_metrics, worker_metrics, prom_port = (closed_port() for _ in range(4))
    env = worker_env(
        database_url,
        port=str(api_port),
        metrics_port=str(api_metrics),
        worker_metrics_port=str(worker_metrics),
        stats_interval="0.5",
        processes="2",
        log_level="WARNING",
    )
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "kvs-api", "static_configs": [{"targets": [f"127.0.0.1:{api_metrics}"]}]},
            {
                "job_name": "kvs-worker",
                "static_configs": [{"targets": [f"127.0.0.1:{worker_metrics}"]}],
            },
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    procs = [
        await asyncio.create_subprocess_exec(*KVS, "serve", env=env),
        await asyncio.create_subprocess_exec(*KVS, "worker", env=env),
        await asyncio.create_subprocess_exec(
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        ),
    ]
    base, api = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{api_port}"
    try:
        await wait_until_serving(api_port)
        async with aiohttp.ClientSession(headers=tenant.headers) as session:
            async with session.post(f"{api}/v2/storage/kvs", json={"name": "scraped"}) as resp:
                assert resp.status == 201
                ns = (await resp.json())["data"]["id"]

            async def provisioned():
                async with session.get(f"{api}/v2/storage/kvs/{ns}") as resp:
                    return (await resp.json())["data"]["status"] == "provision_ok"

            assert await eventually(provisioned, timeout=10)
            for i in range(PUTS):
                async with session.put(f"{api}/v2/storage/kvs/{ns}/keys/k{i}", data=b"x") as r:
                    assert r.status == 201
            for i in range(MISSES):
                async with session.get(f"{api}/v2/storage/kvs/{ns}/keys/missing{i}") as r:
                    assert r.status == 404

            route = 'route="/v2/storage/kvs/{id}/keys/{key}"'
            expected = {
                "up": {"kvs-api": 1, "kvs-worker": 1},
                f'kvs_http_requests_total{{{route},method="PUT",status="201"}}': {"kvs-api": PUTS},
                f'kvs_http_requests_total{{{route},method="GET",status="404"}}': {
                    "kvs-api": MISSES
                },
                'kvs_worker_jobs_total{kind="provision",outcome="succeeded"}': {"kvs-worker": 1},
                "kvs_worker_provision_duration_seconds_count": {"kvs-worker": 1},
                'kvs_namespaces{status="provision_ok"}': {"kvs-worker": 1},
                "kvs_stored_keys": {"kvs-worker": PUTS},
                # The API's two processes, summed by their supervisor: 2 pools of 10.
                'kvs_db_pool_connections{state="max"}': {"kvs-api": 20, "kvs-worker": 10},
            }

            async def observed():
                seen = {promql: await query(session, base, promql) for promql in expected}
                return seen if seen == expected else None

            seen = await eventually(observed)
            if not seen:
                seen = {promql: await query(session, base, promql) for promql in expected}
            assert seen == expected
            series = await query(session, base, 'count({__name__=~"kvs_.+"}) by (job)')
            print(f"\nPrometheus sees {series}: {expected}", file=sys.stderr)
    finally:
        await stop_processes(*procs)
