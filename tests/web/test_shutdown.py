"""Graceful shutdown of `kvs serve`: SIGTERM under load resets nothing and loses nothing."""

import asyncio
import errno
import os
import signal
import time

import aiohttp
import pytest

from tests.support import KVS, children_of, closed_port, start_kvs_serve, worker_env
from tests.support.rawhttp import put_head, read_response
from tests.support.workers import WorkerProcess, new_namespace, status_of

CLIENTS = 8


async def exit_code(server: asyncio.subprocess.Process, within: float) -> int:
    try:
        return await asyncio.wait_for(server.wait(), timeout=within)
    except TimeoutError:
        server.kill()
        await server.wait()
        raise AssertionError(f"the server did not exit within {within} s") from None


def refused(err: Exception) -> bool:
    """True for a connection the server never accepted: the clean way to turn clients away."""
    return (
        isinstance(err, aiohttp.ClientConnectorError) and err.os_error.errno == errno.ECONNREFUSED
    )


async def test_sigterm_under_load_resets_nothing_and_loses_no_acknowledged_write(
    database_url, db, tenant, namespace
):
    server, port = await start_kvs_serve(database_url, drain_seconds="5", shutdown_timeout="5")
    acknowledged: dict[str, bytes] = {}
    failures: list[str] = []
    closes_announced = 0
    sigterm_at = None

    async def client(n: int) -> None:
        nonlocal closes_announced
        # One keep-alive connection per client, reused for as long as the server allows.
        connector = aiohttp.TCPConnector(limit=1, force_close=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            for i in range(100_000):
                key, body = f"c{n}-{i}", f"value {n} {i}".encode()
                url = f"http://127.0.0.1:{port}/v2/storage/kvs/{namespace}/keys/{key}"
                try:
                    async with session.put(url, data=body, headers=tenant.headers) as resp:
                        await resp.read()
                        if resp.status != 201:
                            failures.append(f"{key}: {resp.status}")
                            return
                        acknowledged[key] = body
                        if resp.headers.get("Connection", "").lower() == "close":
                            closes_announced += 1
                except aiohttp.ClientError as err:
                    if not refused(err):
                        errno_ = getattr(getattr(err, "os_error", err), "errno", None)
                        failures.append(f"{key}: {type(err).__name__} (errno {errno_}): {err}")
                    return
                if sigterm_at is not None and time.monotonic() - sigterm_at > 30:
                    failures.append("the server kept accepting requests after SIGTERM")
                    return

    clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
    await asyncio.sleep(1.0)
    acknowledged_before = len(acknowledged)
    server.send_signal(signal.SIGTERM)
    sigterm_at = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*clients), timeout=60)
    code = await exit_code(server, within=15)

    assert failures == []
    assert code == 0
    assert acknowledged_before > 50, "the load never got going"
    # Requests already on their way when SIGTERM came were answered, closing their connection.
    assert closes_announced >= 1
    rows = await db.fetch("SELECT key, value FROM kv_entries WHERE namespace_id = $1", namespace)
    stored = {row["key"]: row["value"] for row in rows}
    missing = [k for k, v in acknowledged.items() if stored.get(k) != v]
    assert missing == [], f"{len(missing)} of {len(acknowledged)} acknowledged writes lost"
    print(f"\nshutdown under load: {len(acknowledged)} writes acknowledged, all stored")


