"""Schemathesis against a live server on openapi/openapi.yaml (tests/support/fuzz.py)."""

from pathlib import Path

from tests.support.fuzz import assert_schemathesis_finds_nothing
from tests.support.spec_check import SPEC_PATH

CONFIG = Path(__file__).with_name("schemathesis.toml")


async def test_schemathesis_finds_no_failures(database_url, tenant):
    await assert_schemathesis_finds_nothing(SPEC_PATH, CONFIG, database_url, tenant)
