"""The Python HTTP ceiling: a bare aiohttp app on uvloop, no database, no middleware.

    python bench/ceiling.py PORT [PROCESSES]

GET / answers 13 bytes. With PROCESSES > 1 the processes share the port (SO_REUSEPORT), as
`kvs serve` does. Runs until SIGTERM.
"""

import os
import signal
import sys

import uvloop
from aiohttp import web

BODY = b"hello, world\n"


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="text/plain")


def serve(port: int, reuse_port: bool) -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
        reuse_port=reuse_port,
        loop=uvloop.new_event_loop(),
    )


def main() -> None:
    port = int(sys.argv[1])
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    if processes == 1:
        serve(port, reuse_port=False)
        return
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            serve(port, reuse_port=True)
            os._exit(0)
        children.append(pid)

    def stop(signum, frame):
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        os.waitpid(child, 0)


if __name__ == "__main__":
    main()
