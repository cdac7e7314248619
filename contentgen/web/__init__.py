"""The studio: ``contentgen serve``, a web app over a run store.

Copywriters preview prompt variants side by side on sample members; compliance
reviewers work the audit queue (review, rejected, fallback, repaired), inspect
the full trail of a message, edit and re-check it with the same gates, and
record approve/reject decisions that flow into the next re-export.

``create_app`` (in ``app.py``) builds the Starlette application; this package
imports nothing heavy; its SQL is in ``contentgen.store`` (``studio_db``, ``queue_index``).
"""
