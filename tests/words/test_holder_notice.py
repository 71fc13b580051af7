"""The holder always knows: every card of a merchant that is flagged, frozen or closing carries the
warning and what the holder can do, on the card list and the card page; a finished card shows no
balance left."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from consumers.models import Card
from consumers.services import redemption_confirm, redemption_request
from core import clock
from merchants.models import Merchant
from merchants.services.closure import merchant_closure_announce
from refunds.services import refund_request
from regulator.services.actions import merchant_action_take
from tests.cards import builders
from tests.factories import UserFactory
from tests.words.test_no_machine_text import visible_text

pytestmark = pytest.mark.django_db


def pages(card: Card, language: str = "zh-hans") -> tuple[str, str]:
    """The card list's and the card page's visible text, and their HTML."""
    client = Client(headers={"accept-language": language})
    client.force_login(card.consumer.user)
    listing = client.get(reverse("web-consumer-cards")).content.decode()
    detail = client.get(reverse("web-consumer-card", args=[card.pk])).content.decode()
    return listing, detail


@pytest.fixture
def card():
    merchant = builders.merchant(name="跑路健身")
    return builders.paid_card(builders.session_pack(merchant, price=100_000, sessions=10), builders.consumer())


def _regulator_takes(card: Card, action: str) -> None:
    merchant_action_take(
        merchant_id=card.merchant_id, actor_id=UserFactory(role="regulator").pk, action=action, reason="查处"
    )


def test_a_card_at_a_merchant_in_good_standing_carries_no_notice(card):
    for html in pages(card):
        assert 'data-testid="merchant-notice"' not in html


def test_a_runaway_flagged_without_a_public_warning_still_warns_and_offers_the_fee_free_refund(card):
    Merchant.objects.filter(pk=card.merchant_id).update(flagged=True, risk_warning=None)
    listing, detail = pages(card)
    for html in (listing, detail):
        assert 'data-testid="merchant-notice"' in html
        assert "商户已被监管部门标记" in visible_text(html)
    assert 'data-testid="default-refund"' in listing
    assert "不收手续费" in visible_text(detail) and 'href="#refund"' in detail


@pytest.mark.parametrize("action", ["flag", "freeze_sales", "freeze_releases"])
def test_each_measure_of_the_regulator_puts_the_notice_on_the_card(card, action):
    _regulator_takes(card, action)
    listing, detail = pages(card, "en")
    for html in (listing, detail):
        assert 'data-testid="merchant-notice"' in html
        assert "without a fee" in visible_text(html)


def test_a_closing_merchant_puts_the_notice_with_its_day_on_the_card(card):
    closes_on = clock.local_date() + timedelta(days=45)
    merchant_closure_announce(merchant=card.merchant, closes_on=closes_on, reason="搬迁")
    listing, detail = pages(card)
    day = f"{closes_on.year}年{closes_on.month}月{closes_on.day}日"
    for html in (listing, detail):
        assert 'data-testid="merchant-notice"' in html and day in visible_text(html)


def test_a_refunded_card_shows_the_refund_and_no_balance_left(card):
    refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    _regulator_takes(card, "flag")
    listing, detail = pages(card)
    for html in (listing, detail):
        text = visible_text(html)
        assert "剩余" not in text and "已退款 ¥1,000.00" in text
        assert 'data-testid="merchant-notice"' not in html  # nothing of the holder's is left there


def test_a_used_up_card_says_so_and_shows_no_balance_left():
    merchant = builders.merchant()
    card = builders.paid_card(builders.session_pack(merchant, price=10_000, sessions=1), builders.consumer())
    redemption = redemption_request(merchant=merchant, card_id=card.pk)
    redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
    assert builders.fresh(card).state == Card.State.EXHAUSTED
    for html in pages(card):
        text = visible_text(html)
        assert "剩余" not in text and "已用完" in text
