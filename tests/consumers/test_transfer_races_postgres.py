"""Transfers and top-ups lock the card first: on PostgreSQL, with real threads, racing answers to
one offer leave exactly one outcome, racing offers leave one open, and racing top-ups never take a
card over the cap."""

import pytest
import time_machine

from consumers.errors import CardNotTransferable, TransferNotOpen
from consumers.models import Card, CardTransfer, TopUp
from consumers.services import redemption_confirm, redemption_request
from consumers.services_top_ups import top_up_request
from consumers.services_transfers import card_transfer_accept, card_transfer_cancel, card_transfer_offer
from escrow.selectors import ledger_ok, ledger_verify
from merchants.errors import CardLimitExceeded
from tests.cards import builders
from tests.cards.test_card_races_postgres import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BOUGHT = "2026-03-02 10:00 +0800"
NOW = "2026-03-20 10:00 +0800"


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


def served_card(product_of):
    giver = builders.consumer(phone="13800001111")
    merchant = builders.merchant()
    card = builders.paid_card(product_of(merchant), giver, at=BOUGHT)
    with time_machine.travel("2026-03-03 10:00 +0800", tick=False):
        amount = 1_000 if card.kind == "stored_value" else None
        redemption = redemption_request(merchant=merchant, card_id=card.pk, amount=amount)
        redemption_confirm(consumer=giver, redemption_id=redemption.pk)
    return builders.fresh(card)


def test_two_consumers_with_the_phone_racing_to_accept_one_offer_leave_one_holder():
    card = served_card(builders.session_pack)
    takers = [builders.consumer(phone="13900002222") for _ in range(6)]
    transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone="13900002222")

    outcomes, errors = race(6, lambda i: card_transfer_accept(consumer=takers[i], transfer_id=transfer.pk))

    assert len(outcomes) == 1 and len(errors) == 5
    assert all(isinstance(error, TransferNotOpen) for error in errors), errors
    transfer.refresh_from_db()
    assert transfer.state == CardTransfer.State.ACCEPTED
    assert Card.objects.get(pk=card.pk).consumer_id == transfer.to_consumer_id == outcomes[0].to_consumer_id


def test_an_accept_racing_a_cancel_ends_one_way_only():
    for _ in range(3):
        card = served_card(builders.session_pack)
        recipient = builders.consumer(phone="13900002222")
        transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone="13900002222")

        def work(index, card=card, recipient=recipient, transfer=transfer):
            if index % 2:
                return card_transfer_accept(consumer=recipient, transfer_id=transfer.pk)
            return card_transfer_cancel(consumer=card.consumer, transfer_id=transfer.pk)

        outcomes, errors = race(4, work)

        assert all(isinstance(error, (TransferNotOpen, CardNotTransferable)) for error in errors), errors
        transfer.refresh_from_db()
        holder = Card.objects.get(pk=card.pk).consumer_id
        if transfer.state == CardTransfer.State.ACCEPTED:
            assert holder == recipient.pk
        else:
            assert transfer.state == CardTransfer.State.CANCELLED and holder == card.consumer_id
        assert {outcome.state for outcome in outcomes} == {transfer.state}


def test_racing_offers_of_one_card_leave_one_open():
    card = served_card(builders.session_pack)
    phones = [f"1390000{n:04d}" for n in range(6)]

    outcomes, errors = race(
        6, lambda i: card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=phones[i])
    )

    assert len(outcomes) == 1 and len(errors) == 5
    assert all(isinstance(error, CardNotTransferable) and error.reason == "offer_open" for error in errors), errors
    assert CardTransfer.objects.filter(card=card, state=CardTransfer.State.OFFERED).count() == 1


def test_racing_top_ups_never_take_a_card_over_the_cap():
    card = served_card(lambda m: builders.stored_value(m, price=300_000, face_value=300_000, unit_price=1_000))
    # 299,000 held: room for two top-ups of 100,000 of the six.
    outcomes, errors = race(6, lambda _: top_up_request(consumer=card.consumer, card_id=card.pk, amount=100_000))

    assert len(outcomes) == 2 and len(errors) == 4
    assert all(isinstance(error, CardLimitExceeded) for error in errors), errors
    assert TopUp.objects.filter(card=card, state=TopUp.State.PENDING_PAYMENT).count() == 2
    assert ledger_ok(ledger_verify())
