"""With the local bank the nightly run settles and pays merchants a chunk per transaction: each
merchant is paid once, whatever interrupts the run, and what is paid is the day's totals."""

from datetime import date

import pytest
import time_machine

from core.models import OutboxMessage
from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_ok, ledger_verify, settlement_day_mismatches
from merchants.models import Merchant, Settlement, SettlementRun
from merchants.services import settlement as service
from merchants.services.settlement import payouts_deliver, settlement_run
from payments.models import BankTransaction
from tests.cards import builders
from tests.cards.test_redemptions import use

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 2)
SETTLED = "2026-03-03 02:00 +0800"


def at(moment):
    return time_machine.travel(moment, tick=False)


def merchants_released_to_on_the_day(count: int) -> list:
    """``count`` merchants, each with one service used on the day: 10,000 fen released to each."""
    merchants = [builders.merchant() for _ in range(count)]
    with at("2026-02-20 10:00 +0800"):
        cards = [builders.paid_card(builders.session_pack(m, price=100_000, sessions=10)) for m in merchants]
    with at("2026-03-02 15:00 +0800"):
        for card in cards:
            use(card)
    return merchants


@pytest.fixture
def five_merchants():
    return merchants_released_to_on_the_day(5)


def assert_each_paid_once(merchants, *, held=()):
    settlements = {s.merchant_id: s for s in Settlement.objects.filter(date=DAY)}
    assert set(settlements) == {m.pk for m in merchants}
    for merchant in merchants:
        settlement = settlements[merchant.pk]
        assert settlement.payout_amount == 10_000
        balance = Account.objects.get(pk=merchant.settlement_account_id).balance
        if merchant.pk in held:
            assert settlement.payout_state == Settlement.PayoutState.HELD and settlement.held_reason
            assert balance == 10_000
        else:
            assert settlement.payout_state == Settlement.PayoutState.PAID and settlement.payout_reference
            assert settlement.paid_at is not None and balance == 0
    paid = len(merchants) - len(held)
    assert JournalEntry.objects.filter(code="payout").count() == paid
    assert BankTransaction.objects.filter(kind="payout").count() == paid
    assert ledger_ok(ledger_verify())


def test_merchants_are_settled_and_paid_a_chunk_per_transaction_each_once(five_merchants, settings):
    settings.SETTLEMENT_CHUNK = 2
    frozen = five_merchants[3]
    Merchant.objects.filter(pk=frozen.pk).update(releases_frozen=True)
    seen = []
    with at(SETTLED):
        run = settlement_run(day=DAY, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 5), (4, 5), (5, 5)]
    run.refresh_from_db()
    assert (run.state, run.merchants_total, run.merchants_done) == (SettlementRun.State.DONE, 5, 5)
    assert_each_paid_once(five_merchants, held={frozen.pk})
    assert not OutboxMessage.objects.filter(topic="payout.send").exists()  # no outside call to make
    assert settlement_day_mismatches(day=DAY) == []
    assert sum(Settlement.objects.values_list("released", flat=True)) == 50_000


def fail_chunk(monkeypatch, number: int, message: str) -> None:
    """The settlement's ``number``-th chunk (counted across its lanes) fails posting its payouts
    with ``RuntimeError(message)``, rolled back; the others post as they would."""
    calls = []
    real = service.journal_post_many

    def fails_on_that_chunk(entries):
        calls.append(len(entries))
        if len(calls) == number:
            raise RuntimeError(message)
        return real(entries)

    monkeypatch.setattr(service, "journal_post_many", fails_on_that_chunk)


def test_a_run_interrupted_between_chunks_pays_the_rest_once_when_run_again(five_merchants, monkeypatch, settings):
    settings.SETTLEMENT_CHUNK = 2
    real = service.journal_post_many
    fail_chunk(monkeypatch, 2, "the process died here")
    with at(SETTLED), pytest.raises(RuntimeError):
        settlement_run(day=DAY)
    assert Settlement.objects.filter(payout_state="paid").count() == 2  # the first chunk committed, paid
    assert SettlementRun.objects.get().merchants_done == 2

    monkeypatch.setattr(service, "journal_post_many", real)
    with at(SETTLED):
        settlement_run(day=DAY)
        settlement_run(day=DAY)  # and once more: nothing moves
    assert_each_paid_once(five_merchants)


def test_settlements_left_pending_in_the_outbox_are_paid_once_by_the_nightly_run(five_merchants, settings):
    settings.SETTLEMENT_CHUNK = 2
    with at(SETTLED):
        run = settlement_run(day=DAY, deliver=False)  # settled; every payout waits in the outbox
    assert Settlement.objects.filter(payout_state="pending").count() == 5
    with at(SETTLED):
        settlement_run(day=DAY)
    assert_each_paid_once(five_merchants)
    assert payouts_deliver(run=run) == 0
    assert set(OutboxMessage.objects.filter(topic="payout.send").values_list("state", flat=True)) == {"sent"}
