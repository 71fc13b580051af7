"""A card changes hands in two phones: its holder offers it by phone number from the card page, the
other consumer sees the offer on their cards page, accepts it, and the card is theirs; and a
stored-value card is topped up, paid through the sandbox bank and returned within its cooling-off."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from consumers.models import CardTransfer, TopUp
from core import clock
from core.formatting import yuan
from tests.browser.support import PHONE, assert_accessible
from tests.cards import builders

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def bought_ten_days_ago(product, holder):
    """Paid ten days ago: its cooling-off period is over, so it can change hands."""
    return builders.paid_card(product, holder, at=clock.now() - timedelta(days=10))


def test_a_holder_offers_a_card_by_phone_and_the_other_consumer_accepts_it(browser):
    gym = builders.merchant(name="阳光健身 Sunshine Gym")
    giver, taker = builders.consumer(phone="13800001111"), builders.consumer(phone="13900002222")
    card = bought_ten_days_ago(builders.session_pack(gym, price=100_000, sessions=10), giver)

    # --- the holder offers the card from its page ---------------------------------------------
    phone = browser.page(viewport=PHONE)
    browser.log_in(phone, giver.user.username, builders.PASSWORD)
    phone.goto(f"{browser.base_url}/c/cards/{card.pk}/")
    form = phone.get_by_test_id("transfer-form")
    expect(form).to_be_visible()
    assert_accessible(phone, fits=True)
    form.get_by_label(re.compile("对方的手机号码")).fill("139 0000 2222")
    form.get_by_test_id("transfer-button").click()  # confirm "确定转让此卡？…"
    expect(phone.get_by_test_id("open-offer")).to_be_visible()
    expect(phone.get_by_test_id("open-offer")).to_contain_text("139****2222")
    assert browser.dialogs and "转让" in browser.dialogs[-1]
    assert_accessible(phone, fits=True)
    browser.shot(phone, "holder-offered")
    transfer = CardTransfer.objects.get(card=card)

    # --- the other consumer accepts it on their own phone ---------------------------------------
    other = browser.page(viewport=PHONE)
    browser.log_in(other, taker.user.username, builders.PASSWORD)
    other.goto(f"{browser.base_url}/c/cards/")
    offer = other.locator(f"[data-testid=transfer-offer][data-transfer-id='{transfer.pk}']")
    expect(offer).to_contain_text("阳光健身 Sunshine Gym")
    expect(offer).to_contain_text(yuan(100_000))
    assert_accessible(other, fits=True)
    browser.shot(other, "recipient-offer")
    offer.get_by_test_id("transfer-accept-button").click()
    other.wait_for_url(f"**/c/cards/{card.pk}/")
    expect(other.get_by_test_id("card-received")).to_contain_text(giver.display_name)
    assert_accessible(other, fits=True)
    browser.shot(other, "recipient-card")

    other.goto(f"{browser.base_url}/c/cards/")
    expect(other.locator(f"[data-testid=card-item][data-card-id='{card.pk}']")).to_be_visible()
    expect(other.get_by_test_id("transfer-offer")).to_have_count(0)
    browser.shot(other, "recipient-cards")

    # The giver no longer has it; their contract until the transfer stays theirs.
    phone.goto(f"{browser.base_url}/c/cards/")
    expect(phone.locator(f"[data-testid=card-item][data-card-id='{card.pk}']")).to_have_count(0)
    expect(phone.get_by_test_id("given-card")).to_contain_text("阳光健身 Sunshine Gym")
    assert_accessible(phone, fits=True)
    browser.shot(phone, "holder-gave-it")
    assert builders.fresh(card).consumer_id == taker.pk
    assert browser.page_errors == []


def test_a_stored_value_card_is_topped_up_paid_and_the_top_up_returned(browser):
    salon = builders.merchant(name="美丽时光")
    holder = builders.consumer(phone="13800001111")
    card = bought_ten_days_ago(builders.stored_value(salon, price=90_000, face_value=100_000), holder)

    phone = browser.page(viewport=PHONE)
    browser.log_in(phone, holder.user.username, builders.PASSWORD)
    phone.goto(f"{browser.base_url}/c/cards/{card.pk}/")
    form = phone.get_by_test_id("top-up-form")
    form.get_by_label(re.compile("金额")).fill("450")
    assert_accessible(phone, fits=True)
    form.get_by_test_id("top-up-button").click()
    expect(phone.get_by_test_id("top-up-pay-button")).to_be_visible()
    expect(phone.get_by_test_id("top-up-amount")).to_have_text(yuan(45_000))
    assert_accessible(phone, fits=True)
    browser.shot(phone, "top-up-payment")

    phone.get_by_test_id("top-up-pay-button").click()
    phone.wait_for_url(f"**/c/cards/{card.pk}/**")
    top_up = phone.locator("[data-testid=top-up]").first
    expect(top_up).to_have_attribute("data-state", "cooling_off")
    expect(phone.get_by_test_id("card-price")).to_have_text(yuan(135_000))
    assert_accessible(phone, fits=True)
    browser.shot(phone, "topped-up")

    top_up.get_by_test_id("top-up-refund-button").click()  # confirm "退还这笔充值？…"
    expect(phone.locator("[data-testid=top-up]").first).to_have_attribute("data-state", "refunded")
    expect(phone.get_by_test_id("card-escrow")).to_have_text(yuan(90_000))
    browser.shot(phone, "top-up-returned")
    assert TopUp.objects.get(card=card).state == TopUp.State.REFUNDED
    assert browser.page_errors == []
