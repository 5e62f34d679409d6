"""Hostile and malformed HTTP against `kvs serve`: every answer a 4xx in the contract's JSON
shape, never a 500, nothing stored lost, and the process serving normally afterwards."""

import json

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import closed_port, start_kvs_serve, stop_processes
from tests.support.rawhttp import exchange

HOST = "Host: 127.0.0.1\r\n"


def requests(ns: str, token: str) -> dict[str, bytes]:
    """Name → raw request bytes. `ns` is a provisioned namespace of `token`'s tenant."""
    auth = f"Authorization: Bearer {token}\r\n"
    key = f"/v2/storage/kvs/{ns}/keys"
    put = f"PUT {key}/victim HTTP/1.1\r\n{HOST}{auth}"
    return {
        "huge header": f"GET {key}/k HTTP/1.1\r\n{HOST}{auth}X-Big: {'a' * 100_000}\r\n\r\n",
        "huge request line": f"GET {key}/{'a' * 100_000} HTTP/1.1\r\n{HOST}{auth}\r\n",
        "conflicting Content-Length": f"{put}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "Content-Length and chunked": (
            f"{put}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"
        ),
        "chunked twice": (
            f"{put}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        "unknown transfer coding": f"{put}Transfer-Encoding: gzip\r\n\r\nabcd",
        "bad chunk size": f"{put}Transfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n",
        "negative Content-Length": f"{put}Content-Length: -1\r\n\r\n",
        "NUL in a header": f"GET {key}/k HTTP/1.1\r\n{HOST}{auth}X-Evil: a\x00b\r\n\r\n",
        "control character in Content-Type": (
            f"{put}Content-Type: text/plain\x01\r\nContent-Length: 1\r\n\r\nx"
        ),
        "newline in Content-Type value": (
            f'{put}Content-Type: text/plain; a="b\r\n c"\r\nContent-Length: 1\r\n\r\nx'
        ),
        "header without a colon": f"GET {key}/k HTTP/1.1\r\n{HOST}{auth}NoColonHere\r\n\r\n",
        "space before the colon": f"GET {key}/k HTTP/1.1\r\n{HOST}{auth}X-A : b\r\n\r\n",
        "bad method": f"G@T {key}/k HTTP/1.1\r\n{HOST}{auth}\r\n",
        "bad HTTP version": f"GET {key}/k HTTP/9.9\r\n{HOST}{auth}\r\n",
        "HTTP/2 preface": "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "TLS hello": "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + "\x00" * 40 + "\r\n\r\n",
        "bad UUID": f"GET /v2/storage/kvs/not-a-uuid/keys/k HTTP/1.1\r\n{HOST}{auth}\r\n",
        "traversal": f"GET {key}/..%2F..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\n{HOST}{auth}\r\n",
        "encoded NUL in key": f"GET {key}/a%00b HTTP/1.1\r\n{HOST}{auth}\r\n",
        "overlong UTF-8 slash": f"GET {key}/a%C0%AFb HTTP/1.1\r\n{HOST}{auth}\r\n",
        "fullwidth slash": f"GET {key}/a%EF%BC%8Fb HTTP/1.1\r\n{HOST}{auth}\r\n",
        "right-to-left override": f"GET {key}/a%E2%80%AEb HTTP/1.1\r\n{HOST}{auth}\r\n",
        "bad percent encoding": f"GET {key}/a%zzb HTTP/1.1\r\n{HOST}{auth}\r\n",
        "Expect on a GET": f"GET {key}/k HTTP/1.1\r\n{HOST}{auth}Expect: teapot\r\n\r\n",
        "two expectations on a listing": (
            f"GET {key} HTTP/1.1\r\n{HOST}{auth}Expect: 100-continue, teapot\r\n\r\n"
        ),
        "Expect on a namespace": (
            f"GET /v2/storage/kvs/{ns} HTTP/1.1\r\n{HOST}{auth}Expect: x\r\n\r\n"
        ),
        "Expect on a path no route matches": (
            f"GET /nowhere HTTP/1.1\r\n{HOST}{auth}Expect: teapot\r\n\r\n"
        ),
        "Expect with a method the route lacks": (
            f"PATCH {key}/k HTTP/1.1\r\n{HOST}{auth}Expect: teapot\r\n\r\n"
        ),
        "absolute URI to elsewhere": f"GET http://evil.example{key}/k HTTP/1.1\r\n{HOST}{auth}\r\n",
    }


@pytest.fixture
async def serving(database_url, tenant, namespace):
    metrics_port = closed_port()
    server, port = await start_kvs_serve(
        database_url, processes="1", metrics_port=str(metrics_port)
    )
    yield port, metrics_port
    await stop_processes(server)


async def answers_counted(metrics_port: int) -> float:
    """The sum of kvs_http_requests_total over every route, method and status."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
            text = await resp.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "kvs_http_requests"
        for sample in family.samples
        if sample.name == "kvs_http_requests_total"
    )


async def test_malformed_and_hostile_requests_get_4xx_json_and_harm_nothing(
    serving, tenant, namespace
):
    """Pass: for each request in `requests`, a 4xx whose body is the contract's error JSON,
    each counted in kvs_http_requests_total (those aiohttp refuses before any middleware too);
    afterwards the key stored before reads back unchanged and the server still answers."""
    port, metrics_port = serving
    auth = f"Authorization: Bearer {tenant.token}\r\n"
    path = f"/v2/storage/kvs/{namespace}/keys/victim"
    stored = await exchange(
        port, f"PUT {path} HTTP/1.1\r\n{HOST}{auth}Content-Length: 4\r\n\r\nsafe".encode()
    )
    assert stored.status == 201
    counted_before = await answers_counted(metrics_port)
    answers = {}
    for name, raw in requests(str(namespace), tenant.token).items():
        response = await exchange(port, raw.encode("latin-1"), timeout=10)
        answers[name] = response.status
        assert 400 <= response.status < 500, (name, response)
        assert response.headers["content-type"].startswith("application/json"), (name, response)
        error = json.loads(response.body)["errors"][0]
        assert error["code"] and error["title"] and error["detail"], (name, error)
    print(answers)
    assert await answers_counted(metrics_port) - counted_before == len(answers)
    get = f"GET {path} HTTP/1.1\r\n{HOST}{auth}\r\n".encode()
    after = await exchange(port, get)
    assert (after.status, after.body) == (200, b"safe")
