"""Migrations: applied once each, in order, recorded, safe from concurrent processes."""

import asyncio
import shutil

import asyncpg
import pytest

from service.db.migrations import MigrationError, apply_migrations, load_migrations
from tests.support import KVS, MIGRATIONS, worker_env


async def test_concurrent_kvs_migrate_processes_apply_each_migration_once(empty_database_url):
    procs = [
        await asyncio.create_subprocess_exec(
            *KVS,
            "migrate",
            env=worker_env(empty_database_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    said = sorted(out.decode().strip() for out, _ in outputs)
    everything = "\n".join(f"applied {m.version:04d}_{m.name}" for m in load_migrations(MIGRATIONS))
    assert said == [everything] + ["schema is up to date"] * 3

    conn = await asyncpg.connect(empty_database_url)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [
            (m.version, m.name) for m in load_migrations(MIGRATIONS)
        ]
        assert await conn.fetchval("SELECT to_regclass('namespaces') IS NOT NULL")
    finally:
        await conn.close()


@pytest.fixture
async def conn(empty_database_url):
    connection = await asyncpg.connect(empty_database_url)
    yield connection
    await connection.close()


async def test_a_second_run_applies_nothing(conn):
    assert len(await apply_migrations(conn, MIGRATIONS)) == len(load_migrations(MIGRATIONS))
    assert await apply_migrations(conn, MIGRATIONS) == []


async def test_a_migration_edited_after_it_was_applied_is_refused(conn, tmp_path):
    shutil.copytree(MIGRATIONS, tmp_path, dirs_exist_ok=True)
    await apply_migrations(conn, tmp_path)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        await apply_migrations(conn, tmp_path)


async def test_a_database_ahead_of_the_code_is_refused(conn, tmp_path):
    shutil.copytree(MIGRATIONS, tmp_path, dirs_exist_ok=True)
    extra = tmp_path / f"{len(load_migrations(MIGRATIONS)) + 1:04d}_later.sql"
    extra.write_text("SELECT 1;")
    await apply_migrations(conn, tmp_path)
    extra.unlink()
    with pytest.raises(MigrationError, match="does not know"):
        await apply_migrations(conn, tmp_path)


async def test_a_failing_migration_leaves_nothing_half_applied(conn, tmp_path):
    shutil.copytree(MIGRATIONS, tmp_path, dirs_exist_ok=True)
    broken = tmp_path / f"{len(load_migrations(MIGRATIONS)) + 1:04d}_broken.sql"
    broken.write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await apply_migrations(conn, tmp_path)
    assert await conn.fetchval("SELECT to_regclass('half')") is None
    assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == len(
        load_migrations(MIGRATIONS)
    )


@pytest.mark.parametrize("names", [["0001_a.sql", "0003_c.sql"], ["1_a.sql"], ["0001_A.sql"]])
def test_misnamed_or_missing_files_are_refused(tmp_path, names):
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError):
        load_migrations(tmp_path)
