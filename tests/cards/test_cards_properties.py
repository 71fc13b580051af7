"""Random purchases, payments, redemptions, confirmations, refunds, disputes (contested, upheld,
dismissed, timed out), top-ups (paid, failed, returned), transfers (offered, accepted, declined,
withdrawn, expired) and clock jumps keep ``price == escrow_balance + released_total +
refunded_total`` for every paid card, with top-ups counted in the price paid, and the ledger
verifies, after every step. A dispute releases at most once, never while its card is refunded, and
no card is refunded while a dispute of it is open. Each action is taken by the card's holder of the
moment, whoever that is after the transfers."""

from datetime import timedelta

import pytest
import time_machine
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from consumers.disputes import dispute_decide, dispute_open, disputes_expire_due
from consumers.models import Card, CardTransfer, Consumer, Dispute, TopUp
from consumers.services import (
    card_purchase,
    cards_activate_due,
    payment_simulate,
    period_pass_accrue,
    redemption_confirm,
    redemption_reject,
    redemption_request,
    redemptions_expire_due,
)
from consumers.services_top_ups import top_up_request, top_ups_settle_due
from consumers.services_transfers import (
    card_transfer_accept,
    card_transfer_cancel,
    card_transfer_decline,
    card_transfer_offer,
    card_transfers_expire_due,
)
from core import clock
from core.errors import DomainError
from escrow.models import JournalEntry
from escrow.selectors import ledger_verify
from refunds.models import Refund
from refunds.services import refund_for_closure, refund_request, top_up_refund
from tests.cards import builders
from tests.factories import UserFactory


