"""Every table of the run store, as named apply-once migrations (recorded in the ``migrations`` table).

``MIGRATIONS`` is SQLite's list, in order; ``postgres.MIGRATIONS`` is the same schema for PostgreSQL
(same tables and columns, its own types and the ``scope`` column that lets shards of one run share a
database). A store applies the migrations it has not recorded yet, each in its own transaction.
"""

from __future__ import annotations

from .run import m001_initial, m003_batch_ledger, m004_ledger
from .studio import m002_studio, m005_studio_review

MIGRATIONS = [("m001_initial", m001_initial), ("m002_studio", m002_studio), ("m003_batch_ledger", m003_batch_ledger),
              ("m004_ledger", m004_ledger), ("m005_studio_review", m005_studio_review)]



__all__ = ["MIGRATIONS", "m001_initial", "m002_studio", "m003_batch_ledger", "m004_ledger", "m005_studio_review"]
