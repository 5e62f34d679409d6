"""Schemathesis against a live `kvs serve` and `kvs worker`: every check, every phase
(examples, coverage, fuzzing, stateful through the spec's links), zero failures allowed."""

import asyncio
import re
import sys
from pathlib import Path

from service.settings import REPO_ROOT
from tests.support import Tenant, start_kvs_serve, start_kvs_worker, stop_processes

SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]


async def assert_schemathesis_finds_nothing(
    spec: Path, config: Path, database_url: str, tenant: Tenant
) -> None:
    """Runs schemathesis on `spec` with its `config` (which documented refusals it expects)."""
    # Schemathesis sends hundreds of requests with missing or wrong keys from one address on
    # purpose (its auth checks): the limit on failed authentications, which would answer them
    # 429, is off here; tests/reliability/test_authentication.py tests it.
    server, port = await start_kvs_serve(database_url, auth_failures_per_minute="0")
    worker = await start_kvs_worker(database_url, log_level="WARNING")
    try:
        fuzz = await asyncio.create_subprocess_exec(
            *SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            str(spec),
            "--url",
            f"http://127.0.0.1:{port}",
            "-H",
            f"Authorization: Bearer {tenant.token}",
            "--checks",
            "all",
            "--no-color",
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(fuzz.communicate(), timeout=300)
    finally:
        await stop_processes(server, worker)
    report = output.decode()
    summary = re.findall(r"^Test cases:\n\s+(.*)$", report, re.MULTILINE)
    print(f"\nschemathesis {spec.name}: {summary}", file=sys.stderr)
    # Failures, and the warnings the config fails on, make the exit status non-zero.
    assert fuzz.returncode == 0, report[-6000:]
    ending = re.search(r"^=+ (No issues found|\d+ warnings?) in ", report, re.MULTILINE)
    assert ending, report[-6000:]
