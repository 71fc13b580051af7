"""The chaos "bank test": many clients drive the API of a real gunicorn (with a real Celery worker)
on PostgreSQL with random valid and invalid operations of every kind for ``CHAOS_SECONDS``
(``tests/chaos/workload.py``), while an operator runs ``manage.py settle`` now and then. Then the
books must hold:

- no response was a 5xx (or a transport error), every status was one the operation allows, every
  replay gave back the stored response;
- the ledger balances, every account equals its postings and every hash chain verifies
  (``ledger_verify``); custody equals all escrow plus unpaid settlement plus refunds payable;
- every paid card keeps ``price == escrow_balance + released_total + refunded_total``, and its
  totals are what the journal moved out of its escrow;
- no idempotency key acted twice: one card per purchase key, one purchase entry per paid card, one
  refund (and entry) per refunded card, one release per confirmed redemption, no reservation left;
- the worker finished every refund order and paid every refund; a last settlement (of today, the
  clock moved to tomorrow) pays every merchant exactly what it earned.

The seed is printed; ``CHAOS_SEED=<seed>`` replays the same random choices (the interleaving of the
clients is the machine's). ``make chaos`` runs it for ten minutes; ``make test`` for 45 seconds.
"""

from __future__ import annotations

import importlib
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum

from consumers.models import Card, Consumer, Redemption
from consumers.services import redemption_request
from core import clock
from core.models import IdempotencyRecord, OutboxMessage
from escrow.models import Account, JournalEntry, Posting
from escrow.selectors import LIABILITY_KINDS, ledger_ok, ledger_verify
from merchants.models import Merchant, Product, Settlement
from merchants.services.settlement import settlement_run
from payments.models import BankTransaction
from refunds.models import MassRefund, Refund
from regulator.models import RegulatorAction
from regulator.services.actions import merchant_action_take
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.chaos.stack import ROOT, Stack, server_env
from tests.chaos.workload import Report, World, workload_run, world_build
from tests.settlement.test_settlement_crash import database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SECONDS = float(os.environ.get("CHAOS_SECONDS", "45"))
SCALE_SECONDS = float(os.environ.get("CHAOS_SCALE_SECONDS", "25"))
CLIENTS = int(os.environ.get("CHAOS_CLIENTS", "6"))
SEED = int(os.environ["CHAOS_SEED"]) if os.environ.get("CHAOS_SEED") else random.SystemRandom().randrange(2**32)


def say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201 - the test's report is its output


def history(world: World) -> list[date]:
    """Before the run: each consumer bought a card of every kind ten days ago (so they are past
    cooling-off), used some on each of the last three days (releases to settle while the clients
    run; the stored value left with a small balance) and has a service request from an hour ago,
    expired, waiting for its confirmation."""
    today = clock.local_date()
    days = [today - timedelta(days=n) for n in (3, 2, 1)]
    merchants = {str(m.pk): m for m in Merchant.objects.filter(pk__in=[m["id"] for m in world.merchants])}
    for i, person in enumerate(world.consumers):
        consumer = Consumer.objects.get(pk=person["id"])
        merchant = world.merchants[i % len(world.merchants)]
        cards = []
        for spec in merchant["products"]:
            product = Product.objects.get(pk=spec["id"])
            cards.append(builders.paid_card(product, consumer, at=clock.local_midnight(today - timedelta(days=10))))
        for day in days:
            with time_machine.travel(clock.local_midnight(day) + timedelta(hours=14), tick=False):
                for card in cards:
                    if card.kind == "session_pack":
                        use(card)
                    elif card.kind == "stored_value" and day != days[-1]:
                        use(card, 3_000 if day == days[0] else 5_000)  # 2,000 left: a small balance
        with time_machine.travel(clock.now() - timedelta(hours=1), tick=False):
            redemption_request(merchant=merchants[merchant["id"]], card_id=cards[0].pk)
    return days


