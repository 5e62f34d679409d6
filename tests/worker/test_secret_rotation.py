"""Master-key rotation: the worker re-wraps every data key under the new master key, in
batches, resumably, beside live reads and writes, and `kvs secrets` drives and reports it."""

import asyncio
import random
import subprocess

from service.domain import secrets
from service.domain.sealing import MasterKeys, new_master_key
from service.domain.secrets import SecretStore
from service.web.app import create_app
from service.worker.loop import Worker
from service.worker.rotation import MAX_PASSES, rotate_batch
from tests.support import KVS, make_settings, worker_env

OLD = new_master_key("old")
NEW = new_master_key("new")


def store(keys: str, **options) -> SecretStore:
    return SecretStore(MasterKeys.parse(keys), versions_kept=10, max_secrets=10**6, **options)


async def fill(db, tenant_id, keys: str, count: int, prefix: str = "s") -> dict[str, str]:
    values = {f"{prefix}{i:05d}": f"value-{i}-{random.random()}" for i in range(count)}
    under = store(keys)
    for name, value in values.items():
        await under.put(db, tenant_id, name, value.encode())
    return values


async def rotate_all(db, settings) -> int:
    """Runs batches until the rotation is done; how many batches it took."""
    ctx = Worker(db, settings).context
    batches = 1
    while await rotate_batch(ctx):
        batches += 1
    return batches


async def assert_every_value_opens_with(db, tenant_id, keys: str, values: dict[str, str]):
    only = store(keys)
    for name, value in values.items():
        got = await only.get(db, tenant_id, name, request_id="test")
        assert got.value == value, name


async def test_rotation_rewraps_every_data_key_in_batches_and_the_old_key_wraps_none(
    db, tenant, database_url
):
    values = await fill(db, tenant.id, OLD, 45)
    settings = make_settings(
        database_url, secrets_master_keys=f"{NEW},{OLD}", secret_rotation_batch_size=10
    )
    started, rotation = await secrets.request_rotation(db, "new")
    assert started and rotation.target_key_id == "new"

    # 45 versions in batches of 10: five batches reach the end of the pass.
    assert await rotate_all(db, settings) == 5
    assert await secrets.master_key_usage(db) == {"new": 45}
    finished = await secrets.latest_rotation(db)
    assert finished.finished_at is not None and finished.rewrapped == 45
    assert finished.passes == 1 and finished.last_error is None
    # The old master key can go: everything opens with the new one alone.
    await assert_every_value_opens_with(db, tenant.id, NEW, values)


async def test_a_rotation_resumes_where_it_stopped_without_rewrapping_twice(
    db, tenant, database_url
):
    await fill(db, tenant.id, OLD, 30)
    settings = make_settings(
        database_url, secrets_master_keys=f"{NEW},{OLD}", secret_rotation_batch_size=10
    )
    await secrets.request_rotation(db, "new")
    assert await rotate_batch(Worker(db, settings).context)  # one batch, then the worker dies
    assert await secrets.master_key_usage(db) == {"new": 10, "old": 20}

    assert await rotate_all(db, settings) == 3  # a new worker: two batches and the end
    rotation = await secrets.latest_rotation(db)
    assert rotation.rewrapped == 30 and rotation.finished_at is not None


async def test_keys_written_under_the_old_key_behind_the_batches_are_taken_by_another_pass(
    db, tenant, database_url
):
    """During a rollout a process still wraps under the old key: a second pass takes what it
    wrote behind the rotation's position."""
    await fill(db, tenant.id, OLD, 20, prefix="b")
    settings = make_settings(
        database_url, secrets_master_keys=f"{NEW},{OLD}", secret_rotation_batch_size=10
    )
    await secrets.request_rotation(db, "new")
    ctx = Worker(db, settings).context
    assert await rotate_batch(ctx)
    late = await fill(db, tenant.id, OLD, 3, prefix="a")  # sorts before every "b" name
    while await rotate_batch(ctx):
        pass
    rotation = await secrets.latest_rotation(db)
    assert rotation.passes == 2 and rotation.last_error is None
    assert await secrets.master_key_usage(db) == {"new": 23}
    await assert_every_value_opens_with(db, tenant.id, NEW, late)


async def test_an_unreadable_data_key_is_counted_and_reported_and_the_rest_rotates(
    db, tenant, database_url
):
    values = await fill(db, tenant.id, OLD, 5)
    await db.execute(
        "UPDATE secret_versions SET wrapped_key = set_byte(wrapped_key, 20, "
        "get_byte(wrapped_key, 20) # 1) WHERE name = 's00002'"
    )
    settings = make_settings(database_url, secrets_master_keys=f"{NEW},{OLD}")
    worker = Worker(db, settings)
    await secrets.request_rotation(db, "new")
    while await rotate_batch(worker.context):
        pass
    rotation = await secrets.latest_rotation(db)
    assert rotation.finished_at is not None and rotation.passes == MAX_PASSES
    assert rotation.unreadable == MAX_PASSES  # seen once a pass
    assert "remain" in rotation.last_error
    assert await secrets.master_key_usage(db) == {"new": 4, "old": 1}
    failures = worker.metrics.secret_decryption_failures.labels("integrity")._value.get()
    assert failures == MAX_PASSES
    del values["s00002"]
    await assert_every_value_opens_with(db, tenant.id, NEW, values)


