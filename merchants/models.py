"""Merchants, their products and settlement (built on the escrow ledger)."""
