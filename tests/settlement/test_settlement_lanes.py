"""On a real PostgreSQL server, with the local bank, the nightly run pays chunks of merchants on
``SETTLEMENT_WORKERS`` connections at once (issue 20: a day's settlement at 10x). Each lane takes
the merchants of its own hash chains, so two chunks in flight never wait for each other; each
merchant is still paid once, whatever stops a lane."""

import threading
from datetime import date

import pytest
import time_machine

from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify, settlement_day_mismatches
from merchants.models import Settlement, SettlementRun
from merchants.services import settlement as service
from merchants.services.settlement import settlement_run
from payments.models import BankTransaction
from tests.settlement.test_bulk_payouts import fail_chunk, merchants_released_to_on_the_day

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DAY = date(2026, 3, 2)
SETTLED = "2026-03-03 02:00 +0800"


def at(moment):
    return time_machine.travel(moment, tick=False)


@pytest.fixture
def lanes(settings):
    settings.SETTLEMENT_CHUNK = 2
    settings.SETTLEMENT_WORKERS = 2
    settings.LEDGER_CHAIN_STRIPES = 64


@pytest.fixture
def eight_merchants():
    """Eight merchants (each with its own custody account), one service used by each on the day."""
    merchants = merchants_released_to_on_the_day(8)
    assert all(merchant.custody_account_id for merchant in merchants)
    return merchants


def lane_of(merchant) -> int:
    return merchant.settlement_account_id % 64 % 2


def assert_paid_once(merchants):
    settlements = list(Settlement.objects.filter(date=DAY))
    assert sorted(s.merchant_id for s in settlements) == sorted(m.pk for m in merchants)
    assert {s.payout_state for s in settlements} == {Settlement.PayoutState.PAID}
    assert JournalEntry.objects.filter(code="payout").count() == len(merchants)
    assert BankTransaction.objects.filter(kind="payout").count() == len(merchants)
    assert ledger_ok(ledger_verify(full=True))
    assert settlement_day_mismatches(day=DAY) == []


def test_two_lanes_hold_their_chunks_open_at_the_same_time_and_pay_each_merchant_once(
    lanes, eight_merchants, monkeypatch
):
    if len({lane_of(m) for m in eight_merchants}) < 2:
        pytest.skip("every merchant's settlement account fell on one lane")  # 1 in 128
    # Each lane's first chunk, its payout entries posted (every lock it takes held), waits for the
    # other lane's to get as far: had the two waited on one lock, the barrier would break.
    barrier = threading.Barrier(2, timeout=20)
    real = service.journal_post_many
    posted_by: list[str] = []

    def post_then_meet(entries):
        posted = real(entries)
        first = threading.current_thread().name not in posted_by
        posted_by.append(threading.current_thread().name)
        if first:
            barrier.wait()
        return posted

    monkeypatch.setattr(service, "journal_post_many", post_then_meet)
    seen = []
    with at(SETTLED):
        run = settlement_run(day=DAY, progress=lambda done, total: seen.append((done, total)))

    assert len(set(posted_by)) == 2 and all(name.startswith("settlement") for name in posted_by)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen) and seen[-1] == (8, 8)
    run.refresh_from_db()
    assert (run.state, run.merchants_total, run.merchants_done) == (SettlementRun.State.DONE, 8, 8)
    assert_paid_once(eight_merchants)


def test_a_lane_that_fails_stops_the_run_and_running_again_pays_the_rest_once(lanes, eight_merchants, monkeypatch):
    real = service.journal_post_many
    fail_chunk(monkeypatch, 3, "the connection died here")
    with at(SETTLED), pytest.raises(RuntimeError, match="connection died"):
        settlement_run(day=DAY)
    paid = Settlement.objects.filter(payout_state="paid").count()
    assert 0 < paid < 8  # the chunks that committed stay paid; the failed one rolled back
    run = SettlementRun.objects.get()
    assert (run.state, run.merchants_done) == (SettlementRun.State.RUNNING, paid)

    monkeypatch.setattr(service, "journal_post_many", real)
    with at(SETTLED):
        settlement_run(day=DAY)
        settlement_run(day=DAY)  # and once more: nothing moves
    run.refresh_from_db()
    assert (run.state, run.merchants_done) == (SettlementRun.State.DONE, 8)
    assert_paid_once(eight_merchants)
