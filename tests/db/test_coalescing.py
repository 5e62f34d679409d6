"""Coalescing (service/db/coalesce.py): key reads and writes submitted together share one
statement, and each keeps exactly the outcome it would have had alone."""

import asyncio
from collections import Counter

import pytest

from service.db.pool import open_database
from service.domain import keys
from service.domain.errors import (
    KeyNotFound,
    NamespaceNotFound,
    NamespaceNotReady,
    PreconditionFailed,
    ReadTooLarge,
    StorageLimitReached,
    TtlNotSupported,
    ValueTooLarge,
)
from service.domain.namespaces import create_namespace
from tests.support import provisioned_namespace


class Groups:
    """An observer that keeps the size of every statement's group."""

    def __init__(self) -> None:
        self.sizes: Counter[tuple[str, int]] = Counter()
        self.queries: Counter[str] = Counter()

    def observe_group(self, name: str, items: int) -> None:
        self.sizes[name, items] += 1

    def observe_query(self, name: str, seconds: float) -> None:
        self.queries[name] += 1

    def count_db_error(self, sqlstate_class: str) -> None:
        pass

    def watch_pool(self, pool) -> None:
        pass


@pytest.fixture
async def grouped(settings):
    """A Database whose groups are observed, and the observer."""
    groups = Groups()
    async with open_database(settings, observer=groups) as database:
        yield database, groups


async def outcomes(*calls):
    """The results of calls submitted in one loop turn, errors as values."""
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_writes_of_one_turn_share_one_statement_and_report_201_then_200(
    grouped, tenant, namespace
):
    db, groups = grouped
    writes = [
        keys.put_value(db, tenant.id, namespace, key, value, "text/plain")
        for key, value in [("a", b"1"), ("b", b"2"), ("a", b"3"), ("a", b"4")]
    ]
    a1, b, a2, a3 = await outcomes(*writes)
    assert groups.sizes == {("writes", 4): 1}
    assert groups.queries == {"write_entry_group": 1}
    assert (a1.created, b.created, a2.created, a3.created) == (True, True, False, False)
    # Each write has its own version, in arrival order; the last one is what is stored.
    assert a1.version < a2.version < a3.version
    got = await keys.get_value(db, tenant.id, namespace, "a")
    assert (got.value, got.version) == (b"4", a3.version)


async def test_one_failing_write_fails_alone(grouped, tenant, namespace, no_ttl_namespace):
    db, groups = grouped
    old = await keys.put_value(db, tenant.id, namespace, "cas", b"old", "text/plain")
    await keys.put_value(db, tenant.id, namespace, "kept", b"x", "text/plain")
    results = await outcomes(
        keys.put_value(db, tenant.id, namespace, "ok-1", b"1", "text/plain"),
        keys.put_value(db, tenant.id, namespace, "cas", b"new", "text/plain", if_match=[-1]),
        keys.put_value(db, tenant.id, namespace, "kept", b"y", "text/plain", if_absent=True),
        keys.put_value(db, tenant.id, no_ttl_namespace, "t", b"t", "text/plain", ttl_seconds=60),
        keys.put_value(db, tenant.id, namespace, "big", b"x" * 2048, "x/y", value_ceiling=1024),
        keys.delete_value(db, tenant.id, namespace, "absent", if_match="*"),
        keys.put_value(db, tenant.id, namespace, "ok-2", b"2", "text/plain"),
    )
    assert groups.sizes[("writes", 7)] == 1
    ok1, cas, kept, ttl, big, gone, ok2 = results
    assert ok1.created and ok2.created
    assert isinstance(cas, PreconditionFailed)
    assert isinstance(kept, PreconditionFailed)
    assert isinstance(ttl, TtlNotSupported)
    assert isinstance(big, ValueTooLarge)
    assert isinstance(gone, PreconditionFailed)
    assert (await keys.get_value(db, tenant.id, namespace, "cas")).version == old.version
    assert (await keys.get_value(db, tenant.id, namespace, "kept")).value == b"x"
    for absent in ("big", "absent"):
        with pytest.raises(KeyNotFound):
            await keys.get_value(db, tenant.id, namespace, absent)


