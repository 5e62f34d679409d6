"""The JavaScript client (clients/js) passes its own tests, the integration ones against a live
`kvs serve`: `node --test` with KV_BASE_URL, KV_API_KEY and KV_NAMESPACE set."""

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "js"
NODE_MAJOR = 18
TIMEOUT_SECONDS = 600


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` executable, Node 18 or newer, and a built client: skipped locally without
    Node, failed in CI. Session-scoped so that it is checked before the database and server
    start."""
    path = shutil.which("node")
    problem = None
    if path is None:
        problem = "node is not installed"
    else:
        version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        match = re.match(r"v(\d+)\.", version)
        if not match or int(match.group(1)) < NODE_MAJOR:
            problem = f"node is {version.strip() or 'of an unknown version'}"
    if problem is not None:
        message = f"the JavaScript client's tests need Node {NODE_MAJOR}+ ({problem})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if not (CLIENT / "dist" / "index.js").is_file():
        pytest.fail(f"{CLIENT / 'dist'} is not built: run `npm ci && npm run build` in clients/js")
    return path


async def test_js_client(node, live_kv):
    files = sorted(str(p.relative_to(CLIENT)) for p in (CLIENT / "test").glob("*.test.mjs"))
    env = {
        **os.environ,
        "KV_BASE_URL": live_kv.base_url,
        "KV_API_KEY": live_kv.api_key,
        "KV_NAMESPACE": live_kv.namespace,
    }
    proc = await asyncio.create_subprocess_exec(
        node,
        "--test",
        *files,
        cwd=CLIENT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT_SECONDS)
    except TimeoutError:
        proc.kill()
        output, _ = await proc.communicate()
        pytest.fail(f"node --test ran over {TIMEOUT_SECONDS} s:\n{output.decode(errors='replace')}")
    text = output.decode(errors="replace")
    print(text)  # shown with -s, or with the failure
    assert proc.returncode == 0, f"node --test failed (exit {proc.returncode}):\n{text}"
    # Every test ran: no suite was skipped for want of the server's variables.
    assert "# SKIP" not in text, text
