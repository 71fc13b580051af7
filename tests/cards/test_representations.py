"""The card, payment and redemption responses are written by hand (a serializer that deep-copies
its fields on every use was the largest Python cost of the hot responses): the output is exactly
what the declared fields, which the schema documents, would give."""

import pytest
import time_machine
from rest_framework import serializers

from consumers.api import CardSerializer, RedemptionSerializer
from consumers.models import Card, Redemption
from consumers.services import card_purchase, redemption_confirm, redemption_request
from refunds.services import refund_request
from tests.cards import builders

pytestmark = pytest.mark.django_db


def _declared(serializer_class, instance) -> dict:
    """The representation DRF builds from the declared fields (nested serializers' too)."""
    out = serializers.Serializer.to_representation(serializer_class(instance), instance)
    for name, field in serializer_class().fields.items():
        if isinstance(field, serializers.Serializer):
            out[name] = _declared(type(field), getattr(instance, field.source))
    return out


def _same(serializer_class, instance) -> None:
    written = serializer_class(instance).data
    declared = _declared(serializer_class, instance)
    assert written == declared
    assert list(written) == list(declared)  # the same keys in the same order
    assert list(written.get("payment", {})) == list(declared.get("payment", {}))


def _card(card: Card) -> Card:
    return Card.objects.select_related("escrow_account", "payment").get(pk=card.pk)


def test_a_card_in_each_kind_and_state_is_written_as_its_declared_fields():
    merchant = builders.merchant()
    buyer = builders.consumer()
    pending = card_purchase(consumer=buyer, product_id=builders.session_pack(merchant).pk)
    stored = builders.paid_card(builders.stored_value(merchant), buyer)
    redemption_confirm(
        consumer=buyer, redemption_id=redemption_request(merchant=merchant, card_id=stored.pk, amount=1_234).pk
    )
    with time_machine.travel("2026-03-02 23:50 +08:00", tick=False):
        pass_card = builders.paid_card(builders.period_pass(merchant), buyer)
        redemption_confirm(consumer=buyer, redemption_id=redemption_request(merchant=merchant, card_id=pass_card.pk).pk)
    exhausted = builders.paid_card(builders.session_pack(merchant, price=10_000, sessions=1), buyer)
    redemption_confirm(consumer=buyer, redemption_id=redemption_request(merchant=merchant, card_id=exhausted.pk).pk)
    refunded = builders.paid_card(builders.session_pack(merchant), buyer)
    refund_request(consumer=buyer, card_id=refunded.pk, reason="cooling_off")

    cards = [pending, _card(pending), _card(stored), _card(pass_card), _card(exhausted), _card(refunded)]
    assert {card.state for card in cards} == {"pending_payment", "active", "exhausted", "refunded"}
    assert _card(pass_card).valid_from is not None and _card(stored).balance is not None
    for card in cards:
        _same(CardSerializer, card)
    assert CardSerializer(cards, many=True).data == [_declared(CardSerializer, card) for card in cards]


def test_a_redemption_before_and_after_confirmation_is_written_as_its_declared_fields():
    merchant = builders.merchant()
    card = builders.paid_card(builders.stored_value(merchant))
    asked = redemption_request(merchant=merchant, card_id=card.pk, amount=2_000)
    _same(RedemptionSerializer, asked)
    confirmed = redemption_confirm(consumer=card.consumer, redemption_id=asked.pk)
    _same(RedemptionSerializer, confirmed)
    _same(RedemptionSerializer, Redemption.objects.get(pk=asked.pk))
    assert RedemptionSerializer(confirmed).data["decided_at"].endswith("+08:00")