async def test_a_write_past_max_bytes_fails_alone_and_the_others_are_written(
    grouped, tenant, settings
):
    db, groups = grouped
    namespace = await provisioned_namespace(db, settings, tenant.id, "small", max_bytes=100)
    results = await outcomes(
        keys.put_value(db, tenant.id, namespace, "a", b"x" * 40, "x/y"),
        keys.put_value(db, tenant.id, namespace, "b", b"x" * 90, "x/y"),
        keys.put_value(db, tenant.id, namespace, "c", b"x" * 40, "x/y"),
    )
    # The group's statement failed as a whole; each item then ran alone, in arrival order.
    assert groups.queries["write_entry_group"] == 1
    a, b, c = results
    assert a.created and c.created
    assert isinstance(b, StorageLimitReached)
    for key in ("a", "c"):
        assert (await keys.get_value(db, tenant.id, namespace, key)).value == b"x" * 40
    with pytest.raises(KeyNotFound):
        await keys.get_value(db, tenant.id, namespace, "b")


async def test_conditional_writes_in_one_group_see_the_writes_before_them(
    grouped, tenant, namespace
):
    db, _ = grouped
    first = await keys.put_value(db, tenant.id, namespace, "k", b"0", "text/plain")
    # Both hold the first version: the earlier one wins, the later one's condition fails,
    # exactly as if they had run one after the other.
    won, lost, created, refused = await outcomes(
        keys.put_value(db, tenant.id, namespace, "k", b"1", "x/y", if_match=[first.version]),
        keys.put_value(db, tenant.id, namespace, "k", b"2", "x/y", if_match=[first.version]),
        keys.put_value(db, tenant.id, namespace, "n", b"1", "x/y", if_absent=True),
        keys.put_value(db, tenant.id, namespace, "n", b"2", "x/y", if_absent=True),
    )
    assert won.version > first.version and not won.created
    assert isinstance(lost, PreconditionFailed)
    assert created.created
    assert isinstance(refused, PreconditionFailed)
    assert (await keys.get_value(db, tenant.id, namespace, "k")).value == b"1"
    assert (await keys.get_value(db, tenant.id, namespace, "n")).value == b"1"


async def test_a_delete_and_a_put_of_one_key_apply_in_arrival_order(grouped, tenant, namespace):
    db, groups = grouped
    await keys.put_value(db, tenant.id, namespace, "k", b"0", "text/plain")
    _, put = await outcomes(
        keys.delete_value(db, tenant.id, namespace, "k"),
        keys.put_value(db, tenant.id, namespace, "k", b"1", "text/plain"),
    )
    assert put.created  # the delete came first
    await outcomes(
        keys.put_value(db, tenant.id, namespace, "k", b"2", "text/plain"),
        keys.delete_value(db, tenant.id, namespace, "k"),
    )
    with pytest.raises(KeyNotFound):
        await keys.get_value(db, tenant.id, namespace, "k")
    assert groups.sizes[("writes", 2)] == 2


