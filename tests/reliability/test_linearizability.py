"""Per-key linearizability of the keys API under 64 concurrent clients, and the same workload
against a store that serves stale reads, which the checker must catch."""

import random
import time

import aiohttp
from aiohttp import web

from service.web.app import create_app
from tests.reliability.harness import Recorder, mixed_clients

KEYS = [f"reg{i}" for i in range(8)]


async def test_10_000_mixed_operations_from_64_clients_are_linearizable_per_key(
    aiohttp_server, settings, tenant, namespace
):
    """Pass: every key's history of PUT/GET/DELETE (bodies 0 B to 4 KiB, each write with a
    Content-Type of its own) has a legal order; every answer is 200, 201, 204 or 404."""
    server = await aiohttp_server(create_app(settings))
    async with aiohttp.ClientSession() as session:
        recorder = Recorder(session, server.make_url(""), namespace, tenant.token)
        started = time.monotonic()
        await mixed_clients(recorder, clients=64, operations=10_000, keys=KEYS)
        elapsed = time.monotonic() - started
    statuses = recorder.statuses()
    print(f"10,000 operations in {elapsed:.1f} s: {dict(statuses)}")
    assert {status for _, status in statuses} <= {200, 201, 204, 404}
    assert sum(statuses.values()) == 10_000
    assert sum(len(ops) for ops in recorder.history.values()) == 10_000
    assert recorder.not_linearizable() == []


def stale_store() -> web.Application:
    """A key-value store that sometimes answers a read with the value before the latest."""
    values: dict[str, list[tuple[bytes, str] | None]] = {}
    rng = random.Random(3)

    async def put(request: web.Request) -> web.Response:
        body = await request.read()
        values.setdefault(request.match_info["key"], []).append((body, request.content_type))
        return web.Response(status=201)

    async def get(request: web.Request) -> web.Response:
        versions = values.get(request.match_info["key"], [None])
        stale = len(versions) > 1 and rng.random() < 0.1
        entry = versions[-2] if stale else versions[-1]
        if entry is None:
            return web.Response(status=404)
        return web.Response(body=entry[0], headers={"Content-Type": entry[1]})

    async def delete(request: web.Request) -> web.Response:
        values.setdefault(request.match_info["key"], []).append(None)
        return web.Response(status=204)

    app = web.Application()
    path = "/v2/storage/kvs/{id}/keys/{key}"
    app.router.add_put(path, put)
    app.router.add_get(path, get)
    app.router.add_delete(path, delete)
    return app


async def test_the_checker_catches_a_store_that_serves_stale_reads(aiohttp_server):
    """Pass: the same workload against `stale_store` (one read in ten answered with the value
    before the latest) leaves keys whose history the checker rejects."""
    server = await aiohttp_server(stale_store())
    async with aiohttp.ClientSession() as session:
        recorder = Recorder(session, server.make_url(""), "ns", "token")
        await mixed_clients(recorder, clients=64, operations=3000, keys=KEYS)
    assert len(recorder.not_linearizable()) >= 1
