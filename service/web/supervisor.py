"""`kvs serve`: one serving process, or a supervisor and one serving process per CPU sharing
the port.

The supervisor checks that the port is free, binds one SO_REUSEPORT listener per process (the
kernel spreads connections across them) and forks the processes; a second server on the same
port is refused at once instead of joining the group. It binds the metrics port before forking
too, so that nothing it does after forking can fail for want of a port. It serves the
processes' metrics, summed, on that port; it forwards SIGTERM and SIGINT (one that comes while
the processes start is held until they serve; a process signalled on its own stops the others
too), and if one process dies unexpectedly it stops the others and exits 1, so the pod
restarts whole. A serving process whose supervisor is gone (killed, even with SIGKILL) sees its
channel close and stops as on SIGTERM: none goes on serving alone.

Why not Gunicorn with aiohttp's worker: docs/ARCHITECTURE.md ("The supervisor").
"""

import asyncio
import logging
import os
import signal
import socket

import uvloop

from service.metrics import serve_merged_metrics
from service.settings import Settings
from service.web.runner import STOP_SIGNALS, PortInUse, bind_listener, serve

log = logging.getLogger("kvs")


def run(settings: Settings, host: str, port: int) -> int:
    """Serves the API until SIGTERM or SIGINT; the exit status. A failure to start is one log
    line and status 1."""
    processes = settings.processes or os.cpu_count() or 1
    try:
        if processes == 1:
            listener = bind_listener(host, port)
            uvloop.run(serve(settings, listener))
            return 0
        return _supervise(settings, host, port, processes)
    except (PortInUse, OSError) as err:
        log.error("cannot start: %s", err, extra={"host": host, "port": port})
        return 1


def _supervise(settings: Settings, host: str, port: int, processes: int) -> int:
    """Forks the serving processes and watches them; the exit status."""
    bind_listener(host, port).close()  # nothing else holds the port: ours alone will
    metrics_listener = bind_listener(settings.metrics_host, settings.metrics_port)
    # Each process serves its metrics on a loopback port of its own; the supervisor sums them.
    child_settings = settings.model_copy(update={"metrics_host": "127.0.0.1", "metrics_port": 0})
    # Until this process and each child have their handlers, SIGTERM and SIGINT wait instead of
    # killing them: a supervisor killed while its children start would leave them serving.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    children: dict[int, socket.socket] = {}
    running: set[int] = set()  # forked and not yet reaped: the only ones to signal
    try:
        for _ in range(processes):
            listener = bind_listener(host, port, reuse_port=True)
            ours, theirs = socket.socketpair()
            pid = os.fork()
            if pid == 0:
                for inherited in (ours, metrics_listener, *children.values()):
                    inherited.close()
                _serve_child(child_settings, listener, theirs)
            # A listener left open here would take its share of new connections and never
            # accept them once its process has closed its own copy.
            listener.close()
            theirs.close()
            children[pid] = ours
            running.add(pid)
        ports = []
        for channel in children.values():
            line = _read_line(channel)  # empty if the process died before serving
            if line:
                ports.append(int(line))
        if len(ports) < processes:
            log.error("a serving process failed to start; stopping the others")
            return 1
        return uvloop.run(_watch(children, running, ports, metrics_listener))
    finally:
        _signal_all(running, signal.SIGTERM)
        for pid in running:
            os.waitpid(pid, 0)


def _serve_child(settings: Settings, listener: socket.socket, channel: socket.socket) -> None:
    """The body of a forked serving process; never returns."""
    status = 1
    try:
        uvloop.run(serve(settings, listener, supervisor=channel))
        status = 0
    except BaseException:
        log.exception("serving process failed")
    finally:
        os._exit(status)


def _read_line(channel: socket.socket) -> str:
    """One line from a process's channel, read byte by byte so that nothing after it is
    consumed; empty if the channel closed first."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = channel.recv(1)
        if not byte:
            return ""
        line += byte
    return line.decode()


async def _watch(
    children: dict[int, socket.socket],
    running: set[int],
    ports: list[int],
    metrics_listener: socket.socket,
) -> int:
    """Serves the summed metrics, forwards signals and tells the processes when every listener
    is closed, until every process has exited (and is removed from `running`)."""
    loop = asyncio.get_running_loop()
    stopping = False
    listening = set(children)

    def stop(sig: signal.Signals) -> None:
        nonlocal stopping
        stopping = True
        _signal_all(running, sig)

    async def until_closed(pid: int, channel: socket.socket) -> None:
        channel.setblocking(False)
        await loop.sock_recv(channel, 16)  # "closed", or nothing if the process has exited
        listening.discard(pid)
        if not stopping:
            stop(signal.SIGTERM)
        if not listening:
            for each in children.values():
                try:
                    each.send(b"!")
                except OSError:
                    pass  # that process has exited

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    status = 0
    watchers = [asyncio.create_task(until_closed(*child)) for child in children.items()]
    async with serve_merged_metrics(ports, metrics_listener):
        while running:
            await asyncio.sleep(0.1)
            for pid in list(running):
                done, code = os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 - never blocks
                if done == 0:
                    continue
                running.discard(pid)
                if code != 0 or not stopping:
                    # A negative exit code names the signal that ended it, as subprocess's do.
                    exited = {"pid": pid, "exit_code": os.waitstatus_to_exitcode(code)}
                    log.error("a serving process exited", extra=exited)
                    status = 1
                    if not stopping:
                        stop(signal.SIGTERM)
    for watcher in watchers:
        watcher.cancel()
    return status


def _signal_all(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # exited, not yet reaped
