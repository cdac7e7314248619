"""Failpoints: kill the process at a named point, for crash-recovery tests.

``CONTENTGEN_FAILPOINT=name:n`` makes the n-th pass through ``hit(name)`` send
SIGKILL to this process (no cleanup, no flush: a real crash). Unset, ``hit``
costs one dict lookup. Points: plan, generate, gate, store-commit,
export-write, export-rename, manifest.

``CONTENTGEN_POISON=stage:member_id`` makes ``poison(stage, member_id)`` raise
a plain ``RuntimeError`` for that one member (stages: plan, decide, answer:
after a model answer arrived), or for every member with ``*``: a stand-in for
an engine bug that one row's data triggers, to prove it costs that member and
not the run (and that a bug hitting every member stops the run instead).
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


_poison_stage, _, _poison_key = os.environ.get("CONTENTGEN_POISON", "").partition(":")


def poison(stage: str, key: str) -> None:
    if _poison_stage and stage == _poison_stage and (key == _poison_key or _poison_key == "*"):
        raise RuntimeError(f"injected engine fault at {stage} for member {key}")
