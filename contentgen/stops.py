"""Clean stops: SIGINT and SIGTERM end a run with one line and the command that resumes it.

While members stream (``Window``), a signal stops the window: no new member
starts, members in flight get a few seconds to finish, finished members are
committed, and the run returns ``interrupted``. Outside that phase (loading,
export) the handler raises ``Interrupted`` where the process is, and the same
``finally`` blocks that close the run store and stop the embedded model server
run on the way out. A second signal cancels members in flight at once.

Exit codes: 130 for SIGINT, 143 for SIGTERM (128 + the signal number).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
from collections.abc import Callable, Iterator

from .errors import ContentgenError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(ContentgenError):
    def __init__(self, signame: str, message: str = "") -> None:
        self.signame = signame
        self.exit_code = 128 + int(getattr(signal, signame, signal.SIGINT))
        super().__init__(message or f"stopped by {signame}")


def _raise(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def raising_on_signals() -> Iterator[None]:
    """SIGINT/SIGTERM raise ``Interrupted`` (for the synchronous parts of a run); restored afterwards."""
    old = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, _raise)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def on_loop_signals(stop: Callable[[str], None]) -> Iterator[None]:
    """Inside a running loop: SIGINT/SIGTERM call ``stop(name)`` instead; the raising handlers come back after."""
    loop = asyncio.get_running_loop()
    old = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        loop.add_signal_handler(s, stop, s.name)
    try:
        yield
    finally:
        for s in SIGNALS:
            loop.remove_signal_handler(s)
            signal.signal(s, old[s])  # remove_signal_handler leaves SIG_DFL / default_int_handler behind


def resume_command(argv: list[str]) -> str:
    """The command line that resumes this run, with any --api-key value left out."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            out.append("…")
            continue
        if a == "--api-key":
            skip = True
        elif a.startswith("--api-key="):
            a = "--api-key=…"
        elif a == "--restart":
            continue  # resuming must not start over
        out.append(a)
    return shlex.join(out).replace("'…'", "…")
