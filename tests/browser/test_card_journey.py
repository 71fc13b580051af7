"""A card's life in two phones: the consumer buys and pays a card, the merchant starts a service,
the consumer sees it arrive without reloading, confirms it and then asks for a refund."""

import re

import pytest
from playwright.sync_api import expect

from consumers.models import Card
from core.formatting import yuan
from merchants.services.merchants import product_create
from refunds.models import Refund
from tests.browser.support import PHONE, assert_accessible
from tests.cards import builders

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PRICE = 100_000  # fen: ¥1,000.00 for 10 sessions
SESSIONS = 10
FEE_BPS = 500  # 5% of the escrow left, on a voluntary refund


def test_consumer_buys_pays_confirms_a_service_started_by_the_merchant_and_gets_a_refund(browser):
    gym = builders.merchant(name="阳光健身 Sunshine Gym")
    product = product_create(
        merchant=gym, name="10次私教课", kind="session_pack", price=PRICE, sessions=SESSIONS, refund_fee_bps=FEE_BPS
    )
    alice = builders.consumer()

    # --- the consumer buys and pays -------------------------------------------------------------
    phone = browser.page(viewport=PHONE)
    browser.log_in(phone, alice.user.username, builders.PASSWORD)
    expect(phone.get_by_test_id("no-cards")).to_be_visible()
    assert_accessible(phone, fits=True)
    browser.shot(phone, "consumer-no-cards")

    phone.click("header nav a[href$='/c/merchants/']")
    merchant_item = phone.locator(f"[data-testid=merchant-item][data-merchant-id='{gym.pk}']")
    expect(merchant_item).to_be_visible()
    assert_accessible(phone, fits=True)
    browser.shot(phone, "consumer-merchants")

    merchant_item.get_by_test_id("merchant-link").click()
    expect(phone.get_by_test_id("merchant-name")).to_have_text(gym.name)
    offer = phone.locator(f"[data-testid=product-item][data-product-id='{product.pk}']")
    expect(offer.get_by_test_id("product-price")).to_have_text(yuan(PRICE))
    assert_accessible(phone, fits=True)
    browser.shot(phone, "consumer-merchant")

    offer.get_by_test_id("buy-button").click()  # confirm "Buy … for ¥1,000.00?"
    expect(phone.get_by_test_id("pay-button")).to_be_visible()
    assert yuan(PRICE) in browser.dialogs[-1]
    card_id = re.search(r"/c/cards/([0-9a-f-]{36})/pay/", phone.url).group(1)
    expect(phone.get_by_test_id("payment-status")).to_have_attribute("data-card-state", "pending_payment")
    assert_accessible(phone, fits=True)
    browser.shot(phone, "consumer-payment")

    phone.get_by_test_id("pay-button").click()
    phone.wait_for_url(f"**/c/cards/{card_id}/")
    expect(phone.get_by_test_id("card-state")).to_have_attribute("data-state", "cooling_off")
    expect(phone.get_by_test_id("card-escrow")).to_have_text(yuan(PRICE))
    countdown = phone.get_by_test_id("cooling-off-countdown")
    expect(countdown).to_have_text(re.compile(r"\d+\D+ \d\d:\d\d:\d\d"))  # "7天 12:34:56", filled in by site.js
    first = countdown.text_content()
    expect(countdown).not_to_have_text(first, timeout=3_000)  # it ticks
    assert_accessible(phone, fits=True)
    browser.shot(phone, "consumer-card-cooling-off")

    # The consumer waits on "My cards"; nothing asks for a confirmation yet.
    phone.click("header nav a[href$='/c/cards/']")
    card_item = phone.locator(f"[data-testid=card-item][data-card-id='{card_id}']")
    expect(card_item.get_by_test_id("card-state")).to_have_attribute("data-state", "cooling_off")
    expect(card_item.get_by_test_id("cooling-off-countdown")).to_be_visible()
    expect(phone.get_by_test_id("no-pending")).to_be_visible()
    phone.evaluate("window.stillTheSamePage = true")
    browser.shot(phone, "consumer-cards-waiting")

    # --- the merchant starts a service by the card's id, on its own phone -------------------------
    till = browser.page(viewport=PHONE)
    browser.log_in(till, gym.user.username, builders.PASSWORD)
    assert_accessible(till, fits=True)
    browser.shot(till, "merchant-shop")
    till.click("header nav a[href$='/m/redemptions/']")
    till.fill("#id_card", card_id)
    assert_accessible(till, fits=True)
    browser.shot(till, "merchant-start-form")
    till.click("#redemption-submit")
    pending_row = till.locator("#redemptions-live [data-testid=redemption-row][data-state=awaiting_confirmation]")
    expect(pending_row).to_have_count(1)
    expect(pending_row.get_by_test_id("redemption-countdown")).to_be_visible()
    assert_accessible(till, fits=True)
    browser.shot(till, "merchant-waiting-for-confirmation")

    # --- the consumer's page shows it by itself (htmx polls every 3 s) and the consumer confirms ----
    pending = phone.get_by_test_id("pending-redemption")
    expect(pending).to_have_count(1, timeout=10_000)
    assert phone.evaluate("window.stillTheSamePage") is True, "the page was reloaded"
    expect(pending.get_by_test_id("pending-expires")).to_have_text(re.compile(r"\d\d:\d\d:\d\d"))
    assert_accessible(phone, fits=True)
    browser.shot(phone, "consumer-service-to-confirm")

    pending.get_by_test_id("confirm-button").click()
    expect(phone.get_by_test_id("pending-note")).to_be_visible()
    expect(phone.get_by_test_id("no-pending")).to_be_visible()
    released = PRICE // SESSIONS
    expect(card_item.get_by_test_id("card-escrow")).to_have_text(yuan(PRICE - released))  # the list refreshed
    assert phone.evaluate("window.stillTheSamePage") is True, "the page was reloaded"
    browser.shot(phone, "consumer-service-confirmed")

    # The merchant's page follows too.
    expect(till.locator("#recent-redemptions [data-testid=redemption-row][data-state=confirmed]")).to_have_count(
        1, timeout=10_000
    )
    browser.shot(till, "merchant-service-confirmed")

    # --- the consumer asks for a refund: after a service only "voluntary" applies ---------------------
    card_item.get_by_test_id("card-link").click()
    phone.wait_for_url(f"**/c/cards/{card_id}/")
    options = phone.get_by_test_id("refund-option")
    expect(options).to_have_count(1)
    escrow = PRICE - released
    fee = escrow * FEE_BPS // 10_000
    expect(options).to_have_attribute("data-reason", "voluntary")
    expect(options).to_have_attribute("data-amount", str(escrow - fee))
    expect(options).to_contain_text(yuan(escrow - fee))  # the amount is shown before confirming
    expect(options).to_contain_text(yuan(fee))
    assert_accessible(phone, fits=True)
    phone.locator("#refund").scroll_into_view_if_needed()
    browser.shot(phone, "consumer-refund-offer")

    asked = len(browser.dialogs)
    phone.get_by_test_id("refund-button").click()
    expect(phone.get_by_test_id("refund-record")).to_be_visible()
    assert len(browser.dialogs) == asked + 1 and yuan(escrow - fee) in browser.dialogs[-1], browser.dialogs
    expect(phone.get_by_test_id("card-state")).to_have_attribute("data-state", "refunded")
    expect(phone.get_by_test_id("card-refunded")).to_have_text(yuan(escrow - fee))
    assert_accessible(phone, fits=True)
    browser.shot(phone, "consumer-card-refunded")

    card = Card.objects.get(pk=card_id)
    assert card.state == Card.State.REFUNDED
    refund = Refund.objects.get(card=card)
    assert (refund.reason, refund.amount, refund.fee) == ("voluntary", escrow - fee, fee)
    assert card.price == card.released_total + card.refunded_total == PRICE
    assert browser.page_errors == []
