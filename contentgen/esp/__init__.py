"""ESP-ready exports of a finished run: ``contentgen export RUN_DIR --format FORMAT``.

Formats (one module each, its docstring cites the platform's documentation it follows):

=========  ==========================================================================================
braze      ``users.csv`` (CSV import) + ``users_track.jsonl`` (``/users/track``) attributes; messages as
           API-triggered campaign recipients scheduled at each member's send time
iterable   ``users_bulk_update.jsonl`` (``/api/users/bulkUpdate``); ``{channel}_target.jsonl``
           (``/api/email/target`` ...) with ``sendAt``
sfmc       ``data_extension.csv`` + ``data_extension.json`` (a sendable data extension)
klaviyo    ``profile_bulk_import.jsonl`` (``/api/profile-bulk-import-jobs``)
csv        ``messages.csv``: every common field, one row a member
parquet    ``messages.parquet``: the same, typed
=========  ==========================================================================================

Only members with ``send: true`` are exported. Each format's folder
(``RUN_DIR/esp/FORMAT/`` unless ``--esp-out``) holds a ``manifest.json`` listing
every file with its SHA-256, size, members and requests, the endpoint it is for,
what was skipped and why, and the template snippets that use the fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import braze, iterable, klaviyo, sfmc, tabular
from .files import Export, verify_esp
from .rows import EspExportError, EspRow, iter_rows, load_emails, open_source

WRITERS: dict[str, tuple[Callable[..., None], dict[str, str]]] = {
    "braze": (braze.write, braze.DOCS),
    "iterable": (iterable.write, iterable.DOCS),
    "sfmc": (sfmc.write, sfmc.DOCS),
    "klaviyo": (klaviyo.write, klaviyo.DOCS),
    "csv": (tabular.write_csv, tabular.DOCS),
    "parquet": (tabular.write_parquet, tabular.DOCS),
}
FORMATS: tuple[str, ...] = tuple(WRITERS)
CHANNELS = ("email", "push", "sms", "inapp")

__all__ = ["FORMATS", "EspExportError", "EspRow", "export_esp", "parse_campaign_ids", "verify_esp"]


def parse_campaign_ids(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["email=123", "push=456"]`` -> ``{"email": "123", "push": "456"}``."""
    out: dict[str, str] = {}
    for v in values:
        channel, sep, cid = v.partition("=")
        channel = channel.strip().lower()
        if not sep or channel not in CHANNELS or not cid.strip():
            raise EspExportError(f"--esp-campaign {v!r} is not CHANNEL=ID",
                                 hint=f"write it as email=ID (channels: {', '.join(CHANNELS)})")
        out[channel] = cid.strip()
    return out


def export_esp(run_dir: Path, fmt: str, out: Path | None = None, *, campaign_ids: dict[str, str] | None = None,
               with_email: bool = False, campaign_path: Path | None = None, list_id: str | None = None
               ) -> dict[str, Any]:
    """Write FORMAT's files for a finished run; returns the folder's manifest."""
    if fmt not in WRITERS:
        raise EspExportError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    src = open_source(Path(run_dir))
    emails = load_emails(src, campaign_path) if with_email else None
    writer, docs = WRITERS[fmt]
    exp = Export(Path(out) if out else Path(run_dir) / "esp" / fmt, fmt, src, docs)

    def rows() -> Iterator[EspRow]:
        return iter_rows(src, emails)

    try:
        writer(exp, rows, campaign_ids=campaign_ids or {}, with_email=with_email, list_id=list_id)
    except BaseException:
        exp.abort()
        raise
    return exp.commit()
