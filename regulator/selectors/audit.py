"""The regulator's audit log: every regulator action (``AuditEvent``) and every money movement's
journal entry, newest first, in one paginated list.

The two tables are merged in SQL (``UNION ALL`` of ``(kind, id, created_at)`` ordered by time), so a
page costs one query for its keys and one per table to load the rows on it, however long the log.
"""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast

from core.errors import InvalidInput
from escrow.models import JournalEntry
from merchants.models import Merchant
from regulator.models import AuditEvent

KINDS = ("action", "journal")


def _keys(queryset, kind: str):
    return queryset.annotate(kind=Value(kind, output_field=CharField()), ref=Cast("pk", CharField())).values(
        "kind", "ref", "created_at"
    )


def audit_log_keys(*, kind: str | None = None, merchant: Merchant | None = None) -> QuerySet:
    """``{kind, ref, created_at}`` rows of the whole log, newest first (paginate this)."""
    if kind is not None and kind not in KINDS:
        raise InvalidInput(errors={"kind": [f"one of {', '.join(KINDS)}"]})
    events = AuditEvent.objects.all()
    entries = JournalEntry.objects.all()
    if merchant is not None:
        events = events.filter(merchant=merchant)
        touching = Q(postings__account_id=merchant.settlement_account_id) | Q(
            postings__account__card__merchant_id=merchant.pk
        )
        entries = entries.filter(pk__in=JournalEntry.objects.filter(touching).values("pk"))
    parts = []
    if kind in (None, "action"):
        parts.append(_keys(events.order_by(), "action"))
    if kind in (None, "journal"):
        parts.append(_keys(entries.order_by(), "journal"))
    rows = parts[0] if len(parts) == 1 else parts[0].union(parts[1], all=True)
    return rows.order_by("-created_at", "-ref")


def audit_log_rows(keys: list[dict]) -> list[dict[str, Any]]:
    """The page's rows, loaded from their tables, in the keys' order."""
    event_ids = [int(k["ref"]) for k in keys if k["kind"] == "action"]
    entry_ids = [int(k["ref"]) for k in keys if k["kind"] == "journal"]
    events = {e.pk: e for e in AuditEvent.objects.select_related("actor").filter(pk__in=event_ids)}
    entries = {
        e.pk: e
        for e in JournalEntry.objects.select_related("actor")
        .filter(pk__in=entry_ids)
        .annotate(amount=Sum("postings__amount", filter=Q(postings__amount__gt=0)))
    }
    rows = []
    for key in keys:
        if key["kind"] == "action":
            e = events[int(key["ref"])]
            rows.append(
                {
                    "kind": "action",
                    "id": str(e.pk),
                    "created_at": e.created_at,
                    "actor": e.actor.username if e.actor else e.actor_label,
                    "verb": e.verb,
                    "merchant": str(e.merchant_id) if e.merchant_id else None,
                    "target": e.target,
                    "reason": e.reason,
                    "changes": e.changes,
                    "amount": None,
                    "hash": None,
                }
            )
        else:
            j = entries[int(key["ref"])]
            rows.append(
                {
                    "kind": "journal",
                    "id": str(j.pk),
                    "created_at": j.created_at,
                    "actor": j.actor.username if j.actor else j.actor_label,
                    "verb": j.code,
                    "merchant": None,
                    "target": f"chain:{j.chain}:{j.seq}",
                    "reason": j.memo,
                    "changes": {},
                    "amount": j.amount or 0,
                    "hash": j.hash,
                }
            )
    return rows
