"""The Python client (clients/python) against a live `kvs serve`: Redocly's examples with the
sync and the async client, TTLs, batch reads, transactions and the errors of bad input."""

import asyncio
import random
import time
from functools import cmp_to_key

import httpx
import pytest
from kvs_client import (
    AsyncKv,
    Kv,
    KvConflict,
    KvEntry,
    KvError,
    KvValueTooLarge,
    encode_key,
)

from tests.clients import redocly_examples as ex
from tests.clients.key_order import redocly_compare

ALICE, BOB = "alice@example.com", "bob@example.com"
MIB = 1024 * 1024


@pytest.fixture
def kv(live_kv):
    with Kv(live_kv.base_url, live_kv.api_key, live_kv.namespace) as client:
        yield client


@pytest.fixture
async def akv(live_kv):
    async with AsyncKv(live_kv.base_url, live_kv.api_key, live_kv.namespace) as client:
        yield client


def raw_names(live_kv) -> list[str]:
    """Every key name in the namespace, read without the client."""
    answer = httpx.get(
        f"{live_kv.base_url}/v2/storage/kvs/{live_kv.namespace}/keys",
        headers={"Authorization": f"Bearer {live_kv.api_key}"},
    )
    answer.raise_for_status()
    return [item["key"] for item in answer.json()["data"]]


# -- the notes API ----------------------------------------------------------------------


def seed_notes(kv: Kv) -> None:
    for n in range(1, 5):
        status, _ = ex.create_note(
            kv, ALICE, {"title": f"Note {n}", "content": "..."}, f"note-00{n}"
        )
        assert status == 201
    ex.create_note(kv, BOB, {"title": "Bob's", "content": "..."}, "note-001")
    # Neither the prefix's own key nor a sibling whose text extends the owner's is a note.
    kv.set(["notes", ALICE], {"not": "a note"})
    kv.set(["notes", ALICE + "x", "note-001"], {"not": "alice's"})


def test_notes_sync(kv):
    seed_notes(kv)
    assert ex.create_note(kv, None, {"title": "t", "content": "c"})[0] == 401
    status, body = ex.get_note(kv, ALICE, "note-002")
    assert status == 200 and body["note"]["title"] == "Note 2"
    assert ex.get_note(kv, ALICE, "note-999") == (404, {"error": "Note not found"})
    assert ex.get_note(kv, BOB, "note-002")[0] == 404

    status, body = ex.list_notes(kv, ALICE)
    assert [n["id"] for n in body["notes"]] == ["note-001", "note-002", "note-003", "note-004"]
    assert body["total"] == 4 and body["notes"][0]["ownerId"] == ALICE

    pages, cursor = [], None
    while True:
        _, page = ex.list_notes_page(kv, ALICE, "3", cursor)
        pages.append(([n["title"] for n in page["notes"]], page["total"], page["hasMore"]))
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == [(["Note 1", "Note 2", "Note 3"], 4, True), (["Note 4"], 1, False)]

    _, body = ex.list_notes_reversed(kv, ALICE)
    assert [e.key[2] for e in body["notes"]] == ["note-004", "note-003", "note-002", "note-001"]

    owner = ["notes", ALICE]
    ids = lambda result: [e.key[2] for e in result.items]  # noqa: E731
    assert ids(kv.list(prefix=owner, start=[*owner, "note-002"])) == [
        "note-002",
        "note-003",
        "note-004",
    ]
    assert ids(kv.list(prefix=owner, end=[*owner, "note-003"])) == ["note-001", "note-002"]
    assert ids(kv.list(start=[*owner, "note-002"], end=[*owner, "note-004"])) == [
        "note-002",
        "note-003",
    ]
    # A start below the prefix's keys does not reach out of it.
    assert ids(kv.list(prefix=owner, start=["notes"])) == ids(kv.list(prefix=owner))

    status, body = ex.notes_batch(kv, ["note-001", "note-999"])
    assert status == 200 and [n["found"] for n in body["notes"]] == [False, False]
    kv.set(["notes", "note-001"], {"title": "First note", "content": "..."})
    _, body = ex.notes_batch(kv, ["note-001", "note-999"])
    assert body["notes"] == [
        {"id": "note-001", "found": True, "note": {"title": "First note", "content": "..."}},
        {"id": "note-999", "found": False, "note": None},
    ]
    assert ex.notes_batch(kv, "note-001")[0] == 400

    assert ex.delete_note(kv, ALICE, "note-001") == (200, {"message": "Note 'note-001' deleted"})
    assert ex.delete_note(kv, ALICE, "note-001")[0] == 404
    assert ex.list_notes(kv, ALICE)[1]["total"] == 3


