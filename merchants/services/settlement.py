"""Daily settlement and payouts (see ``merchants.models.SettlementRun``).

``settlement_run`` settles one Beijing day for every merchant:

1. The run row fixes the window ``(since, cutoff]``: ``since`` is the previous run's cutoff, so a
   missed day is caught up by the next run and nothing is settled twice. Both ends are Beijing
   midnights: the window is whole business days.
2. The merchants' totals of those days are read from the day totals the ledger keeps as the
   releases and refund fees post (``escrow.models.SettlementDayTotal``: one row per merchant
   settlement account and day, added to in each posting's own transaction). No posting is read:
   at 10x a day is ten million of them (issue 20), and summing them alone took longer than the
   day's whole settlement may. ``escrow.selectors.settlement_day_mismatches`` reconciles a day's
   totals with its postings.
3. Settlements are written in chunks, each chunk in one transaction. With a gateway whose payouts
   are rows of this database (the local bank) and ``deliver`` on, the chunk is paid in the same
   transaction (``_chunk_settle_and_pay``): the merchants locked, the bank paid in one call, the
   payout entries posted together by ``journal_post_many``, the settlements written paid (or
   held), each chunk a few statements. Otherwise each chunk writes its settlements with their
   payouts' outbox messages. A settlement's id is derived from (run, merchant), its outbox key and
   payout entry key from the settlement, so running again after a crash at any step finds what
   exists and writes the rest, and pays each merchant once.
4. A payout that waits in the outbox is sent by it: the gateway pays under the settlement's key,
   then one transaction posts the payout entry (merchant settlement → custody) and marks it paid.
   A crash between the two repeats the call under the same key, which the gateway answers with the
   first payout; the ledger's own key refuses a second entry. With the local gateway,
   ``payouts_deliver`` pays ``PAYOUT_BATCH`` settlements per transaction
   (``outbox_deliver_batch``): the same steps for each, one commit for the batch, so a crash leaves
   the whole batch pending and the next run pays it.

A settlement's ``refunds_count`` counts the refunds of the merchant's cards in the window. The
refunds are the refunds app's, two floors up, and the ledger cannot attribute a refund entry to a
merchant without the cards: the count is asked of the refunds app, which registers its provider
in ``merchants.handlers`` (as consumers and refunds register their handlers with payments).
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils.translation import gettext as _

from core import clock, sql
from core.errors import DomainError
from core.faults import fault_point
from core.gateways import Gateway, gateway_in_database, get_batch_gateway, get_gateway
from core.models import OutboxMessage
from core.outbox import outbox_deliver_many, outbox_enqueue_many
from escrow.models import Account, JournalEntry, SettlementDayTotal
from escrow.services import Leg, NewEntry, city_wide_account_id, journal_post_many
from merchants.accounts import custody_account_id
from merchants.handlers import refund_counts
from merchants.models import Merchant, Settlement, SettlementRun

PAYOUT_TOPIC = "payout.send"
CHUNK = 1000
PAYOUT_BATCH = 100  # local payouts per outbox transaction (each merchant's own custody account is locked until commit)
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


# A merchant's totals of a settlement window: ``(merchant_id, settlement_account_id, released,
# fees, releases_count)``.
Totals = tuple[Any, int, int, int, int]


def _merchant_totals(*, since: datetime, cutoff: datetime) -> list[Totals]:
    """``Totals`` per merchant with money in the window, in merchant order: the day totals the
    ledger kept as the releases and fees posted (``escrow.models.SettlementDayTotal``), one row per
    merchant and business day, read by their ``(day, account)`` index. No posting is read: a day
    of ten million releases is as many rows to sum, and its merchants' totals are a hundred
    thousand (issue 20).

    The window's ends are Beijing midnights (``_run_open``), so it holds whole business days:
    ``(midnight of the first, midnight after the last]``."""
    first, last = clock.business_day(since) + timedelta(days=1), clock.business_day(cutoff)
    if clock.local_midnight(first) != since or clock.local_midnight(last + timedelta(days=1)) != cutoff:
        raise ValueError(f"a settlement window runs from midnight to midnight, not {since} .. {cutoff}")
    rows = (
        SettlementDayTotal.objects.filter(day__gte=first, day__lte=last, account__merchant__isnull=False)
        .values("account__merchant", "account")
        .annotate(released=Sum("released"), fees=Sum("fees"), count=Sum("releases_count"))
        .order_by("account__merchant")
        .values_list("account__merchant", "account", "released", "fees", "count")
    )
    return [
        (merchant, account, int(released), int(fees), int(count)) for merchant, account, released, fees, count in rows
    ]


def settlement_run(
    *, day: date, progress: Callable[[int, int], None] | None = None, deliver: bool = True
) -> SettlementRun:
    """Settle ``day`` (Beijing) for every merchant and make the payouts. Safe to run again, and
    after a crash at any step: nothing is settled or paid twice and nothing is left behind.

    When the gateway's payouts are rows of this database (the local bank) and ``deliver`` is on,
    each chunk of ``SETTLEMENT_CHUNK`` merchants is settled and paid in one transaction
    (``_chunk_settle_and_pay``): no outbox message is needed, there being no outside call to make.
    On PostgreSQL ``SETTLEMENT_WORKERS`` connections pay chunks at once (``_payout_lanes``).
    Otherwise each settlement's payout waits in the outbox, and ``payouts_deliver`` sends them.

    ``progress(done, total)`` is called after each chunk commits (from the thread that paid it,
    one call at a time): merchants done of the run's merchants."""
    run = _run_open(day=day)
    if run.state == SettlementRun.State.RUNNING:
        totals = _merchant_totals(since=run.since, cutoff=run.cutoff)
        refunds: Mapping[Any, int] = refund_counts(since=run.since, cutoff=run.cutoff)
        # A run resumed after a crash counts what its committed chunks settled; each chunk adds
        # the settlements it writes.
        SettlementRun.objects.filter(pk=run.pk).update(
            merchants_total=len(totals), merchants_done=Settlement.objects.filter(run=run).count()
        )
        now = clock.now()
        pay_now = deliver and gateway_in_database()
        # Merchants settled and paid per transaction with the local bank (``_chunk_settle_and_pay``):
        # their accounts stay locked until it commits, a fraction of a second.
        size = settings.SETTLEMENT_CHUNK if pay_now else CHUNK
        lanes = _payout_lanes(totals) if pay_now else [totals]
        counted = _Progress(total=len(totals), report=progress)

        def settle(chunk: list[Totals]) -> None:
            with transaction.atomic(durable=True):
                if pay_now:
                    written = _chunk_settle_and_pay(run=run, chunk=chunk, refunds=refunds, now=now)
                else:
                    written = _chunk_settle(run=run, chunk=chunk, refunds=refunds, now=now)
                SettlementRun.objects.filter(pk=run.pk).update(merchants_done=F("merchants_done") + written)
            fault_point("settlement.after_chunk")
            counted.add(len(chunk))

        _lanes_run(lanes, size=size, work=settle)
        with transaction.atomic(durable=True):
            run = SettlementRun.objects.select_for_update().get(pk=run.pk)
            run.finish()
            run.finished_at = clock.now()
            run.save(update_fields=["state", "finished_at"])
    if deliver:
        payouts_deliver(run=run)
    return run


