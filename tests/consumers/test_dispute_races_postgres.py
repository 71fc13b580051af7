"""Decisions on a dispute lock the card, then the redemption, then the dispute: on PostgreSQL, with
real threads and connections, racing decisions release the share once, one outcome wins, and a
refund racing the decision never pays out what was released (or releases what was refunded)."""

import pytest
from django.db import connections

from consumers.disputes import dispute_decide, dispute_open, disputes_expire_due
from consumers.errors import CardInDispute, DisputeExpired, DisputeNotOpen
from consumers.models import Dispute
from consumers.services import redemption_reject, redemption_request
from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from refunds.models import Refund
from refunds.services import refund_request
from regulator.services.disputes import regulator_dispute_decide
from tests.cards import builders
from tests.cards.test_card_races_postgres import race
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def open_dispute(price: int = 100_000, sessions: int = 4):
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=price, sessions=sessions))
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    redemption_reject(consumer=card.consumer, redemption_id=redemption.pk)
    return card, dispute_open(merchant=card.merchant, redemption_id=redemption.pk, reason="given")


def test_racing_upheld_decisions_release_the_share_once():
    card, dispute = open_dispute()
    regulators = [UserFactory(role="regulator") for _ in range(8)]
    outcomes, errors = race(
        8,
        lambda i: regulator_dispute_decide(regulator=regulators[i], dispute_id=dispute.pk, outcome="upheld"),
    )
    assert not errors and len(outcomes) == 8
    assert all(outcome.state == "upheld" and outcome.released == 25_000 for outcome in outcomes)
    assert JournalEntry.objects.filter(idempotency_key=f"dispute:{dispute.pk}").count() == 1
    card = builders.fresh(card)
    assert (card.released_total, card.escrow_account.balance, card.sessions_remaining) == (25_000, 75_000, 3)
    assert ledger_ok(ledger_verify())


def test_racing_opposite_decisions_end_with_one_outcome_and_money_to_match():
    card, dispute = open_dispute()
    regulator = UserFactory(role="regulator")
    outcomes, errors = race(
        8,
        lambda i: dispute_decide(
            dispute_id=dispute.pk, outcome="upheld" if i % 2 else "dismissed", actor_id=regulator.pk
        )[0],
    )
    final = Dispute.objects.get(pk=dispute.pk)
    assert len(outcomes) + len(errors) == 8
    assert all(isinstance(error, DisputeNotOpen) for error in errors) and len(errors) == 4  # the losing side
    assert {outcome.state for outcome in outcomes} == {final.state}
    released = 25_000 if final.state == "upheld" else 0
    assert JournalEntry.objects.filter(idempotency_key=f"dispute:{dispute.pk}").count() == (1 if released else 0)
    assert builders.fresh(card).released_total == released
    assert ledger_ok(ledger_verify())


def test_a_refund_racing_a_dismissal_is_refused_or_follows_it_and_never_overlaps_a_release():
    card, dispute = open_dispute()
    regulator = UserFactory(role="regulator")

    def work(index):
        if index % 2:
            return dispute_decide(dispute_id=dispute.pk, outcome="dismissed", actor_id=regulator.pk)[0]
        return refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")

    _, errors = race(6, work)
    assert all(isinstance(error, CardInDispute) for error in errors)
    assert Dispute.objects.get(pk=dispute.pk).state == "dismissed"
    card = builders.fresh(card)
    refunds = Refund.objects.filter(card=card)
    assert refunds.count() <= 1
    if refunds:
        assert card.refunded_total == 100_000 and card.released_total == 0
    assert builders.invariant_holds(card) and ledger_ok(ledger_verify())


def test_an_upheld_decision_racing_the_timeout_job_is_one_or_the_other(settings):
    card, dispute = open_dispute()
    Dispute.objects.filter(pk=dispute.pk).update(decide_by=dispute.created_at)  # already due
    regulator = UserFactory(role="regulator")

    def work(index):
        if index % 2:
            return dispute_decide(dispute_id=dispute.pk, outcome="upheld", actor_id=regulator.pk)[0]
        return disputes_expire_due()

    _, errors = race(6, work)
    assert all(isinstance(error, DisputeExpired | DisputeNotOpen) for error in errors)
    final = Dispute.objects.get(pk=dispute.pk)
    assert (final.state, final.ended_by) == ("dismissed", "timeout")
    assert builders.fresh(card).released_total == 0 and ledger_ok(ledger_verify())
    connections.close_all()