async def test_a_worker_without_the_target_key_leaves_the_rotation_and_says_why(
    db, tenant, database_url
):
    await fill(db, tenant.id, OLD, 3)
    await secrets.request_rotation(db, "new")
    ctx = Worker(db, make_settings(database_url, secrets_master_keys=OLD)).context
    assert not await rotate_batch(ctx)
    rotation = await secrets.latest_rotation(db)
    assert rotation.finished_at is None and "'new'" in rotation.last_error
    assert await secrets.master_key_usage(db) == {"old": 3}


async def test_a_second_request_while_one_is_under_way_does_not_start_another(db):
    first = await secrets.request_rotation(db, "new")
    again = await secrets.request_rotation(db, "other")
    assert first[0] and not again[0]
    assert again[1].id == first[1].id and again[1].target_key_id == "new"


async def test_rotation_beside_16_clients_reading_and_writing_loses_nothing(
    make_client, db, tenant, database_url
):
    """16 clients read and write secrets over HTTP while the worker rotates; afterwards every
    secret holds its last acknowledged value, opens with the new master key alone, and the
    old key wraps nothing."""
    names = [f"live-{i:03d}" for i in range(200)]
    last = await fill(db, tenant.id, OLD, 0)
    before = store(OLD)
    for name in names:
        last[name] = f"{name}-0"
        await before.put(db, tenant.id, name, last[name].encode())
    both = make_settings(
        database_url, secrets_master_keys=f"{NEW},{OLD}", secret_rotation_batch_size=25
    )
    client = await make_client(create_app(both))
    worker = Worker(db, both)
    await secrets.request_rotation(db, "new")
    rotating = asyncio.create_task(rotate_all(db, both))
    failures: list[str] = []

    async def user(n: int) -> None:
        rng = random.Random(n)
        # Each client writes its own names (so "last acknowledged" is well defined) and reads
        # everyone's.
        mine = names[n::16]
        for step in range(40):
            name = rng.choice(mine)
            value = f"{name}-{n}-{step}"
            resp = await client.put(
                f"/v2/secrets/{name}", json={"value": value}, headers=tenant.headers
            )
            if resp.status != 200:
                failures.append(f"PUT {name}: {resp.status} {await resp.text()}")
            else:
                last[name] = value
            read = await client.get(f"/v2/secrets/{rng.choice(names)}", headers=tenant.headers)
            if read.status != 200:
                failures.append(f"GET: {read.status} {await read.text()}")

    await asyncio.gather(*(user(n) for n in range(16)))
    await rotating
    while await rotate_batch(worker.context):  # writes after the pass ended, if any
        pass
    assert failures == []
    assert set(await secrets.master_key_usage(db)) == {"new"}
    await assert_every_value_opens_with(db, tenant.id, NEW, last)


def kvs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*KVS, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_kvs_secrets_new_key_rotate_and_status(db, tenant, database_url):
    await fill(db, tenant.id, OLD, 12)
    made = kvs(worker_env(database_url), "secrets", "new-key", "2026-12")
    assert made.returncode == 0, made.stderr
    fresh = made.stdout.strip()
    assert fresh.startswith("2026-12:") and MasterKeys.parse(fresh).ids == ("2026-12",)

    env = worker_env(database_url, secrets_master_keys=f"{fresh},{OLD}")
    assert usage_rows(kvs(env, "secrets", "status")) == {
        "2026-12": ("0", "current"),
        "old": ("12", "configured"),
    }

    worker = await asyncio.create_subprocess_exec(
        *KVS,
        "worker",
        env=worker_env(
            database_url, secrets_master_keys=f"{fresh},{OLD}", worker_poll_interval="0.2"
        ),
    )
    try:
        rotated = await asyncio.to_thread(kvs, env, "secrets", "rotate", "--wait")
    finally:
        worker.terminate()
        await worker.wait()
    assert rotated.returncode == 0, rotated.stderr
    assert "finished" in rotated.stdout and "12 re-wrapped" in rotated.stdout
    assert usage_rows(kvs(env, "secrets", "status")) == {
        "2026-12": ("12", "current"),
        "old": ("0", "configured"),
    }
    # Without the old key configured, status names what it still wraps (nothing).
    alone = kvs(worker_env(database_url, secrets_master_keys=fresh), "secrets", "status")
    assert usage_rows(alone) == {"2026-12": ("12", "current")}


def usage_rows(result: subprocess.CompletedProcess) -> dict[str, tuple[str, str]]:
    """`kvs secrets status`'s table: key id -> (data keys, role's first word)."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["master", "key", "data", "keys", "here"]
    rows = {}
    for line in lines[1:]:
        if line.startswith("rotation"):
            break
        key_id, count, role = line.split()[:3]
        rows[key_id] = (count, role.rstrip(":"))
    return rows


def test_malformed_master_keys_stop_the_server_with_a_message_that_never_quotes_them():
    material = "c2VjcmV0LW1hdGVyaWFsLXRoYXQtaXMtdG9vLXNob3J0"
    for setting in (f"k1:{material}", "no-colon-here", f"k1:{NEW.split(':')[1]},k1:{material}"):
        env = worker_env("postgresql://127.0.0.1:1/none", secrets_master_keys=setting)
        result = kvs(env, "serve", "--port", "0")
        assert result.returncode == 1
        assert "KVS_SECRETS_MASTER_KEYS" in result.stderr
        assert material not in result.stderr + result.stdout
        assert NEW.split(":")[1] not in result.stderr + result.stdout