class _Progress:
    """Merchants done of a run, counted from every lane and reported one call at a time."""

    def __init__(self, *, total: int, report: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.report = total, 0, report
        self.lock = threading.Lock()

    def add(self, count: int) -> None:
        with self.lock:
            self.done += count
            if self.report:
                self.report(self.done, self.total)


def _payout_lanes(totals: list[Totals]) -> list[list[Totals]]:
    """The merchants split into lanes that can be paid at the same time without waiting on one
    another, one lane per connection (``SETTLEMENT_WORKERS``), each in merchant order. A payout
    entry goes on the hash chain of its merchant's settlement account (``escrow.services``), and a
    chunk holds its chains' heads until it commits: a lane takes the merchants of its own chains,
    so two lanes never lock the same head, the same merchant or the same merchant's accounts (a
    city-wide custody account of merchants without their own is shared: lanes take it in turn).

    One lane when the chunk commits in the caller's transaction (nothing to run beside it) or off
    PostgreSQL (SQLite writes one transaction at a time)."""
    workers = min(settings.SETTLEMENT_WORKERS, settings.LEDGER_CHAIN_STRIPES)
    if workers < 2 or connection.vendor != "postgresql" or connection.in_atomic_block:
        return [totals]
    lanes: list[list[Totals]] = [[] for _ in range(workers)]
    for row in totals:
        lanes[row[1] % settings.LEDGER_CHAIN_STRIPES % workers].append(row)
    return [lane for lane in lanes if lane]


def _lanes_run(lanes: list[list[Totals]], *, size: int, work: Callable[[list[Totals]], None]) -> None:
    """``work`` on each chunk of ``size`` of each lane: one lane in this thread, several in threads
    of their own, each on its own connection (closed when its lane ends). A failing chunk stops
    every lane before its next chunk and is raised here once all have stopped; what committed
    stays, and running the settlement again resumes it."""
    if len(lanes) == 1:
        for start in range(0, len(lanes[0]), size):
            work(lanes[0][start : start + size])
        return
    stop = threading.Event()
    failures: list[BaseException] = []

    def lane_run(lane: list[Totals]) -> None:
        try:
            for start in range(0, len(lane), size):
                if stop.is_set():
                    return
                work(lane[start : start + size])
        except BaseException as failure:  # noqa: BLE001 - raised below, once every lane has stopped
            failures.append(failure)  # the first to fail is the one raised
            stop.set()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="settlement") as pool:
        for lane in lanes:
            pool.submit(lane_run, lane)
    if failures:
        raise failures[0]


