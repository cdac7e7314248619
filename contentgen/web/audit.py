"""The audit log: every decision (append-only), as pages and as a streamed CSV; and the re-export.

Each row says what the decision was bound to: the verdict the gates gave the
decided message, and for an approval over failing rules, each overridden rule
with its reason. The CSV is streamed in keyset chunks (memory flat whatever
the log's length) and neutralises spreadsheet formulas (a cell starting with
= + - @ is prefixed with a quote), so a reason typed by a reviewer can't run in
Excel.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from ..errors import ContentgenError
from . import auth

CSV_COLUMNS = ("id", "created_at", "reviewer", "action", "member_key", "member_id", "outcome", "reason",
               "message_hash", "subject", "verdict", "override_rules", "override_reasons", "basis")
PAGE = 200
CHUNK = 2000


def _cell(v) -> str:
    s = "" if v is None else str(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def _int_param(request: Request, name: str) -> int | None:
    v = request.query_params.get(name)
    if v in (None, ""):
        return None
    if not (v.isascii() and v.isdigit() and len(v) <= 18):
        raise HTTPException(400, f"The query parameter {name}={v[:40]!r} is not valid: use the page's links.")
    return int(v)


def page(request: Request, form) -> Response:
    from .app import render

    studio = request.app.state.studio
    before = _int_param(request, "before")
    rows = studio.sdb.audit_page(PAGE + 1, before_id=before)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    manifest = studio.run_dir / "manifest.json"
    exported = None
    if manifest.exists():
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            exported = {"at": m.get("reexported_at") or m.get("finished_at"),
                        "overrides": m.get("review_overrides", 0), "gate_overrides": m.get("gate_overrides", 0)}
        except ValueError:
            exported = None
    flash = auth.pop_flash(request) or {}
    conn = studio.db  # a sharded run on PostgreSQL: this folder exports its own shard
    shards = {"this": conn.scope, "n": len(conn.scopes)} if len(conn.scopes) > 1 else None
    return render(request, "audit.html", {"rows": rows, "total": studio.sdb.decision_total(), "exported": exported,
                                          "shards": shards,
                                          "older": rows[-1]["id"] if more and rows else None,
                                          "newest": before is None, "flash": flash.get("exported"),
                                          "error": flash.get("error")})


def csv_lines(studio) -> Iterator[str]:
    """The whole log as CSV text, a chunk of decisions at a time (each chunk in whichever thread asks)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    after = 0
    while True:
        chunk = studio.sdb.audit_chunk(after, CHUNK)
        for r in chunk:
            ov = r["overrides"] or []
            r = dict(r, created_at=dt.datetime.fromtimestamp(r["created_at"], dt.timezone.utc).isoformat(),
                     override_rules=" ".join(o.get("rule_id", "") for o in ov),
                     override_reasons=" | ".join(f"{o.get('rule_id', '')}: {o.get('reason', '')}" for o in ov))
            w.writerow([_cell(r[c]) for c in CSV_COLUMNS])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
        if len(chunk) < CHUNK:
            return
        after = chunk[-1]["id"]


def csv_download(request: Request, form) -> Response:
    studio = request.app.state.studio
    name = studio.campaign_id.replace('"', "").replace("\n", " ")
    return StreamingResponse(csv_lines(studio), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}-audit.csv"'})


def reexport(request: Request, form) -> Response:
    from ..pipeline import reexport as do_reexport

    studio = request.app.state.studio
    try:
        m = do_reexport(studio.run_dir)
    except ContentgenError as e:
        auth.flash(request, {"error": e.render()})
        return RedirectResponse("/audit", 303)
    auth.flash(request, {"exported": {"decisions": m.get("review_overrides", 0),
                                      "gate_overrides": m.get("gate_overrides", 0)}})
    return RedirectResponse("/audit", 303)
