"""A merchant's money moves through its own custody and refunds-payable accounts, never through an
account another merchant's money moves through (issue 20: no city-wide hot row); a merchant from
before those accounts existed is moved onto its own by ``manage.py ledger_split_custody``."""

import io
from datetime import date

import pytest
import time_machine
from django.core.management import call_command

from consumers.services import payment_simulate
from consumers.services_top_ups import top_up_request
from core.models import OutboxMessage
from core.outbox import outbox_deliver
from escrow.models import Account, JournalEntry, Posting
from escrow.selectors import ledger_ok, ledger_verify
from escrow.services import city_wide_account
from merchants.models import Merchant
from merchants.services.settlement import settlement_run
from refunds.models import Refund
from refunds.services import REFUND_TOPIC, refund_request, top_up_refund
from tests.cards import builders
from tests.cards.test_redemptions import use

pytestmark = pytest.mark.django_db


def at(moment):
    return time_machine.travel(moment, tick=False)


def balance(account_id: int) -> int:
    return Account.objects.get(pk=account_id).balance


def city_wide_ids() -> set[int]:
    return {city_wide_account(Account.Kind.CUSTODY).pk, city_wide_account(Account.Kind.REFUND_PAYABLE).pk}


def accounts_posted_after(entry_id: int) -> set[int]:
    return set(Posting.objects.filter(entry_id__gt=entry_id).values_list("account_id", flat=True))


def last_entry_id() -> int:
    return JournalEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def legacy(merchant: Merchant) -> Merchant:
    """The merchant as one signed up before merchants had custody accounts of their own."""
    Merchant.objects.filter(pk=merchant.pk).update(custody_account=None, refund_payable_account=None)
    merchant.refresh_from_db()
    return merchant


def deliver_refunds() -> None:
    for pk in OutboxMessage.objects.filter(topic=REFUND_TOPIC, state="pending").values_list("pk", flat=True):
        assert outbox_deliver(message_id=pk) == "sent"


def escrow_of(merchant: Merchant) -> int:
    return sum(card.escrow_account.balance for card in merchant.cards.select_related("escrow_account"))


def test_a_merchants_purchase_refund_and_payout_post_only_to_its_own_accounts(django_capture_on_commit_callbacks):
    gym = builders.merchant()
    assert gym.custody_account_id and gym.refund_payable_account_id  # opened at sign-up
    pack = builders.session_pack(gym, price=100_000, sessions=10, refund_fee_bps=1000)
    before = last_entry_id()
    with at("2026-02-20 10:00 +0800"):
        cards = [builders.paid_card(pack) for _ in range(2)]
    with at("2026-03-02 11:00 +0800"):
        use(cards[0])
        with django_capture_on_commit_callbacks(execute=True):
            refund_request(consumer=cards[1].consumer, card_id=cards[1].pk, reason="voluntary")
    with at("2026-03-03 02:00 +0800"):
        settlement_run(day=date(2026, 3, 2))
    codes = set(JournalEntry.objects.filter(pk__gt=before).values_list("code", flat=True))
    assert codes == {"purchase", "release", "fee", "refund", "refund_paid", "payout"}
    assert not accounts_posted_after(before) & city_wide_ids()
    assert balance(gym.custody_account_id) == escrow_of(gym)  # paid out and refunded: the rest is escrow
    assert balance(gym.refund_payable_account_id) == 0
    assert (
        city_wide_account(Account.Kind.CUSTODY).balance,
        city_wide_account(Account.Kind.REFUND_PAYABLE).balance,
    ) == (
        0,
        0,
    )
    assert ledger_ok(ledger_verify())


