"""The four gates: schema, facts, brand, compliance.

    rules = load_rules()                       # brand_rules/ + compliance/ (cached by content)
    findings = run_gates(message, ctx, rules)  # pure; records, never exceptions
    verdict(findings)                          # "pass" | "fail" | "review"
    repair_instructions(findings)              # numbered plain-language fixes for the model

The engine (``gates/engine/``) knows no client and no policy: rules, word lists, the accept list
and fix texts are data in the rule folders; named checks (``gates/checks/``) take typed params.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import compiled

# before any other gates module is imported: the mypyc-built modules, only if built from these sources
GATES_MODE = compiled.install()

from ..errors import RuleFileError
from ..models import Finding, GateContext, RenderedMessage
from .engine.findings import GATE_ORDER, Hit, sort_findings, verdict
from .engine.load import load_folders, rule_files
from .engine.ruleset import CompiledRule, RuleSet
from .repair import repair_instructions
from .schema import validate_message

__all__ = ["DEFAULT_DIRS", "GATES_MODE", "GATE_ORDER", "CompiledRule", "Finding", "Hit", "RuleSet", "load_rules",
           "repair_instructions", "run_gates", "sort_findings", "verdict"]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIRS: tuple[Path, ...] = (REPO_ROOT / "brand_rules", REPO_ROOT / "compliance")

_CACHE: dict[tuple[tuple[str, ...], str, str | None], RuleSet] = {}


def load_rules(dirs: Sequence[Path] | None = None, *, backend: str | None = None) -> RuleSet:
    """Load the rule folders (default: the repo's brand_rules/ and compliance/): every ``*.yaml``
    rule file, the ``vocab/`` word lists and ``accept.yaml``.

    Cached on the files' contents, so an edited file is read again. Raises RuleFileError for a
    broken file. ``backend`` picks the prefilter (see :mod:`.engine.matcher`).
    """
    from .engine.load import digest

    folders = [Path(d) for d in (dirs or DEFAULT_DIRS)]
    files, vocab, accept = rule_files(folders)
    try:
        key = (tuple(str(f.resolve()) for f in files + vocab + accept), digest(files + vocab + accept), backend)
    except OSError as e:
        raise RuleFileError(f"cannot read rule files: {e}") from e
    rs = _CACHE.get(key)
    if rs is None:
        rs = load_folders(folders, backend)
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = rs
    return rs


def run_gates(message: RenderedMessage, ctx: GateContext, rules: RuleSet | None = None) -> list[Finding]:
    """Run the schema-shape, facts, brand and compliance rules on a rendered message."""
    rs = rules if rules is not None else load_rules()
    view = rs.view(message, ctx)
    findings = validate_message(message, ctx.channel, view.layout)
    findings.extend(rs.run(view))
    return sort_findings(findings)
