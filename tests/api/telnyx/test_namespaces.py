"""The namespace routes, every status code of the contract, against a real server and database."""

import asyncio
import uuid

import pytest

from tests.support import drain

BASE = "/v2/storage/kvs"


async def create(client, tenant, name="my-cache", **extra):
    return await client.post(BASE, json={"name": name, **extra}, headers=tenant.headers)


async def test_create_answers_201_with_a_pending_namespace(client, tenant):
    resp = await create(client, tenant)
    assert resp.status == 201
    data = (await resp.json())["data"]
    assert data["record_type"] == "storage_kv"
    assert data["name"] == "my-cache"
    assert data["status"] == "pending"
    assert data["ttl_support"] is True
    assert data["status_reason"] is None
    assert uuid.UUID(data["id"])
    assert data["created_at"].endswith("Z") and data["updated_at"] == data["created_at"]


async def test_ttl_support_can_be_turned_off(client, tenant):
    resp = await create(client, tenant, ttl_support=False)
    assert resp.status == 201
    assert (await resp.json())["data"]["ttl_support"] is False


async def test_worker_provisions_a_created_namespace(client, tenant, worker):
    ns = (await (await create(client, tenant)).json())["data"]
    await drain(worker)
    resp = await client.get(f"{BASE}/{ns['id']}", headers=tenant.headers)
    assert resp.status == 200
    data = (await resp.json())["data"]
    assert data["status"] == "provision_ok"
    assert data["updated_at"] > data["created_at"]


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "my-cache-2",
        "0",
        "-",
        "x" * 255,
    ],
)
async def test_valid_names_are_accepted(client, tenant, name):
    assert (await create(client, tenant, name)).status == 201


@pytest.mark.parametrize(
    "name",
    [
        "",
        "My-Cache",
        "my_cache",
        "my cache",
        "caché",
        "x" * 256,
        "a/b",
        12,
        None,
        ["a"],
    ],
)
async def test_invalid_names_are_400_pointing_at_name(client, tenant, name):
    resp = await create(client, tenant, name)
    assert resp.status == 400
    error = (await resp.json())["errors"][0]
    assert error["code"] == "10015"
    assert error["source"] == {"pointer": "/name"}


async def test_missing_name_is_400_missing_parameter(client, tenant):
    resp = await client.post(BASE, json={}, headers=tenant.headers)
    assert resp.status == 400
    error = (await resp.json())["errors"][0]
    assert error["code"] == "10004"
    assert error["source"] == {"pointer": "/name"}


@pytest.mark.parametrize("field", ["id", "status", "record_type", "created_at", "color"])
async def test_unknown_or_server_owned_fields_are_400(client, tenant, field):
    resp = await create(client, tenant, **{field: "x"})
    assert resp.status == 400
    error = (await resp.json())["errors"][0]
    assert error["code"] == "10015"
    assert error["source"] == {"pointer": f"/{field}"}


@pytest.mark.parametrize("ttl_support", ["true", 1, None])
async def test_ttl_support_must_be_a_boolean(client, tenant, ttl_support):
    resp = await create(client, tenant, ttl_support=ttl_support)
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["source"] == {"pointer": "/ttl_support"}


HUGE_NUMBER = b'{"name": "n", "max_bytes": ' + b"1" * 4301 + b"}"  # past Python's digit limit
DEEP = b'{"name": "n", "description": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize(
    "body", [b"{", b"", b"\xff\xfe", b'"name"', b"[1]", b"null", HUGE_NUMBER, DEEP]
)
async def test_malformed_json_is_400(client, tenant, body):
    resp = await client.post(BASE, data=body, headers=tenant.headers)
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["code"] == "10015"


async def test_duplicate_name_is_409_for_the_same_tenant_only(client, tenant, other_tenant):
    assert (await create(client, tenant)).status == 201
    resp = await create(client, tenant)
    assert resp.status == 409
    assert (await resp.json())["errors"][0]["code"] == "10012"
    assert (await create(client, other_tenant)).status == 201


async def test_concurrent_creates_of_one_name_make_exactly_one(client, tenant):
    statuses = await asyncio.gather(*(create(client, tenant, "race") for _ in range(10)))
    assert sorted(r.status for r in statuses) == [201] + [409] * 9


async def test_a_deleted_namespace_frees_its_name(client, tenant):
    ns = (await (await create(client, tenant)).json())["data"]
    assert (await client.delete(f"{BASE}/{ns['id']}", headers=tenant.headers)).status == 200
    assert (await create(client, tenant)).status == 201


async def test_list_is_newest_first_with_page_meta(client, tenant):
    for i in range(5):
        assert (await create(client, tenant, f"ns-{i}")).status == 201
    resp = await client.get(
        BASE, params={"page[number]": "2", "page[size]": "2"}, headers=tenant.headers
    )
    assert resp.status == 200
    body = await resp.json()
    assert [ns["name"] for ns in body["data"]] == ["ns-2", "ns-1"]
    assert body["meta"] == {"page_number": 2, "page_size": 2, "total_pages": 3, "total_results": 5}


