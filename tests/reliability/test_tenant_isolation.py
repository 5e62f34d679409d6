"""Tenant isolation: every route and method of both contracts on a namespace (/v2 by id,
quiva.ai's /storage/kv by bucket name), and every secrets route of both (/v2/secrets and
quiva.ai's /secrets), tried with another tenant's key."""

import json
import uuid

import pytest
import yaml

from service.settings import REPO_ROOT
from tests.api.quiva import entry_url
from tests.support import key_url
from tests.support.secrets import quiva_url, read, secret_url, version_rows, write

SPEC = yaml.safe_load((REPO_ROOT / "openapi" / "openapi.yaml").read_text())
# Every operation on a namespace, from the contract itself, so a new route joins the matrix.
NAMESPACE_OPERATIONS = [
    (method.upper(), path)
    for path, item in SPEC["paths"].items()
    if "{id}" in path
    for method in item
    if method in ("get", "put", "post", "delete", "head", "patch")
]
QUERIES = {"GET": ["", "?prefix=k", "?limit=1", "?reverse=true", "?values=true&total=true"]}
# The bodies of the POSTs: each would read or remove A's key k1 if it reached it.
POST_BODIES = {
    "batch-read": {"keys": ["k1"]},
    "transaction": {"operations": [{"op": "delete", "key": "k1"}]},
}

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
        json={"description": "intruder", "max_bytes": 1}
        if method == "PATCH"
        else POST_BODIES.get(url.rsplit("/", 1)[-1]),
        headers={**headers, "X-Request-Id": "same-id"},
    )
    body = await resp.read()
    headers = {k: v for k, v in resp.headers.items() if k != "Date"}
    return resp.status, headers, body


def test_the_matrix_covers_every_namespace_operation():
    assert len(NAMESPACE_OPERATIONS) == 10, NAMESPACE_OPERATIONS
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


QUIVA_SECRETS = yaml.safe_load((REPO_ROOT / "openapi" / "quiva-secrets.yaml").read_text())
# Every secrets operation of both contracts, from the contracts, so a new route joins the matrix.
SECRET_OPERATIONS = sorted(
    {
        (method.upper(), path)
        for spec in (SPEC, QUIVA_SECRETS)
        for path, item in spec["paths"].items()
        if path.startswith(("/v2/secrets", "/secrets"))
        for method in item
        if method in ("get", "put", "post", "delete", "head", "patch")
    }
)
OWNER_ETAG = "owner's ETag"  # replaced by the owner's current ETag
NAME = "alpha"  # the owner's secret
# (method, path, query, headers, JSON body, the status of a secret nobody has): each request
# another tenant makes on the owner's secret, as it would on one that does not exist.
SECRET_CASES = [
    ("GET", "/v2/secrets/{name}", {}, {}, None, 404),
    ("GET", "/v2/secrets/{name}", {"version": "1"}, {}, None, 404),
    ("GET", "/v2/secrets/{name}", {"version": "2"}, {}, None, 404),
    ("PUT", "/v2/secrets/{name}", {}, {}, {"value": "intruder"}, 201),
    ("PUT", "/v2/secrets/{name}", {}, {"If-None-Match": "*"}, {"value": "intruder"}, 201),
    ("PUT", "/v2/secrets/{name}", {}, {"If-Match": "*"}, {"value": "intruder"}, 412),
    ("PUT", "/v2/secrets/{name}", {}, {"If-Match": OWNER_ETAG}, {"value": "intruder"}, 412),
    ("DELETE", "/v2/secrets/{name}", {}, {}, None, 204),
    ("DELETE", "/v2/secrets/{name}", {}, {"If-Match": "*"}, None, 412),
    ("DELETE", "/v2/secrets/{name}", {}, {"If-Match": OWNER_ETAG}, None, 412),
    ("GET", "/v2/secrets", {}, {}, None, 200),
    ("GET", "/v2/secrets", {"prefix": "alp"}, {}, None, 200),
    ("GET", "/v2/secrets", {"limit": "1"}, {}, None, 200),
    ("GET", "/secrets/{key}", {}, {}, None, 404),
    ("DELETE", "/secrets/{key}", {}, {}, None, 404),
    ("GET", "/secrets", {}, {}, None, 200),
    ("GET", "/secrets", {"reveal": "true"}, {}, None, 200),
    ("GET", "/secrets", {"limit": "1", "reveal": "true"}, {}, None, 200),
    ("PUT", "/secrets", {}, {}, {"key": NAME, "value": "intruder"}, 200),
]