class Operator:
    """What ``settle`` does between the clients' requests: ``manage.py settle`` for the history's
    days in order (with today, refused: the day has not ended, after the first), then alternately
    today and yesterday again (settled already: nothing is paid twice)."""

    def __init__(self, days: list[date], env: dict[str, str]) -> None:
        self.today, self.yesterday = clock.local_date(), days[-1]
        self.plan = [(days[0], True), (self.today, False), *((day, True) for day in days[1:])]
        self.env = {**env, "DJANGO_DEBUG": "1", "CELERY_TASK_ALWAYS_EAGER": "1"}
        self.runs = 0

    def __call__(self) -> tuple[str, str | None]:
        if self.plan:
            day, due = self.plan.pop(0)
        else:
            day, due = (self.today, False) if self.runs % 2 else (self.yesterday, True)
        self.runs += 1
        done = subprocess.run(
            [sys.executable, "manage.py", "settle", "--date", day.isoformat()],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        label = f"{'past day' if due else 'today'}: exit {done.returncode}"
        refused = done.returncode == 1 and "CommandError" in done.stderr and "Traceback" not in done.stderr
        if (due and done.returncode != 0) or (not due and not refused):
            return label, f"settle --date {day}: exit {done.returncode}\n{done.stdout[-1000:]}{done.stderr[-2000:]}"
        return label, None


def drain(stack: Stack, timeout: float = 180) -> str | None:
    """Wait for the worker to finish the refund orders and pay every refund; None when it has."""
    deadline = time.monotonic() + timeout
    while True:
        left = {
            "refund orders": MassRefund.objects.filter(state__in=["queued", "running"]).count(),
            "refunds unpaid": Refund.objects.exclude(state="paid").count(),
            "outbox pending": OutboxMessage.objects.filter(state="pending").count(),
        }
        if not any(left.values()):
            return None
        if time.monotonic() > deadline or not stack.alive():
            return f"the worker did not finish: {left}\n{stack.tails()}"
        time.sleep(0.5)


def ledger_moves(code_in: list[str]) -> dict[int, int]:
    """Fen each card escrow account lost through entries of these codes (a debit lowers escrow)."""
    rows = (
        Posting.objects.filter(account__kind=Account.Kind.CARD_ESCROW, entry__code__in=code_in)
        .values("account_id")
        .annotate(total=Sum("amount"))
    )
    return {row["account_id"]: row["total"] for row in rows}


def invariants(report) -> list[tuple[str, bool, str]]:
    checks: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append((name, bool(ok), detail))

    server_errors = sum(n for (_, status), n in report.calls.items() if isinstance(status, int) and status >= 500)
    check("no 5xx response", server_errors == 0, f"{server_errors} responses ≥ 500 of {report.total}")
    check(
        "every response as the operation allows, every replay the stored response",
        not report.failures,
        f"{report.replays} replays; " + ("; ".join(report.failures[:10]) or "no failure"),
    )

    verified = ledger_verify()
    check(
        "ledger balances, accounts equal their postings, hash chains verify",
        ledger_ok(verified),
        f"{verified['entries']} entries, head {verified['head_hash'][:16]}…, problems {verified['problems'][:5]}",
    )
    sums = {
        kind: Account.objects.filter(kind=kind).aggregate(t=Sum("balance"))["t"] or 0
        for kind in (Account.Kind.CUSTODY, *LIABILITY_KINDS)
    }
    custody, escrow = sums[Account.Kind.CUSTODY], sums[Account.Kind.CARD_ESCROW]
    unpaid, payable = sums[Account.Kind.MERCHANT_SETTLEMENT], sums[Account.Kind.REFUND_PAYABLE]
    check(
        "custody == escrow + unpaid settlement + refunds payable",
        custody == escrow + unpaid + payable,
        f"{custody} == {escrow} + {unpaid} + {payable}",
    )
    bank = BankTransaction.objects.aggregate(t=Sum("amount"))["t"] or 0
    check(
        "the sandbox bank's statement holds what custody says (reconciliation)",
        bank == custody,
        f"bank {bank}, custody {custody}, {BankTransaction.objects.count()} bank transactions",
    )
    check(
        "nothing negative",
        not Account.objects.filter(balance__lt=0).exists(),
        f"{Account.objects.count()} accounts",
    )

    paid = Card.objects.filter(paid_at__isnull=False).select_related("escrow_account")
    released, refunded = ledger_moves(["release", "fee"]), ledger_moves(["refund"])
    broken = [
        f"{c.pk}: {c.price} != {c.escrow_account.balance} + {c.released_total} + {c.refunded_total}"
        for c in paid
        if c.price != c.escrow_account.balance + c.released_total + c.refunded_total or c.escrow_account.balance < 0
    ]
    check("every paid card: price == escrow + released + refunded", not broken, f"{paid.count()} cards; {broken[:5]}")
    off = [
        str(c.pk)
        for c in paid
        if released.get(c.escrow_account_id, 0) != c.released_total
        or refunded.get(c.escrow_account_id, 0) != c.refunded_total
    ]
    check("every card's released and refunded totals are its journal's", not off, f"{off[:5]}")

    purchases = JournalEntry.objects.filter(code="purchase").count()
    keyed = Card.objects.filter(purchase_key__isnull=False)
    seen_cards = set(report.cards_by_key.values())
    check(
        "each purchase key made one card, and no card the clients were not shown",
        keyed.count() == len(seen_cards) == len(report.cards_by_key)
        and set(map(str, keyed.values_list("pk", flat=True))) == seen_cards,
        f"{keyed.count()} keyed cards, {len(seen_cards)} seen for {len(report.cards_by_key)} keys",
    )
    check(
        "one purchase entry per paid card",
        purchases == paid.count(),
        f"{purchases} purchase entries, {paid.count()} paid cards",
    )
    refunds = Refund.objects.count()
    refund_entries = JournalEntry.objects.filter(code="refund").count()
    refunded_cards = Card.objects.filter(refunded_total__gt=0).count()
    check(
        "one refund and one refund entry per refunded card",
        refunds == refund_entries == refunded_cards,
        f"{refunds} refunds, {refund_entries} entries, {refunded_cards} cards refunded",
    )
    confirmed = Redemption.objects.filter(state="confirmed")
    releases = JournalEntry.objects.filter(idempotency_key__startswith="redemption:").count()
    twice = (
        JournalEntry.objects.filter(code="release")
        .values("idempotency_key")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    confirmed_released = Redemption.objects.filter(
        state="confirmed", released__gt=0
    ).count()  # a pass's check-in releases nothing
    check(
        "one release per confirmed redemption",
        releases == confirmed_released and twice == 0,
        f"{confirmed.count()} confirmed ({confirmed_released} releasing), {releases} release entries",
    )
    stuck = IdempotencyRecord.objects.exclude(state="completed").count()
    check(
        "every stored idempotent request completed",
        stuck == 0,
        f"{IdempotencyRecord.objects.count()} keys stored, {stuck} left started",
    )

    orders = MassRefund.objects.count()
    actions = RegulatorAction.objects.exclude(state="done").count()
    check(
        "every refund order done, every regulator action done",
        not MassRefund.objects.exclude(state="done").exists() and actions == 0,
        f"{orders} refund orders, {RegulatorAction.objects.count()} actions",
    )
    check(
        "every refund paid by the worker",
        not Refund.objects.exclude(state="paid").exists(),
        f"{refunds} refunds: {dict(Refund.objects.values_list('reason').annotate(n=Count('pk')))}",
    )
    # After the last settlement: every merchant paid exactly what was credited to it.
    credited = dict(
        Posting.objects.filter(account__kind=Account.Kind.MERCHANT_SETTLEMENT, entry__code__in=["release", "fee"])
        .values("account_id")
        .annotate(t=Sum("amount"))
        .values_list("account_id", "t")
    )
    wrong = []
    for merchant in Merchant.objects.all():
        settled = Settlement.objects.filter(merchant=merchant).aggregate(
            paid=Sum("payout_amount", filter=Q(payout_state="paid")), n=Count("pk")
        )
        if (settled["paid"] or 0) != -credited.get(merchant.settlement_account_id, 0):
            wrong.append(
                f"{merchant.name}: paid {settled['paid']}, earned {-credited.get(merchant.settlement_account_id, 0)}"
            )
    check(
        "after the last settlement every merchant was paid exactly what it earned, nothing unpaid",
        not wrong and unpaid == 0 and not Settlement.objects.exclude(payout_state="paid").exists(),
        f"{Settlement.objects.count()} settlements paying {-sum(credited.values())} fen; {wrong[:5]}",
    )
    return checks


def chaos_run(tmp_path, *, seconds: float, **stack_options) -> Report:
    """The workload against a ``Stack(**stack_options)`` for ``seconds``, then the invariants."""
    started = time.monotonic()
    world = world_build(merchants=3, consumers=CLIENTS)
    days = history(world)
    say(f"\n[chaos] seed {SEED} (replay: CHAOS_SEED={SEED}), {CLIENTS} clients for {seconds:.0f}s")
    env = server_env(database_url(), REDEMPTION_TTL_MINUTES="1", WORKER_LOG_LEVEL="INFO")
    from django.db import connections

    connections.close_all()
    with Stack(env=env, logs=tmp_path, **stack_options) as stack:
        try:
            report = workload_run(
                base_url=stack.base_url,
                world=world,
                seconds=seconds,
                clients=CLIENTS,
                seed=SEED,
                settle=Operator(days, env),
                settle_every=max(5.0, seconds / 6),
            )
            unfinished = drain(stack)
        finally:
            stack.stop()
            stack.queue_delete()
    # Payouts held while a merchant's releases were frozen stay in custody until the regulator
    # lifts the freeze: it does so now for every merchant still frozen, so that the invariants
    # below see each held payout sent by the unfreeze, once.
    regulator = get_user_model().objects.filter(role="regulator").order_by("pk").first()
    for merchant_id in Merchant.objects.filter(releases_frozen=True).values_list("pk", flat=True):
        merchant_action_take(
            merchant_id=merchant_id, actor_id=regulator.pk, action="unfreeze_releases", reason="chaos: the end"
        )
    # The last settlement: today's releases and fees, the clock moved to 01:00 tomorrow (Beijing).
    today = clock.local_date()
    with time_machine.travel(clock.local_midnight(today + timedelta(days=1)) + timedelta(hours=1), tick=False):
        settlement_run(day=today)

    checks = invariants(report)
    if unfinished:
        checks.append(("the worker drained its queue", False, unfinished))
    say(f"[chaos] operations ({report.total} requests, {report.replays} replays):")
    say(report.table())
    say("[chaos] invariants:")
    for name, ok, detail in checks:
        say(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
    say(f"[chaos] {time.monotonic() - started:.0f}s in all; seed {SEED}")
    failed = [name for name, ok, _ in checks if not ok]
    assert not failed, f"seed {SEED}: {failed}\n" + "\n".join(report.failures[:30])
    return report


def test_many_clients_doing_anything_leave_the_books_exact(tmp_path):
    chaos_run(tmp_path, seconds=SECONDS)


def test_two_instances_behind_a_load_balancer_and_two_workers_keep_the_books_exact(tmp_path):
    """Two gunicorn instances behind haproxy and two Celery workers, the second taking the bulk
    queue alone (core/queues.py): the same workload keeps every invariant, both instances answer,
    and the bulk work (fan-outs and their SMS batches, the regulator's refund orders) is the bulk
    worker's alone."""
    report = chaos_run(tmp_path, seconds=SCALE_SECONDS, instances=2)
    served = [len((tmp_path / f"gunicorn{n}.access.log").read_text().splitlines()) for n in (1, 2)]
    say(f"[chaos] requests served by each instance: {served}")
    assert min(served) > report.total / 4, served  # round robin: each instance takes about half
    ran = {only: ran_tasks(tmp_path / f"worker-{only}.log") for only in ("default", "bulk")}
    say(f"[chaos] tasks run by each worker: {ran}")
    assert ran["default"] and ran["bulk"], ran  # both took work
    assert all(not is_bulk(name) for name in ran["default"]), ran
    assert all(is_bulk(name) for name in ran["bulk"]), ran


def ran_tasks(log: Path) -> Counter:
    """The tasks a worker ran, from its log at INFO ("Task <name>[<id>] succeeded ...")."""
    return Counter(re.findall(r"Task ([\w.]+)\[[\w-]+\] succeeded", log.read_text()))


def is_bulk(name: str) -> bool:
    module, function = name.rsplit(".", 1)
    return bool(getattr(getattr(importlib.import_module(module), function), "bulk", False))
