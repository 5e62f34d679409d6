"""The Python client's sans-I/O core (kvs_client._core) driven by hand: the requests each
operation makes and what it makes of the answers, with no server."""

import json

import pytest
from kvs_client import KvEntry, KvError, KvProtocolError, KvValueTooLarge, encode_key
from kvs_client import _core as core


def answer(status: int, document=None, content_type="application/json") -> core.HttpResponse:
    body = b"" if document is None else json.dumps(document).encode()
    return core.HttpResponse(status, body, content_type)


def error(status: int, code: str, detail: str, source=None) -> core.HttpResponse:
    entry = {"code": code, "title": "t", "detail": detail}
    if source is not None:
        entry["source"] = source
    return answer(status, {"errors": [entry]})


def drive(exchange, respond):
    """Runs an exchange, answering each request with respond(request); (result, requests)."""
    requests = []
    try:
        request = next(exchange)
        while True:
            requests.append(request)
            request = exchange.send(respond(request))
    except StopIteration as done:
        return done.value, requests


def entry(name: str, value, version: int = 1) -> dict:
    return {"key": name, "etag": f'"{version}"', "encoding": "json", "data": value}


P = encode_key(["notes", "alice"])


@pytest.mark.parametrize(
    ("selector", "query"),
    [
        ({}, {}),
        ({"prefix": []}, {}),
        ({"prefix": ["notes", "alice"]}, {"prefix": P, "start": P + "0"}),
        (
            {"prefix": ["notes", "alice"], "start": ["notes", "alice", "n2"]},
            {"prefix": P, "start": encode_key(["notes", "alice", "n2"])},
        ),
        ({"prefix": ["notes", "alice"], "start": ["a"]}, {"prefix": P, "start": P + "0"}),
        (
            {"prefix": ["notes", "alice"], "end": ["notes", "alice", "n3"]},
            {"prefix": P, "start": P + "0", "end": encode_key(["notes", "alice", "n3"])},
        ),
        ({"start": ["a"], "end": ["b"]}, {"start": encode_key(["a"]), "end": encode_key(["b"])}),
    ],
)
def test_selectors_become_the_contracts_listing_bounds(selector, query):
    args = (selector.get("prefix"), selector.get("start"), selector.get("end"))
    assert core.list_query(*args) == query


def test_a_listing_asks_for_values_and_total_and_decodes_its_page():
    page = {
        "data": [entry(encode_key(["a", 1]), {"v": 1}), {**entry("raw-name", 2)}],
        "meta": {"cursor": "c2", "has_more": True, "total": 7},
    }
    result, [request] = drive(core.list_(["a"], limit=2, reverse=True), lambda r: answer(200, page))
    assert request.method == "GET" and request.path == "keys"
    assert request.params == {
        "prefix": encode_key(["a"]),
        "start": encode_key(["a"]) + "0",
        "limit": "2",
        "values": "true",
        "total": "true",
        "reverse": "true",
    }
    assert result == core.KvListResponse([KvEntry(("a", 1), {"v": 1})], 7, "c2")


def test_a_listing_without_the_values_it_asked_for_is_a_protocol_error():
    page = {"data": [{"key": encode_key(["a"])}], "meta": {"cursor": None, "has_more": False}}
    with pytest.raises(KvProtocolError):
        drive(core.list_(), lambda r: answer(200, page))


def test_get_many_reads_in_batches_of_1000_and_halves_a_batch_refused_as_too_large():
    keys = [["k", i] for i in range(2100)]

    def respond(request):
        names = json.loads(request.body)["keys"]
        if len(names) > 600:
            return error(413, "75004", "too large")
        return answer(200, {"data": [entry(n, n) for n in names]})

    found, requests = drive(core.get_many(keys), respond)
    sizes = [len(json.loads(r.body)["keys"]) for r in requests]
    assert sizes == [1000, 500, 500, 1000, 500, 500, 100]
    assert [e.key for e in found] == [tuple(k) for k in keys]
    assert all(r.path == "batch-read" and r.content_type == "application/json" for r in requests)


def test_a_single_key_refused_as_too_large_is_an_error():
    with pytest.raises(KvError) as refused:
        drive(core.get_many([["k"]]), lambda r: error(413, "75004", "too large"))
    assert refused.value.status == 413


def test_get_tells_a_missing_key_from_a_missing_namespace():
    missing_key = error(404, "10005", "The key does not exist.", {"parameter": "key"})
    assert drive(core.get(["a"]), lambda r: missing_key)[0] is None
    assert drive(core.delete(["a"]), lambda r: missing_key)[0] is None
    missing_namespace = error(404, "10005", "Not found.", {"parameter": "id"})
    with pytest.raises(KvError):
        drive(core.get(["a"]), lambda r: missing_namespace)