async def test_sigterm_fails_readiness_at_once_and_lets_a_running_request_finish(
    database_url, db, tenant, namespace
):
    server, port = await start_kvs_serve(database_url, drain_seconds="30", shutdown_timeout="30")
    path = f"/v2/storage/kvs/{namespace}/keys/slow"
    upload_reader, upload = await asyncio.open_connection("127.0.0.1", port)
    upload.write(put_head(path, tenant.token, "Content-Length: 10\r\n") + b"12345")
    await upload.drain()
    probe_reader, probe = await asyncio.open_connection("127.0.0.1", port)
    probe.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_response(probe_reader)).status == 200
    await asyncio.sleep(0.2)  # the server is reading the upload's body

    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    probe.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
    ready = await read_response(probe_reader)
    assert (ready.status, ready.headers["connection"]) == (503, "close")
    assert ready.body.startswith(b'{"errors": [{"code": "75005"')

    upload.write(b"67890")
    answer = await read_response(upload_reader)
    assert (answer.status, answer.headers["connection"]) == (201, "close")
    # Both connections are closed now, so the server need not wait out drain_seconds.
    assert await exit_code(server, within=10) == 0
    assert time.monotonic() - started < 10
    stored = await db.fetchval(
        "SELECT value FROM kv_entries WHERE namespace_id = $1 AND key = 'slow'", namespace
    )
    assert stored == b"1234567890"
    for writer in (upload, probe):
        writer.close()


async def test_a_request_that_never_finishes_delays_exit_only_by_the_shutdown_timeout(
    database_url, tenant, namespace
):
    server, port = await start_kvs_serve(database_url, drain_seconds="1", shutdown_timeout="2")
    path = f"/v2/storage/kvs/{namespace}/keys/stuck"
    reader, upload = await asyncio.open_connection("127.0.0.1", port)
    upload.write(put_head(path, tenant.token, "Content-Length: 10\r\n") + b"12345")
    await upload.drain()
    await asyncio.sleep(0.2)
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert await exit_code(server, within=15) == 0
    assert 1 <= time.monotonic() - started < 8
    assert await reader.read() == b""  # closed without an answer: nothing was acknowledged
    upload.close()


async def serving_processes(server: asyncio.subprocess.Process) -> list[int]:
    """The PIDs of the serving processes `kvs serve` (a supervisor) has forked, once each has
    its SIGTERM handler: the port answering shows only that one of them serves."""
    pids = children_of(server.pid)
    deadline = time.monotonic() + 10
    while not all(map(catches_sigterm, pids)):
        assert time.monotonic() < deadline, "the serving processes never handled SIGTERM"
        await asyncio.sleep(0.05)
    return pids


def catches_sigterm(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as status:
        caught = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
    return bool(caught & 1 << (signal.SIGTERM - 1))


@pytest.mark.parametrize(
    ("sig", "status"),
    [(signal.SIGTERM, 0), (signal.SIGKILL, 1)],
    ids=["sigterm-stops-the-pod-cleanly", "death-stops-the-pod-with-exit-1"],
)
async def test_one_serving_process_signalled_stops_them_all(database_url, sig, status):
    """SIGTERM to one serving process shuts the pod down as SIGTERM to the supervisor would
    (exit 0); a process dying stops the others and the supervisor exits 1."""
    server, port = await start_kvs_serve(database_url, processes="2")
    first, second = await serving_processes(server)
    os.kill(first, sig)
    assert await exit_code(server, within=15) == status
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_sigterm_while_the_serving_processes_start_stops_them_all_with_exit_0(database_url):
    port = closed_port()
    env = worker_env(database_url, port=str(port), processes="2", log_level="WARNING")
    server = await asyncio.create_subprocess_exec(*KVS, "serve", env=env)
    deadline = time.monotonic() + 10
    while len(pids := children_of(server.pid)) < 2:
        assert time.monotonic() < deadline, "the serving processes were never forked"
        await asyncio.sleep(0.01)
    server.send_signal(signal.SIGTERM)  # before either serves: creating the app takes longer
    assert await exit_code(server, within=15) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_sigterm_lets_the_worker_finish_its_job_then_exit_0(database_url, db, tenant):
    worker = await WorkerProcess(database_url, failpoints="provision.start=sleep:1").start()
    ns = await new_namespace(db, tenant.id)
    await worker.wait_for(lambda e: e["msg"] == "failpoint")  # in the job, sleeping
    assert await worker.stop() == 0
    assert [job["outcome"] for job in worker.jobs()] == ["succeeded"]
    assert await status_of(db, ns.id) == "provision_ok"
