"""Moved to ``core.sql`` (issue 15): kept only for the modules another change moves
(``escrow/gateways/local.py``, ``core/outbox.py``, ``notifications/services.py``); delete once
nothing imports it."""

from core.sql import rows_insert, rows_update_each

__all__ = ["rows_insert", "rows_update_each"]
