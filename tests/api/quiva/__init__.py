"""Helpers of the quiva.ai surface's tests."""

from urllib.parse import quote

from yarl import URL

BASE = "/storage/kv"


def entry_url(bucket: str, key: str) -> URL:
    """An entry's URL, every character a client could rewrite percent-encoded."""
    return URL(f"{BASE}/{bucket}/entries/{quote(key, safe='').replace('.', '%2E')}", encoded=True)


async def create_bucket(client, tenant, bucket: str = "b", **fields):
    resp = await client.post(BASE, json={"bucket": bucket, **fields}, headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"message": "success"}


async def put_entry(client, tenant, bucket: str, key: str, value) -> None:
    resp = await client.put(entry_url(bucket, key), json=value, headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"message": "success"}


async def error_of(resp) -> tuple[int, str, str]:
    """(status, error word, message) of a quiva.ai error answer."""
    body = await resp.json()
    assert set(body) == {"error", "message"}, body
    return resp.status, body["error"], body["message"]
