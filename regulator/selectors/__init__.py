"""Reads for the regulator: ``risk`` (scores and signals), ``dashboard``,
``audit`` (the audit log)."""
