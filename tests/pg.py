"""A throwaway PostgreSQL cluster on loopback for the test session (Debian's ``postgresql`` package).

``initdb`` a cluster in a temporary folder (trust auth, loopback only, an ephemeral port, its socket in the
same folder), start ``postgres`` on it as a child process, hand out a fresh database per test, ``pg_ctl stop``
it (and reap it) at the end of the session. As root the server runs as the ``postgres`` system user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(d, "initdb").exists():
            return Path(d)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self) -> None:
        self.bindir = _bindir()
        self.why_not: str | None = None
        if self.bindir is None:
            self.why_not = ("PostgreSQL is not installed (initdb/pg_ctl not found); scripts/setup.sh installs "
                            "Debian's postgresql package as root")
            return
        try:
            import psycopg  # noqa: F401
        except ImportError:
            self.why_not = "psycopg is not installed: pip install 'psycopg[binary]>=3.1'"
            return
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                import pwd

                pwd.getpwnam("postgres")
                self.user = "postgres"
            except KeyError:
                self.why_not = "running as root and there is no 'postgres' system user to run the server as"
                return
        self.tmp = Path(tempfile.mkdtemp(prefix="contentgen-pg-"))
        self.data = self.tmp / "data"
        self.port = _free_port()
        self.started = False
        if self.user:
            shutil.chown(self.tmp, self.user)
            os.chmod(self.tmp, 0o700)

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else cmd

    def start(self) -> None:
        subprocess.run(self._cmd("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                                 "--no-sync"), check=True, capture_output=True, timeout=120)
        # the server is this process's child (not daemonized by pg_ctl), so stopping it also reaps it
        self.log = open(self.tmp / "log", "wb")
        self.proc = subprocess.Popen(self._cmd("postgres", "-D", str(self.data), "-p", str(self.port),
                                               "-c", "listen_addresses=127.0.0.1", "-k", str(self.tmp),
                                               "-c", "fsync=off", "-c", "synchronous_commit=off",
                                               "-c", "full_page_writes=off", "-c", "max_connections=200"),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.started = True
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("postgres did not start: " +
                                       (self.tmp / "log").read_text(errors="replace")[-500:]) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.started:
            subprocess.run(self._cmd("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop"),
                           capture_output=True, timeout=60)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
            self.started = False
        shutil.rmtree(self.tmp, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
