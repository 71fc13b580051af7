"""Moved to ``core.sql`` (issue 15): kept only for the modules another change moves
(``escrow/gateways/local.py``); delete once nothing imports it."""

from core.sql import Statement, execute_all, fetch, insert, update, update_statement, writes_ahead

__all__ = ["Statement", "execute_all", "fetch", "insert", "update", "update_statement", "writes_ahead"]
