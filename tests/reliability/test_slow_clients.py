"""Slow clients beside normal ones: slowloris connections and a trickled upload."""

import asyncio
import json
import os
import time

from tests.support import start_kvs_serve, stop_processes
from tests.support.rawhttp import exchange, read_response

IDLE_TIMEOUT, BODY_TIMEOUT = 2.0, 3.0


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def slow_connection(port: int, trickle: bool) -> float:
    """Opens a connection that never completes a request head (sending nothing, or one header
    line every 0.5 s); returns the seconds until the server closed it (at most 30)."""
    opened = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if trickle:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        async with asyncio.timeout(30):
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(1024), timeout=0.5)
                except TimeoutError:
                    if trickle:
                        writer.write(b"X-Slow: 1\r\n")
                        await writer.drain()
                    continue
                if not data:
                    return time.monotonic() - opened
    except (ConnectionError, OSError):
        return time.monotonic() - opened
    finally:
        writer.close()


async def test_200_slowloris_connections_are_closed_and_normal_reads_stay_fast(
    database_url, tenant, namespace
):
    """Pass: with 100 connections sending nothing and 100 trickling header lines, every one is
    closed by the server within the idle timeout (2 s) plus 1.5 s; a normal client's GETs
    meanwhile keep a p99 under 100 ms and never fail; the server's open descriptors return to
    where they were."""
    server, port = await start_kvs_serve(
        database_url, processes="1", idle_timeout=str(IDLE_TIMEOUT)
    )
    try:
        auth = f"Authorization: Bearer {tenant.token}\r\n"
        path = f"/v2/storage/kvs/{namespace}/keys/steady"
        put = f"PUT {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 2\r\n\r\nok"
        assert (await exchange(port, put.encode())).status == 201
        get = f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode()
        before = open_descriptors(server.pid)
        slow = [asyncio.create_task(slow_connection(port, n % 2 == 1)) for n in range(200)]
        await asyncio.sleep(0.5)
        during = open_descriptors(server.pid)
        latencies, statuses = [], []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            started = time.monotonic()
            statuses.append((await exchange(port, get)).status)
            latencies.append(time.monotonic() - started)
        closed_after = await asyncio.gather(*slow)
        await asyncio.sleep(0.5)
        after = open_descriptors(server.pid)
    finally:
        await stop_processes(server)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    print(
        f"{len(latencies)} GETs, p99 {p99 * 1000:.1f} ms; slow connections closed after "
        f"{min(closed_after):.2f} to {max(closed_after):.2f} s; descriptors {before} before, "
        f"{during} with the slow connections, {after} after"
    )
    assert set(statuses) == {200}
    assert p99 < 0.1
    assert max(closed_after) < IDLE_TIMEOUT + 1.5
    assert during >= before + 150  # the slow connections were really open
    assert after <= before + 5


async def test_a_trickled_upload_gets_408_and_stores_nothing(database_url, tenant, namespace):
    """Pass: a PUT declaring 1,000 bytes and sending 10 every 0.5 s is answered 408 in the
    contract's shape once the body timeout (3 s) has passed, and the key does not exist."""
    server, port = await start_kvs_serve(
        database_url, processes="1", body_timeout=str(BODY_TIMEOUT)
    )
    try:
        auth = f"Authorization: Bearer {tenant.token}\r\n"
        path = f"/v2/storage/kvs/{namespace}/keys/trickled"
        head = f"PUT {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 1000\r\n\r\n".encode()

        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head)
            answering = asyncio.create_task(read_response(reader))
            while not answering.done() and time.monotonic() - started < 30:
                writer.write(b"x" * 10)
                await asyncio.sleep(0.5)
            answer = await answering
        finally:
            writer.close()
        elapsed = time.monotonic() - started
        missing = await exchange(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
    finally:
        await stop_processes(server)
    assert answer.status == 408, answer
    assert json.loads(answer.body)["errors"][0]["code"] == "75010"
    assert elapsed >= BODY_TIMEOUT
    assert missing.status == 404
