"""The operator commands: tenants and key rotation, through the real `kvs` command."""

import subprocess

from service.app import create_app
from tests.conftest import KVS, make_settings, worker_env


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
