"""What the reliability tests share: clients that record every operation with its outcome, a
workload of concurrent clients, and a PostgreSQL of a test's own to crash and cut off."""

import asyncio
import hashlib
import os
import random
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from yarl import URL

from service.db.migrations import apply_migrations
from service.db.pool import open_database
from service.devdb import EmbeddedPostgres
from service.domain import tenants
from service.domain.namespaces import create_namespace
from service.worker.loop import Worker
from tests.reliability.linearizability import Op, is_linearizable
from tests.support import MIGRATIONS, Tenant, drain, key_url, make_settings

# Statuses after which a write may or may not have taken effect; any exception counts too.
UNKNOWN_OUTCOME = {503, 504}


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass
class Outcome:
    """One request as the client saw it."""

    method: str
    key: str
    start: float
    end: float
    status: int | str  # the HTTP status, or the exception's name
    retry_after: str | None = None


@dataclass
class Recorder:
    """A client of one namespace that records every operation, per key, for the checker."""

    session: aiohttp.ClientSession
    base: URL
    namespace: object
    token: str
    history: dict[str, list[Op]] = field(default_factory=lambda: defaultdict(list))
    outcomes: list[Outcome] = field(default_factory=list)
    timeout: float = 30.0

    def _url(self, key: str) -> URL:
        return self.base.join(key_url(self.namespace, key))

    async def _send(self, method: str, key: str, **kwargs) -> tuple[Outcome, bytes, str | None]:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        start = time.monotonic()
        body, content_type = b"", None
        try:
            async with self.session.request(
                method,
                self._url(key),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                **kwargs,
            ) as resp:
                body = await resp.read()
                status, content_type = resp.status, resp.headers.get("Content-Type")
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as err:
            status, retry_after = type(err).__name__, None
        outcome = Outcome(method, key, start, time.monotonic(), status, retry_after)
        self.outcomes.append(outcome)
        return outcome, body, content_type

    async def put(self, key: str, body: bytes, content_type: str) -> Outcome:
        out, _, _ = await self._send("PUT", key, data=body, headers={"Content-Type": content_type})
        value = (body_hash(body), content_type)
        if out.status in (200, 201):
            self.history[key].append(Op("put", out.start, out.end, value))
        elif out.status in UNKNOWN_OUTCOME or isinstance(out.status, str):
            self.history[key].append(Op("put", out.start, out.end, value, known=False))
        return out

    async def get(self, key: str) -> tuple[Outcome, bytes, str | None]:
        out, body, content_type = await self._send("GET", key)
        if out.status == 200:
            self.history[key].append(Op("get", out.start, out.end, (body_hash(body), content_type)))
        elif out.status == 404:
            self.history[key].append(Op("get", out.start, out.end, None))
        return out, body, content_type

    async def delete(self, key: str) -> Outcome:
        out, _, _ = await self._send("DELETE", key)
        if out.status == 204:
            self.history[key].append(Op("delete", out.start, out.end))
        elif out.status in UNKNOWN_OUTCOME or isinstance(out.status, str):
            self.history[key].append(Op("delete", out.start, out.end, known=False))
        return out

    def statuses(self) -> Counter:
        return Counter((o.method, o.status) for o in self.outcomes)

    def not_linearizable(self) -> list[str]:
        """The keys whose history has no legal order."""
        return [key for key, ops in self.history.items() if not is_linearizable(ops)]


def random_body(rng: random.Random, largest: int) -> bytes:
    """Random bytes of a random size up to `largest`, sizes spread over every order of
    magnitude (so empty and largest values both come up)."""
    size = min(largest, int(2 ** rng.uniform(0, largest.bit_length())) - 1)
    return os.urandom(size)


async def mixed_clients(
    recorder: Recorder,
    *,
    clients: int,
    operations: int,
    keys: list[str],
    largest: int = 4096,
    mix: tuple[float, float] = (0.4, 0.85),  # below the first: PUT; below the second: GET
    seed: int = 1,
    until: asyncio.Event | None = None,
) -> None:
    """`clients` concurrent clients making `operations` requests in all (or until `until` is
    set) on random keys; every write has a body and a Content-Type of its own. A client
    answered with Retry-After waits that long (at most 5 s) before its next request."""
    left = operations

    async def client(number: int) -> None:
        nonlocal left
        rng = random.Random(seed * 1000 + number)
        written = 0
        while left > 0 and not (until is not None and until.is_set()):
            left -= 1
            key, roll = rng.choice(keys), rng.random()
            if roll < mix[0]:
                written += 1
                content_type = f"application/x-c{number}-w{written}"
                outcome = await recorder.put(key, random_body(rng, largest), content_type)
            elif roll < mix[1]:
                outcome = (await recorder.get(key))[0]
            else:
                outcome = await recorder.delete(key)
            if outcome.retry_after:  # as a well-behaved client does
                await asyncio.sleep(min(float(outcome.retry_after), 5.0))

    await asyncio.gather(*(client(n) for n in range(clients)))


@asynccontextmanager
async def own_postgres(
    directory: Path, *, wal: Path | None = None
) -> AsyncIterator[EmbeddedPostgres]:
    """A durable PostgreSQL of the test's own, migrated, that it may crash, stop and restart;
    its write-ahead log in `wal` (a directory that must not exist yet) when given."""
    server = EmbeddedPostgres(directory / "pg", durable=True)
    server.start()
    if wal is not None:
        _move_wal(server, wal)
    try:
        conn = await asyncpg.connect(server.url())
        try:
            await apply_migrations(conn, MIGRATIONS)
        finally:
            await conn.close()
        yield server
    finally:
        server.stop()


def _move_wal(server: EmbeddedPostgres, wal: Path) -> None:
    server.stop()
    # mv, unlike shutil.move across file systems, keeps the files' owner (the server's user).
    subprocess.run(["mv", str(server.datadir / "pg_wal"), str(wal)], check=True)
    (server.datadir / "pg_wal").symlink_to(wal)
    server.start()


@contextmanager
def small_disk(path: Path, mib: int) -> Iterator[Path]:
    """A tmpfs of `mib` MiB mounted at `path` for the block; the test is skipped where mounting
    is not permitted (it needs root or CAP_SYS_ADMIN)."""
    path.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0755", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("needs the mount command to put the database on a small tmpfs")
    if mounted.returncode != 0:
        pytest.skip(
            "needs permission to mount a tmpfs (root or CAP_SYS_ADMIN): " + mounted.stderr.strip()
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


async def tenant_with_namespace(database_url: str) -> tuple[Tenant, object]:
    """A tenant and a provisioned namespace of theirs with TTL support."""
    settings = make_settings(database_url)
    async with open_database(settings) as db:
        tenant_id, key = await tenants.create_tenant(db, "reliability")
        namespace = await create_namespace(db, tenant_id, "reliable")
        await drain(Worker(db, settings))
    return Tenant(tenant_id, key.token), namespace.id