async def test_list_defaults_to_20_and_caps_page_size_at_250(client, tenant):
    body = await (await client.get(BASE, headers=tenant.headers)).json()
    assert body == {
        "data": [],
        "meta": {"page_number": 1, "page_size": 20, "total_pages": 0, "total_results": 0},
    }
    for size in ("251", "1000", "9" * 5000):
        resp = await client.get(BASE, params={"page[size]": size}, headers=tenant.headers)
        assert (await resp.json())["meta"]["page_size"] == 250


async def test_a_page_past_the_end_is_empty(client, tenant):
    await create(client, tenant)
    resp = await client.get(BASE, params={"page[number]": "99999999"}, headers=tenant.headers)
    body = await resp.json()
    assert body["data"] == [] and body["meta"]["total_results"] == 1


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("page[number]", "0"),
        ("page[number]", "-1"),
        ("page[number]", "x"),
        ("page[size]", "0"),
        ("page[size]", "1.5"),
        ("page[number]", "2147483648"),
        ("page[number]", "9" * 5000),
    ],
)
async def test_bad_page_parameters_are_400(client, tenant, param, value):
    resp = await client.get(BASE, params={param: value}, headers=tenant.headers)
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["source"] == {"parameter": param}


async def test_get_unknown_namespace_is_404(client, tenant):
    resp = await client.get(f"{BASE}/{uuid.uuid4()}", headers=tenant.headers)
    assert resp.status == 404
    assert (await resp.json())["errors"][0]["code"] == "10005"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1234", f"{{{uuid.uuid4()}}}", uuid.uuid4().hex])
async def test_a_non_uuid_id_is_400(client, tenant, method, bad_id):
    resp = await client.request(method, f"{BASE}/{bad_id}", headers=tenant.headers)
    assert resp.status == 400
    error = (await resp.json())["errors"][0]
    assert error["code"] == "10006" and error["source"] == {"parameter": "id"}


async def test_delete_answers_200_deleting_then_409_then_404_once_gone(client, tenant, worker, db):
    ns = (await (await create(client, tenant)).json())["data"]
    await drain(worker)
    resp = await client.delete(f"{BASE}/{ns['id']}", headers=tenant.headers)
    assert resp.status == 200
    assert (await resp.json())["data"]["status"] == "deleting"

    again = await client.delete(f"{BASE}/{ns['id']}", headers=tenant.headers)
    assert again.status == 409
    assert (await again.json())["errors"][0]["code"] == "75003"
    listed = await (await client.get(BASE, headers=tenant.headers)).json()
    assert [n["status"] for n in listed["data"]] == ["deleting"]

    await drain(worker)
    assert (await client.get(f"{BASE}/{ns['id']}", headers=tenant.headers)).status == 404
    assert (await client.delete(f"{BASE}/{ns['id']}", headers=tenant.headers)).status == 404
    listed = await (await client.get(BASE, headers=tenant.headers)).json()
    assert listed["data"] == [] and listed["meta"]["total_results"] == 0
    assert await db.fetchval("SELECT count(*) FROM namespaces") == 0


async def test_deleting_a_pending_namespace_cancels_its_provisioning(client, tenant, worker, db):
    ns = (await (await create(client, tenant)).json())["data"]
    assert (await client.delete(f"{BASE}/{ns['id']}", headers=tenant.headers)).status == 200
    assert await db.fetchval("SELECT array_agg(kind) FROM jobs") == ["delete"]
    await drain(worker)
    assert (await client.get(f"{BASE}/{ns['id']}", headers=tenant.headers)).status == 404
    assert await db.fetchval("SELECT count(*) FROM namespace_storage") == 0


async def test_another_tenants_namespace_is_answered_exactly_like_a_missing_one(
    client, tenant, other_tenant
):
    """Tenant B gets byte-identical 404s on tenant A's namespace and never sees it listed."""
    ns = (await (await create(client, tenant)).json())["data"]
    missing = str(uuid.uuid4())
    for method in ("GET", "DELETE"):
        answers = []
        for target in (ns["id"], missing):
            resp = await client.request(
                method,
                f"{BASE}/{target}",
                headers={**other_tenant.headers, "X-Request-Id": "same-id"},
            )
            body = (await resp.read()).replace(target.encode(), b"ID")
            headers = {k: v for k, v in resp.headers.items() if k != "Date"}
            answers.append((resp.status, headers, body))
        assert answers[0] == answers[1]
        assert answers[0][0] == 404
    listed = await (await client.get(BASE, headers=other_tenant.headers)).json()
    assert listed["data"] == [] and listed["meta"]["total_results"] == 0
    # And tenant A still has it, untouched.
    resp = await client.get(f"{BASE}/{ns['id']}", headers=tenant.headers)
    assert (await resp.json())["data"]["status"] == "pending"
