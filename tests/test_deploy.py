"""deploy/ and the Containerfile: what the rendered manifests promise operators, checked.

Rendering needs `kubectl` (for `kubectl kustomize`); deploy/check validates the schemas and
unit-tests the alerts.
"""

import asyncio
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from service.settings import REPO_ROOT, Settings
from service.web.metrics import ApiMetrics
from service.worker.metrics import WorkerMetrics
from tests.support import closed_port, require_tool
from tests.support.rawhttp import exchange, wait_until_serving

DEPLOY = REPO_ROOT / "deploy"
OVERLAYS = sorted(p.name for p in (DEPLOY / "overlays").iterdir())


def render(overlay: str) -> list[dict]:
    kubectl = require_tool("kubectl", None)
    out = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def config(objects: list[dict]) -> dict[str, str]:
    return one(objects, "ConfigMap")["data"]


def pod_specs(objects: list[dict]) -> dict[str, dict]:
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in objects
        if o["kind"] in ("Deployment", "Job")
    }


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> list[dict]:
    return render(request.param)


def test_every_overlay_has_the_api_worker_migration_job_and_config(rendered):
    assert set(pod_specs(rendered)) == {"kvs-api", "kvs-worker", "kvs-migrate"}
    assert one(rendered, "Service", "kvs-api")["spec"]["ports"][0]["targetPort"] == "http"
    assert one(rendered, "ServiceAccount")["automountServiceAccountToken"] is False


def test_the_config_names_only_real_settings(rendered):
    fields = {f"KVS_{name.upper()}" for name in Settings.model_fields}
    assert set(config(rendered)) <= fields


def test_every_pod_runs_restricted(rendered):
    for name, spec in pod_specs(rendered).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), (name, kind)
            database_url = next(e for e in container["env"] if e["name"] == "DATABASE_URL")
            assert "secretKeyRef" in database_url["valueFrom"], name


