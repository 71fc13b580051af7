"""Daily settlement and payouts (see ``merchants.models.SettlementRun``).

``settlement_run`` settles one Beijing day for every merchant:

1. The run row fixes the window ``(since, cutoff]``: ``since`` is the previous run's cutoff, so a
   missed day is caught up by the next run and nothing is settled twice.
2. One aggregate query sums, per merchant, the releases and refund fees credited to its settlement
   account in the window. No posting is read into Python or written.
3. Settlements are written in chunks, each chunk in one transaction with its payouts' outbox
   messages. A settlement's id is derived from (run, merchant) and its outbox key from the
   settlement, so running again after a crash at any step finds what exists and writes the rest.
4. Each payout is sent by the outbox: the gateway pays under the settlement's key, then one
   transaction posts the payout entry (merchant settlement → custody) and marks it paid. A crash
   between the two repeats the call under the same key, which the gateway answers with the first
   payout; the ledger's own key refuses a second entry. With the local gateway, whose payout is a
   row in this same database, ``payouts_deliver`` pays ``PAYOUT_BATCH`` settlements per transaction
   (``outbox_deliver_batch``): the same steps for each, one commit for the batch, so a crash leaves
   the whole batch pending and the next run pays it.

A settlement's ``refunds_count`` counts the refunds of the merchant's cards in the window. The
refunds are the refunds app's, two floors up, and the ledger cannot attribute a refund entry to a
merchant without the cards: the count is asked of the refunds app, which registers its provider
in ``merchants.handlers`` (as consumers and refunds register their handlers with payments).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import BigIntegerField, Case, Count, F, Q, Sum, Value, When
from django.utils.translation import gettext as _

from core import clock
from core.errors import DomainError
from core.faults import fault_point
from core.gateways import Gateway, get_batch_gateway, get_gateway
from core.models import OutboxMessage
from core.outbox import outbox_deliver_many, outbox_enqueue_many
from core.sql import rows_update_each
from escrow.models import Account, JournalEntry, Posting
from escrow.services import Leg, NewEntry, journal_post_many
from merchants.accounts import custody_account_id
from merchants.handlers import refund_counts
from merchants.models import Merchant, Settlement, SettlementRun

PAYOUT_TOPIC = "payout.send"
CHUNK = 1000
PAYOUT_BATCH = 100  # local payouts per transaction (each merchant's own custody account is locked until commit)
EPOCH = datetime(2000, 1, 1, tzinfo=clock.BEIJING)
_SETTLEMENT_IDS = uuid.UUID("1f0c6a52-93a8-4c1e-9d5b-2f7f3b1b8e44")


class SettlementNotDue(DomainError):
    status_code = 400
    code = "settlement_not_due"


def settlement_id(*, run_id: int, merchant_id: Any) -> uuid.UUID:
    return uuid.uuid5(_SETTLEMENT_IDS, f"{run_id}:{merchant_id}")


def _run_open(*, day: date) -> SettlementRun:
    cutoff = clock.local_midnight(day + timedelta(days=1))
    if cutoff > clock.now():
        raise SettlementNotDue(_("%(day)s has not ended yet in Beijing.") % {"day": day.isoformat()})
    with transaction.atomic(durable=True):
        run = SettlementRun.objects.select_for_update().filter(date=day).first()
        if run is not None:
            return run
        last = SettlementRun.objects.order_by("-cutoff").first()
        if last is not None and last.cutoff >= cutoff:
            raise SettlementNotDue(
                _("%(day)s was settled with %(later)s.") % {"day": day.isoformat(), "later": last.date.isoformat()}
            )
        return SettlementRun.objects.create(
            date=day, since=last.cutoff if last else EPOCH, cutoff=cutoff, started_at=clock.now()
        )


def _merchant_totals(*, since: datetime, cutoff: datetime) -> list[tuple[Any, int, int, int]]:
    """``(merchant_id, released, fees, releases_count)`` per merchant with money in the window: one
    aggregate over the postings to merchant settlement accounts (a credit is negative), on the
    journal's ``created_at`` index."""
    released = Q(entry__code=JournalEntry.Code.RELEASE)
    fee = Q(entry__code=JournalEntry.Code.FEE)
    money = BigIntegerField()
    rows = (
        Posting.objects.filter(
            account__kind=Account.Kind.MERCHANT_SETTLEMENT,
            account__merchant__isnull=False,
            entry__code__in=[JournalEntry.Code.RELEASE, JournalEntry.Code.FEE],
            entry__created_at__gt=since,
            entry__created_at__lte=cutoff,
        )
        .values("account__merchant")
        .annotate(
            released=Sum(Case(When(released, then=-F("amount")), default=Value(0), output_field=money)),
            fees=Sum(Case(When(fee, then=-F("amount")), default=Value(0), output_field=money)),
            count=Count("pk", filter=released),
        )
        .order_by("account__merchant")
        .values_list("account__merchant", "released", "fees", "count")
    )
    return list(rows)


