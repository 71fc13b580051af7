"""Consumers and their cards (built on the escrow ledger)."""
