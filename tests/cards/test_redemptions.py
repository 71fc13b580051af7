"""Services confirmed by the consumer release exactly their share of escrow; nothing else moves money."""

import pytest
import time_machine

from consumers.errors import CardNotRedeemable, InsufficientBalance, RedemptionExpired, RedemptionNotPending
from consumers.models import Card, Redemption
from consumers.services import (
    card_purchase,
    period_pass_accrue,
    redemption_confirm,
    redemption_reject,
    redemption_request,
    redemptions_expire_due,
)
from core.errors import NotFound
from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from merchants.errors import MerchantFrozen
from tests.cards import builders

pytestmark = pytest.mark.django_db


def use(card, amount=None):
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk, amount=amount)
    return redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)


def settlement(card) -> int:
    return Account.objects.get(pk=card.merchant.settlement_account_id).balance


def test_stored_value_releases_floor_of_amount_times_price_over_face_value():
    card = builders.paid_card(builders.stored_value(builders.merchant(), price=90_000, face_value=100_000))
    assert use(card, 3_333).released == 3_333 * 90_000 // 100_000  # 2999, the fraction stays in escrow
    card = builders.fresh(card)
    assert card.balance == 100_000 - 3_333
    assert card.escrow_account.balance == 90_000 - 2_999


def test_stored_value_use_that_empties_the_balance_sweeps_escrow_and_exhausts_the_card():
    card = builders.paid_card(
        builders.stored_value(builders.merchant(), price=99_999, face_value=100_000, unit_price=1)
    )
    released = sum(use(card, 33_333).released for _ in range(3))
    last = use(card, 1).released
    assert released + last == 99_999
    card = builders.fresh(card)
    assert card.state == Card.State.EXHAUSTED and card.escrow_account.balance == 0 and card.balance == 0
    assert settlement(card) == 99_999
    assert ledger_ok(ledger_verify())


def test_stored_value_amount_over_balance_is_insufficient_balance():
    card = builders.paid_card(builders.stored_value(builders.merchant()))
    with pytest.raises(InsufficientBalance):
        redemption_request(merchant=card.merchant, card_id=card.pk, amount=100_001)


def test_two_pending_uses_that_together_exceed_the_balance_cannot_both_confirm():
    card = builders.paid_card(builders.stored_value(builders.merchant(), face_value=100_000))
    first = redemption_request(merchant=card.merchant, card_id=card.pk, amount=60_000)
    second = redemption_request(merchant=card.merchant, card_id=card.pk, amount=60_000)
    redemption_confirm(consumer=card.consumer, redemption_id=first.pk)
    with pytest.raises(InsufficientBalance):
        redemption_confirm(consumer=card.consumer, redemption_id=second.pk)
    assert builders.fresh(card).balance == 40_000


def test_session_pack_releases_floor_of_price_over_sessions_and_the_last_the_rest():
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000, sessions=3))
    releases = [use(card).released for _ in range(3)]
    assert releases == [33_333, 33_333, 33_334]
    card = builders.fresh(card)
    assert card.sessions_remaining == 0 and card.state == Card.State.EXHAUSTED
    with pytest.raises(CardNotRedeemable):
        redemption_request(merchant=card.merchant, card_id=card.pk)


def test_period_pass_check_in_releases_nothing_and_starts_the_pass():
    card = builders.paid_card(
        builders.period_pass(builders.merchant(), price=30_000, days=30), at="2026-03-02 10:00 +0800"
    )
    with time_machine.travel("2026-03-03 18:00 +0800", tick=False):
        assert use(card).released == 0
    card = builders.fresh(card)
    assert card.state == Card.State.ACTIVE
    from core.clock import local

    assert local(card.valid_from).date().isoformat() == "2026-03-03"
    assert local(card.valid_until).date().isoformat() == "2026-04-02"


def test_period_pass_starts_when_cooling_off_ends_if_never_used():
    card = builders.paid_card(
        builders.period_pass(builders.merchant(), price=30_000, days=30), at="2026-03-02 10:00 +0800"
    )
    with time_machine.travel("2026-03-12 01:00 +0800", tick=False):
        period_pass_accrue()
    from core.clock import local

    card = builders.fresh(card)
    assert local(card.valid_from).date().isoformat() == "2026-03-10"
    # Two full days (10th and 11th) have passed by the 12th: 2 * 30000 / 30.
    assert card.released_total == 2_000


