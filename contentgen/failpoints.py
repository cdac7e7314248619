"""Failpoints: kill the process at a named point, for crash-recovery tests.

``CONTENTGEN_FAILPOINT=name:n`` makes the n-th pass through ``hit(name)`` send
SIGKILL to this process (no cleanup, no flush: a real crash). Unset, ``hit``
costs one dict lookup. Points: plan, generate, gate, store-commit,
export-write, export-rename, manifest.
"""

from __future__ import annotations

import os
import signal

_spec = os.environ.get("CONTENTGEN_FAILPOINT", "")
_name, _, _count = _spec.partition(":")
_target = int(_count) if _count.isdigit() else 1
_seen = 0


def hit(name: str) -> None:
    global _seen
    if not _name or name != _name:
        return
    _seen += 1
    if _seen >= _target:
        os.kill(os.getpid(), signal.SIGKILL)
