"""Writes for merchants: ``merchants`` (registration and products), ``settlement`` (runs and
payouts), ``closure`` (closure and relocation notices), ``limits`` (the card limits and their
refusals)."""
