"""Schemathesis against a live server on openapi/quiva.yaml and openapi/quiva-secrets.yaml
(tests/support/fuzz.py), each document with its own config."""

from pathlib import Path

from tests.support.fuzz import assert_schemathesis_finds_nothing
from tests.support.spec_check import QUIVA_SECRETS_SPEC_PATH, QUIVA_SPEC_PATH

CONFIG = Path(__file__).with_name("schemathesis.toml")
SECRETS_CONFIG = Path(__file__).with_name("schemathesis-secrets.toml")


async def test_schemathesis_finds_no_failures(database_url, tenant):
    await assert_schemathesis_finds_nothing(QUIVA_SPEC_PATH, CONFIG, database_url, tenant)


async def test_schemathesis_finds_no_failures_in_secrets(database_url, tenant):
    await assert_schemathesis_finds_nothing(
        QUIVA_SECRETS_SPEC_PATH, SECRETS_CONFIG, database_url, tenant
    )