def _chunk_settle(*, run: SettlementRun, chunk: list[Totals], refunds: Mapping[Any, int], now: datetime) -> int:
    """Write a chunk's settlements, each with its payout's outbox message, in the caller's
    transaction; a settlement that exists is left as it is. Returns how many were written."""
    ids = {merchant_id: settlement_id(run_id=run.pk, merchant_id=merchant_id) for merchant_id, *_ in chunk}
    existing = _settlements_existing(ids.values())
    settlements = [
        Settlement(
            id=ids[merchant_id],
            run=run,
            merchant_id=merchant_id,
            date=run.date,
            since=run.since,
            cutoff=run.cutoff,
            released=released,
            fees=fees,
            releases_count=count,
            refunds_count=refunds.get(merchant_id, 0),
            payout_amount=released + fees,
            created_at=now,
        )
        for merchant_id, _account, released, fees, count in chunk
        if ids[merchant_id] not in existing
    ]
    Settlement.objects.bulk_create(settlements, ignore_conflicts=True)  # a run settling beside it wrote it
    outbox_enqueue_many(
        topic=PAYOUT_TOPIC, items=[({"settlement_id": str(s.id)}, f"payout:{s.id}") for s in settlements]
    )
    return len(settlements)


def _settlements_existing(ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of the settlements ``ids`` exist."""
    return set(Settlement.objects.filter(pk__in=list(ids)).values_list("pk", flat=True))


# What a settlement paid (or held) with its chunk is written with: each row's own values, then the
# values every row of the run shares.
_SETTLED_FIELDS = ["id", "merchant", "released", "fees", "releases_count", "refunds_count", "payout_amount"]
_SETTLED_FIELDS += ["payout_state", "payout_reference", "held_reason", "paid_at"]


def _uuid_column(value: Any, *, native: bool) -> str:
    """A uuid as this database's uuid column takes it in a prepared row (``sql.rows_insert``):
    PostgreSQL's own type (``native``: ``connection.features.has_native_uuid_field``) takes the
    hyphenated text; elsewhere Django stores the 32 hex digits."""
    return str(value) if native else uuid.UUID(str(value)).hex


def _chunk_settle_and_pay(*, run: SettlementRun, chunk: list[Totals], refunds: Mapping[Any, int], now: datetime) -> int:
    """Settle and pay a chunk of merchants' ``(merchant_id, released, fees, releases_count)`` in
    the caller's transaction, with a gateway whose payouts are rows of this database: what writing
    the settlements with ``outbox_enqueue_many`` and then ``payouts_deliver_batch`` do, in a
    handful of statements for the whole chunk.

    The merchants are locked first, in primary-key order (as a payout and a freeze lock them). A
    settlement that already exists (its chunk committed before a crash, or written by
    ``deliver=False``) is left alone, to ``payouts_deliver``. Each new one is held
    (``_payout_hold_reason``) or paid: the bank pays the chunk in one call, each under the
    settlement's key, ``journal_post_many`` posts the payout entries under the keys
    ``payouts_deliver_batch`` would use, and the settlements are written in bulk, already paid or
    held: a row is born in its state, no state of an existing row changes here. Whichever path pays
    a settlement, it is paid once. Returns how many settlements it wrote."""
    ids = {merchant_id: settlement_id(run_id=run.pk, merchant_id=merchant_id) for merchant_id, *_ in chunk}
    merchants = _lock_merchants_for_payout(ids)
    existing = _settlements_existing(ids.values())
    gateway = get_batch_gateway()
    memo_day = run.date.isoformat()
    native = connection.features.has_native_uuid_field
    # Looked up for the first merchant without a custody account of its own, if any: two lanes
    # opening it at once (a database without it) would wait on each other.
    city_custody = functools.cache(lambda: city_wide_account_id(Account.Kind.CUSTODY))
    rows: list[list[Any]] = []
    paying: list[tuple[list[Any], Any, Any, int]] = []  # (its row, settlement id, merchant id, fen)
    for merchant_id, _account, released, fees, count in chunk:
        pk = ids[merchant_id]
        if pk in existing:
            continue
        frozen, stripe_account_id, _, _ = merchants[merchant_id]
        reason = _payout_hold_reason(releases_frozen=frozen, stripe_account_id=stripe_account_id, gateway=gateway)
        amount = released + fees
        state = (Settlement.PayoutState.HELD if reason else Settlement.PayoutState.PAID).value
        row = [_uuid_column(pk, native=native), _uuid_column(merchant_id, native=native), released, fees, count]
        row.append(refunds.get(merchant_id, 0))
        row += [amount, state, ""]
        row += [reason, None if reason else now]
        rows.append(row)
        if not reason and amount:
            paying.append((row, pk, merchant_id, amount))
    references = (
        gateway.payouts_send_many(
            payouts=[
                (str(pk), amount, merchants[merchant_id][1], Settlement.payout_key_of(pk))
                for _, pk, merchant_id, amount in paying
            ]
        )
        if paying
        else []
    )
    fault_point("payout.after_gateway")
    entries = []
    for (row, pk, merchant_id, amount), reference in zip(paying, references, strict=True):
        _, _, settlement_account, custody = merchants[merchant_id]
        row[8] = reference
        entries.append(
            _payout_new_entry(
                settlement_id=pk,
                day=memo_day,
                amount=amount,
                settlement_account_id=settlement_account,
                custody_account_id=custody or city_custody(),
                gateway=gateway,
                reference=reference,
            )
        )
    sql.rows_insert(
        model=Settlement,
        fields=_SETTLED_FIELDS,
        rows=rows,
        constants={
            "run": run.pk,
            "date": run.date,
            "since": run.since,
            "cutoff": run.cutoff,
            "created_at": now,
            "payout_attempt": 0,
        },
        prepared=True,
    )
    # Last: the entries lock the chain heads, which every posting in the city takes, until commit.
    journal_post_many(entries)
    return len(rows)


def payouts_deliver(*, run: SettlementRun) -> int:
    """Send every pending payout of ``run`` now (what the daily job does after settling). With the
    local gateway ``PAYOUT_BATCH`` payouts share a transaction; with any other each has its own,
    since a transaction must not stay open across calls to the outside world (the topic's
    registration in ``merchants.apps`` says so; ``outbox_deliver_many`` follows it)."""
    pending = run.settlements.filter(payout_state=Settlement.PayoutState.PENDING)
    keys = [f"payout:{pk}" for pk in pending.values_list("pk", flat=True)]
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


def _lock_merchants_for_payout(merchant_ids: Iterable[Any]) -> dict[Any, tuple[bool, str, int, int | None]]:
    """``_lock_merchants`` for a chunk paid with its settlements: the same locks, in the same
    order, reading only what a payout needs: ``(releases_frozen, stripe_account_id,
    settlement_account_id, custody_account_id)`` by merchant."""
    rows = (
        Merchant.objects.select_for_update(no_key=True)
        .filter(pk__in=set(merchant_ids))
        .order_by("pk")
        .values_list("pk", "releases_frozen", "stripe_account_id", "settlement_account_id", "custody_account_id")
    )
    return {pk: (frozen, stripe, settlement, custody) for pk, frozen, stripe, settlement, custody in rows}


def _payout_hold_reason(*, releases_frozen: bool, stripe_account_id: str, gateway: Gateway) -> str:
    """Why a payout must not or cannot be made now ("" if it can): while the regulator has frozen
    the merchant's releases the money stays in custody; a Stripe payout needs the merchant's
    connected account."""
    if releases_frozen:
        return _(
            "The market regulator froze this merchant's releases: the payout stays in custody "
            "until the freeze is lifted."
        )
    if gateway.name == "stripe" and not stripe_account_id:
        return _("The merchant has no Stripe connected account to pay out to.")
    return ""


def _payout_held(settlement: Settlement, gateway: Gateway) -> bool:
    """Hold a payout that must not or cannot be made now (``_payout_hold_reason``); True if it was
    held."""
    merchant = settlement.merchant
    reason = _payout_hold_reason(
        releases_frozen=merchant.releases_frozen, stripe_account_id=merchant.stripe_account_id, gateway=gateway
    )
    if not reason:
        return False
    settlement.hold()
    settlement.held_reason = reason
    return True


def _payout_new_entry(
    *,
    settlement_id: Any,
    day: str,
    amount: int,
    settlement_account_id: int,
    custody_account_id: int,
    gateway: Gateway,
    reference: str,
) -> NewEntry:
    """The payout's entry: the merchant's settlement account → its custody account (its own, or the
    city-wide one for a merchant without one: ``merchants.accounts``)."""
    return NewEntry(
        code=JournalEntry.Code.PAYOUT,
        legs=[Leg(settlement_account_id, amount), Leg(custody_account_id, -amount)],
        idempotency_key=f"payout:{settlement_id}",
        actor_label=f"gateway:{gateway.name}",
        memo=f"settlement {day} {reference}",
    )


def _payout_entry(settlement: Settlement, *, gateway: Gateway, reference: str) -> NewEntry:
    """``_payout_new_entry`` of a settlement whose merchant is loaded."""
    return _payout_new_entry(
        settlement_id=settlement.pk,
        day=settlement.date.isoformat(),
        amount=settlement.payout_amount,
        settlement_account_id=settlement.merchant.settlement_account_id,
        custody_account_id=custody_account_id(settlement.merchant),
        gateway=gateway,
        reference=reference,
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
    sql.rows_update_each(
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