def secret_url_of(path: str) -> str:
    if path == "/v2/secrets/{name}":
        return str(secret_url(NAME))
    if path == "/secrets/{key}":
        return str(quiva_url(NAME))
    return path


async def secret_answer(client, case: tuple, headers: dict, etag: str) -> tuple:
    """Status, headers and body of one case, less what differs between any two answers (the
    Date; the timestamps and ETag of a secret the request created)."""
    method, path, query, extra, body, _ = case
    extra = {k: etag if v == OWNER_ETAG else v for k, v in extra.items()}
    resp = await client.request(
        method,
        secret_url_of(path),
        params=query,
        json=body,
        headers={**headers, **extra, "X-Request-Id": "same-id"},
    )
    raw = await resp.read()
    got = {k.lower(): v for k, v in resp.headers.items() if k.lower() != "date"}
    if "etag" in got:
        assert got["etag"] != etag
        got["etag"] = "ETAG"
    if raw and resp.content_type == "application/json":
        document = json.loads(raw)
        if isinstance(document, dict) and isinstance(document.get("data"), dict):
            for field in ("created_at", "updated_at", "version_created_at"):
                if field in document["data"]:
                    document["data"][field] = "T"
        raw = json.dumps(document).encode()
    return resp.status, got, raw


def test_the_matrix_covers_every_secrets_operation():
    assert SECRET_OPERATIONS == sorted(
        [
            ("DELETE", "/secrets/{key}"),
            ("DELETE", "/v2/secrets/{name}"),
            ("GET", "/secrets"),
            ("GET", "/secrets/{key}"),
            ("GET", "/v2/secrets"),
            ("GET", "/v2/secrets/{name}"),
            ("PUT", "/secrets"),
            ("PUT", "/v2/secrets/{name}"),
        ]
    )
    assert {(case[0], case[1]) for case in SECRET_CASES} == set(SECRET_OPERATIONS)


@pytest.mark.parametrize(
    "case", SECRET_CASES, ids=[f"{c[0]} {c[1]} {c[2] or ''}{c[3] or ''}" for c in SECRET_CASES]
)
async def test_another_tenants_secret_looks_exactly_like_a_missing_one_and_stays_unchanged(
    client, tenant, other_tenant, db, case
):
    """Pass: tenant B's request gets the same answer (status, headers, body, but for a
    secret's timestamps and ETag) whether tenant A holds the secret or nobody does; A's
    secret is unchanged afterwards, and whatever B wrote is B's own."""
    # Before A holds it: an ETag no secret ever has (revisions start at 1).
    missing = await secret_answer(client, case, other_tenant.headers, '"0"')
    assert missing[0] == case[5], missing
    await forget_secrets(db, other_tenant.id)

    await write(client, tenant, NAME, "old")
    etag = await write(client, tenant, NAME, "mine")
    ours = await secret_answer(client, case, other_tenant.headers, etag)
    assert ours == missing
    assert b"mine" not in ours[2] and b"old" not in ours[2]

    data = await read(client, tenant, NAME)
    assert (data["value"], data["version"]) == ("mine", 2)
    resp = await client.get(secret_url(NAME), headers=tenant.headers)
    assert resp.headers["ETag"] == etag
    assert (await read(client, tenant, NAME, version="1"))["value"] == "old"
    resp = await client.get(quiva_url(NAME), headers=tenant.headers)
    assert await resp.json() == {"key": NAME, "value": "mine"}
    assert await version_rows(db, tenant.id, NAME) == [1, 2]
    listed = await (await client.get("/v2/secrets", headers=tenant.headers)).json()
    assert [item["name"] for item in listed["data"]] == [NAME]
    # What B wrote, it wrote for itself: its own secret, at its own version 1.
    if case[0] == "PUT" and case[5] < 300:
        data = await read(client, other_tenant, NAME)
        assert (data["value"], data["version"]) == ("intruder", 1)
    else:
        assert await version_rows(db, other_tenant.id, NAME) == []


async def forget_secrets(db, tenant_id) -> None:
    """Removes a tenant's secrets and their count, as if it never had any."""
    await db.execute("DELETE FROM secrets WHERE tenant_id = $1", tenant_id)
    await db.execute("DELETE FROM secret_counts WHERE tenant_id = $1", tenant_id)
