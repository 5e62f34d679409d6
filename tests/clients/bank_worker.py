"""A bank's clerk for tests/clients/test_bank.py: for a while, transfers random amounts
between random accounts, each in one transaction that also records the transfer under
['transfers', clerk, n] (n = 1, 2, … per committed transfer), then reports its counts.

As a script (the sync client, in its own process):
    KVS_BASE_URL=… KVS_API_KEY=… KVS_NAMESPACE=… python bank_worker.py CLERK SECONDS SEED
prints one JSON line of counts. `run_async` is the same clerk with the async client.
"""

import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass

from kvs_client import AsyncKv, AsyncTransaction, Kv, KvConflict, Transaction

ACCOUNTS = 10
MAX_AMOUNT = 60


def account(n: int) -> list:
    return ["accounts", n]


@dataclass
class Counts:
    clerk: str
    committed: int = 0  # transfers made (each with its record)
    insufficient: int = 0  # refused: the source's balance was short (nothing written)
    conflicts: int = 0  # attempts whose commit failed its checks (412), each run again or given up
    gave_up: int = 0  # transfers abandoned after every attempt conflicted (KvConflict)


def run(kv: Kv, clerk: str, seconds: float, rng: random.Random) -> Counts:
    counts = Counts(clerk)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        source, target = rng.sample(range(ACCOUNTS), 2)
        transfer(kv, counts, source, target, rng.randint(1, MAX_AMOUNT))
    return counts


def transfer(kv: Kv, counts: Counts, source: int, target: int, amount: int) -> None:
    attempts = 0

    def move(tx: Transaction) -> bool:
        nonlocal attempts
        attempts += 1
        paying, paid = tx.get_many([account(source), account(target)])
        if paying.value["balance"] < amount:
            return False
        tx.set(account(source), {"balance": paying.value["balance"] - amount})
        tx.set(account(target), {"balance": paid.value["balance"] + amount})
        record = {"from": source, "to": target, "amount": amount}
        tx.set(["transfers", counts.clerk, counts.committed + 1], record)
        return True

    try:
        moved = kv.transaction(move)
    except KvConflict:
        counts.gave_up += 1
        counts.conflicts += attempts
    else:
        counts.committed += moved
        counts.insufficient += not moved
        counts.conflicts += attempts - 1


async def run_async(kv: AsyncKv, clerk: str, seconds: float, rng: random.Random) -> Counts:
    counts = Counts(clerk)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        source, target = rng.sample(range(ACCOUNTS), 2)
        await transfer_async(kv, counts, source, target, rng.randint(1, MAX_AMOUNT))
    return counts


async def transfer_async(
    kv: AsyncKv, counts: Counts, source: int, target: int, amount: int
) -> None:
    attempts = 0

    async def move(tx: AsyncTransaction) -> bool:
        nonlocal attempts
        attempts += 1
        paying, paid = await tx.get_many([account(source), account(target)])
        if paying.value["balance"] < amount:
            return False
        await tx.set(account(source), {"balance": paying.value["balance"] - amount})
        await tx.set(account(target), {"balance": paid.value["balance"] + amount})
        record = {"from": source, "to": target, "amount": amount}
        await tx.set(["transfers", counts.clerk, counts.committed + 1], record)
        return True

    try:
        moved = await kv.transaction(move)
    except KvConflict:
        counts.gave_up += 1
        counts.conflicts += attempts
    else:
        counts.committed += moved
        counts.insufficient += not moved
        counts.conflicts += attempts - 1


def main() -> None:
    clerk, seconds, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    env = os.environ
    with Kv(env["KVS_BASE_URL"], env["KVS_API_KEY"], env["KVS_NAMESPACE"]) as kv:
        counts = run(kv, clerk, seconds, random.Random(seed))
    print(json.dumps(asdict(counts)), flush=True)


if __name__ == "__main__":
    main()
