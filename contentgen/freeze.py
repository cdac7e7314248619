"""Inputs are frozen for a run: hashed at start, watched while it runs, re-checked before export and on resume.

``fingerprint`` hashes everything that decides the output (campaign, every
input file, prompts, rules). ``InputWatch`` keeps a cheap ``stat`` snapshot of
the data files and compares it at every commit, so a file rewritten in place
mid-run stops the run within one commit; ``check_unchanged`` re-hashes
everything before the export is written. A change is ``InputsChanged``
(exit 4), naming the file: never a "complete" export of half a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import Campaign, campaign_hash
from .errors import ResumeRefused
from .export import hash_tree, sha256_file

DATA_INPUTS = ("members", "recommendations", "catalog", "offers")


class InputsChanged(ResumeRefused):
    """An input file changed while the run was using it (exit 4)."""


def input_paths(campaign: Campaign) -> dict[str, list[Path]]:
    inp = campaign.inputs
    paths: dict[str, list[Path]] = {name: [Path(getattr(inp, name))] for name in DATA_INPUTS}
    paths["suppression"] = [Path(p) for p in inp.suppression]
    return paths


def fingerprint(campaign: Campaign) -> dict[str, str]:
    """Hashes of everything that decides the output; a resumed run must match them."""
    inp = campaign.inputs
    return {
        "campaign": campaign_hash(campaign) if campaign.source else "",   # operational llm keys excluded
        "members": sha256_file(inp.members),
        "recommendations": sha256_file(inp.recommendations),
        "catalog": sha256_file(inp.catalog),
        "offers": sha256_file(inp.offers),
        "suppression": hash_tree(inp.suppression),
        "prompts": hash_tree([campaign.prompts_dir]),
        "rules": hash_tree(list(campaign.rules_dirs)),
    }


def _where(campaign: Campaign, name: str) -> str:
    if name == "campaign":
        return str(campaign.source)
    if name == "prompts":
        return str(campaign.prompts_dir)
    if name == "rules":
        return ", ".join(str(p) for p in campaign.rules_dirs)
    return ", ".join(str(p) for p in input_paths(campaign)[name])


def changed_error(campaign: Campaign, changed: list[str], *, during: bool) -> InputsChanged:
    files = "; ".join(f"{name} ({_where(campaign, name)})" for name in changed)
    if during:
        return InputsChanged(f"inputs changed while the run was using them: {files}; nothing was exported",
                             file=_where(campaign, changed[0]),
                             hint="put the original file back and re-run the same command to continue, or re-run "
                                  "with --restart to start over on the new file")
    return InputsChanged(f"inputs changed since this run started: {files}", file=_where(campaign, changed[0]),
                         hint="re-run with --restart to start over, or use a new --out folder")


def check_unchanged(campaign: Campaign, fp: dict[str, str], *, during: bool) -> None:
    """Re-hash every input; raise InputsChanged naming each file that differs from ``fp``."""
    try:
        now = fingerprint(campaign)
    except FileNotFoundError as e:
        raise InputsChanged(f"input file not found: {e.filename}; it was there when the run started",
                            file=str(e.filename), hint="put the file back and re-run the same command") from None
    changed = [k for k, v in fp.items() if now.get(k) != v]
    if changed:
        raise changed_error(campaign, changed, during=during)


class InputWatch:
    """A stat snapshot of the data inputs (size, mtime, inode), compared in microseconds at every commit."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.paths = input_paths(campaign)
        self.snapshot = self._stat()

    def _stat(self) -> dict[str, tuple[Any, ...]]:
        out: dict[str, tuple[Any, ...]] = {}
        for name, paths in self.paths.items():
            sig: list[Any] = []
            for p in paths:
                try:
                    st = os.stat(p)
                    sig.append((st.st_size, st.st_mtime_ns, st.st_ino))
                except OSError:
                    sig.append(None)
            out[name] = tuple(sig)
        return out

    def check(self) -> None:
        now = self._stat()
        changed = [k for k, v in self.snapshot.items() if now.get(k) != v]
        if changed:
            raise changed_error(self.campaign, changed, during=True)


def count_member_rows(path: Path) -> int:
    """Member rows in an input file as the loader reads them (quoted newlines and all)."""
    from .load import iter_rows

    return sum(1 for _ in iter_rows(Path(path)))


def recheck_inputs(manifest: dict[str, Any]) -> list[str]:
    """For ``verify``: problems between a manifest and the input files it names, when they are present."""
    problems: list[str] = []
    inputs = manifest.get("inputs") or {}
    hashes = manifest.get("hashes") or {}
    for name in DATA_INPUTS:
        p = inputs.get(name)
        if not p or not Path(p).exists():
            continue
        if hashes.get(name) and sha256_file(Path(p)) != hashes[name]:
            problems.append(f"input {name} ({p}) is not the file this run read (its SHA-256 changed)")
    members = inputs.get("members")
    if members and Path(members).exists() and not manifest.get("shard") and not manifest.get("merged_from"):
        rows = count_member_rows(Path(members))
        limit = manifest.get("limit")
        want = min(rows, limit) if limit else rows
        if want != manifest.get("total_members"):
            problems.append(f"{members} has {rows} member rows"
                            + (f" (--limit {limit})" if limit else "")
                            + f" but the export accounts for {manifest.get('total_members')}")
    return problems
