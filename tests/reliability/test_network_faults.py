"""Faults on the network between the service and PostgreSQL, through `FaultyProxy`."""

import asyncio
import time

import aiohttp
import pytest
from yarl import URL

from service.web.app import create_app
from tests.reliability.tcpproxy import FaultyProxy
from tests.support import key_url, make_settings

COMMAND_TIMEOUT, CONNECT_TIMEOUT, ACQUIRE_TIMEOUT = 2.0, 1.0, 1.0
# The longest a database call may take (service/db/pool.py), and some slack for the HTTP around it.
DEADLINE = ACQUIRE_TIMEOUT + COMMAND_TIMEOUT + 0.5


@pytest.fixture
async def proxied(aiohttp_server, database_url, tenant, namespace):
    """The service, connected to the database through a proxy; a session on it; the proxy."""
    upstream = URL(database_url)
    proxy = await FaultyProxy(upstream.port).start()
    settings = make_settings(
        str(upstream.with_port(proxy.port)),
        db_command_timeout=COMMAND_TIMEOUT,
        db_connect_timeout=CONNECT_TIMEOUT,
        db_acquire_timeout=ACQUIRE_TIMEOUT,
    )
    server = await aiohttp_server(create_app(settings))
    session = aiohttp.ClientSession(
        base_url=server.make_url(""), headers={"Authorization": f"Bearer {tenant.token}"}
    )
    async with session.put(key_url(namespace, "k"), data=b"before") as resp:
        assert resp.status == 201
    yield session, proxy
    await session.close()
    await proxy.close()


async def timed(session: aiohttp.ClientSession, method: str, url, **kwargs):
    started = time.monotonic()
    async with session.request(method, url, **kwargs) as resp:
        await resp.read()
        return resp.status, resp.headers.get("Retry-After"), time.monotonic() - started


async def test_a_blackholed_database_gives_503_or_504_by_the_deadline_and_healthz_stays_fast(
    proxied, namespace
):
    """Pass: while nothing gets through to the database, 30 concurrent GETs and PUTs each end
    within acquire + command timeout + 0.5 s with 503 or 504 (503 with Retry-After), /healthz
    answers in under 100 ms meanwhile, and once traffic flows again a write succeeds within
    5 s."""
    session, proxy = proxied
    proxy.blackhole = True
    requests = [
        timed(session, "GET", key_url(namespace, "k"))
        if n % 2
        else timed(session, "PUT", key_url(namespace, f"b{n}"), data=b"x")
        for n in range(30)
    ]
    load = asyncio.gather(*requests)
    await asyncio.sleep(0.3)
    health = [await timed(session, "GET", "/healthz") for _ in range(5)]
    answers = await load
    proxy.blackhole = False
    restored = time.monotonic()
    while True:
        status, _, _ = await timed(session, "PUT", key_url(namespace, "after"), data=b"y")
        if status in (200, 201) or time.monotonic() - restored > 5:
            break
        await asyncio.sleep(0.1)
    print(
        f"answers {sorted({a[0] for a in answers})}, slowest {max(a[2] for a in answers):.2f} s; "
        f"healthz slowest {max(h[2] for h in health) * 1000:.1f} ms; "
        f"a write succeeded {time.monotonic() - restored:.2f} s after the blackhole ended"
    )
    assert {a[0] for a in answers} <= {503, 504}
    assert all(a[1] for a in answers if a[0] == 503)
    assert max(a[2] for a in answers) < DEADLINE
    assert all(h[0] == 200 and h[2] < 0.1 for h in health)
    assert status in (200, 201)


async def test_reset_connections_answer_at_most_503_and_the_service_recovers_at_once(
    proxied, namespace
):
    """Pass: after every database connection is reset, reads succeed (sent again on a new
    connection), writes answer 2xx or 503, never 500, and the next writes succeed."""
    session, proxy = proxied
    for round_ in range(5):
        proxy.reset()
        answers = await asyncio.gather(
            *(timed(session, "GET", key_url(namespace, "k")) for _ in range(5)),
            *(
                timed(session, "PUT", key_url(namespace, f"r{round_}-{n}"), data=b"x")
                for n in range(5)
            ),
        )
        reads, writes = answers[:5], answers[5:]
        assert {r[0] for r in reads} == {200}, reads
        assert {w[0] for w in writes} <= {200, 201, 503}, writes
    status, _, _ = await timed(session, "PUT", key_url(namespace, "last"), data=b"z")
    assert status == 201


async def test_latency_slows_requests_but_fails_none(proxied, namespace):
    """Pass: with 100 ms added to every packet each way (connections to open included), GETs
    and PUTs succeed, each taking at least one round trip and ending within the deadline of a
    database call (opening a connection takes several round trips)."""
    session, proxy = proxied
    proxy.latency = 0.1
    answers = await asyncio.gather(
        *(timed(session, "GET", key_url(namespace, "k")) for _ in range(5)),
        *(timed(session, "PUT", key_url(namespace, f"l{n}"), data=b"x") for n in range(5)),
    )
    assert {a[0] for a in answers} <= {200, 201}, answers
    assert all(0.2 <= a[2] < ACQUIRE_TIMEOUT + COMMAND_TIMEOUT for a in answers), answers
