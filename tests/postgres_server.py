"""
A throwaway PostgreSQL server for the tests: ``initdb`` in a temporary folder, ``pg_ctl start`` on a free local
port (127.0.0.1 only, trust authentication, or a password on TCP), stopped and deleted afterwards.

It uses Debian's server binaries (package ``postgresql``: ``/usr/lib/postgresql/<version>/bin``, which
``.ci/services.sh`` installs). PostgreSQL refuses to run as root, so as root it runs them as the ``postgres``
user that the package creates (``runuser -u postgres``) and hands it the folder. :class:`Unavailable` says why
a server could not be started, for ``pytest.skip``.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_USER = "postgres"
START_TIMEOUT = 60


class Unavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def server_binaries() -> Path:
    """:return: the folder of ``initdb`` and ``pg_ctl`` (``PATH`` first, then the newest Debian version)."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    if not debian:
        raise Unavailable("no initdb: install Debian's `postgresql` package (.ci/services.sh does)")
    return debian[-1].parent


def free_port() -> int:
    """:return: a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_server_user() -> list[str]:
    """:return: the command prefix that runs a server binary as a non-root user (empty when not root)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise Unavailable("running as root without `runuser`: PostgreSQL refuses to run as root")
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError as error:
        raise Unavailable(f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as") from error
    return ["runuser", "-u", SERVER_USER, "--"]


def run(command: list[str], what: str) -> None:
    """Run ``command``; raise :class:`Unavailable` with its output if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT)
    if result.returncode != 0:
        raise Unavailable(f"{what} failed ({result.returncode}): {(result.stdout + result.stderr)[-2000:]}")


@contextmanager
def postgres_server(password: str | None = None) -> Iterator[str]:
    """
    Start a server; yield its SQLAlchemy URL (``postgresql+psycopg2://postgres@127.0.0.1:<port>/postgres``).

    :param password: The ``postgres`` user's password, required on TCP connections (in the URL); ``None``: none.
    :raise Unavailable: when no server can be started here.
    """
    try:
        import psycopg2  # noqa: F401  (Optuna's RDB storage needs a driver)
    except ImportError as error:
        raise Unavailable("psycopg2 is not installed (pip install psycopg2-binary)") from error
    binaries = server_binaries()
    prefix = as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="sb3-metarim-pg-"))
    data = folder / "data"
    if prefix:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(folder, user.pw_uid, user.pw_gid)
    port = free_port()
    try:
        authentication = ["-A", "trust"]
        if password is not None:
            password_file = folder / "password"
            password_file.write_text(password + "\n")
            if prefix:
                os.chown(password_file, user.pw_uid, user.pw_gid)
            authentication = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}"]
        initdb = [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", *authentication, "--no-sync"]
        run([*prefix, *initdb], "initdb")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
        log = folder / "server.log"
        run([*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"], "pg_ctl start")
        try:
            credentials = "postgres" if password is None else f"postgres:{password}"
            yield f"postgresql+psycopg2://{credentials}@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