def test_period_pass_accrues_day_by_day_and_running_twice_a_day_releases_once():
    card = builders.paid_card(
        builders.period_pass(builders.merchant(), price=10_000, days=3), at="2026-03-02 10:00 +0800"
    )
    with time_machine.travel("2026-03-03 09:00 +0800", tick=False):
        use(card)  # starts 03-03
    releases = []
    for day in ("2026-03-04", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07"):
        with time_machine.travel(f"{day} 00:05 +0800", tick=False):
            period_pass_accrue()
        releases.append(builders.fresh(card).released_total)
    assert releases == [3_333, 3_333, 6_666, 10_000, 10_000]
    assert builders.fresh(card).state == Card.State.EXHAUSTED
    assert ledger_ok(ledger_verify())


def test_only_the_cards_consumer_can_confirm():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    with pytest.raises(NotFound):
        redemption_confirm(consumer=builders.consumer(), redemption_id=redemption.pk)
    assert builders.fresh(card).released_total == 0


def test_another_merchant_cannot_start_a_redemption_on_the_card():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    with pytest.raises(NotFound):
        redemption_request(merchant=builders.merchant(), card_id=card.pk)


def test_a_repeated_keyed_service_request_returns_the_first_and_a_new_key_makes_another():
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000, sessions=10))
    first = redemption_request(merchant=card.merchant, card_id=card.pk, idempotency_key="form-1")
    again = redemption_request(merchant=card.merchant, card_id=card.pk, idempotency_key="form-1")
    assert again.pk == first.pk and Redemption.objects.filter(card=card).count() == 1
    other = redemption_request(merchant=card.merchant, card_id=card.pk, idempotency_key="form-2")
    assert other.pk != first.pk and Redemption.objects.filter(card=card).count() == 2


def test_confirming_twice_releases_once():
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000, sessions=10))
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
    again = redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
    assert again.state == Redemption.State.CONFIRMED
    assert builders.fresh(card).released_total == 10_000


def test_rejected_redemption_moves_nothing_and_cannot_then_be_confirmed():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    assert redemption_reject(consumer=card.consumer, redemption_id=redemption.pk).state == Redemption.State.REJECTED
    with pytest.raises(RedemptionNotPending):
        redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
    assert builders.fresh(card).released_total == 0 and builders.fresh(card).state == Card.State.COOLING_OFF


def test_confirmation_after_fifteen_minutes_is_expired_even_before_the_job():
    card = builders.paid_card(builders.session_pack(builders.merchant()), at="2026-03-02 10:00 +0800")
    with time_machine.travel("2026-03-02 10:01 +0800", tick=False):
        redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    with time_machine.travel("2026-03-02 10:16 +0800", tick=False), pytest.raises(RedemptionExpired):
        redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
    with time_machine.travel("2026-03-02 10:15:59 +0800", tick=False):
        assert redemptions_expire_due() == 0
    with time_machine.travel("2026-03-02 10:16 +0800", tick=False):
        assert redemptions_expire_due() == 1
    assert Redemption.objects.get(pk=redemption.pk).state == Redemption.State.EXPIRED
    assert builders.fresh(card).released_total == 0


def test_unpaid_card_is_not_redeemable():
    m = builders.merchant()
    buyer = builders.consumer()
    card = card_purchase(consumer=buyer, product_id=builders.session_pack(m).pk)
    with pytest.raises(CardNotRedeemable):
        redemption_request(merchant=m, card_id=card.pk)


def test_frozen_merchant_releases_nothing():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    card.merchant.releases_frozen = True
    card.merchant.save(update_fields=["releases_frozen"])
    with pytest.raises(MerchantFrozen):
        redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
    with pytest.raises(MerchantFrozen):
        redemption_request(merchant=card.merchant, card_id=card.pk)


def test_every_paid_card_keeps_price_equal_to_escrow_plus_released_plus_refunded():
    card = builders.paid_card(
        builders.stored_value(builders.merchant(), price=77_777, face_value=100_000, unit_price=100)
    )
    for amount in (1, 999, 12_345, 50_000):
        use(card, amount)
        assert builders.invariant_holds(card)


def test_all_entries_of_a_card_lie_on_its_own_hash_chain():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    use(card)
    chains = set(
        JournalEntry.objects.filter(postings__account_id=card.escrow_account_id).values_list("chain", flat=True)
    )
    assert len(chains) == 1
