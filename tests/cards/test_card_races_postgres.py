"""Confirmations lock the card: on PostgreSQL, with real threads, racing confirmations release
once and racing uses of one card never overdraw it."""

import threading

import pytest
from django.db import connections

from consumers.errors import InsufficientBalance, RedemptionNotPending
from consumers.models import Card, Redemption
from consumers.services import redemption_confirm, redemption_request
from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from refunds.models import Refund
from refunds.services import refund_for_closure, refund_request
from tests.cards import builders

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(count, work):
    barrier = threading.Barrier(count)
    outcomes, errors = [], []

    def run(index):
        try:
            barrier.wait()
            outcomes.append(work(index))
        except Exception as exc:  # noqa: BLE001 (domain refusals are outcomes; others fail below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, errors


def test_racing_confirmations_of_one_redemption_release_once():
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000, sessions=10))
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    outcomes, errors = race(8, lambda _: redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk))
    assert not errors and len(outcomes) == 8
    assert all(r.state == Redemption.State.CONFIRMED for r in outcomes)
    assert JournalEntry.objects.filter(code="release").count() == 1
    assert builders.fresh(card).released_total == 10_000


def test_racing_uses_of_one_stored_value_card_never_overdraw_it():
    card = builders.paid_card(
        builders.stored_value(builders.merchant(), price=100_000, face_value=100_000, unit_price=1)
    )
    requests = [redemption_request(merchant=card.merchant, card_id=card.pk, amount=30_000) for _ in range(8)]
    outcomes, errors = race(8, lambda i: redemption_confirm(consumer=card.consumer, redemption_id=requests[i].pk))
    assert len(outcomes) == 3  # 3 x 30,000 fit in 100,000; the rest are refused
    assert len(errors) == 5 and all(isinstance(e, InsufficientBalance) for e in errors)
    card = builders.fresh(card)
    assert card.balance == 10_000 and card.released_total == 90_000 and card.escrow_account.balance == 10_000
    assert ledger_ok(ledger_verify())


def test_racing_session_confirmations_never_pass_the_last_session():
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000, sessions=3))
    requests = [redemption_request(merchant=card.merchant, card_id=card.pk) for _ in range(6)]
    outcomes, errors = race(6, lambda i: redemption_confirm(consumer=card.consumer, redemption_id=requests[i].pk))
    assert len(outcomes) == 3 and len(errors) == 3
    card = builders.fresh(card)
    assert card.state == Card.State.EXHAUSTED and card.released_total == 100_000 and card.escrow_account.balance == 0


def test_a_refund_racing_a_confirmation_never_pays_out_more_than_the_price():
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000, sessions=4))
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)

    def work(index):
        if index % 2:
            return redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
        return refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")

    race(4, work)
    card = builders.fresh(card)
    assert card.price == card.escrow_account.balance + card.released_total + card.refunded_total
    assert card.refunded_total in (0, 100_000)
    assert Refund.objects.filter(card=card).count() <= 1
    assert ledger_ok(ledger_verify())


def test_racing_closure_refunds_refund_each_card_once():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    outcomes, errors = race(6, lambda _: refund_for_closure(card_id=card.pk, actor_label="test"))
    assert not errors
    assert len({r.pk for r in outcomes}) == 1
    assert JournalEntry.objects.filter(code="refund").count() == 1


def test_a_decided_redemption_refuses_a_late_confirmation():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    from consumers.services import redemption_reject

    redemption_reject(consumer=card.consumer, redemption_id=redemption.pk)
    with pytest.raises(RedemptionNotPending):
        redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)


def test_racing_repeats_of_one_keyed_service_request_make_one_redemption():
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000, sessions=10))
    outcomes, errors = race(
        6, lambda _: redemption_request(merchant=card.merchant, card_id=card.pk, idempotency_key="till-1")
    )
    assert not errors and len({r.pk for r in outcomes}) == 1
    assert Redemption.objects.filter(card=card).count() == 1
