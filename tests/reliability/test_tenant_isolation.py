"""Tenant isolation: every route and method of both contracts on a namespace (/v2 by id,
quiva.ai's /storage/kv by bucket name), tried with another tenant's key."""

import uuid

import pytest
import yaml

from service.settings import REPO_ROOT
from tests.api.quiva import entry_url
from tests.support import key_url

SPEC = yaml.safe_load((REPO_ROOT / "openapi" / "openapi.yaml").read_text())
# Every operation on a namespace, from the contract itself, so a new route joins the matrix.
NAMESPACE_OPERATIONS = [
    (method.upper(), path)
    for path, item in SPEC["paths"].items()
    if "{id}" in path
    for method in item
    if method in ("get", "put", "post", "delete", "head", "patch")
]
QUERIES = {"GET": ["", "?prefix=k", "?limit=1", "?reverse=true"]}

QUIVA = yaml.safe_load((REPO_ROOT / "openapi" / "quiva.yaml").read_text())
# quiva.ai's operations on a bucket, addressed by name, but the PUT of a bucket: that creates
# the caller's own (tests/api/quiva/test_bad_input.py checks it leaves the other one alone).
BUCKET_OPERATIONS = [
    (method.upper(), path)
    for path, item in QUIVA["paths"].items()
    if "{bucket}" in path
    for method in item
    if method in ("get", "put", "post", "delete", "head", "patch")
    and (method, path) != ("put", "/storage/kv/{bucket}")
]
# What a search needs before it looks for its bucket.
BUCKET_QUERIES = {
    "/storage/kv/{bucket}/search": "?field=a&search=k1",
    "/storage/kv/{bucket}/search-by-key": "?search=k*",
}
BUCKET = "keys"  # the `namespace` fixture's name


def url_of(path: str, namespace, key: str = "k1") -> str:
    if "{key}" in path:
        return str(key_url(namespace, key))
    return path.replace("{id}", str(namespace))


def bucket_url_of(path: str, bucket: str) -> str:
    if "{key}" in path:
        return str(entry_url(bucket, "k1"))
    return path.replace("{bucket}", bucket) + BUCKET_QUERIES.get(path, "")


async def answer(client, method: str, url: str, headers: dict) -> tuple:
    """Status, headers (less Date) and body, with namespace ids replaced by a placeholder."""
    resp = await client.request(
        method,
        url,
        data=b"intruder" if method == "PUT" else None,
        json={"description": "intruder", "max_bytes": 1} if method == "PATCH" else None,
        headers={**headers, "X-Request-Id": "same-id"},
    )
    body = await resp.read()
    headers = {k: v for k, v in resp.headers.items() if k != "Date"}
    return resp.status, headers, body


def test_the_matrix_covers_every_namespace_operation():
    assert len(NAMESPACE_OPERATIONS) == 8, NAMESPACE_OPERATIONS
    assert len(BUCKET_OPERATIONS) == 9, BUCKET_OPERATIONS


@pytest.mark.parametrize(("method", "path"), NAMESPACE_OPERATIONS)
async def test_another_tenants_key_gets_the_same_404_as_a_random_uuid_and_changes_nothing(
    client, tenant, other_tenant, namespace, method, path
):
    """Pass: on tenant A's provisioned namespace (holding key k1), tenant B gets, for this
    operation, byte-identical answers to those for a random UUID, all 404; A's namespace and
    key are unchanged afterwards, and B lists nothing."""
    put = await client.put(key_url(namespace, "k1"), data=b"mine", headers=tenant.headers)
    assert put.status == 201
    for suffix in QUERIES.get(method, [""]) if path.endswith("/keys") else [""]:
        ours = await answer(client, method, url_of(path, namespace) + suffix, other_tenant.headers)
        missing = uuid.uuid4()
        random_one = await answer(
            client, method, url_of(path, missing) + suffix, other_tenant.headers
        )
        assert ours[0] == 404
        body = ours[2].replace(str(namespace).encode(), b"ID")
        assert (ours[0], ours[1], body) == (
            random_one[0],
            random_one[1],
            random_one[2].replace(str(missing).encode(), b"ID"),
        )
    await assert_unchanged(client, tenant, other_tenant, namespace)


@pytest.mark.parametrize(("method", "path"), BUCKET_OPERATIONS)
async def test_another_tenants_key_gets_the_same_404_as_a_bucket_nobody_has_on_quiva(
    client, tenant, other_tenant, namespace, method, path
):
    """Pass: on quiva.ai's surface, where tenant A's namespace is its bucket "keys", tenant B
    gets for this operation byte-identical answers to those for a bucket of a name nobody
    has, all 404; A's namespace and key are unchanged afterwards, and B lists nothing."""
    put = await client.put(key_url(namespace, "k1"), data=b"mine", headers=tenant.headers)
    assert put.status == 201
    ours = await answer(client, method, bucket_url_of(path, BUCKET), other_tenant.headers)
    nobodys = await answer(client, method, bucket_url_of(path, "nobody"), other_tenant.headers)
    assert ours[0] == 404
    assert ours == nobodys
    await assert_unchanged(client, tenant, other_tenant, namespace)


async def assert_unchanged(client, tenant, other_tenant, namespace) -> None:
    """A's namespace is as the `namespace` fixture made it, holding k1 = "mine"; B has none."""
    listed = await (await client.get("/v2/storage/kvs", headers=other_tenant.headers)).json()
    assert listed["data"] == []
    listed = await (await client.get("/storage/kv", headers=other_tenant.headers)).json()
    assert listed["body"]["results"] == []
    resp = await client.get(key_url(namespace, "k1"), headers=tenant.headers)
    assert resp.status == 200 and await resp.read() == b"mine"
    resp = await client.get(f"/v2/storage/kvs/{namespace}", headers=tenant.headers)
    data = (await resp.json())["data"]
    assert data["status"] == "provision_ok"
    assert (data["description"], data["max_bytes"]) == (None, None)
