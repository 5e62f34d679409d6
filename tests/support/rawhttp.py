"""A minimal HTTP/1.1 client over a raw socket, for what ordinary clients will not send."""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client managed to send before the answer came


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return RawResponse(status, headers, body, 0)


async def exchange(
    port: int, head: bytes, chunks: Iterable[bytes] = (), timeout: float = 30.0
) -> RawResponse:
    """Sends `head` then `chunks` until the server answers; returns the answer.

    Stops sending as soon as the response arrives, as a client that reads while it uploads
    does, so a refused 100 MiB upload costs only what was sent before the refusal.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        writer.write(head)
        answer = asyncio.create_task(read_response(reader))
        for chunk in chunks:
            if answer.done():
                break
            try:
                writer.write(chunk)
                await writer.drain()
            except ConnectionError:
                break
            sent += len(chunk)
        async with asyncio.timeout(timeout):
            response = await answer
        response.sent = sent
        return response
    finally:
        writer.close()


async def head_only(port: int, head: bytes, timeout: float = 5.0) -> RawResponse:
    """Sends only the request head, as a client awaiting `100 Continue` does; the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        async with asyncio.timeout(timeout):
            return await read_response(reader)
    finally:
        writer.close()


async def wait_until_serving(port: int) -> None:
    """Returns once something answers HTTP on the port (at most 10 s)."""
    for _ in range(200):
        try:
            await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing serves on port {port}")


def put_head(path: str, token: str, extra: str = "") -> bytes:
    return (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/octet-stream\r\n{extra}\r\n"
    ).encode()


def chunked(total: int, size: int = 65536) -> Iterable[bytes]:
    """`total` bytes in chunked framing (without the closing chunk if cut short)."""
    block = b"x" * size
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield f"{n:x}\r\n".encode() + block[:n] + b"\r\n"
        sent += n
    yield b"0\r\n\r\n"


def plain(total: int, size: int = 65536) -> Iterable[bytes]:
    block = b"x" * size
    for start in range(0, total, size):
        yield block[: min(size, total - start)]
