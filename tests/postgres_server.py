"""A throwaway PostgreSQL cluster for the tests: `initdb` in a temporary folder, a server on
a free loopback port, password authentication over TCP, removed at the end.

The server binaries come from the Debian `postgresql` package. `initdb` refuses to run as
root, so as root the cluster belongs to an unprivileged user (`postgres` when the package
created it, else `nobody`). Without the binaries the PostgreSQL tests skip with one line;
with `ACTIONBOT_REQUIRE_POSTGRES=1` (CI) that is a failure instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

USER = "actionbot"
PASSWORD = "pg-test-password-7f3a"
"""The test cluster's password: tests check that it never shows in logs or errors."""
MISSING = "PostgreSQL not found, skipping (install the Debian package postgresql)"


def find_bindir() -> Path | None:
    """The folder of `initdb`, `pg_ctl` and `createdb`: Debian's versioned folder (newest
    first), else wherever PATH finds them."""
    versioned = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    for candidate in [*versioned, shutil.which("pg_ctl")]:
        folder = Path(candidate).parent if candidate else None
        if folder and all((folder / tool).exists() for tool in ("initdb", "createdb")):
            return folder
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One cluster; `new_database()` gives each test an empty database of its own."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="actionbot-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.user = None if os.geteuid() != 0 else _unprivileged_user()

    def url(self, database: str = "postgres", *, password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 - the PostgreSQL binaries, our arguments
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            user=self.user,
            cwd=self.folder,
        )

    def init(self) -> None:
        password_file = self.folder / "password"
        password_file.write_text(PASSWORD + "\n")
        if self.user is not None:
            uid = pwd.getpwnam(self.user).pw_uid
            for path in (self.folder, password_file):
                os.chown(path, uid, -1)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        command = [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port)]
        subprocess.run(  # noqa: S603 - the PostgreSQL binaries, our arguments
            [*command, "-U", USER, name],
            check=True,
            capture_output=True,
            env={**os.environ, "PGPASSWORD": PASSWORD},
        )
        return self.url(name)


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("no unprivileged user to run PostgreSQL as")
