"""Helpers of the secrets tests: URLs on both surfaces, writes and reads, the stored rows."""

from urllib.parse import quote

from yarl import URL

V2 = "/v2/secrets"
QUIVA = "/secrets"


def secret_url(name: str, base: str = V2) -> URL:
    """A secret's URL on either surface, every character a client could rewrite
    percent-encoded (dots too: a client would resolve `a/../b` to `b`)."""
    return URL(f"{base}/{quote(name, safe='').replace('.', '%2E')}", encoded=True)


def quiva_url(name: str) -> URL:
    return secret_url(name, QUIVA)


async def put_secret(client, tenant, name: str, value, headers: dict | None = None):
    """A PUT of `{"value": value}` on /v2/secrets/{name}; the response."""
    return await client.put(
        secret_url(name), json={"value": value}, headers={**tenant.headers, **(headers or {})}
    )


async def write(client, tenant, name: str, value: str, headers: dict | None = None) -> str:
    """Writes the secret (asserting it was stored); its ETag."""
    resp = await put_secret(client, tenant, name, value, headers)
    assert resp.status in (200, 201), await resp.text()
    return resp.headers["ETag"]


async def read(client, tenant, name: str, **params) -> dict:
    """The `data` of a GET of /v2/secrets/{name} that answered 200."""
    resp = await client.get(secret_url(name), params=params, headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["data"]


async def status_of(client, tenant, name: str, **params) -> int:
    resp = await client.get(secret_url(name), params=params, headers=tenant.headers)
    return resp.status


async def telnyx_error(resp) -> dict:
    """The one error of a Telnyx error answer, checked to be in its shape."""
    body = await resp.json()
    assert set(body) == {"errors"}, body
    (error,) = body["errors"]
    assert (
        {"code", "title", "detail", "meta"}
        <= set(error)
        <= {
            "code",
            "title",
            "detail",
            "source",
            "meta",
        }
    ), error
    assert error["meta"]["request_id"] == resp.headers["X-Request-Id"]
    assert isinstance(error["detail"], str) and error["detail"]
    return error


async def quiva_error(resp) -> str:
    """The sentence of a quiva.ai secrets error answer, checked to be `{"error": "..."}`."""
    body = await resp.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str) and body["error"], body
    return body["error"]


async def version_rows(db, tenant_id, name: str) -> list[int]:
    """The versions stored of a secret, in order."""
    rows = await db.fetch(
        "SELECT version FROM secret_versions WHERE tenant_id = $1 AND name = $2 ORDER BY version",
        tenant_id,
        name,
    )
    return [r["version"] for r in rows]


async def secret_names(db, tenant_id) -> list[str]:
    """The names of a tenant's stored secrets, from the table."""
    rows = await db.fetch("SELECT name FROM secrets WHERE tenant_id = $1 ORDER BY name", tenant_id)
    return [r["name"] for r in rows]