class CardMachine(RuleBasedStateMachine):
    cards = Bundle("cards")
    redemptions = Bundle("redemptions")
    disputes = Bundle("disputes")
    top_ups = Bundle("top_ups")
    transfers = Bundle("transfers")

    @initialize()
    def start(self):
        self.traveller = time_machine.travel("2026-03-02 10:00 +0800", tick=False)
        self.clock = self.traveller.start()
        self.merchant = builders.merchant()
        self.products = [
            builders.session_pack(self.merchant, price=99_999, sessions=7, refund_fee_bps=333),
            builders.stored_value(
                self.merchant, price=88_888, face_value=100_000, unit_price=3_000, refund_fee_bps=1500
            ),
            builders.period_pass(self.merchant, price=31_000, days=9),
        ]
        self.consumer = builders.consumer(phone="13800001111")
        # Cards change hands between these two (each action is taken by the holder of the moment).
        self.people = [self.consumer, builders.consumer(phone="13900002222")]
        self.purchase_price: dict = {}
        self.regulator = UserFactory(role="regulator")

    def teardown(self):
        if hasattr(self, "traveller"):
            self.traveller.stop()

    def attempt(self, action):
        """Run a service call; a refusal with a domain error is a legitimate outcome."""
        try:
            return action()
        except DomainError:
            return None

    def holder(self, card) -> Consumer:
        return Consumer.objects.get(cards=card.pk)

    @rule(target=cards, which=st.integers(0, 2), pay=st.sampled_from(["succeeded"] * 6 + ["failed", None]))
    def purchase(self, which, pay):
        card = card_purchase(consumer=self.consumer, product_id=self.products[which].pk)
        self.purchase_price[card.pk] = card.price
        if pay:
            payment_simulate(consumer=self.consumer, payment_id=card.payment.pk, outcome=pay)
        return card

    @rule(target=redemptions, card=cards, amount=st.integers(1, 40_000))
    def request(self, card, amount):
        amount = amount if card.kind == "stored_value" else None
        return self.attempt(lambda: redemption_request(merchant=self.merchant, card_id=card.pk, amount=amount))

    @rule(card=cards, amount=st.integers(1, 40_000))
    def serve(self, card, amount):
        """The common case: a service asked for and confirmed at once."""
        redemption = self.request(card, amount)
        if redemption is not None:
            self.attempt(lambda: redemption_confirm(consumer=self.holder(card), redemption_id=redemption.pk))

    @rule(redemption=redemptions)
    def confirm(self, redemption):
        if redemption is not None:
            holder = self.holder(redemption.card)
            self.attempt(lambda: redemption_confirm(consumer=holder, redemption_id=redemption.pk))

    @rule(redemption=redemptions)
    def reject(self, redemption):
        if redemption is not None:
            holder = self.holder(redemption.card)
            self.attempt(lambda: redemption_reject(consumer=holder, redemption_id=redemption.pk))

    @rule(target=disputes, redemption=redemptions)
    def contest(self, redemption):
        """The merchant contests a service (refused unless it was rejected, within the window)."""
        if redemption is None:
            return None
        return self.attempt(lambda: dispute_open(merchant=self.merchant, redemption_id=redemption.pk, reason="given"))

    @rule(target=disputes, card=cards, amount=st.integers(1, 40_000))
    def contested_service(self, card, amount):
        """The disputed case: a service asked for, rejected by the holder and contested at once."""
        redemption = self.request(card, amount)
        if redemption is None:
            return None
        self.reject(redemption)
        return self.contest(redemption)

    @rule(card=cards, amount=st.integers(1, 40_000), outcome=st.sampled_from(["upheld", "upheld", "dismissed"]))
    def contested_and_decided(self, card, amount, outcome):
        """A contested service the regulator decides at once (upheld releases its share)."""
        dispute = self.contested_service(card, amount)
        if dispute is not None:
            self.decide(dispute, outcome)

    @rule(dispute=disputes, outcome=st.sampled_from(["upheld", "dismissed"]))
    def decide(self, dispute, outcome):
        if dispute is not None:
            self.attempt(lambda: dispute_decide(dispute_id=dispute.pk, outcome=outcome, actor_id=self.regulator.pk))

    @rule(card=cards, reason=st.sampled_from(["cooling_off", "small_balance", "voluntary"]))
    def refund(self, card, reason):
        self.attempt(lambda: refund_request(consumer=self.holder(card), card_id=card.pk, reason=reason))

    # --- top-ups (issue 19, item 4) ---------------------------------------------------------------

    @rule(
        target=top_ups,
        card=cards,
        amount=st.integers(1, 120_000),
        pay=st.sampled_from(["succeeded"] * 4 + ["failed", None]),
    )
    def top_up(self, card, amount, pay):
        holder = self.holder(card)
        top_up = self.attempt(lambda: top_up_request(consumer=holder, card_id=card.pk, amount=amount))
        if top_up is not None and pay:
            self.attempt(lambda: payment_simulate(consumer=holder, payment_id=top_up.pk, outcome=pay))
        return top_up

    @rule(top_up=top_ups, outcome=st.sampled_from(["succeeded", "failed"]))
    def top_up_paid_late(self, top_up, outcome):
        if top_up is not None:
            self.attempt(lambda: payment_simulate(consumer=top_up.consumer, payment_id=top_up.pk, outcome=outcome))

    @rule(top_up=top_ups)
    def top_up_returned(self, top_up):
        if top_up is not None:
            self.attempt(lambda: top_up_refund(consumer=top_up.consumer, top_up_id=top_up.pk))

    # --- transfers (issue 19, item 1) -------------------------------------------------------------

    @rule(target=transfers, card=cards)
    def offer(self, card):
        holder = self.holder(card)
        other = next(person for person in self.people if person.pk != holder.pk)
        return self.attempt(lambda: card_transfer_offer(consumer=holder, card_id=card.pk, to_phone=other.phone))

    @rule(transfer=transfers, answer=st.sampled_from(["accept", "accept", "decline", "cancel"]))
    def answer(self, transfer, answer):
        if transfer is None:
            return
        giver = transfer.from_consumer
        taker = next(person for person in self.people if person.pk != giver.pk)
        if answer == "accept":
            self.attempt(lambda: card_transfer_accept(consumer=taker, transfer_id=transfer.pk))
        elif answer == "decline":
            self.attempt(lambda: card_transfer_decline(consumer=taker, transfer_id=transfer.pk))
        else:
            self.attempt(lambda: card_transfer_cancel(consumer=giver, transfer_id=transfer.pk))

    @rule(card=cards)
    def merchant_closes(self, card):
        refund_for_closure(card_id=card.pk, actor_label="test")

    @rule(hours=st.integers(1, 24 * 5))
    def time_passes(self, hours):
        self.clock.shift(timedelta(hours=hours))

    @precondition(lambda self: hasattr(self, "clock"))
    @rule()
    def jobs_run(self):
        cards_activate_due()
        redemptions_expire_due()
        period_pass_accrue()
        disputes_expire_due()
        top_ups_settle_due()
        card_transfers_expire_due()

    @invariant()
    def every_paid_card_balances(self):
        for card in Card.objects.select_related("escrow_account").exclude(paid_at=None):
            assert card.price == card.escrow_account.balance + card.released_total + card.refunded_total
            assert card.escrow_account.balance >= 0
            if card.state in (Card.State.EXHAUSTED, Card.State.REFUNDED):
                assert card.escrow_account.balance == 0
        for card in Card.objects.select_related("escrow_account").filter(paid_at=None):
            assert card.escrow_account.balance == 0 and card.released_total == 0

    @precondition(lambda self: hasattr(self, "merchant"))
    @invariant()
    def top_ups_are_counted_in_the_price_paid(self):
        # This example's cards (the database keeps the earlier examples' too), a query each.
        mine = TopUp.objects.filter(card__merchant=self.merchant)
        paid_in = dict(
            mine.filter(state__in=[TopUp.State.COOLING_OFF, TopUp.State.SETTLED, TopUp.State.REFUNDED])
            .values("card")
            .annotate(total=Sum("amount"))
            .values_list("card", "total")
        )
        returned = dict(
            mine.filter(state=TopUp.State.REFUNDED)
            .values("card")
            .annotate(total=Sum("amount"))
            .values_list("card", "total")
        )
        cards = Card.objects.filter(merchant=self.merchant).exclude(paid_at=None)
        for pk, price, kind, balance, face_value, refunded_total in cards.values_list(
            "pk", "price", "kind", "balance", "face_value", "refunded_total"
        ):
            assert price == self.purchase_price[pk] + paid_in.get(pk, 0)
            assert refunded_total >= returned.get(pk, 0)
            if kind == "stored_value":
                assert 0 <= balance <= face_value

    @precondition(lambda self: hasattr(self, "merchant"))
    @invariant()
    def each_card_is_held_by_whom_its_transfers_say(self):
        mine = Card.objects.filter(merchant=self.merchant)
        holders = {pk: self.consumer.pk for pk in mine.values_list("pk", flat=True)}
        accepted = CardTransfer.objects.filter(card__merchant=self.merchant, state=CardTransfer.State.ACCEPTED)
        for card_id, to_consumer_id in accepted.order_by("decided_at", "created_at").values_list("card", "to_consumer"):
            holders[card_id] = to_consumer_id  # the last accepted transfer names the holder
        held = dict(mine.values_list("pk", "consumer"))
        assert held == holders

    @invariant()
    def a_dispute_releases_at_most_once_and_only_when_upheld(self):
        released = dict(
            JournalEntry.objects.filter(idempotency_key__startswith="dispute:").values_list("idempotency_key", "id")
        )
        for dispute in Dispute.objects.all():
            posted = f"dispute:{dispute.pk}" in released
            assert posted == (dispute.state == Dispute.State.UPHELD and dispute.released > 0), dispute
            assert dispute.released >= 0

    @invariant()
    def no_card_is_refunded_while_a_dispute_of_it_is_open(self):
        for dispute in Dispute.objects.filter(state=Dispute.State.OPEN, decide_by__gt=clock.now()):
            refund = Refund.objects.filter(card_id=dispute.card_id).first()
            assert refund is None or refund.created_at < dispute.created_at, dispute

    @invariant()
    def ledger_verifies(self):
        result = ledger_verify()
        assert result["balanced"] and result["chain_ok"] and result["custody_matches"] and result["accounts_match"], (
            result
        )


@pytest.mark.django_db
def test_random_card_lives_keep_the_escrow_invariant_and_the_ledger_sound():
    CardMachine.TestCase.settings = settings(
        max_examples=40, stateful_step_count=40, deadline=None, suppress_health_check=list(HealthCheck)
    )
    CardMachine.TestCase().runTest()
