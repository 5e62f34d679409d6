"""Forward-only schema migrations: numbered SQL files applied once each, under an advisory lock."""

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

# Any constant shared by every migrating process; "kvs_migrate" as an int8.
MIGRATION_LOCK_ID = 0x6B76735F6D696772
_FILE_NAME = re.compile(r"([0-9]{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(Exception):
    """The migrations on disk and those recorded in the database disagree."""


def load_migrations(directory: Path) -> list[Migration]:
    """The migrations in `directory`, in order; versions must run 1, 2, 3… without gaps."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if not match:
            raise MigrationError(f"{path.name}: expected a name like 0001_description.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration {expected:04d} is missing in {directory}")
    return found


def latest_version(directory: Path) -> int:
    """The version the schema has once every migration in `directory` is applied."""
    migrations = load_migrations(directory)
    return migrations[-1].version if migrations else 0


async def apply_migrations(
    conn: asyncpg.Connection, directory: Path, *, lock_wait: float = 60.0, lock_timeout: str = "10s"
) -> list[Migration]:
    """Applies the migrations not yet recorded, each in its own transaction; returns them.

    Safe to run from many processes at once: they queue on an advisory lock and the later ones
    find nothing left to do. `lock_timeout` bounds how long a migration waits for a table lock,
    so a migration never stalls live traffic behind it for long.
    """
    migrations = load_migrations(directory)
    await _acquire_lock(conn, lock_wait)
    try:
        await conn.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer PRIMARY KEY,
                name        text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )""")
        recorded = {
            r["version"]: r
            for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        }
        on_disk = {m.version for m in migrations}
        unknown = sorted(set(recorded) - on_disk)
        if unknown:
            raise MigrationError(f"the database has migrations this code does not know: {unknown}")
        applied = []
        for migration in migrations:
            row = recorded.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after "
                        "it was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute("SELECT set_config('lock_timeout', $1, true)", lock_timeout)
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info(
                "applied migration",
                extra={"version": migration.version, "migration": migration.name},
            )
            applied.append(migration)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


async def _acquire_lock(conn: asyncpg.Connection, wait: float) -> None:
    deadline = time.monotonic() + wait
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_ID):
        if time.monotonic() > deadline:
            raise MigrationError(f"another process held the migration lock for over {wait:g} s")
        await asyncio.sleep(0.1)
