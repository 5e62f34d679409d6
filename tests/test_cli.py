"""The operator commands: tenants and key rotation, through the real `kvs` command."""

import subprocess

from service.web.app import create_app
from tests.support import KVS, make_settings, worker_env


def kvs(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*KVS, *args],
        env=worker_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def printed_key(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stdout.splitlines() if line.startswith("export KV_API_KEY=")]
    assert len(lines) == 1, result.stdout
    return lines[0].split("=", 1)[1]


async def test_tenant_create_prints_a_working_key_and_key_rotation_works(make_client, database_url):
    # No key cache, so that revocation shows at once (test_auth covers the cache).
    client = await make_client(create_app(make_settings(database_url, auth_cache_seconds=0)))

    async def status(key):
        return (await client.get("/v2/storage/kvs", headers={"X-Api-Key": key})).status

    created = kvs(database_url, "tenant", "create", "acme")
    assert created.returncode == 0, created.stderr
    first = printed_key(created)
    assert await status(first) == 200

    again = kvs(database_url, "tenant", "create", "acme")
    assert again.returncode == 1 and "exists already" in again.stderr

    rotated = kvs(database_url, "key", "create", "acme")
    second = printed_key(rotated)
    assert second != first and await status(second) == 200

    key_id = first.split("_")[1]
    revoked = kvs(database_url, "key", "revoke", key_id)
    assert revoked.returncode == 0 and key_id in revoked.stdout
    assert await status(first) == 401
    assert await status(second) == 200

    assert kvs(database_url, "key", "revoke", key_id).returncode == 1
    assert kvs(database_url, "key", "create", "nobody").returncode == 1


def test_without_database_url_the_commands_use_the_development_database(tmp_path):
    """Pass: with DATABASE_URL unset, `kvs tenant create` starts the development database of
    KVS_DATA_DIR (as `kvs dev` keeps it), says so, and stops it again; while that database
    runs (as under `make run`), `kvs key create` and `kvs key revoke` use it and name it."""
    import asyncio

    import asyncpg

    from service.devdb import EmbeddedPostgres

    env = {k: v for k, v in worker_env("").items() if k != "DATABASE_URL"}
    env["KVS_DATA_DIR"] = str(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*KVS, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    created = run("tenant", "create", "acme")
    assert created.returncode == 0, created.stderr
    assert "development database" in created.stderr and "started for" in created.stderr
    server = EmbeddedPostgres(tmp_path / "postgres")
    assert not server.is_running()

    server.start()
    try:
        rotated = run("key", "create", "acme")
        assert rotated.returncode == 0, rotated.stderr
        assert server.url("kvs") in rotated.stderr and "started for" not in rotated.stderr
        first = printed_key(created).split("_")[1]
        assert run("key", "revoke", first).returncode == 0

        async def keys() -> list:
            conn = await asyncpg.connect(server.url("kvs"))
            try:
                return await conn.fetch(
                    "SELECT k.id, k.revoked_at IS NOT NULL AS revoked FROM api_keys k"
                    " JOIN tenants t ON t.id = k.tenant_id WHERE t.name = 'acme' ORDER BY k.id"
                )
            finally:
                await conn.close()

        stored = {row["id"]: row["revoked"] for row in asyncio.run(keys())}
        assert stored == {first: True, printed_key(rotated).split("_")[1]: False}
        assert server.is_running()
    finally:
        server.stop()


async def test_kvs_dev_creates_a_development_master_key_once_and_secrets_work(
    database_url, tmp_path
):
    """`kvs dev` (what `make run` runs) makes `.data/dev-master-key` (mode 0600) when no
    master key is set, says so, and seals secrets with it; a second start reuses it, so what
    the first stored still opens."""
    import asyncio
    import signal
    import stat

    import aiohttp

    from tests.support import closed_port
    from tests.support.rawhttp import wait_until_serving

    env = {k: v for k, v in worker_env(database_url).items() if k != "KVS_SECRETS_MASTER_KEYS"}
    env.update(KVS_DATA_DIR=str(tmp_path), KVS_PROCESSES="1")

    async def dev_session(action) -> str:
        env["KVS_PORT"] = str(port := closed_port())
        proc = await asyncio.create_subprocess_exec(
            *KVS, "dev", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        said = []
        try:
            while not (line := (await proc.stdout.readline()).decode()).startswith("export"):
                assert line, said
                said.append(line)
            await wait_until_serving(port)
            token = line.strip().split("=", 1)[1]
            async with aiohttp.ClientSession(
                f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
            ) as http:
                await action(http)
        finally:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), timeout=30)
        return "".join(said)

    async def store(http):
        resp = await http.put("/secrets", json={"key": "dev", "value": "kept"})
        assert resp.status == 200, await resp.text()

    async def read(http):
        resp = await http.get("/secrets/dev")
        assert await resp.json() == {"key": "dev", "value": "kept"}

    path = tmp_path / "dev-master-key"
    first = await dev_session(store)
    assert f"created a development master key for secrets in {path}" in first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text()
    second = await dev_session(read)
    assert f"sealed with the development master key in {path}" in second
    assert path.read_text() == key
