"""Reads for the regulator: ``risk`` (scores and signals), ``dashboard``,
``audit`` (the audit log), ``jurisdiction`` (what a regulator oversees: every other read starts
there), ``scoped`` (the lower apps' refunds and filings, within a jurisdiction)."""
