"""Small helpers shared by tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def decided_members(out: Path) -> int:
    """Members a (possibly still running) run has committed to its SQLite store; 0 before the store exists."""
    import sqlite3

    try:
        db = sqlite3.connect(f"file:{Path(out) / 'run.db'}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute("SELECT COUNT(*) FROM members").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0
