"""Files of an ESP export, each written to a temporary name, fsynced and renamed, and a manifest last.

``manifest.json`` in the format's folder lists every file with its SHA-256, size,
records (members) and requests (API request bodies), the endpoint or import it is
for and the documentation page it follows, plus what was skipped and how to
upload. ``verify_esp`` re-checks a folder against it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import StoreError
from .rows import EspExportError, Source


class OutFile:
    def __init__(self, folder: Path, name: str, **info: Any):
        self.path = folder / name
        self.name = name
        self.info = info
        self.records = 0
        self.requests = 0
        self._sha = hashlib.sha256()
        self._bytes = 0
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=f".{name}.", dir=str(folder))
        except OSError as e:
            raise StoreError(f"cannot write to {folder} ({e.strerror})", file=str(folder),
                             hint="choose a writable --esp-out folder or free disk space") from None
        self._fh = os.fdopen(fd, "wb")

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self._sha.update(data)
        self._bytes += len(data)
        try:
            self._fh.write(data)
        except OSError as e:
            self.abort()
            raise StoreError(f"cannot write {self.name} ({e.strerror})", file=str(self.path),
                             hint="free disk space and run the export again") from None

    def commit(self) -> dict[str, Any]:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o666 & ~umask)  # an ordinary file for whoever uploads it, not mkstemp's 0600
        os.replace(self._tmp, self.path)
        return {"sha256": self._sha.hexdigest(), "bytes": self._bytes, "records": self.records,
                "requests": self.requests, **self.info}

    def abort(self) -> None:
        try:
            self._fh.close()
        finally:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass


class CsvFile(OutFile):
    """RFC 4180 CSV (comma, double-quote qualifier, CRLF rows), UTF-8, header first."""

    def __init__(self, folder: Path, name: str, header: list[str], **info: Any):
        super().__init__(folder, name, columns=header, **info)
        self.header = header
        self._row(header)

    def _row(self, values: list[Any]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerow(["" if v is None else v for v in values])
        self.write(buf.getvalue())

    def row(self, values: dict[str, Any]) -> None:
        self._row([values.get(h, "") for h in self.header])
        self.records += 1


class JsonlFile(OutFile):
    """One API request body per line."""

    def request(self, body: dict[str, Any], members: int) -> None:
        self.write(json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.requests += 1
        self.records += members


class Export:
    """One format's folder: files opened as needed, committed together with the manifest."""

    def __init__(self, folder: Path, fmt: str, src: Source, docs: dict[str, str]):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EspExportError(f"cannot create {self.folder} ({e.strerror})", file=str(self.folder),
                                 hint="choose a writable --esp-out folder") from None
        self.fmt, self.src, self.docs = fmt, src, docs
        self.files: dict[str, OutFile] = {}
        self.notes: list[str] = []
        self.skipped: dict[str, int] = {}
        self.extra: dict[str, Any] = {}

    def add(self, f: OutFile) -> OutFile:
        self.files[f.name] = f
        return f

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def abort(self) -> None:
        for f in self.files.values():
            f.abort()

    def commit(self) -> dict[str, Any]:
        files = {name: f.commit() for name, f in self.files.items()}
        for name in os.listdir(self.folder):  # files of an earlier export that this one did not write
            if name not in files and name != "manifest.json" and not name.startswith("."):
                (self.folder / name).unlink()
        counts = self.src.counts
        manifest = {
            "format": self.fmt,
            "contentgen_version": __version__,
            "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "source": self.src.describe(),
            "members": counts.get("exported", 0),
            "skipped": {"not_sent": counts.get("not_sent", 0), **({"no_email": counts["no_email"]}
                                                                  if counts.get("no_email") else {}),
                        **self.skipped},
            "documentation": self.docs,
            "files": files,
            "notes": self.notes,
            **self.extra,
        }
        tmp = self.folder / ".manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.folder / "manifest.json")
        return manifest


def verify_esp(folder: Path) -> dict[str, Any]:
    """Re-check an ESP folder: every file listed, present and matching its checksum."""
    folder = Path(folder)
    mpath = folder / "manifest.json"
    if not mpath.exists():
        raise EspExportError("no manifest.json here", file=str(folder), hint="point it at an ESP export folder")
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    problems = []
    for name, info in manifest["files"].items():
        p = folder / name
        if not p.exists():
            problems.append(f"{name} is missing")
            continue
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != info["sha256"]:
            problems.append(f"{name} does not match its checksum")
    if problems:
        raise EspExportError("ESP export does not match its manifest: " + "; ".join(problems), file=str(folder),
                             hint="run `contentgen export RUN_DIR --format ...` again")
    return manifest