def settlement_run(
    *, day: date, progress: Callable[[int, int], None] | None = None, deliver: bool = True
) -> SettlementRun:
    """Settle ``day`` (Beijing) for every merchant and make the payouts. Safe to run again, and
    after a crash at any step: nothing is settled or paid twice and nothing is left behind."""
    run = _run_open(day=day)
    if run.state == SettlementRun.State.RUNNING:
        totals = _merchant_totals(since=run.since, cutoff=run.cutoff)
        refunds: Mapping[Any, int] = refund_counts(since=run.since, cutoff=run.cutoff)
        SettlementRun.objects.filter(pk=run.pk).update(merchants_total=len(totals))
        now = clock.now()
        for start in range(0, len(totals), CHUNK):
            chunk = totals[start : start + CHUNK]
            with transaction.atomic(durable=True):
                settlements = [
                    Settlement(
                        id=settlement_id(run_id=run.pk, merchant_id=merchant_id),
                        run=run,
                        merchant_id=merchant_id,
                        date=day,
                        since=run.since,
                        cutoff=run.cutoff,
                        released=released,
                        fees=fees,
                        releases_count=count,
                        refunds_count=refunds.get(merchant_id, 0),
                        payout_amount=released + fees,
                        created_at=now,
                    )
                    for merchant_id, released, fees, count in chunk
                ]
                Settlement.objects.bulk_create(settlements, ignore_conflicts=True)
                outbox_enqueue_many(
                    topic=PAYOUT_TOPIC,
                    items=[({"settlement_id": str(s.id)}, f"payout:{s.id}") for s in settlements],
                )
                SettlementRun.objects.filter(pk=run.pk).update(merchants_done=start + len(chunk))
            fault_point("settlement.after_chunk")
            if progress:
                progress(start + len(chunk), len(totals))
        with transaction.atomic(durable=True):
            run = SettlementRun.objects.select_for_update().get(pk=run.pk)
            run.finish()
            run.finished_at = clock.now()
            run.save(update_fields=["state", "finished_at"])
    if deliver:
        payouts_deliver(run=run)
    return run


