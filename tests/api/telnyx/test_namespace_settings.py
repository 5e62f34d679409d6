"""Namespace settings on /v2 (extension): description, max_bytes and max_value_size, given at
creation, changed by PATCH, shown by every answer with the namespace's usage."""

import uuid

import pytest

from service.web.app import create_app
from tests.support import drain, error_code

BASE = "/v2/storage/kvs"
MIB = 1024 * 1024


async def create(client, tenant, name="limited", **fields):
    return await client.post(BASE, json={"name": name, **fields}, headers=tenant.headers)


async def patch(client, tenant, namespace_id, body):
    return await client.patch(f"{BASE}/{namespace_id}", json=body, headers=tenant.headers)


async def shown(client, tenant, namespace_id) -> dict:
    resp = await client.get(f"{BASE}/{namespace_id}", headers=tenant.headers)
    assert resp.status == 200
    return (await resp.json())["data"]


async def test_a_namespace_created_with_only_a_name_has_no_settings_and_no_usage(client, tenant):
    resp = await create(client, tenant)
    assert resp.status == 201
    data = (await resp.json())["data"]
    assert data["status"] == "pending" and data["ttl_support"] is True
    assert data["description"] is None
    assert data["max_bytes"] is None and data["max_value_size"] is None
    assert data["usage"] == {"keys": 0, "bytes": 0}


async def test_settings_given_at_creation_are_shown_by_get_and_list(client, tenant):
    fields = {"description": "sessions, ünïcode", "max_bytes": 10_000, "max_value_size": 2 * MIB}
    resp = await create(client, tenant, **fields)
    assert resp.status == 201
    created = (await resp.json())["data"]
    assert {k: created[k] for k in fields} == fields
    got = await shown(client, tenant, created["id"])
    assert {k: got[k] for k in fields} == fields
    listed = await client.get(BASE, headers=tenant.headers)
    (item,) = (await listed.json())["data"]
    assert {k: item[k] for k in fields} == fields and item["usage"] == {"keys": 0, "bytes": 0}


async def test_patch_changes_only_the_settings_it_names_and_null_removes_one(
    client, tenant, worker
):
    created = (await (await create(client, tenant, description="a", max_bytes=5)).json())["data"]
    await drain(worker)
    resp = await patch(client, tenant, created["id"], {"max_value_size": 123})
    assert resp.status == 200
    data = (await resp.json())["data"]
    assert (data["description"], data["max_bytes"], data["max_value_size"]) == ("a", 5, 123)
    assert data["status"] == "provision_ok" and data["updated_at"] > created["updated_at"]
    resp = await patch(client, tenant, created["id"], {"max_bytes": None, "description": None})
    data = (await resp.json())["data"]
    assert (data["description"], data["max_bytes"], data["max_value_size"]) == (None, None, 123)
    assert (await patch(client, tenant, created["id"], {})).status == 200
    got = await shown(client, tenant, created["id"])
    assert (got["description"], got["max_bytes"], got["max_value_size"]) == (None, None, 123)


BAD_SETTINGS = [
    ("max_bytes", 0),
    ("max_bytes", -1),
    ("max_bytes", 2**63),
    ("max_bytes", "100"),
    ("max_bytes", 1.5),
    ("max_bytes", True),
    ("max_bytes", [1]),
    ("max_value_size", 0),
    ("max_value_size", 16 * MIB + 1),  # above the server's ceiling
    ("max_value_size", 2**31),
    ("max_value_size", "1024"),
    ("description", "x" * 1025),
    ("description", 5),
    ("description", {"text": "x"}),
    ("description", "nul \u0000 inside"),
    ("description", "lone \ud800 surrogate"),
]


@pytest.mark.parametrize(("field", "value"), BAD_SETTINGS)
async def test_a_bad_setting_is_400_pointing_at_it_on_create(client, tenant, field, value):
    resp = await create(client, tenant, **{field: value})
    assert resp.status == 400
    error = (await resp.json())["errors"][0]
    assert error["code"] == "10015" and error["source"] == {"pointer": f"/{field}"}
    listed = await client.get(BASE, headers=tenant.headers)
    assert (await listed.json())["data"] == []


@pytest.mark.parametrize(("field", "value"), BAD_SETTINGS)
async def test_a_bad_setting_is_400_on_patch_and_changes_nothing(
    client, tenant, namespace, field, value
):
    before = await shown(client, tenant, namespace)
    # A valid change next to the bad one must not be applied either.
    resp = await patch(client, tenant, namespace, {"description": "changed", field: value})
    assert resp.status == 400
    error = (await resp.json())["errors"][0]
    assert error["code"] == "10015" and error["source"] == {"pointer": f"/{field}"}
    assert await shown(client, tenant, namespace) == before


async def test_a_whole_number_written_as_a_float_is_accepted(client, tenant, namespace):
    resp = await patch(client, tenant, namespace, {"max_bytes": 2048.0})
    assert resp.status == 200
    assert (await resp.json())["data"]["max_bytes"] == 2048


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("name", "cannot be changed"),
        ("ttl_support", "cannot be changed"),
        ("usage", "set by the server"),
        ("status", "set by the server"),
        ("id", "set by the server"),
        ("max_keys", "not a known field"),
    ],
)
async def test_patch_refuses_unknown_fixed_and_server_owned_fields(
    client, tenant, namespace, field, message
):
    resp = await patch(client, tenant, namespace, {field: "x", "description": "d"})
    assert resp.status == 400
    error = (await resp.json())["errors"][0]
    assert error["source"] == {"pointer": f"/{field}"} and message in error["detail"]
    assert (await shown(client, tenant, namespace))["description"] is None


@pytest.mark.parametrize(
    "body",
    [b"[]", b"not json", b'"text"', b"", b'{"max_bytes": ' + b"9" * 5000 + b"}", b"[" * 50_000],
)
async def test_patch_needs_a_json_object(client, tenant, namespace, body):
    resp = await client.patch(
        f"{BASE}/{namespace}",
        data=body,
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert resp.status == 400 and await error_code(resp) == "10015"


async def test_patch_of_another_tenants_namespace_is_a_404_like_a_missing_one(
    client, tenant, other_tenant, namespace
):
    answers = []
    for ns in (namespace, uuid.uuid4()):
        resp = await patch(client, other_tenant, ns, {"max_bytes": 1})
        answers.append((resp.status, (await resp.read()).replace(str(ns).encode(), b"ID")))
    assert answers[0][0] == 404
    assert answers[0][1].split(b'"meta"')[0] == answers[1][1].split(b'"meta"')[0]
    assert (await shown(client, tenant, namespace))["max_bytes"] is None


async def test_patch_of_a_namespace_being_deleted_is_409(client, tenant, namespace):
    assert (await client.delete(f"{BASE}/{namespace}", headers=tenant.headers)).status == 200
    resp = await patch(client, tenant, namespace, {"description": "late"})
    assert resp.status == 409 and await error_code(resp) == "75003"


async def test_patch_with_a_bad_id_is_400(client, tenant):
    resp = await patch(client, tenant, "not-a-uuid", {"max_bytes": 1})
    assert resp.status == 400 and await error_code(resp) == "10006"


async def test_the_ceiling_is_a_setting(make_client, settings, tenant):
    client = await make_client(
        create_app(settings.model_copy(update={"max_value_size_ceiling": 4 * MIB}))
    )
    assert (await create(client, tenant, "a", max_value_size=4 * MIB)).status == 201
    resp = await create(client, tenant, "b", max_value_size=4 * MIB + 1)
    assert resp.status == 400
    assert "4194304" in (await resp.json())["errors"][0]["detail"]