def test_set_puts_compact_json_with_its_ttl():
    _, [request] = drive(core.set_(["a"], {"b": [1, "é"]}, 60), lambda r: answer(201))
    assert request.method == "PUT" and request.path == "keys/" + encode_key(["a"])
    assert request.params == {"ttl_secs": "60"}
    assert request.body == '{"b":[1,"é"]}'.encode()
    assert request.content_type == "application/json"


def test_a_413_on_set_says_what_redocly_says_with_the_servers_limit():
    refusal = error(413, "75004", "A value in this namespace is at most 500000 bytes.")
    with pytest.raises(KvValueTooLarge) as refused:
        drive(core.set_(["a"], "x" * 600_000), lambda r: refusal)
    assert str(refused.value) == (
        "Value size (585.94 KB) exceeds the maximum allowed size of 0.48 MB (488.28 KB)"
    )


def test_an_error_without_the_error_shape_keeps_its_text():
    broken = core.HttpResponse(502, b"Bad gateway", "text/plain")
    with pytest.raises(KvError) as refused:
        drive(core.get(["a"]), lambda r: broken)
    assert (refused.value.status, refused.value.code, refused.value.detail) == (
        502,
        None,
        "Bad gateway",
    )


def test_a_transaction_commits_its_reads_as_checks_and_its_last_writes_as_operations():
    tx = core.TransactionState()
    a, b, c = encode_key(["a"]), encode_key(["b"]), encode_key(["c"])
    reads = {a: entry(a, {"n": 1}, 17), b: None}

    def respond(request):
        return answer(200, {"data": [reads[n] for n in json.loads(request.body)["keys"]]})

    found, _ = drive(tx.get_many([["a"], ["b"], ["a"]]), respond)
    assert found == [KvEntry(("a",), {"n": 1}), None, KvEntry(("a",), {"n": 1})]
    tx.set(["a"], {"n": 2}, ttl_in_seconds=5)
    tx.set(["c"], 1)
    tx.set(["c"], [3])
    tx.delete(["b"])
    assert drive(tx.get_many([["a"], ["b"]]), respond)[1] == []  # no read: its own writes

    done, [request] = drive(tx.commit(), lambda r: answer(200, {"data": {"operations": []}}))
    assert done is None and request.path == "transaction"
    assert json.loads(request.body) == {
        "checks": [{"key": a, "etag": '"17"'}, {"key": b, "etag": None}],
        "operations": [
            {
                "op": "set",
                "key": a,
                "encoding": "json",
                "content_type": "application/json",
                "ttl_secs": 5,
                "data": {"n": 2},
            },
            {
                "op": "set",
                "key": c,
                "encoding": "json",
                "content_type": "application/json",
                "data": [3],
            },
            {"op": "delete", "key": b},
        ],
    }


def test_a_failed_check_is_handed_back_not_raised():
    tx = core.TransactionState()
    tx.delete(["a"])
    conflict = error(412, "75007", "A check failed.", {"pointer": "/checks/0"})
    found, _ = drive(tx.commit(), lambda r: conflict)
    assert (found.status, found.code, found.source) == (412, "75007", {"pointer": "/checks/0"})


def test_an_empty_transaction_sends_nothing():
    assert drive(core.TransactionState().commit(), pytest.fail) == (None, [])


def test_backoff_grows_from_10_ms_to_at_most_a_second_with_jitter():
    for attempt, ceiling in [(0, 0.01), (1, 0.02), (3, 0.08), (6, 0.64), (7, 1.0), (30, 1.0)]:
        waits = [core.backoff_seconds(attempt) for _ in range(200)]
        assert 0 <= min(waits) and max(waits) <= ceiling
        assert max(waits) > ceiling / 2  # spread over the range, not fixed


@pytest.mark.parametrize(
    ("pointer", "detail", "message"),
    [
        (
            "/operations/1/data",
            "A value in this namespace is at most 1048576 bytes.",
            "Value size (2048.00 KB) exceeds the maximum allowed size of 1 MB (1024 KB)",
        ),
        (
            "/operations",
            "A transaction's values total at most 10485760 bytes.",
            "Value size (2049.00 KB) exceeds the maximum allowed size of 10 MB (10240 KB)",
        ),
    ],
)
def test_a_413_on_commit_names_the_value_or_the_total(pointer, detail, message):
    tx = core.TransactionState()
    tx.set(["small"], "x" * 1022)  # 1 KB with its quotes
    tx.set(["big"], "x" * (2 * 1024 * 1024 - 2))
    tx.delete(["gone"])
    with pytest.raises(KvValueTooLarge) as refused:
        drive(tx.commit(), lambda r: error(413, "75004", detail, {"pointer": pointer}))
    assert str(refused.value) == message
