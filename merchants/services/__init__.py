"""Writes for merchants: ``merchants`` (registration and products), ``settlement`` (runs and
payouts), ``closure`` (closure notices), ``relocation`` (notices of a move), ``operator_change``
(a change of operator), ``limits`` (the card limits and their refusals)."""
