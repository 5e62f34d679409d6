"""A bank on the Python client: clerks in other processes (the sync client) and in this one
(async tasks) move money between ten accounts in transactions for KVS_BANK_SECONDS (30 by
default), each transfer recording itself in the same transaction. Then no money was made or
lost, no balance is negative, and the records are exactly the transfers the clerks saw
committed: a lost update or a phantom write would break one of these."""

import asyncio
import json
import os
import random
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from kvs_client import AsyncKv

from tests.clients import bank_worker
from tests.clients.bank_worker import ACCOUNTS, Counts, account

CLERK = Path(bank_worker.__file__)
PROCESSES = 3
TASKS = 4


def opening_balance(n: int) -> int:
    return 100 * (n + 1)


async def clerk_process(live_kv, clerk: str, seconds: float, seed: int) -> Counts:
    env = {
        **os.environ,
        "KVS_BASE_URL": live_kv.base_url,
        "KVS_API_KEY": live_kv.api_key,
        "KVS_NAMESPACE": live_kv.namespace,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLERK),
        clerk,
        str(seconds),
        str(seed),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 120)
    assert proc.returncode == 0, f"clerk {clerk} exited with {proc.returncode}"
    return Counts(**json.loads(out))


async def all_entries(kv: AsyncKv, prefix: list) -> list:
    entries, cursor = [], None
    while True:
        page = await kv.list(prefix=prefix, limit=1000, cursor=cursor)
        if cursor is None:
            total = page.total
        entries += page.items
        cursor = page.cursor
        if cursor is None:
            assert len(entries) == total
            return entries


async def test_python_client_bank_transfers_keep_the_total_and_every_record(live_kv):
    seconds = float(os.environ.get("KVS_BANK_SECONDS", "30"))
    async with AsyncKv(live_kv.base_url, live_kv.api_key, live_kv.namespace) as kv:

        async def open_accounts(tx):
            for n in range(ACCOUNTS):
                await tx.set(account(n), {"balance": opening_balance(n)})

        await kv.transaction(open_accounts)
        counts = await asyncio.gather(
            *(clerk_process(live_kv, f"p{i}", seconds, 100 + i) for i in range(PROCESSES)),
            *(
                bank_worker.run_async(kv, f"a{i}", seconds, random.Random(200 + i))
                for i in range(TASKS)
            ),
        )

        balances = [e.value["balance"] for e in await kv.get_many(account(n) for n in range(10))]
        records = await all_entries(kv, ["transfers"])

    committed = sum(c.committed for c in counts)
    conflicts, gave_up = sum(c.conflicts for c in counts), sum(c.gave_up for c in counts)
    print()
    for c in counts:
        print("bank clerk", json.dumps(asdict(c)))
    print(
        f"bank: {committed} transfers committed in {seconds:g} s "
        f"({sum(c.insufficient for c in counts)} refused for balance); {conflicts} conflicts "
        f"(412), {conflicts - gave_up} attempts run again, {gave_up} transfers given up after "
        f"every attempt conflicted; {len(records)} records"
    )

    assert sum(balances) == sum(opening_balance(n) for n in range(ACCOUNTS))
    assert min(balances) >= 0
    assert len(records) == committed > 0
    # Each clerk's records are numbered 1..committed: none lost, none twice, none extra.
    numbers: dict[str, list] = {c.clerk: [] for c in counts}
    for record in records:
        _, clerk, n = record.key
        numbers[clerk].append(n)
    assert {clerk: sorted(ns) for clerk, ns in numbers.items()} == {
        c.clerk: list(range(1, c.committed + 1)) for c in counts
    }
    # And the balances are the opening ones moved by exactly the recorded transfers.
    moved = Counter({n: opening_balance(n) for n in range(ACCOUNTS)})
    for record in records:
        moved[record.value["from"]] -= record.value["amount"]
        moved[record.value["to"]] += record.value["amount"]
    assert [moved[n] for n in range(ACCOUNTS)] == balances
