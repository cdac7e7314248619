"""Small helpers shared by tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

#: a labelled case's footer that every email-law rule accepts (unsubscribe, preferences, postal address)
CASE_FOOTER = ("You're receiving this because you're an AthenaPlus member.\n"
               "Unsubscribe: https://athenaplus.example/unsubscribe\n"
               "Manage your preferences: https://athenaplus.example/preferences\n"
               "Athena Retail Group, 400 Market Street, Suite 200, Portland, OR 97204, USA")


def decided_members(out: Path) -> int:
    """Members a (possibly still running) run has committed to its SQLite store; 0 before the store exists."""
    import sqlite3

    try:
        db = sqlite3.connect(f"file:{Path(out) / 'run.db'}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute("SELECT COUNT(*) FROM members").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def wait_until_ok(url: str, proc, *, timeout: float, what: str, log=None, every: float = 0.25) -> None:
    """Poll ``url`` until it answers 200; fail with ``what`` after ``timeout`` s, or with the process's log
    (``log()``: its text) as soon as the process ``proc`` it waits on has exited."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log() if log else f"{what}: the process exited ({proc.returncode})"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{what} did not start"
        time.sleep(every)


def stop_process(proc, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` s; always reaped."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
