"""Every error, on every route, in the contract's JSON shape; request ids; database outages."""

import pytest

from service.db.migrations import latest_version
from service.web.app import create_app
from tests.support import MIGRATIONS, closed_port, make_settings

BASE = "/v2/storage/kvs"


async def test_unknown_route_is_a_json_404(client, tenant):
    resp = await client.get("/v2/storage/nothing", headers=tenant.headers)
    assert resp.status == 404
    assert resp.content_type == "application/json"
    error = (await resp.json())["errors"][0]
    assert error["code"] == "10005"
    assert error["meta"]["request_id"] == resp.headers["X-Request-Id"]
    resp = await client.get("/nothing")
    assert resp.status == 404 and (await resp.json())["errors"][0]["code"] == "10005"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", BASE, {"GET", "POST"}),
        ("PUT", f"{BASE}/00000000-0000-0000-0000-000000000000", {"GET", "DELETE", "PATCH"}),
    ],
)
async def test_wrong_method_is_a_json_405_with_allow(client, tenant, method, path, allowed):
    resp = await client.request(method, path, headers=tenant.headers)
    assert resp.status == 405
    assert set(resp.headers["Allow"].split(",")) == allowed
    assert (await resp.json())["errors"][0]["code"] == "75001"


async def test_request_id_is_echoed_or_generated(client, tenant):
    resp = await client.get(BASE, headers={**tenant.headers, "X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    for unfit in ("has spaces", "x" * 129, 'quote"s'):
        resp = await client.get(BASE, headers={**tenant.headers, "X-Request-Id": unfit})
        assert len(resp.headers["X-Request-Id"]) == 32
    resp = await client.get("/nothing")
    assert (await resp.json())["errors"][0]["meta"]["request_id"] == resp.headers["X-Request-Id"]


async def test_an_oversized_json_body_is_a_json_413(client, tenant):
    resp = await client.post(
        BASE, data=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers=tenant.headers
    )
    assert resp.status == 413
    assert (await resp.json())["errors"][0]["code"] == "75004"


async def test_database_outage_is_503_with_retry_after_and_healthz_stays_up(make_client):
    settings = make_settings(
        f"postgresql://postgres@127.0.0.1:{closed_port()}/none", db_connect_timeout=1.0
    )
    client = await make_client(create_app(settings))
    assert (await client.get("/healthz")).status == 200
    well_formed_key = "kvs_" + "0" * 16 + "_" + "A" * 43
    for path, headers in [("/readyz", {}), (BASE, {"X-Api-Key": well_formed_key})]:
        resp = await client.get(path, headers=headers)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        body = await resp.json()
        assert body["errors"][0]["code"] == "75005"
        assert "Traceback" not in str(body) and "asyncpg" not in str(body)


async def test_readyz_reports_the_schema_version(client):
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ready", "schema_version": latest_version(MIGRATIONS)}


async def test_readyz_is_503_on_an_unmigrated_database(make_client, empty_database_url):
    client = await make_client(create_app(make_settings(empty_database_url)))
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert "kvs migrate" in (await resp.json())["errors"][0]["detail"]