def test_api_probes_and_drain_fit_the_grace_period(rendered):
    spec = pod_specs(rendered)["kvs-api"]
    api = spec["containers"][0]
    settings = config(rendered)
    assert {p["name"]: p["containerPort"] for p in api["ports"]} == {
        "http": int(settings["KVS_PORT"]),
        "metrics": int(settings["KVS_METRICS_PORT"]),
    }
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # Liveness must never depend on the database: an outage would restart every pod.
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pause = api["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = float(settings["KVS_DRAIN_SECONDS"]) + float(settings["KVS_SHUTDOWN_TIMEOUT"])
    assert pause >= 1
    assert spec["terminationGracePeriodSeconds"] > pause + drain
    assert len(spec["topologySpreadConstraints"]) >= 1


def test_the_worker_is_probed_without_the_database_and_spread(rendered):
    spec = pod_specs(rendered)["kvs-worker"]
    worker = spec["containers"][0]
    assert worker["args"] == ["worker"]
    assert worker["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert worker["ports"][0]["containerPort"] == int(config(rendered)["KVS_WORKER_METRICS_PORT"])
    assert len(spec["topologySpreadConstraints"]) >= 1


def test_prod_has_autoscaling_budgets_policies_and_monitoring():
    objects = render("prod")
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "kvs-api"
    assert "replicas" not in one(objects, "Deployment", "kvs-api")["spec"]  # the HPA's
    assert {p["metadata"]["name"] for p in objects if p["kind"] == "PodDisruptionBudget"} == {
        "kvs-api",
        "kvs-worker",
    }
    policies = [p["spec"]["podSelector"] for p in objects if p["kind"] == "NetworkPolicy"]
    components = {p["matchLabels"]["app.kubernetes.io/component"] for p in policies}
    assert components == {"api", "worker", "migrate"}
    monitor = one(objects, "ServiceMonitor")
    selected = [
        s
        for s in objects
        if s["kind"] == "Service"
        and monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert {s["metadata"]["name"] for s in selected} == {"kvs-api", "kvs-worker"}
    for service in selected:
        assert "metrics" in {p["name"] for p in service["spec"]["ports"]}
    assert one(objects, "PrometheusRule")["spec"]["groups"]


def test_alerts_use_only_metrics_the_service_exports():
    rule = yaml.safe_load((DEPLOY / "components/prometheus-rule/prometheus-rule.yaml").read_text())
    used = {
        name
        for group in rule["spec"]["groups"]
        for r in group["rules"]
        for name in re.findall(r"\bkvs_[a-z_]+", r["expr"])
    }
    exported = set()
    for family in [*ApiMetrics().registry.collect(), *WorkerMetrics().registry.collect()]:
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        exported |= {family.name + s for s in suffixes.get(family.type, [""])}
    assert used and used <= exported


async def test_the_wheel_the_containerfile_installs_serves_outside_the_checkout(
    tmp_path, database_url
):
    """Builds the wheel as the Containerfile does, then runs it from an unrelated directory
    with the image's settings: SQL files, migrations and spec are found where the image puts
    them."""
    containerfile = (REPO_ROOT / "Containerfile").read_text()
    final_stage = containerfile.rsplit("FROM ", 1)[1]
    assert re.search(r"^USER [1-9]\d*:[1-9]\d*$", final_stage, re.MULTILINE)
    env = dict(re.findall(r"(KVS_\w+)=(\S+)", final_stage))
    copies = dict(
        (dst, src) for src, dst in re.findall(r"^COPY (\S+) (\S+)$", final_stage, re.MULTILINE)
    )
    assert copies[env["KVS_MIGRATIONS_DIR"]] == "migrations"
    assert copies[env["KVS_OPENAPI_FILE"]] == "openapi/openapi.yaml"
    assert copies[env["KVS_QUIVA_OPENAPI_FILE"]] == "openapi/quiva.yaml"

    build = subprocess.run(  # noqa: ASYNC221 - a one-off build before anything async
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    assert list((site / "service" / "db" / "sql").glob("*.sql"))

    # The image's layout: migrations and spec copied away from any checkout.
    share = tmp_path / "share"
    share.mkdir()
    (share / "migrations").symlink_to(REPO_ROOT / "migrations")
    (share / "openapi.yaml").symlink_to(REPO_ROOT / "openapi" / "openapi.yaml")
    (share / "quiva.yaml").symlink_to(REPO_ROOT / "openapi" / "quiva.yaml")
    port = closed_port()
    run_env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(site),
        "DATABASE_URL": database_url,
        "KVS_PORT": str(port),
        "KVS_METRICS_PORT": "0",
        "KVS_MIGRATIONS_DIR": str(share / "migrations"),
        "KVS_OPENAPI_FILE": str(share / "openapi.yaml"),
        "KVS_QUIVA_OPENAPI_FILE": str(share / "quiva.yaml"),
        "KVS_LOG_LEVEL": "WARNING",
    }
    where = subprocess.run(  # noqa: ASYNC221
        [sys.executable, "-c", "import service; print(service.__file__)"],
        env=run_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(site)
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "serve", env=run_env, cwd=tmp_path
    )
    try:
        await wait_until_serving(port)
        ready = await exchange(port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        spec = await exchange(port, b"GET /v2/openapi.yaml HTTP/1.1\r\nHost: x\r\n\r\n")
        quiva = await exchange(port, b"GET /storage/kv/openapi.yaml HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        server.terminate()
        await server.wait()
    assert ready.status == 200, ready.body
    assert spec.status == 200 and spec.body == (REPO_ROOT / "openapi/openapi.yaml").read_bytes()
    assert quiva.status == 200 and quiva.body == (REPO_ROOT / "openapi/quiva.yaml").read_bytes()


def test_serving_processes_match_the_api_cpu_limit(rendered):
    """KVS_PROCESSES left at 0 would count the node's CPUs, not the container's."""
    limit = pod_specs(rendered)["kvs-api"]["containers"][0]["resources"]["limits"]["cpu"]
    assert int(config(rendered)["KVS_PROCESSES"]) == int(limit)
