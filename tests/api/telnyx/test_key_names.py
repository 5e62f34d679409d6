"""Key names: the contract's rules, every accepted name round-trips, every other one is a 400."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from tests.support import key_url, put

ALLOWED = "abcxyzABCXYZ0189-_/=."


def is_valid(name: str) -> bool:
    """The contract's rule, written independently of the service's code."""
    return (
        1 <= len(name) <= 256
        and re.fullmatch(r"[a-zA-Z0-9\-_/=.]*", name) is not None
        and not name.startswith("_")
    )


async def assert_round_trip(client, tenant, namespace, name: str) -> None:
    resp = await put(client, tenant, namespace, name, name.encode())
    assert resp.status in (200, 201), (name, await resp.text())
    got = await client.get(key_url(namespace, name), headers=tenant.headers)
    assert got.status == 200 and await got.read() == name.encode(), name
    page = await (
        await client.get(
            key_url(namespace, listing=True),
            params={"start": name, "limit": "1"},
            headers=tenant.headers,
        )
    ).json()
    assert page["data"][0]["key"] == name


async def assert_invalid(client, tenant, namespace, url) -> None:
    for method in ("PUT", "GET", "HEAD", "DELETE"):
        resp = await client.request(
            method, url, data=b"x" if method == "PUT" else None, headers=tenant.headers
        )
        assert resp.status == 400, (method, url)
        if method != "HEAD":
            error = (await resp.json())["errors"][0]
            assert error["code"] == "10015" and error["title"] == "Invalid key"
            assert error["source"] == {"parameter": "key"}


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "A",
        "0",
        "-",
        "=",
        ".",
        "..",
        "a/b/c",
        "a//b",
        "a/../b",
        "./x",
        "/lead",
        "trail/",
        "x=1.2",
        "UPPER_lower-09",
        "k" * 256,
        "a_" + "b" * 254,
    ],
)
async def test_allowed_names_round_trip_exactly(client, tenant, namespace, name):
    await assert_round_trip(client, tenant, namespace, name)


async def test_an_encoded_slash_names_the_same_key_as_a_slash(client, tenant, namespace):
    base = f"/v2/storage/kvs/{namespace}/keys"
    resp = await client.put(
        URL(f"{base}/user%2F1", encoded=True), data=b"v", headers=tenant.headers
    )
    assert resp.status == 201
    got = await client.get(URL(f"{base}/user/1", encoded=True), headers=tenant.headers)
    assert await got.read() == b"v"
    again = await client.put(
        URL(f"{base}/user%2f1", encoded=True), data=b"w", headers=tenant.headers
    )
    assert again.status == 200
    page = await (await client.get(key_url(namespace, listing=True), headers=tenant.headers)).json()
    assert [item["key"] for item in page["data"]] == ["user/1"]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "_reserved",
        "_",
        "k" * 257,
        "caf\u00e9",
        "a b",
        "a\x00b",
        "tab\there",
        "~",
        "*",
        "a%b",
        "line\n",
        "semi;colon",
        "q?",
        "#",
        "\u202e",
        "\uff0e\uff0e",
    ],
)
async def test_other_names_are_400_invalid_key_never_404_or_500(client, tenant, namespace, name):
    await assert_invalid(client, tenant, namespace, key_url(namespace, name))


@pytest.mark.parametrize("raw", ["a%zz", "a%", "%ff", "a%2", "%C3%A9", "%252F"])
async def test_malformed_percent_encoding_is_400_too(client, tenant, namespace, raw):
    url = URL(f"/v2/storage/kvs/{namespace}/keys/{raw}", encoded=True)
    await assert_invalid(client, tenant, namespace, url)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(
        # Lone surrogates cannot be percent-encoded by any client, so none can be sent.
        alphabet=st.sampled_from(ALLOWED) | st.characters(exclude_categories=("Cs",)),
        max_size=260,
    )
)
async def test_any_name_either_round_trips_or_is_a_400(client, tenant, namespace, name):
    if is_valid(name):
        await assert_round_trip(client, tenant, namespace, name)
    else:
        resp = await put(client, tenant, namespace, name)
        assert resp.status == 400, name
        assert (await resp.json())["errors"][0]["code"] == "10015"
