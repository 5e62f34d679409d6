"""The per-process budget for request bodies: a request past it waits briefly for room, then
gets 503 with Retry-After; it never makes the process hold more."""

import asyncio

import pytest

from service.domain.namespaces import create_namespace
from service.web.app import create_app
from service.web.errors import BodyMemoryExhausted
from service.web.limits import BodyBudget
from service.worker.loop import Worker
from tests.support import drain, key_url
from tests.support.rawhttp import exchange, plain, put_head, read_response

KIB = 1024


async def test_reservations_past_the_budget_wait_in_order_then_time_out():
    budget = BodyBudget(capacity=100, wait=0.2)
    order = []

    async def hold(name: str, size: int, seconds: float) -> None:
        async with budget.reserve(size):
            order.append(name)
            await asyncio.sleep(seconds)

    first = asyncio.create_task(hold("first", 80, 0.1))
    await asyncio.sleep(0)
    assert budget.held == 80
    # 30 does not fit beside 80 and waits; 10 would fit but must not overtake it.
    second = asyncio.create_task(hold("second", 30, 0))
    third = asyncio.create_task(hold("third", 10, 0))
    await asyncio.gather(first, second, third)
    assert order == ["first", "second", "third"] and budget.held == 0

    blocker = asyncio.create_task(hold("blocker", 100, 0.5))
    await asyncio.sleep(0)
    with pytest.raises(BodyMemoryExhausted):
        async with budget.reserve(1):
            pass
    assert budget.held == 100  # the refused request took nothing
    await blocker
    assert budget.held == 0


async def test_one_owner_waits_for_its_own_share_while_others_pass():
    budget = BodyBudget(capacity=100, wait=5)  # a share of 25 each
    async with budget.reserve(30, owner="a"):  # more than a share: taken, "a" holding nothing
        a_next = asyncio.create_task(budget.reserve(10, owner="a").__aenter__())
        await asyncio.sleep(0)
        assert not a_next.done()  # "a" is past its share
        async with budget.reserve(10, owner="b"):  # passes the waiting "a"
            assert budget.held_by("b") == 10
    await a_next  # "a"'s first body is done: its next one goes
    assert budget.held_by("a") == 10
    assert budget.held == 10


async def test_empty_bodies_interleaved_with_others_leave_the_accounts_at_zero():
    budget = BodyBudget(capacity=100, wait=1)
    empty, full = budget.reserve(0, owner="a"), budget.reserve(10, owner="a")
    await empty.__aenter__()
    await full.__aenter__()
    await full.__aexit__(None, None, None)
    await empty.__aexit__(None, None, None)
    assert budget.held == 0 and budget.held_by("a") == 0


async def test_a_body_larger_than_the_whole_budget_is_read_when_alone():
    budget = BodyBudget(capacity=100, wait=0.1)
    async with budget.reserve(500):
        assert budget.held == 500
    assert budget.held == 0


async def test_a_cancelled_wait_gives_its_turn_to_the_next():
    budget = BodyBudget(capacity=100, wait=5)
    async with budget.reserve(100):
        waiting = asyncio.create_task(budget.reserve(50).__aenter__())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    async with budget.reserve(100):
        assert budget.held == 100


async def test_past_the_budget_an_upload_waits_briefly_then_gets_503_with_retry_after(
    make_client, settings, tenant, namespace
):
    """A 64 KiB budget: one upload holds all of it while its body trickles in; a second
    waits, and is answered 503 after 0.3 s; once the first is stored,
    the second goes through."""
    client = await make_client(
        create_app(
            settings.model_copy(update={"body_memory_bytes": 64 * KIB, "body_memory_wait": 0.3})
        )
    )
    port = client.server.port
    url = str(key_url(namespace, "big"))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(put_head(url, tenant.token, f"Content-Length: {64 * KIB}\r\n"))
        writer.write(b"x" * (32 * KIB))
        await writer.drain()
        await asyncio.sleep(0.2)  # the first upload now holds the budget
        second = put_head(str(key_url(namespace, "small")), tenant.token, "Content-Length: 5\r\n")
        refused = await exchange(port, second, [b"hello"])
        assert refused.status == 503
        assert refused.headers["retry-after"] == "1" and b'"75005"' in refused.body
        writer.write(b"x" * (32 * KIB))
        async with asyncio.timeout(5):
            assert (await read_response(reader)).status == 201
    finally:
        writer.close()
    assert (await exchange(port, second, [b"hello"])).status == 201
    assert (await exchange(port, second, plain(5))).status == 200


async def test_a_tenant_holding_its_share_with_a_slow_upload_holds_no_one_else_back(
    make_client, settings, db, tenant, other_tenant, namespace
):
    """A 64 KiB budget, so a share of 16 KiB: tenant A's upload of 16 KiB trickles in and
    holds A's share; A's next upload waits and gets 503, while tenant B's goes through."""
    client = await make_client(
        create_app(
            settings.model_copy(update={"body_memory_bytes": 64 * KIB, "body_memory_wait": 0.3})
        )
    )
    other = await create_namespace(db, other_tenant.id, "other")
    await drain(Worker(db, settings))
    port = client.server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        url = str(key_url(namespace, "slow"))
        writer.write(put_head(url, tenant.token, f"Content-Length: {16 * KIB}\r\n"))
        writer.write(b"x" * KIB)
        await writer.drain()
        await asyncio.sleep(0.2)
        a_next = put_head(str(key_url(namespace, "next")), tenant.token, "Content-Length: 5\r\n")
        assert (await exchange(port, a_next, [b"hello"])).status == 503
        b_put = put_head(str(key_url(other.id, "k")), other_tenant.token, "Content-Length: 5\r\n")
        assert (await exchange(port, b_put, [b"hello"])).status == 201
        writer.write(b"x" * (15 * KIB))
        async with asyncio.timeout(5):
            assert (await read_response(reader)).status == 201
    finally:
        writer.close()
    assert (await exchange(port, a_next, [b"hello"])).status == 201