def payouts_deliver(*, run: SettlementRun) -> int:
    """Send every pending payout of ``run`` now (what the daily job does after settling). With the
    local gateway ``PAYOUT_BATCH`` payouts share a transaction; with any other each has its own,
    since a transaction must not stay open across calls to the outside world (the topic's
    registration in ``merchants.apps`` says so; ``outbox_deliver_many`` follows it)."""
    keys = [f"payout:{pk}" for pk in run.settlements.values_list("pk", flat=True)]
    sent = 0
    for start in range(0, len(keys), CHUNK):
        ids = list(
            OutboxMessage.objects.filter(
                idempotency_key__in=keys[start : start + CHUNK], state=OutboxMessage.State.PENDING
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        sent += outbox_deliver_many(message_ids=ids)
    return sent


def _lock_merchants(merchant_ids: Iterable[Any]) -> dict[Any, Merchant]:
    """Lock the merchants of settlements about to be paid (``FOR NO KEY UPDATE``, primary-key
    order), before the settlements themselves: a regulator's freeze or unfreeze (which locks the
    merchant, then its held settlements) waits for the payout to commit or runs before it, so a
    payout never goes out after a freeze committed and a hold never lands after its unfreeze."""
    merchants = Merchant.objects.select_for_update(no_key=True).filter(pk__in=set(merchant_ids)).order_by("pk")
    return {merchant.pk: merchant for merchant in merchants}


def _payout_held(settlement: Settlement, gateway: Gateway) -> bool:
    """Hold a payout that must not or cannot be made now; True if it was held. While the
    regulator has frozen the merchant's releases the money stays in custody; a Stripe payout
    needs the merchant's connected account."""
    if settlement.merchant.releases_frozen:
        settlement.hold()
        settlement.held_reason = _(
            "The market regulator froze this merchant's releases: the payout stays in custody "
            "until the freeze is lifted."
        )
        return True
    if gateway.name == "stripe" and not settlement.merchant.stripe_account_id:
        settlement.hold()
        settlement.held_reason = _("The merchant has no Stripe connected account to pay out to.")
        return True
    return False


def _payout_entry(settlement: Settlement, *, gateway: Gateway, reference: str) -> NewEntry:
    """The payout's entry: the merchant's settlement account → its custody account (its own, or the
    city-wide one for a merchant without one: ``merchants.accounts``)."""
    return NewEntry(
        code=JournalEntry.Code.PAYOUT,
        legs=[
            Leg(settlement.merchant.settlement_account_id, settlement.payout_amount),
            Leg(custody_account_id(settlement.merchant), -settlement.payout_amount),
        ],
        idempotency_key=f"payout:{settlement.pk}",
        actor_label=f"gateway:{gateway.name}",
        memo=f"settlement {settlement.date.isoformat()} {reference}",
    )


def _payout_pay(settlement: Settlement, *, gateway: Gateway) -> None:
    """Pay a locked, pending settlement through the gateway and book it, in the caller's
    transaction; the caller sets ``paid_at`` and saves the settlement."""
    merchant = settlement.merchant
    reference = ""
    if settlement.payout_amount:
        # The gateway's key is the settlement's (and its attempt's), whichever outbox message
        # carries it: a payout sent again after a hold can never be paid a second time. A
        # GatewayError fails this delivery (retried, or given up).
        reference = gateway.payout_send(
            settlement_id=str(settlement.pk),
            amount=settlement.payout_amount,
            destination=merchant.stripe_account_id,
            idempotency_key=settlement.payout_key,
        )
    fault_point("payout.after_gateway")
    if settlement.payout_amount:
        journal_post_many([_payout_entry(settlement, gateway=gateway, reference=reference)])
    settlement.pay()
    settlement.payout_reference = reference


def payout_deliver(message: OutboxMessage) -> None:
    """Outbox handler: pay one settlement through the gateway, then book it."""
    settlement_id = message.payload["settlement_id"]
    merchant_id = Settlement.objects.values_list("merchant_id", flat=True).get(pk=settlement_id)
    merchants = _lock_merchants([merchant_id])
    settlement = Settlement.objects.select_for_update().get(pk=settlement_id)
    settlement.merchant = merchants[merchant_id]
    if settlement.payout_state != Settlement.PayoutState.PENDING:
        return
    gateway = get_gateway()
    if _payout_held(settlement, gateway):
        settlement.save(update_fields=["payout_state", "held_reason"])
        return
    _payout_pay(settlement, gateway=gateway)
    settlement.paid_at = clock.now()
    settlement.save(update_fields=["payout_state", "payout_reference", "paid_at"])


def payouts_deliver_batch(messages: list[OutboxMessage]) -> None:
    """Batch outbox handler (``outbox_deliver_batch``, for a gateway whose payouts are rows of this
    database): what ``payout_deliver`` does, for every message, in the caller's one transaction.

    The settlements are locked in one statement, the gateway pays the batch in one call (each
    under its settlement's key), and the payout entries are posted together by
    ``journal_post_many``, which locks every account of the batch in primary-key order before any
    chain head, as a single posting does. A crash before the commit leaves the whole batch
    pending, bank rows included, and the next delivery pays it once."""
    ids = [message.payload["settlement_id"] for message in messages]
    merchants = _lock_merchants(Settlement.objects.filter(pk__in=ids).values_list("merchant_id", flat=True))
    settlements = list(Settlement.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    for settlement in settlements:
        settlement.merchant = merchants[settlement.merchant_id]
    gateway = get_batch_gateway()  # a batch handler runs only for a gateway in this database
    pending = [s for s in settlements if s.payout_state == Settlement.PayoutState.PENDING]
    held = [s for s in pending if _payout_held(s, gateway)]
    paying = [s for s in pending if s.payout_state == Settlement.PayoutState.PENDING]
    with_money = [s for s in paying if s.payout_amount]
    references = (
        gateway.payouts_send_many(
            payouts=[(str(s.pk), s.payout_amount, s.merchant.stripe_account_id, s.payout_key) for s in with_money]
        )
        if with_money
        else []
    )
    fault_point("payout.after_gateway")
    journal_post_many(
        [
            _payout_entry(settlement, gateway=gateway, reference=reference)
            for settlement, reference in zip(with_money, references, strict=True)
        ]
    )
    paid = dict(zip((s.pk for s in with_money), references, strict=True))
    for settlement in paying:
        settlement.pay()
        settlement.payout_reference = paid.get(settlement.pk, "")
    if held:
        Settlement.objects.bulk_update(held, ["payout_state", "held_reason"])
    if paying:
        _settlements_mark_paid(paying)


def _settlements_mark_paid(settlements: list[Settlement]) -> None:
    """One UPDATE for a paid batch: paid at one moment, each settlement with its own gateway
    reference."""
    rows_update_each(
        model=Settlement,
        column="payout_reference",
        values={s.pk: s.payout_reference for s in settlements},
        payout_state=Settlement.PayoutState.PAID,
        paid_at=clock.now(),
    )


def payout_delivery_dead(message: OutboxMessage) -> None:
    settlement = Settlement.objects.select_for_update().get(pk=message.payload["settlement_id"])
    if settlement.payout_state == Settlement.PayoutState.PENDING:
        settlement.fail()
        settlement.held_reason = message.last_error[:300]
        settlement.save(update_fields=["payout_state", "held_reason"])


def _payout_send_again(settlement: Settlement) -> None:
    """Send a locked held or failed payout again, in the caller's transaction, under a new outbox
    message; the gateway's key stays the settlement's (a held payout was never sent), so it is paid
    at most once whichever message carries it."""
    if settlement.payout_state == Settlement.PayoutState.HELD:
        settlement.release_hold()
    else:
        settlement.retry()
        settlement.payout_attempt += 1  # the refused attempt paid nothing; its key stays refused
    settlement.held_reason = ""
    settlement.save(update_fields=["payout_state", "held_reason", "payout_attempt"])
    attempt = OutboxMessage.objects.filter(idempotency_key__startswith=f"payout:{settlement.pk}").count()
    outbox_enqueue_many(
        topic=PAYOUT_TOPIC, items=[({"settlement_id": str(settlement.pk)}, f"payout:{settlement.pk}:{attempt}")]
    )


def settlement_payout_retry(*, settlement_id: Any) -> Settlement:
    """Send a held payout (the merchant now has a connected account) or a failed one again."""
    with transaction.atomic(durable=True):
        settlement = Settlement.objects.select_for_update().get(pk=settlement_id)
        if settlement.payout_state in (Settlement.PayoutState.HELD, Settlement.PayoutState.FAILED):
            _payout_send_again(settlement)
    return settlement


def settlements_release_held(*, merchant_id: Any) -> int:
    """The regulator lifted the freeze on the merchant's releases: send every payout held since,
    once. Runs in the caller's transaction, which holds the merchant locked (the unfreeze); returns
    how many were sent again. A payout held for another reason is held again by its delivery."""
    with transaction.atomic():
        held = list(
            Settlement.objects.select_for_update()
            .filter(merchant_id=merchant_id, payout_state=Settlement.PayoutState.HELD)
            .order_by("pk")
        )
        for settlement in held:
            _payout_send_again(settlement)
    return len(held)
