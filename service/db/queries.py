"""The named SQL statements of service/db/sql/*.sql, loaded once.

Each block opens with `-- read: name` or `-- write: name`. A read may be sent again when its
session is lost under it (service/db/pool.py); a write never is, since its outcome is then
unknown. The line says so rather than the statement's text: a CTE that writes, a lock or a
sequence call all make a SELECT something other than a read.
"""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).parent / "sql"
_BLOCK = re.compile(r"^-- (read|write): (\w+)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Query:
    """One named statement: what metrics and logs call it, its text, and whether it only
    reads."""

    name: str
    sql: str
    read: bool


class Queries:
    """The named statements, as attributes: `queries().claim_job`."""

    def __init__(self, directory: Path) -> None:
        self.all: dict[str, Query] = {}
        for path in sorted(directory.glob("*.sql")):
            parts = _BLOCK.split(path.read_text())
            if parts[0].strip() and not all(
                line.startswith("--") for line in parts[0].strip().splitlines()
            ):
                raise ValueError(f"{path.name}: SQL before the first '-- read:' or '-- write:'")
            for kind, name, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
                if name in self.all:
                    raise ValueError(f"query {name!r} is defined twice")
                self.all[name] = Query(name, body.strip(), kind == "read")

    def __getattr__(self, name: str) -> Query:
        try:
            return self.all[name]
        except KeyError:
            raise AttributeError(f"no query named {name!r} in {SQL_DIR}") from None


@cache
def queries() -> Queries:
    """The named statements, read once."""
    return Queries(SQL_DIR)
