"""Outputs and manifest, written atomically from the run store.

``messages.jsonl`` holds one record per member (every input member row, the
quarantined included), ``quarantine.jsonl`` every bad row with file, line,
field and reason, and ``manifest.json`` counts by outcome that sum to
``total_members``, the hashes of inputs, prompts and rules, tokens, and a
SHA-256 of each export file. ``verify`` re-checks an export against it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import failpoints
from .errors import ContentgenError, NotARunError, StoreError, UsageError
from .models import OUTCOMES


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hash_tree(paths: Iterable[Path]) -> str:
    """One hash over files (sorted by relative name) so a changed rule or prompt changes it."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
        for f in files:
            if "__pycache__" in f.parts:
                continue
            h.update(f.name.encode())
            h.update(sha256_file(f).encode())
    return h.hexdigest()


# line breaks json.dumps(ensure_ascii=False) leaves raw (it escapes only the C0 controls): NEL, LS, PS
_RAW_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def escape_breaks(text: str) -> str:
    """JSON text with U+0085, U+2028 and U+2029 escaped: readers that split on every Unicode line break
    (``str.splitlines``, JavaScript before ES2019) would otherwise cut a record in two."""
    # str.translate with a dict looks up every character in Python (~0.7 ms for a record with its HTML);
    # three substring scans cost microseconds, and almost no record holds one of these characters
    if "\x85" in text or "\u2028" in text or "\u2029" in text:
        return text.translate(_RAW_BREAKS)
    return text


def jsonl_line(obj: Any) -> str:
    """One JSON Lines record, its Unicode line breaks escaped (``escape_breaks``)."""
    return escape_breaks(json.dumps(obj, ensure_ascii=False)) + "\n"


def _atomic_write(path: Path, lines: Iterable[str]) -> None:
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    except OSError as e:
        raise StoreError(f"cannot write to the output folder ({e.strerror})", file=str(path.parent),
                         hint="make the folder writable or free disk space, then re-run to resume") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line)
                failpoints.hit("export-write")
            fh.flush()
            os.fsync(fh.fileno())
        failpoints.hit("export-rename")
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise StoreError(f"cannot write {path.name} ({e.strerror})", file=str(path),
                         hint="free disk space or fix permissions, then re-run the same command; nothing is lost: "
                              "the run store keeps every decided member") from None


def write_json(path: Path, obj: Any) -> None:
    _atomic_write(path, [json.dumps(obj, indent=2, ensure_ascii=False, default=str), "\n"])


