"""The process's one LISTEN connection: notifications reach every subscriber, and a lost
connection is reopened and announced."""

import asyncio

from service.db.listener import Listener
from tests.support.workers import wait_until


async def test_notifications_reach_subscribers_and_survive_a_terminated_session(db, settings):
    """Pass: two subscribers of one channel each get a NOTIFY's payload over one session;
    after that session is terminated, both hear of the reconnection (None) and get the next
    NOTIFY too."""
    heard: dict[str, list] = {"a": [], "b": []}
    async with Listener(settings) as listener:
        for name in heard:
            await listener.subscribe("kvs_test", heard[name].append)
        await wait_until(lambda: _listening(db))
        await db.execute("SELECT pg_notify('kvs_test', 'one')")
        await wait_until(lambda: _async(all("one" in h for h in heard.values())))
        assert await db.fetchval(_LISTENERS) == 1

        for h in heard.values():
            h.clear()
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN%kvs_test%'"
        )
        await wait_until(lambda: _async(all(None in h for h in heard.values())), timeout=15)
        await db.execute("SELECT pg_notify('kvs_test', 'two')")
        await wait_until(lambda: _async(all("two" in h for h in heard.values())))


_LISTENERS = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%kvs_test%'"


async def _listening(db) -> bool:
    return await db.fetchval(_LISTENERS) == 1


async def _async(value):
    await asyncio.sleep(0)
    return value