async def test_notes_async(akv):
    for n in range(1, 5):
        note = {"title": f"Note {n}", "content": "..."}
        assert (await ex.create_note_async(akv, ALICE, note, f"note-00{n}"))[0] == 201
    await akv.set(["notes", ALICE], {"not": "a note"})
    status, body = await ex.get_note_async(akv, ALICE, "note-003")
    assert status == 200 and body["note"]["title"] == "Note 3"
    assert (await ex.get_note_async(akv, ALICE, "nope"))[0] == 404

    _, body = await ex.list_notes_async(akv, ALICE)
    assert [n["id"] for n in body["notes"]] == ["note-001", "note-002", "note-003", "note-004"]
    assert body["total"] == 4

    seen, totals, cursor = [], [], None
    while True:
        _, page = await ex.list_notes_page_async(akv, ALICE, "1", cursor)
        seen += [n["title"] for n in page["notes"]]
        totals.append(page["total"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ["Note 1", "Note 2", "Note 3", "Note 4"] and totals == [4, 3, 2, 1]

    _, body = await ex.list_notes_reversed_async(akv, ALICE)
    assert [e.value["title"] for e in body["notes"]] == ["Note 4", "Note 3", "Note 2", "Note 1"]

    owner = ["notes", ALICE]
    result = await akv.list(start=[*owner, "note-002"], end=[*owner, "note-004"])
    assert [e.key for e in result.items] == [(*owner, "note-002"), (*owner, "note-003")]

    _, body = await ex.notes_batch_async(akv, ["note-1", "note-2"])
    assert body["notes"][1] == {"id": "note-2", "found": False, "note": None}
    assert (await ex.delete_note_async(akv, ALICE, "note-004"))[0] == 200
    assert (await ex.get_note_async(akv, ALICE, "note-004"))[0] == 404


def test_hierarchical_and_date_range_listings(kv):
    kv.set(["orgs", "acme", "engineering", "alice"], {"role": "Engineer"})
    kv.set(["orgs", "acme", "engineering", "bob"], {"role": "Senior Engineer"})
    kv.set(["orgs", "acme", "sales", "charlie"], {"role": "Sales Rep"})
    kv.set(["orgs", "acme-2", "sales", "dora"], {"role": "Sales Rep"})
    _, body = ex.members(kv, "acme")
    assert [(m["name"], m["department"]) for m in body["members"]] == [
        ("alice", "engineering"),
        ("bob", "engineering"),
        ("charlie", "sales"),
    ]
    assert body["total"] == 3
    _, body = ex.members(kv, "acme", "engineering")
    assert [m["role"] for m in body["members"]] == ["Engineer", "Senior Engineer"]

    kv.set(["logs", "2024-01-14T23:59:59Z", "old"], {"n": 0})
    kv.set(["logs", "2024-01-15T10:30:00Z", "abc123"], {"n": 1})
    kv.set(["logs", "2024-01-15T14:45:00Z", "def456"], {"n": 2})
    kv.set(["logs", "2024-01-16T00:00:00Z", "next"], {"n": 3})
    _, body = ex.logs(kv, "2024-01-15T00:00:00Z", "2024-01-16T00:00:00Z")
    assert [(log["timestamp"], log["id"], log["n"]) for log in body["logs"]] == [
        ("2024-01-15T10:30:00Z", "abc123", 1),
        ("2024-01-15T14:45:00Z", "def456", 2),
    ]
    assert len(ex.logs(kv)[1]["logs"]) == 4
    assert [log["n"] for log in ex.logs(kv, "2024-01-15T12:00:00Z")[1]["logs"]] == [2, 3]


def test_keys_of_every_part_type_sort_as_redocly_says(kv):
    keys = [["items", "1"], ["items", "10"], ["items", "2"], ["items", "9"], ["items", 1]]
    keys += [["items", 10], ["items", True], ["items", False], ["items", ""], ["items", 1.5]]
    for n, key in enumerate(keys):
        kv.set(key, n)
    listed = kv.list(prefix=["items"]).items
    assert [e.key for e in listed] == [
        ("items", ""),
        ("items", "1"),
        ("items", 1),
        ("items", 1.5),  # "." is below "0"
        ("items", "10"),
        ("items", 10),
        ("items", "2"),
        ("items", "9"),
        ("items", False),
        ("items", True),
    ]
    assert [type(e.key[1]) for e in listed[1:3]] == [str, int]
    assert kv.list(prefix=["items"], reverse=True, limit=2).items[0].key == ("items", True)
    assert kv.list().total == 10 and kv.list(prefix=[]).total == 10


def test_the_server_lists_random_keys_in_redoclys_order(kv):
    rng = random.Random(3)
    pool = ["", "a", "ab", "b", "B", "=", "_", "-", ".", "/", "é", "\x00", "\x7f", "日", "🎉"]
    pool += ["1", "10", "9", "true", 0, 1, 10, 9, -1, 0.5, 1e21, 1e-7, True, False]
    keys = {
        encode_key(k): k
        for k in ([rng.choice(pool) for _ in range(rng.randint(1, 3))] for _ in range(600))
    }
    kv.transaction(lambda tx: [tx.set(key, None) for key in keys.values()])
    listed, cursor = [], None
    while True:
        page = kv.list(limit=250, cursor=cursor)
        listed += [e.key for e in page.items]
        if (cursor := page.cursor) is None:
            break
    expected = sorted(keys.values(), key=cmp_to_key(redocly_compare))
    assert [encode_key(k) for k in listed] == [encode_key(k) for k in expected]
    reverse = kv.list(limit=1000, reverse=True).items
    assert [e.key for e in reverse] == listed[::-1]


def test_listings_skip_names_that_are_not_array_keys(kv, live_kv):
    kv.set(["a"], 1)
    kv.set(["b"], 2)
    httpx.put(
        f"{live_kv.base_url}/v2/storage/kvs/{live_kv.namespace}/keys/config.json",
        headers={"Authorization": f"Bearer {live_kv.api_key}"},
        content=b"{}",
    ).raise_for_status()
    result = kv.list()
    assert [e.key for e in result.items] == [("a",), ("b",)]
    assert result.total == 3  # the server's count, which includes the other name


def test_values_stored_by_other_clients_are_read_by_their_type(kv, live_kv):
    base = f"{live_kv.base_url}/v2/storage/kvs/{live_kv.namespace}/keys/"
    auth = {"Authorization": f"Bearer {live_kv.api_key}"}
    for key, content_type, body in [
        (["text"], "text/plain; charset=utf-8", "héllo".encode()),
        (["bytes"], "application/octet-stream", b"\x00\xff"),
        (["json"], "application/vnd.api+json", b'{"a": [1, 2]}'),
    ]:
        headers = {**auth, "Content-Type": content_type}
        httpx.put(base + encode_key(key), headers=headers, content=body).raise_for_status()
    assert kv.get(["text"]) == "héllo"
    assert kv.get(["bytes"]) == b"\x00\xff"
    assert kv.get(["json"]) == {"a": [1, 2]}
    assert [e.value for e in kv.get_many([["text"], ["bytes"], ["json"]])] == [
        "héllo",
        b"\x00\xff",
        {"a": [1, 2]},
    ]
    assert {e.key[0]: e.value for e in kv.list().items}["bytes"] == b"\x00\xff"


# -- values, TTL, batch reads, deletes ---------------------------------------------------


def test_set_returns_the_entry_and_stores_compact_json(kv):
    value = {"title": "ü", "n": [1, 2.5, None, True], "nested": {"a": {}}}
    assert kv.set(["v", 1], value) == KvEntry(("v", 1), value)
    assert kv.get(["v", 1.0]) == value
    assert kv.set(["v", "null"], None).value is None
    assert kv.get(["v", "null"]) is None
    assert kv.set(["v", "s"], "a string").value == "a string"
    assert kv.get(["v", "s"]) == "a string"
    assert kv.get_many([["v", "null"]])[0] == KvEntry(("v", "null"), None)


def test_a_value_of_one_mib_is_taken_and_one_byte_more_refused_with_redoclys_message(kv):
    assert kv.set(["big"], "x" * (MIB - 2)).key == ("big",)  # with its two quotes
    assert len(kv.get(["big"])) == MIB - 2
    with pytest.raises(KvValueTooLarge) as refused:
        kv.set(["bigger"], "x" * (MIB - 1))
    assert str(refused.value) == (
        "Value size (1024.00 KB) exceeds the maximum allowed size of 1 MB (1024 KB)"
    )
    assert refused.value.status == 413 and refused.value.code == "75004"
    assert kv.get(["bigger"]) is None


def test_ttl_expires_entries(kv):
    kv.set(["cache", "weather", "london"], {"temp": 12}, ttl_in_seconds=1)
    kv.set(["cache", "weather", "paris"], {"temp": 15})
    cached = ex.weather(kv, "london", lambda city: pytest.fail("fetched"))
    assert cached == (200, {"source": "cache", "data": {"temp": 12}})
    assert kv.list(prefix=["cache"]).total == 2
    time.sleep(2.2)
    assert kv.get(["cache", "weather", "london"]) is None
    assert kv.get_many([["cache", "weather", "london"]]) == [None]
    assert [e.key[2] for e in kv.list(prefix=["cache"]).items] == ["paris"]
    # The example caches the fresh answer for 30 minutes.
    assert ex.weather(kv, "london", lambda city: {"temp": 13})[1]["source"] == "api"
    assert ex.weather(kv, "london", lambda city: {"temp": 14})[1] == {
        "source": "cache",
        "data": {"temp": 13},
    }


async def test_ttl_in_a_transaction(akv):
    async def write(tx):
        await tx.set(["session", "s1"], {"user": "a"}, ttl_in_seconds=1)
        await tx.set(["session", "s2"], {"user": "b"})

    await akv.transaction(write)
    assert await akv.get(["session", "s1"]) == {"user": "a"}
    await asyncio.sleep(2.2)
    assert [e and e.value for e in await akv.get_many([["session", "s1"], ["session", "s2"]])] == [
        None,
        {"user": "b"},
    ]


def test_get_many_keeps_the_order_of_its_keys_with_none_for_missing_ones(kv):
    kv.set(["k", 2], "two")
    kv.set(["k", 1], "one")
    found = kv.get_many([["k", 1], ["k", 3], ["k", 2], ["k", 1]])
    one, two = KvEntry(("k", 1), "one"), KvEntry(("k", 2), "two")
    assert found == [one, None, two, one]
    assert kv.get_many([]) == []


async def test_get_many_reads_more_than_a_batch_of_keys(akv):
    await akv.transaction(lambda tx: _set_many(tx, [["n", i] for i in range(0, 2500, 7)]))
    found = await akv.get_many([["n", i] for i in range(2500)])
    assert len(found) == 2500
    assert [i for i, e in enumerate(found) if e is not None] == list(range(0, 2500, 7))
    assert all(e.value == e.key[1] for e in found if e is not None)


async def _set_many(tx, keys):
    for key in keys:
        await tx.set(key, key[1])


def test_get_many_splits_a_read_whose_values_are_too_large_for_one_answer(kv):
    # 17 values of 1 MiB: more than the 16 MiB one batch-read answers.
    for i in range(17):
        kv.set(["blob", i], "x" * (MIB - 10))
    reads = []
    kv._http.event_hooks["response"].append(lambda answer: reads.append(answer.status_code))
    found = kv.get_many([["blob", i] for i in range(17)] + [["blob", "missing"]])
    assert [e.key[1] for e in found[:-1]] == list(range(17)) and found[-1] is None
    assert all(len(e.value) == MIB - 10 for e in found[:-1])
    assert reads == [413, 200, 200]

    # A listing's page stops once its values reach 8 MiB; the cursor goes on from there.
    pages, cursor = [], None
    while True:
        page = kv.list(prefix=["blob"], limit=1000, cursor=cursor)
        pages.append((len(page.items), page.total))
        cursor = page.cursor
        if cursor is None:
            break
    assert len(pages) > 1 and pages[0][0] < 17 and pages[0][1] == 17
    assert sum(n for n, _ in pages) == 17


def test_a_transaction_value_over_the_limit_is_refused_with_redoclys_message(kv):
    def write(tx):
        tx.set(["small"], 1)
        tx.set(["big"], "x" * MIB)

    with pytest.raises(KvValueTooLarge) as refused:
        kv.transaction(write)
    assert str(refused.value).startswith("Value size (1024.00 KB) exceeds the maximum allowed")
    assert kv.get(["small"]) is None


async def test_delete_removes_the_key_and_a_missing_key_is_no_error(akv):
    await akv.set(["gone"], 1)
    assert await akv.delete(["gone"]) is None
    assert await akv.get(["gone"]) is None
    assert await akv.delete(["gone"]) is None
    assert await akv.delete(["never", "there"]) is None


# -- transactions --------------------------------------------------------------------------


def test_transfer_sync(kv):
    kv.set(["accounts", "alice"], {"ownerId": ALICE, "balance": 100, "name": "Alice"})
    kv.set(["accounts", "bob"], {"ownerId": BOB, "balance": 50, "name": "Bob"})
    balances = lambda: [kv.get(["accounts", a])["balance"] for a in ("alice", "bob")]  # noqa: E731

    status, body = ex.transfer(kv, ALICE, {"from": "alice", "to": "bob", "amount": 30})
    assert status == 200 and body == {
        "success": True,
        "from": {"name": "Alice", "newBalance": 70},
        "to": {"name": "Bob", "newBalance": 80},
        "amount": 30,
    }
    assert balances() == [70, 80]
    assert ex.transfer(kv, BOB, {"from": "alice", "to": "bob", "amount": 10}) == (
        403,
        {"error": "Not authorized to transfer from this account"},
    )
    assert ex.transfer(kv, ALICE, {"from": "alice", "to": "bob", "amount": 71}) == (
        400,
        {"error": "Insufficient balance"},
    )
    assert ex.transfer(kv, ALICE, {"from": "alice", "to": "carol", "amount": 1}) == (
        400,
        {"error": "One or both accounts not found"},
    )
    assert ex.transfer(kv, ALICE, {"from": "alice", "to": "bob", "amount": -1})[0] == 400
    assert ex.transfer(kv, None, {"from": "alice", "to": "bob", "amount": 1})[0] == 401
    assert balances() == [70, 80]
    assert ex.transfer(kv, BOB, {"from": "bob", "to": "alice", "amount": 80})[0] == 200
    assert balances() == [150, 0]


async def test_transfer_async(live_kv):
    # Room for the ten contending transfers below to each run again as often as it takes.
    config = (live_kv.base_url, live_kv.api_key, live_kv.namespace)
    async with AsyncKv(*config, transaction_attempts=100) as akv:
        await _transfers_async(akv)


async def _transfers_async(akv):
    await akv.set(["accounts", "alice"], {"ownerId": ALICE, "balance": 100, "name": "Alice"})
    await akv.set(["accounts", "bob"], {"ownerId": BOB, "balance": 50, "name": "Bob"})

    async def balances():
        found = await akv.get_many([["accounts", "alice"], ["accounts", "bob"]])
        return [e.value["balance"] for e in found]

    status, body = await ex.transfer_async(akv, ALICE, {"from": "alice", "to": "bob", "amount": 30})
    assert status == 200 and body["from"]["newBalance"] == 70 and body["to"]["newBalance"] == 80
    refused = await ex.transfer_async(akv, BOB, {"from": "alice", "to": "bob", "amount": 1})
    assert refused[0] == 403
    refused = await ex.transfer_async(akv, ALICE, {"from": "alice", "to": "bob", "amount": 500})
    assert refused == (400, {"error": "Insufficient balance"})
    assert await balances() == [70, 80]
    # Ten transfers at once from one account: each sees the others' effect or conflicts and
    # runs again; the balance never goes below zero.
    results = await asyncio.gather(
        *(
            ex.transfer_async(akv, ALICE, {"from": "alice", "to": "bob", "amount": 10})
            for _ in range(10)
        )
    )
    assert sorted(status for status, _ in results) == [200] * 7 + [400] * 3
    assert await balances() == [0, 150]


def test_secondary_index_sync(kv, live_kv):
    status, body = ex.create_user(kv, {"email": "john@example.com", "name": "John Doe"})
    assert status == 201
    assert ex.user_by_email(kv, "john@example.com") == (200, {"user": body["user"]})
    assert ex.user_by_email(kv, "jane@example.com")[0] == 404
    before = raw_names(live_kv)
    with pytest.raises(RuntimeError, match="failed after both writes"):
        ex.create_user(kv, {"email": "jane@example.com", "name": "Jane"}, fail_after_writes=True)
    assert ex.user_by_email(kv, "jane@example.com")[0] == 404
    assert raw_names(live_kv) == before and len(before) == 2


async def test_secondary_index_async(akv, live_kv):
    status, body = await ex.create_user_async(akv, {"email": "john@example.com", "name": "John"})
    assert status == 201
    assert await ex.user_by_email_async(akv, "john@example.com") == (200, {"user": body["user"]})
    with pytest.raises(RuntimeError):
        await ex.create_user_async(akv, {"email": "x@example.com", "name": "X"}, True)
    assert (await ex.user_by_email_async(akv, "x@example.com"))[0] == 404
    assert len(raw_names(live_kv)) == 2


def test_counter_sync(kv):
    assert [ex.count_view(kv, "my-article")[1]["views"] for _ in range(3)] == [1, 2, 3]
    assert kv.get(["views", "my-article"]) == {"count": 3}


async def test_counter_async_counts_concurrent_views_once_each(akv):
    views = await asyncio.gather(*(ex.count_view_async(akv, "hot") for _ in range(20)))
    assert sorted(body["views"] for _, body in views) == list(range(1, 21))
    assert await akv.get(["views", "hot"]) == {"count": 20}


def test_a_transaction_reads_its_own_writes_and_the_last_write_wins(kv):
    kv.set(["b"], "old")

    def work(tx):
        tx.set(["a"], 1)
        tx.set(["a"], {"n": 2})
        tx.delete(["b"])
        tx.set(["c"], "c")
        tx.delete(["c"])
        seen = (tx.get(["a"]), tx.get(["b"]), tx.get(["c"]))
        tx.get(["a"])["n"] = 99  # a copy: the buffered write stays as it was
        return seen, [e and e.value for e in tx.get_many([["a"], ["b"], ["d"]])]

    assert kv.transaction(work) == (({"n": 2}, None, None), [{"n": 2}, None, None])
    assert [kv.get([k]) for k in "abcd"] == [{"n": 2}, None, None, None]


def test_a_transaction_writes_values_as_they_were_when_set(kv):
    def work(tx):
        value = {"n": 1}
        tx.set(["a"], value)
        value["n"] = 2

    kv.transaction(work)
    assert kv.get(["a"]) == {"n": 1}


def test_a_transaction_that_reads_and_writes_nothing_sends_nothing(kv):
    calls = []
    kv._http.event_hooks["request"].append(calls.append)
    assert kv.transaction(lambda tx: "result") == "result"
    assert calls == []


def test_a_conflicting_transaction_runs_again_and_sees_the_new_value(kv, live_kv):
    kv.set(["counter"], 1)
    attempts = []
    with Kv(live_kv.base_url, live_kv.api_key, live_kv.namespace) as other:

        def work(tx):
            current = tx.get(["counter"])
            attempts.append(current)
            if len(attempts) == 1:
                other.set(["counter"], 10)  # changes what this attempt read
            tx.set(["counter"], current + 1)
            return current

        assert kv.transaction(work) == 10
    assert attempts == [1, 10]
    assert kv.get(["counter"]) == 11


def test_a_key_read_as_absent_is_checked_absent(kv, live_kv):
    attempts = []
    with Kv(live_kv.base_url, live_kv.api_key, live_kv.namespace) as other:

        def claim(tx):
            owner = tx.get(["lock"])
            attempts.append(owner)
            if owner is None and len(attempts) == 1:
                other.set(["lock"], "someone else")
            if owner is None:
                tx.set(["lock"], "me")
            return owner

        assert kv.transaction(claim) == "someone else"
    assert attempts == [None, "someone else"]
    assert kv.get(["lock"]) == "someone else"


async def test_a_transaction_that_always_conflicts_gives_up_with_kv_conflict(live_kv):
    config = (live_kv.base_url, live_kv.api_key, live_kv.namespace)
    async with AsyncKv(*config, transaction_attempts=4) as kv, AsyncKv(*config) as other:
        await kv.set(["hot"], 0)
        calls = 0

        async def work(tx):
            nonlocal calls
            calls += 1
            current = await tx.get(["hot"])
            await other.set(["hot"], current + 100)
            await tx.set(["mine"], current)

        started = time.monotonic()
        with pytest.raises(KvConflict) as conflict:
            await kv.transaction(work)
        assert calls == 4 and conflict.value.status == 412 and conflict.value.attempts == 4
        assert conflict.value.code == "75007"
        assert time.monotonic() - started < 5
        assert await kv.get(["mine"]) is None
        assert await kv.get(["hot"]) == 400


def test_an_exception_in_the_callback_writes_nothing_and_propagates(kv, live_kv):
    kv.set(["a"], 1)

    def work(tx):
        tx.set(["a"], 2)
        tx.set(["b"], 2)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        kv.transaction(work)
    assert kv.get(["a"]) == 1 and kv.get(["b"]) is None


def test_a_transaction_object_is_not_used_after_its_transaction(kv):
    kept = kv.transaction(lambda tx: tx)
    with pytest.raises(RuntimeError, match="has ended"):
        kept.set(["late"], 1)
    with pytest.raises(RuntimeError, match="has ended"):
        kept.get(["late"])


def test_the_sync_client_refuses_an_async_callback(kv):
    async def work(tx):
        tx.set(["a"], 1)

    with pytest.raises(TypeError, match="use AsyncKv"):
        kv.transaction(work)
    assert kv.get(["a"]) is None


def test_transaction_limits_are_refused_before_any_request(kv, live_kv):
    kv.set(["seed"], 1)

    def too_many_reads(tx):
        tx.get_many([["r", i] for i in range(100)])  # 100 distinct keys: the limit
        tx.get(["r", 5])  # read before: no new key
        tx.get(["r", 100])

    with pytest.raises(ValueError, match="at most 100 distinct keys"):
        kv.transaction(too_many_reads)

    def too_many_writes(tx):
        for i in range(1000):
            tx.set(["w", i], i)
        tx.set(["w", 0], "again")  # the same key: still 1,000 writes
        tx.delete(["w", 1000])

    with pytest.raises(ValueError, match="at most 1000 keys"):
        kv.transaction(too_many_writes)
    assert raw_names(live_kv) == [encode_key(["seed"])]

    def the_limits(tx):
        tx.get_many([["r", i] for i in range(100)])
        for i in range(1000):
            tx.set(["w", i], i)

    kv.transaction(the_limits)
    assert kv.list(prefix=["w"]).total == 1000


# -- errors --------------------------------------------------------------------------------


def test_bad_keys_are_refused_before_any_request(kv, live_kv):
    with pytest.raises(ValueError, match="at least one part"):
        kv.set([], 1)
    with pytest.raises(ValueError, match="at least one part"):
        kv.get([])
    with pytest.raises(ValueError, match="over the limit of 256"):
        kv.set(["x" * 200], 1)
    with pytest.raises(ValueError, match="over the limit of 256"):
        kv.get_many([["ok"], ["x" * 200]])
    with pytest.raises(TypeError, match="str, int, float or bool"):
        kv.set(["a", None], 1)
    with pytest.raises(TypeError, match="list or tuple"):
        kv.get("a")
    with pytest.raises(ValueError, match="finite"):
        kv.delete([float("nan")])
    with pytest.raises(ValueError, match="at least one part"):
        kv.list(prefix=["a"], start=[])
    assert raw_names(live_kv) == []


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (object(), TypeError),
        ({1, 2}, TypeError),
        (b"bytes", TypeError),
        ({"n": float("nan")}, ValueError),
        ({"n": float("inf")}, ValueError),
    ],
)
def test_values_json_cannot_carry_are_refused_before_any_request(kv, live_kv, value, error):
    with pytest.raises(error, match="Value is not JSON serializable"):
        kv.set(["bad"], value)
    with pytest.raises(error, match="Value is not JSON serializable"):
        kv.transaction(lambda tx: tx.set(["bad"], value))
    assert raw_names(live_kv) == []