def message_hash(message: dict[str, Any] | None) -> str:
    blob = json.dumps(message or {}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def apply_decision(rec: dict[str, Any], decision: dict[str, Any] | None) -> dict[str, Any]:
    """A reviewer's approve/reject overrides the gate outcome in the export (recorded in the record)."""
    if not decision:
        return rec
    rec = dict(rec)
    rec["review"] = {k: decision[k] for k in ("reviewer", "action", "reason", "message_hash", "at")}
    if decision["action"] == "approve":
        if decision.get("message"):
            rec["message"] = decision["message"]
        rec["outcome"] = "approved"
        rec["send"] = rec.get("message") is not None
        if decision.get("overrides"):  # approved although these error rules failed: named, with the reasons
            rec["review"]["override"] = decision["overrides"]
            rec["override"] = [o["rule_id"] for o in decision["overrides"]]
    elif decision["action"] == "reject":
        rec["outcome"] = "rejected"
        rec["send"] = False
    return rec


def write_export(out_dir: Path, store, manifest: dict[str, Any]) -> dict[str, Any]:
    out_dir = Path(out_dir)
    counts = {o: 0 for o in OUTCOMES}
    seen: set[str] = set()
    decisions = store.latest_decisions() if hasattr(store, "latest_decisions") else {}

    def records():
        if hasattr(store, "iter_record_texts"):
            yield from stored_records()
            return
        for rec in store.iter_records():
            key = rec.get("member_key") or rec.get("member_id")
            rec = apply_decision(rec, decisions.get(key))
            if rec.get("outcome") != "invalid":
                if key in seen:  # impossible by the store's primary key; checked anyway
                    raise StoreError(f"member {key} appears twice in the run store", file=str(out_dir / "run.db"))
                seen.add(key)
            counts[rec["outcome"]] += 1
            yield jsonl_line(rec)

    def stored_records():
        # the store keeps each record as json.dumps(record, ensure_ascii=False): written as it is (decoding and
        # encoding it again gives the same text) unless a reviewer's decision changes it
        for key, outcome, text in store.iter_record_texts():
            decision = decisions.get(key)
            if decision:
                rec = apply_decision(json.loads(text), decision)
                outcome, line = rec["outcome"], jsonl_line(rec)
            else:
                line = escape_breaks(text) + "\n"
            if outcome != "invalid":
                if key in seen:  # impossible by the store's primary key; checked anyway
                    raise StoreError(f"member {key} appears twice in the run store", file=str(out_dir / "run.db"))
                seen.add(key)
            counts[outcome] += 1
            yield line

    _atomic_write(out_dir / "messages.jsonl", records())
    _atomic_write(out_dir / "quarantine.jsonl", (jsonl_line(q) for q in store.iter_quarantine()))
    manifest = dict(manifest)
    manifest["total_members"] = sum(counts.values())
    manifest["counts"] = counts
    failpoints.hit("manifest")
    manifest["review_overrides"] = len(decisions)
    manifest["gate_overrides"] = sum(1 for d in decisions.values() if d["action"] == "approve" and d.get("overrides"))
    manifest["files"] = {name: {"sha256": sha256_file(out_dir / name),
                                "records": sum(1 for _ in open(out_dir / name, encoding="utf-8"))}
                         for name in ("messages.jsonl", "quarantine.jsonl")}
    write_json(out_dir / "manifest.json", manifest)
    return manifest


class VerifyError(ContentgenError):
    pass


def verify(out_dir: Path) -> dict[str, Any]:
    """Re-check an export against its manifest; raise VerifyError listing every problem."""
    out_dir = Path(out_dir)
    mpath = out_dir / "manifest.json"
    if not mpath.exists():
        raise NotARunError("no manifest.json here: not a finished run's output folder", file=str(out_dir),
                           hint="point it at the --out folder of a finished `contentgen run`")
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    problems = []
    for name, info in manifest.get("files", {}).items():
        p = out_dir / name
        if not p.exists():
            problems.append(f"{name} is missing")
        elif sha256_file(p) != info["sha256"]:
            problems.append(f"{name} does not match its checksum")
    counts = {o: 0 for o in OUTCOMES}
    ids: set[str] = set()
    dupes = []
    bad_lines: list[int] = []
    msgs = out_dir / "messages.jsonl"
    with (open(msgs, encoding="utf-8") if msgs.exists() else open(os.devnull, encoding="utf-8")) as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                rec = json.loads(line)
                counts[rec["outcome"]] += 1
            except (json.JSONDecodeError, KeyError, TypeError):
                bad_lines.append(lineno)
                continue
            mid = rec.get("member_id")
            if rec["outcome"] != "invalid" and mid:
                if mid in ids:
                    dupes.append(mid)
                ids.add(mid)
    if bad_lines:
        problems.append(f"messages.jsonl line(s) {bad_lines[:5]} are not export records")
    if dupes:
        problems.append(f"{len(dupes)} member(s) appear more than once, e.g. {dupes[:3]}")
    if counts != {o: manifest["counts"].get(o, 0) for o in OUTCOMES}:
        problems.append(f"counts by outcome {counts} differ from the manifest {manifest['counts']}")
    if sum(counts.values()) != manifest.get("total_members"):
        problems.append("records do not sum to total_members")
    from .freeze import recheck_inputs  # the inputs, where present: same hashes, every row accounted for

    problems += recheck_inputs(manifest)
    if problems:
        raise VerifyError("export does not match its manifest: " + "; ".join(problems), file=str(out_dir))
    return {"members": sum(counts.values()), "counts": counts}


def merge(out_dir: Path, shard_dirs: list[Path]) -> dict[str, Any]:
    """Combine complete shard exports into one export and manifest, checking completeness and uniqueness."""
    out_dir = Path(out_dir)
    manifests = []
    for d in shard_dirs:
        verify(d)  # each shard must be intact
        manifests.append((Path(d), json.loads((Path(d) / "manifest.json").read_text(encoding="utf-8"))))
    if not manifests:
        raise UsageError("no shard folders given", hint="pass the --out folders of every shard")
    first = manifests[0][1]
    n = (first.get("shard") or [0, 1])[1]
    got = sorted((m.get("shard") or [0, 1])[0] for _, m in manifests)
    problems = []
    if got != list(range(n)):
        problems.append(f"shards present {got}, expected 0..{n - 1} exactly once each")
    for d, m in manifests:
        if m.get("campaign_id") != first.get("campaign_id") or m.get("hashes") != first.get("hashes"):
            problems.append(f"{d} ran another campaign or other inputs/prompts/rules")
        if (m.get("shard") or [0, 1])[1] != n:
            problems.append(f"{d} was cut into {(m.get('shard') or [0, 1])[1]} shards, not {n}")
    if problems:
        raise VerifyError("cannot merge: " + "; ".join(problems), file=str(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {o: 0 for o in OUTCOMES}
    seen: set[str] = set()

    def records():
        for d, _ in manifests:
            with open(d / "messages.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    rec = json.loads(line)
                    key = rec.get("member_key") or rec.get("member_id")
                    if rec.get("outcome") != "invalid":
                        if key in seen:
                            raise VerifyError(f"member {key} appears in more than one shard", file=str(d))
                        seen.add(key)
                    counts[rec["outcome"]] += 1
                    yield line if line.endswith("\n") else line + "\n"

    def quarantine():
        qseen: set[tuple] = set()
        for d, _ in manifests:
            with open(d / "quarantine.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    q = json.loads(line)
                    k = (q["file"], q["line"], q["field"])
                    if k not in qseen:  # catalog/offer rows are quarantined by every shard
                        qseen.add(k)
                        yield line

    _atomic_write(out_dir / "messages.jsonl", records())
    _atomic_write(out_dir / "quarantine.jsonl", quarantine())
    usage: dict[str, float] = {}
    for _, m in manifests:
        for k, v in (m.get("usage") or {}).items():
            usage[k] = usage.get(k, 0) + v
    merged = {k: first.get(k) for k in ("campaign_id", "send_date", "contentgen_version", "model", "backend",
                                         "hashes", "rule_count")}
    merged.update({"merged_from": [str(d) for d, _ in manifests], "shard": None, "usage": usage,
                   "cost_usd": round(sum(m.get("cost_usd") or 0 for _, m in manifests), 6),
                   "total_members": sum(counts.values()), "counts": counts})
    merged["files"] = {name: {"sha256": sha256_file(out_dir / name),
                              "records": sum(1 for _ in open(out_dir / name, encoding="utf-8"))}
                       for name in ("messages.jsonl", "quarantine.jsonl")}
    write_json(out_dir / "manifest.json", merged)
    return merged
