"""The regulator's API: ``ledger`` (verification, reconciliations), ``merchants`` (risk, actions, audit
log), ``refunds``, ``reports``; complaints' API is ``complaints.api``."""
