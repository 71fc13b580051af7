"""Refunds and the outbox that pays them back through the gateway."""
