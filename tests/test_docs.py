"""The README's tables say what the code does."""

import re

from service.api.telnyx.codes import ERROR_CODES
from service.settings import REPO_ROOT, Settings

README = (REPO_ROOT / "README.md").read_text()


def table_after(heading: str) -> list[list[str]]:
    """The rows of the first table after a heading (any level), without its header."""
    section = re.split(rf"^#+ {heading}\n", README, maxsplit=1, flags=re.MULTILINE)[1]
    table = section.split("\n|", 1)[1].split("\n\n", 1)[0]
    rows = ("|" + table).splitlines()
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_the_readme_lists_every_setting_and_its_default():
    listed = {row[0].strip("`"): row[1].strip("`") for row in table_after("Settings")}
    expected = {}
    for name, field in Settings.model_fields.items():
        env = field.validation_alias or f"KVS_{name.upper()}"
        expected[env] = field.default
    assert set(listed) == set(expected)
    for env, default in expected.items():
        if env in (
            "DATABASE_URL",
            "KVS_MIGRATIONS_DIR",
            "KVS_OPENAPI_FILE",
            "KVS_QUIVA_OPENAPI_FILE",
            "KVS_DATA_DIR",
            "KVS_FAILPOINTS",
        ):
            continue  # described in words
        assert listed[env] == str(default), env


def test_the_readme_error_table_is_the_code_table():
    listed = [(code, int(status), title) for code, status, title in table_after("Errors")]
    assert listed == [(e.code, e.status, e.title) for e in ERROR_CODES]


def test_the_readme_names_every_kvs_command():
    from service.cli import _parser

    commands = set(re.findall(r"^\| `kvs (\w+)", README, re.MULTILINE))
    assert commands == set(_parser()._subparsers._group_actions[0].choices)


def test_the_readme_lists_every_metric():
    from service.web.metrics import ApiMetrics
    from service.worker.metrics import WorkerMetrics

    families = [*ApiMetrics().registry.collect(), *WorkerMetrics().registry.collect()]
    exported = {family.name for family in families}
    exported.add("kvs_db_pool_connections")  # read from a live pool at scrape time
    counters = {f.name for f in families if f.type == "counter"}
    listed = {row[0].strip("`") for row in table_after("Monitoring")}
    assert listed == {f"{name}_total" if name in counters else name for name in exported}


def test_the_readme_lists_every_alert():
    import yaml

    path = REPO_ROOT / "deploy/components/prometheus-rule/prometheus-rule.yaml"
    rules = yaml.safe_load(path.read_text())["spec"]["groups"][0]["rules"]
    listed = [(row[0].strip("`"), row[1]) for row in table_after("Alerts")]
    assert listed == [(r["alert"], r["labels"]["severity"]) for r in rules]