async def test_reads_of_one_turn_share_one_statement_each_with_its_own_answer(
    grouped, tenant, other_tenant, namespace
):
    db, groups = grouped
    written = await keys.put_value(db, tenant.id, namespace, "k", b"value", "text/plain")
    await keys.put_value(db, tenant.id, namespace, "e", b"soon", "text/plain", ttl_seconds=1)
    await db.execute("UPDATE kv_entries SET expires_at = now() - interval '1 s' WHERE key = 'e'")
    pending = await create_namespace(db, tenant.id, "pending")
    results = await outcomes(
        keys.get_value(db, tenant.id, namespace, "k"),
        keys.get_value(db, tenant.id, namespace, "k", with_value=False),
        keys.get_value(db, tenant.id, namespace, "k", known_versions=[written.version]),
        keys.get_value(db, tenant.id, namespace, "k", known_versions=[written.version + 1]),
        keys.get_value(db, tenant.id, namespace, "absent"),
        keys.get_value(db, tenant.id, namespace, "e"),
        keys.get_value(db, other_tenant.id, namespace, "k"),
        keys.get_value(db, tenant.id, pending.id, "k"),
    )
    assert groups.sizes[("reads", 8)] == 1
    full, head, held, stale, absent, expired, foreign, not_ready = results
    assert (full.value, full.content_type, full.version) == (
        b"value",
        "text/plain",
        written.version,
    )
    assert head.value is None and head.version == written.version and head.size_bytes == 5
    assert held.value is None and held.version == written.version
    assert stale.value == b"value"
    assert isinstance(absent, KeyNotFound) and isinstance(expired, KeyNotFound)
    assert isinstance(foreign, NamespaceNotFound)
    assert isinstance(not_ready, NamespaceNotReady)


async def test_with_coalescing_off_every_request_runs_its_own_statement(
    settings, tenant, namespace
):
    groups = Groups()
    settings = settings.model_copy(update={"db_coalesce": False})
    async with open_database(settings, observer=groups) as db:
        created = await outcomes(
            *(keys.put_value(db, tenant.id, namespace, f"k{i}", b"v", "x/y") for i in range(5))
        )
        assert all(w.created for w in created)
        await outcomes(*(keys.get_value(db, tenant.id, namespace, f"k{i}") for i in range(5)))
    assert groups.sizes == {("writes", 1): 5, ("reads", 1): 5}
    assert groups.queries == {"put_entry": 5, "get_entry": 5}


async def test_a_group_is_split_at_its_item_and_byte_caps(grouped, tenant, namespace):
    db, groups = grouped
    many = [keys.put_value(db, tenant.id, namespace, f"k{i}", b"v", "x/y") for i in range(100)]
    large = [
        keys.put_value(db, tenant.id, namespace, f"l{i}", b"x" * (400 * 1024), "x/y")
        for i in range(5)
    ]
    results = await outcomes(*many)
    assert all(w.created for w in results)
    assert groups.sizes[("writes", 64)] == 1 and groups.sizes[("writes", 36)] == 1
    results = await outcomes(*large)
    assert all(w.created for w in results)
    # 1 MiB of values at most per group: two of 400 KiB each, then two, then one.
    assert groups.sizes[("writes", 2)] == 2 and groups.sizes[("writes", 1)] == 1


async def test_batch_reads_of_one_turn_share_one_statement_each_with_its_own_answer(
    grouped, tenant, other_tenant, namespace, no_ttl_namespace
):
    db, groups = grouped
    await keys.put_value(db, tenant.id, namespace, "a", b"1", "text/plain")
    await keys.put_value(db, tenant.id, namespace, "b", b"22", "text/plain")
    await keys.put_value(db, tenant.id, no_ttl_namespace, "a", b"other", "x/y")
    pending = await create_namespace(db, tenant.id, "pending")

    def batch(owner, ns, names, budget=1024):
        return keys.get_values(db, owner, ns, names, with_values=True, byte_budget=budget)

    results = await outcomes(
        batch(tenant.id, namespace, ["b", "absent", "a", "b"]),
        batch(tenant.id, no_ttl_namespace, ["a"]),
        batch(tenant.id, namespace, ["a", "b"], budget=2),
        batch(other_tenant.id, namespace, ["a"]),
        batch(tenant.id, pending.id, ["a"]),
    )
    assert groups.sizes[("batch_reads", 5)] == 1
    both, other_ns, too_large, foreign, not_ready = results
    assert [e and (e.key, e.value) for e in both] == [("b", b"22"), None, ("a", b"1"), ("b", b"22")]
    assert [(e.key, e.value) for e in other_ns] == [("a", b"other")]
    assert isinstance(too_large, ReadTooLarge) and too_large.found == 3
    assert isinstance(foreign, NamespaceNotFound)
    assert isinstance(not_ready, NamespaceNotReady)