def test_split_moves_a_legacy_merchants_share_onto_its_own_accounts_and_the_ledger_still_verifies(
    django_capture_on_commit_callbacks,
):
    gym, other = legacy(builders.merchant()), legacy(builders.merchant(name="other"))
    pack = builders.session_pack(gym, price=100_000, sessions=10, refund_fee_bps=1000)
    with at("2026-02-20 10:00 +0800"):
        cards = [builders.paid_card(pack) for _ in range(4)]
        other_card = builders.paid_card(builders.session_pack(other, price=50_000))
    with at("2026-03-02 11:00 +0800"):
        for card in cards:
            use(card)  # released to the gym's settlement account, not yet paid out
        with django_capture_on_commit_callbacks(execute=True):
            refund_request(consumer=cards[0].consumer, card_id=cards[0].pk, reason="voluntary")  # paid
        refund_request(consumer=cards[1].consumer, card_id=cards[1].pk, reason="voluntary")  # booked, not paid
    unpaid = Refund.objects.get(card=cards[1])
    assert unpaid.state == Refund.State.PENDING and unpaid.amount > 0
    city_custody, city_payable = (
        city_wide_account(kind) for kind in (Account.Kind.CUSTODY, Account.Kind.REFUND_PAYABLE)
    )
    custody_before, payable_before = city_custody.balance, city_payable.balance
    settled = balance(gym.settlement_account_id)
    escrow = escrow_of(gym)
    assert settled > 0 and escrow > 0 and payable_before == unpaid.amount

    out = io.StringIO()
    call_command("ledger_split_custody", stdout=out)
    assert "2 split" in out.getvalue()

    gym.refresh_from_db()
    share = escrow + settled + unpaid.amount
    assert balance(gym.custody_account_id) == share
    assert balance(gym.refund_payable_account_id) == unpaid.amount
    assert balance(city_custody.pk) == custody_before - share - 50_000  # the other merchant left too
    assert balance(city_custody.pk) == 0 and balance(city_payable.pk) == 0
    assert balance(Merchant.objects.get(pk=other.pk).custody_account_id) == other_card.price
    assert JournalEntry.objects.filter(code="correction").count() == 2
    assert ledger_ok(ledger_verify())

    again = io.StringIO()
    call_command("ledger_split_custody", stdout=again)  # nothing left: resumable, moves nothing twice
    assert "0 merchants use the city-wide accounts" in again.getvalue()
    assert JournalEntry.objects.filter(code="correction").count() == 2

    # From now on the gym's payments, refunds and payouts touch only its own accounts.
    before = last_entry_id()
    with at("2026-03-02 12:00 +0800"):
        builders.paid_card(pack)
    deliver_refunds()  # the refund booked before the split is paid from the gym's refunds payable
    with at("2026-03-03 02:00 +0800"):
        settlement_run(day=date(2026, 3, 2))
    codes = set(JournalEntry.objects.filter(pk__gt=before).values_list("code", flat=True))
    assert codes == {"purchase", "refund_paid", "payout"}
    assert not accounts_posted_after(before) & city_wide_ids()
    assert balance(gym.refund_payable_account_id) == 0
    assert balance(gym.settlement_account_id) == 0
    assert balance(gym.custody_account_id) == escrow_of(gym)
    assert ledger_ok(ledger_verify())


def test_a_top_up_and_its_refund_post_only_to_the_merchants_own_accounts():
    shop = builders.merchant()
    card = builders.paid_card(builders.stored_value(shop, price=90_000, face_value=100_000, unit_price=5_000))
    before = last_entry_id()
    top_up = top_up_request(consumer=card.consumer, card_id=card.pk, amount=45_000)
    payment_simulate(consumer=card.consumer, payment_id=top_up.pk, outcome="succeeded")
    assert balance(shop.custody_account_id) == 90_000 + 45_000
    top_up_refund(consumer=card.consumer, top_up_id=top_up.pk)  # booked; its payment waits for the commit
    assert balance(shop.refund_payable_account_id) == 45_000
    assert set(JournalEntry.objects.filter(pk__gt=before).values_list("code", flat=True)) == {"purchase", "refund"}
    assert not accounts_posted_after(before) & city_wide_ids()
    assert ledger_ok(ledger_verify())