def test_a_circular_value_is_refused(kv):
    circular: dict = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Value is not JSON serializable"):
        kv.set(["bad"], circular)


def test_bad_options_are_refused(kv):
    for limit in (0, 1001):
        with pytest.raises(ValueError, match="limit is from 1 to 1000"):
            kv.list(limit=limit)
    assert kv.list(limit=1000).items == []
    for ttl in (0, -1, 9_223_372_037):
        with pytest.raises(ValueError, match="ttl_in_seconds"):
            kv.set(["t"], 1, ttl_in_seconds=ttl)
    with pytest.raises(TypeError, match="ttl_in_seconds"):
        kv.set(["t"], 1, ttl_in_seconds=1.5)


def test_server_refusals_are_kv_errors_with_the_servers_code(live_kv):
    with Kv(live_kv.base_url, "not-a-key", live_kv.namespace) as kv:
        with pytest.raises(KvError) as refused:
            kv.get(["a"])
    assert refused.value.status == 401 and refused.value.code == "10009"
    assert refused.value.detail

    missing = "00000000-0000-4000-8000-000000000000"
    with Kv(live_kv.base_url, live_kv.api_key, missing) as kv:
        # A missing namespace is an error, not a missing key.
        for call in (
            lambda: kv.get(["a"]),
            lambda: kv.delete(["a"]),
            lambda: kv.set(["a"], 1),
            lambda: kv.get_many([["a"]]),
            lambda: kv.list(),
            lambda: kv.transaction(lambda tx: tx.set(["a"], 1)),
        ):
            with pytest.raises(KvError) as refused:
                call()
            assert (refused.value.status, refused.value.code) == (404, "10005"), call


async def test_async_refusals_are_kv_errors(live_kv):
    async with AsyncKv(live_kv.base_url, "not-a-key", live_kv.namespace) as kv:
        with pytest.raises(KvError) as refused:
            await kv.list()
    assert refused.value.status == 401 and str(refused.value).startswith("401 (10009): ")
