"""The audit log: every decision (append-only), as a page and as CSV; and the re-export.

The CSV neutralises spreadsheet formulas (a cell starting with = + - @ is
prefixed with a quote), so a reason typed by a reviewer can't run in Excel.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from ..errors import ContentgenError

CSV_COLUMNS = ("id", "created_at", "reviewer", "action", "member_key", "member_id", "outcome", "reason",
               "message_hash", "subject")


def _cell(v) -> str:
    s = "" if v is None else str(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def iter_log(db, limit: int | None = None, member: str = "") -> Iterator[dict]:
    q = ("SELECT d.id, d.created_at, d.reviewer, d.action, d.member_key, m.member_id, m.outcome, d.reason, "
         "d.message_hash, d.message FROM decisions d LEFT JOIN members m ON m.member_key = d.member_key")
    args: list = []
    if member:
        q += " WHERE d.member_key = ?"
        args.append(member)
    q += " ORDER BY d.id DESC" if limit else " ORDER BY d.id"
    if limit:
        q += " LIMIT ?"
        args.append(limit)
    for row in db.execute(q, args):
        msg = json.loads(row[9]) if row[9] else None
        yield {"id": row[0], "created_at": row[1], "reviewer": row[2], "action": row[3], "member_key": row[4],
               "member_id": row[5] or row[4], "outcome": row[6], "reason": row[7] or "", "message_hash": row[8] or "",
               "subject": (msg or {}).get("subject", "")}


async def page(request: Request) -> Response:
    from .app import render

    studio = request.app.state.studio
    rows = list(iter_log(studio.db, limit=500))
    total = studio.db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    manifest = studio.run_dir / "manifest.json"
    exported = None
    if manifest.exists():
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            exported = {"at": m.get("reexported_at") or m.get("finished_at"),
                        "overrides": m.get("review_overrides", 0)}
        except ValueError:
            exported = None
    return render(request, "audit.html", {"rows": rows, "total": total, "exported": exported,
                                          "flash": request.query_params.get("done"),
                                          "error": request.query_params.get("error")})


async def csv_download(request: Request) -> Response:
    studio = request.app.state.studio

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_COLUMNS)
        for r in iter_log(studio.db):
            r = dict(r, created_at=dt.datetime.fromtimestamp(r["created_at"], dt.timezone.utc).isoformat())
            w.writerow([_cell(r[c]) for c in CSV_COLUMNS])
            if buf.tell() > 1 << 16:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    name = (studio.store.get_meta("campaign_id") or "run").replace('"', "")
    # materialised in this thread: the store connection belongs to it
    body = "".join(lines())
    return StreamingResponse(iter([body]), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}-audit.csv"'})


async def reexport(request: Request) -> Response:
    from urllib.parse import quote

    from ..pipeline import reexport as do_reexport

    studio = request.app.state.studio
    try:
        m = do_reexport(studio.run_dir)
    except ContentgenError as e:
        return RedirectResponse(f"/audit?error={quote(e.render())}", 303)
    return RedirectResponse(f"/audit?done={m.get('review_overrides', 0)}", 303)
