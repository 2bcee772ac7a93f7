"""A throwaway PostgreSQL server in a temporary folder, for tests and benchmarks.

``initdb`` and ``pg_ctl`` from the Debian packages (``/usr/lib/postgresql/*/bin``) run a private
cluster on a free loopback port, its unix socket in the same folder, trusting local connections.
PostgreSQL refuses to run as root, so as root the binaries run as the ``postgres`` user. Nothing
outside the temporary folder is touched; ``stop`` removes it.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["PostgresUnavailable", "ScratchPostgres", "find_bin_dir"]

SERVICE_USER = "postgres"
START_ATTEMPTS = 3
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Waits for its stdin to close (we stopped, or died without stopping), then stops the server and deletes
# its folder: a killed test run leaves no server behind.
_REAPER = (
    "import shutil, subprocess, sys\n"
    "sys.stdin.buffer.read()\n"
    "subprocess.run(sys.argv[1:-1], capture_output=True, check=False)\n"
    "shutil.rmtree(sys.argv[-1], ignore_errors=True)\n"
)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says why and what to install."""


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl, else the one on PATH."""
    found = []
    for folder in Path("/usr/lib/postgresql").glob("*/bin"):
        version = folder.parent.name
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file() and version.isdigit():
            found.append((int(version), folder))
    if found:
        return max(found)[1]
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).parent / "initdb").is_file():
        return Path(on_path).parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ScratchPostgres:
    """One private PostgreSQL cluster: ``start``, ``create_database`` as often as needed, ``stop``."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.fsync = fsync
        self.port = 0
        self.root: Path | None = None
        self._bin = find_bin_dir()
        self._reaper: subprocess.Popen[bytes] | None = None

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why a scratch server cannot run here (None when it can)."""
        if find_bin_dir() is None:
            return "PostgreSQL is not installed (apt-get install postgresql, or scripts/system-deps --postgres)"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SERVICE_USER)
            except KeyError:
                return f"running as root and there is no '{SERVICE_USER}' user to run PostgreSQL as"
            if shutil.which("runuser") is None:
                return "running as root and runuser (util-linux) is missing"
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "psycopg is not installed (pip install 'teachbot[postgres]')"
        return None

    # -- lifecycle
    def start(self) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            raise PostgresUnavailable(reason)
        self.root = Path(tempfile.mkdtemp(prefix="teachbot-pg-"))
        try:
            if os.geteuid() == 0:
                user = pwd.getpwnam(SERVICE_USER)
                os.chown(self.root, user.pw_uid, user.pw_gid)
            sync = [] if self.fsync else ["--no-sync"]
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", *sync
            )
            self._start_on_free_port()
            stop = self._command("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self._reaper = subprocess.Popen(
                [sys.executable, "-c", _REAPER, *stop, str(self.root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C meant for the tests must not kill it first
            )
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
            raise

    def _start_on_free_port(self) -> None:
        error: PostgresUnavailable | None = None
        for _ in range(START_ATTEMPTS):  # another process may take the port between probe and bind
            self.port = _free_port()
            options = f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1"
            if not self.fsync:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
                return
            except PostgresUnavailable as exc:
                error = exc
        assert error is not None
        raise error

    def stop(self) -> None:
        """Stop the server at once and delete its folder."""
        if self.root is None:
            return
        reaper, self._reaper = self._reaper, None
        try:
            if reaper is not None and reaper.stdin is not None:
                reaper.stdin.close()
                reaper.wait(timeout=60)
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> ScratchPostgres:
        self.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- databases
    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server (psycopg 3 driver, over loopback TCP)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        self._admin(f"CREATE DATABASE {self._checked(name)}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing whatever connections tests left open."""
        self._admin(f"DROP DATABASE IF EXISTS {self._checked(name)} WITH (FORCE)")

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute(statement.encode())

    @staticmethod
    def _checked(name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        return name

    # -- internals
    @property
    def _root(self) -> Path:
        if self.root is None:
            raise RuntimeError("the scratch PostgreSQL server is not started")
        return self.root

    @property
    def data(self) -> Path:
        return self._root / "data"

    @property
    def log(self) -> Path:
        return self._root / "server.log"

    def _command(self, program: str, *args: str) -> list[str]:
        assert self._bin is not None
        command = [str(self._bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVICE_USER, "--", *command]
        return command

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            self._command(program, *args), capture_output=True, text=True, check=False, cwd=self._root
        )
        if done.returncode != 0:
            log_tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgresUnavailable(
                f"{program} failed ({done.returncode}): {done.stderr.strip()[-2000:]}\n{log_tail}".strip()
            )
