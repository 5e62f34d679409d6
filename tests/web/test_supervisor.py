"""`kvs serve` owns its ports: a second server is refused, and no serving process outlives its
supervisor."""

import asyncio
import json
import signal
import socket

import pytest

from tests.support import KVS, children_of, closed_port, start_kvs_serve, stop_processes, worker_env


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def failed_start(database_url: str, **settings: str) -> tuple[int, list[str]]:
    """Runs a `kvs serve` expected to refuse to start: its exit code and its stderr lines."""
    env = worker_env(database_url, log_level="INFO", **settings)
    proc = await asyncio.create_subprocess_exec(
        *KVS, "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("the second server did not exit: it is serving") from None
    return proc.returncode, err.decode().splitlines()


def assert_one_clear_error(lines: list[str], words: str) -> None:
    errors = [json.loads(line) for line in lines if line.startswith("{")]
    errors = [e for e in errors if e["level"] == "error"]
    assert len(errors) == 1, lines
    assert words in errors[0]["msg"], errors[0]
    assert not any("Traceback" in line for line in lines), lines


@pytest.mark.parametrize("processes", ["1", "2"])
async def test_a_second_server_on_a_served_port_is_refused_at_once(database_url, processes):
    """Pass: while one `kvs serve` serves a port, a second one on it (with a metrics port of
    its own) exits 1 within seconds with one error line saying the port is in use, and the
    first goes on answering."""
    first, port = await start_kvs_serve(database_url, processes=processes)
    try:
        code, lines = await failed_start(
            database_url, port=str(port), processes=processes, metrics_port=str(closed_port())
        )
        assert code == 1
        assert_one_clear_error(lines, "in use")
        assert len(children_of(first.pid)) == (0 if processes == "1" else 2)
        assert listening(port)
    finally:
        await stop_processes(first)


async def test_a_supervisor_that_cannot_start_leaves_no_serving_process(database_url):
    """Pass: a supervisor whose metrics port is taken (by another server's) exits 1 with one
    error line, and nothing serves its API port afterwards: it found out before forking."""
    metrics_port = closed_port()
    first, _ = await start_kvs_serve(database_url, processes="2", metrics_port=str(metrics_port))
    try:
        api_port = closed_port()
        code, lines = await failed_start(
            database_url, port=str(api_port), processes="2", metrics_port=str(metrics_port)
        )
        assert code == 1
        assert_one_clear_error(lines, "in use")
        await asyncio.sleep(0.5)
        assert not listening(api_port)
    finally:
        await stop_processes(first)


async def test_serving_processes_stop_when_their_supervisor_is_sigkilled(database_url):
    """Pass: SIGKILL to the supervisor: both serving processes exit within the drain time
    (their channel to it closes) and the port stops accepting connections."""
    server, port = await start_kvs_serve(database_url, processes="2", drain_seconds="1")
    children = children_of(server.pid)
    assert len(children) == 2
    server.send_signal(signal.SIGKILL)
    await server.wait()
    deadline = asyncio.get_running_loop().time() + 10
    while any(_alive(pid) for pid in children):
        assert asyncio.get_running_loop().time() < deadline, "serving processes outlived it"
        await asyncio.sleep(0.05)
    assert not listening(port)


def _alive(pid: int) -> bool:
    """Whether the process runs (an orphan is reaped by init, so a zombie does not stay)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
