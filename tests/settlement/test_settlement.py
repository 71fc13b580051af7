"""Released money reaches each merchant exactly once, a day at a time."""

from datetime import date

import pytest
import time_machine

from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from merchants.models import Settlement, SettlementRun
from merchants.services.settlement import SettlementNotDue, settlement_run
from payments.models import BankTransaction
from refunds.services import refund_request
from tests.cards import builders
from tests.cards.test_redemptions import use

pytestmark = pytest.mark.django_db


def at(moment):
    return time_machine.travel(moment, tick=False)


def settlement_balance(merchant) -> int:
    return Account.objects.get(pk=merchant.settlement_account_id).balance


@pytest.fixture
def day_of_business(django_capture_on_commit_callbacks):
    """On 2026-03-02 a gym's customers use 3 sessions and one refunds voluntarily with a fee."""
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=100_000, sessions=10, refund_fee_bps=1000)
    with at("2026-02-20 10:00 +0800"):
        cards = [builders.paid_card(pack) for _ in range(3)]
    with at("2026-03-02 11:00 +0800"):
        for card in cards:
            use(card)  # 3 x 10,000 released
        with django_capture_on_commit_callbacks(execute=True):
            refund_request(consumer=cards[0].consumer, card_id=cards[0].pk, reason="voluntary")  # fee 9,000
    return gym, cards


def test_a_day_is_settled_into_one_settlement_and_one_payout_per_merchant(day_of_business):
    gym, _ = day_of_business
    with at("2026-03-03 02:00 +0800"):
        run = settlement_run(day=date(2026, 3, 2))
    settlement = Settlement.objects.get(run=run, merchant=gym)
    assert (settlement.released, settlement.fees, settlement.payout_amount) == (30_000, 9_000, 39_000)
    assert (settlement.releases_count, settlement.refunds_count) == (3, 1)
    assert settlement.payout_state == Settlement.PayoutState.PAID and settlement.payout_reference
    assert settlement_balance(gym) == 0
    assert BankTransaction.objects.filter(kind="payout").get().amount == -39_000
    assert ledger_ok(ledger_verify())


def test_settling_again_pays_nothing_twice(day_of_business):
    with at("2026-03-03 02:00 +0800"):
        settlement_run(day=date(2026, 3, 2))
        settlement_run(day=date(2026, 3, 2))
    assert Settlement.objects.count() == 1
    assert JournalEntry.objects.filter(code="payout").count() == 1
    assert BankTransaction.objects.filter(kind="payout").count() == 1


def test_releases_after_midnight_belong_to_the_next_day(day_of_business):
    gym, cards = day_of_business
    with at("2026-03-03 00:00:01 +0800"):
        use(cards[1])
    with at("2026-03-04 02:00 +0800"):
        settlement_run(day=date(2026, 3, 2))
        settlement_run(day=date(2026, 3, 3))
    amounts = list(Settlement.objects.filter(merchant=gym).order_by("date").values_list("date", "released"))
    assert amounts == [(date(2026, 3, 2), 30_000), (date(2026, 3, 3), 10_000)]
    assert settlement_balance(gym) == 0


def test_a_missed_day_is_caught_up_by_the_next_run(day_of_business):
    gym, cards = day_of_business
    with at("2026-03-03 12:00 +0800"):
        use(cards[1])
    with at("2026-03-04 02:00 +0800"):
        run = settlement_run(day=date(2026, 3, 3))  # the 2nd was never settled
    assert Settlement.objects.get(run=run).released == 40_000
    with at("2026-03-04 02:00 +0800"), pytest.raises(SettlementNotDue):
        settlement_run(day=date(2026, 3, 2))  # already covered by the 3rd's run
    assert settlement_balance(gym) == 0


def test_a_day_that_has_not_ended_cannot_be_settled():
    with at("2026-03-02 23:59 +0800"), pytest.raises(SettlementNotDue):
        settlement_run(day=date(2026, 3, 2))
    assert not SettlementRun.objects.exists()


def test_merchants_without_releases_get_no_settlement(day_of_business):
    idle = builders.merchant()
    with at("2026-03-03 02:00 +0800"):
        settlement_run(day=date(2026, 3, 2))
    assert not Settlement.objects.filter(merchant=idle).exists()


def test_settle_command_prints_progress_and_summary(day_of_business, capsys):
    from django.core.management import call_command

    with at("2026-03-03 02:00 +0800"):
        call_command("settle", "--date", "2026-03-02")
    out = capsys.readouterr().out
    assert "settled 1/1 merchants" in out and "1 settlements, 1 paid" in out


def test_settle_command_fails_with_one_line_reason_for_a_day_not_over():
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with at("2026-03-02 12:00 +0800"), pytest.raises(CommandError, match="2026-03-02"):
        call_command("settle", "--date", "2026-03-02")
