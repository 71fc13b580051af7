"""Reads for the regulator: ``risk`` (scores and signals), ``complaints`` (lists and statistics),
``audit`` (the audit log)."""
