"""Accessibility basics on every page of the three roles: a language on <html>, a label on every
form control a person can see, nothing wider than a 375 px phone on the consumer's and merchant's
pages; and the language switch turns a page English."""

import pytest
from playwright.sync_api import expect

from complaints.services import complaint_file
from consumers.models import Card
from consumers.services import card_purchase, redemption_request
from merchants.services.merchants import product_create
from regulator.services.actions import merchant_action_take
from regulator.services.risk import compute_risk
from tests.browser.support import DESKTOP, NARROW_PHONE, assert_accessible
from tests.cards import builders
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def town(db):
    """A gym with two products; Alice holds a card in cooling-off, a card waiting for payment and a
    card with a service to confirm, and has complained once; a regulator who flagged the gym."""
    gym = builders.merchant(name="阳光健身 Sunshine Gym")
    pack = product_create(
        merchant=gym, name="10次私教课", kind="session_pack", price=100_000, sessions=10, refund_fee_bps=500
    )
    stored = builders.stored_value(gym, price=90_000, face_value=100_000, unit_price=5_000)
    alice = builders.consumer()
    paid = builders.paid_card(pack, alice)
    unpaid = card_purchase(consumer=alice, product_id=stored.pk)
    served = builders.paid_card(stored, alice)
    redemption_request(merchant=gym, card_id=served.pk, amount=5_000)
    complaint_file(
        actor=alice.user, merchant_id=gym.pk, card_id=paid.pk, category="service_quality",
        description="The coach did not come twice this week.", source="app",
    )  # fmt: skip
    inspector = UserFactory(role="regulator", username="inspector")
    compute_risk()
    action = merchant_action_take(merchant_id=gym.pk, actor_id=inspector.pk, action="flag", reason="Complaints.")
    return {"gym": gym, "alice": alice, "paid": paid, "unpaid": unpaid, "inspector": inspector, "action": action}


def visit(browser, page, path: str, name: str, *, fits: bool) -> None:
    response = page.goto(f"{browser.base_url}{path}")
    assert response is not None and response.ok, f"{path}: {response and response.status}"
    assert_accessible(page, fits=fits)
    browser.shot(page, name)


def test_every_page_has_a_language_labelled_controls_and_fits_a_375_px_phone(browser, town):
    gym, alice = town["gym"], town["alice"]
    assert Card.objects.get(pk=town["unpaid"].pk).state == Card.State.PENDING_PAYMENT

    visitor = browser.page(viewport=NARROW_PHONE)
    for path, name in [
        ("/login/", "login"),
        ("/signup/consumer/", "signup-consumer"),
        ("/signup/merchant/", "signup-merchant"),
    ]:
        visit(browser, visitor, path, name, fits=True)

    consumer = browser.page(viewport=NARROW_PHONE)
    browser.log_in(consumer, alice.user.username, builders.PASSWORD)
    for path, name in [
        ("/c/cards/", "consumer-cards"),
        ("/c/merchants/", "consumer-merchants"),
        (f"/c/merchants/{gym.pk}/", "consumer-merchant"),
        (f"/c/cards/{town['paid'].pk}/", "consumer-card"),
        (f"/c/cards/{town['unpaid'].pk}/pay/", "consumer-pay"),
        ("/c/redemptions/", "consumer-redemptions"),
        ("/c/complaints/", "consumer-complaints"),
        ("/c/complaints/new/", "consumer-complaint-form"),
    ]:
        visit(browser, consumer, path, name, fits=True)

    merchant = browser.page(viewport=NARROW_PHONE)
    browser.log_in(merchant, gym.user.username, builders.PASSWORD)
    for path, name in [
        ("/m/", "merchant-shop"),
        ("/m/redemptions/", "merchant-redemptions"),
        ("/m/settlements/", "merchant-settlements"),
        ("/m/closure/", "merchant-closure"),
        ("/m/complaints/", "merchant-complaints"),
    ]:
        visit(browser, merchant, path, name, fits=True)

    regulator = browser.page(viewport=DESKTOP, mobile=False)
    browser.log_in(regulator, town["inspector"].username, PASSWORD)
    for path, name in [
        ("/r/", "regulator-dashboard"),
        ("/r/merchants/", "regulator-merchants"),
        (f"/r/merchants/{gym.pk}/", "regulator-merchant"),
        (f"/r/actions/{town['action'].pk}/", "regulator-action"),
        ("/r/complaints/", "regulator-complaints"),
        ("/r/complaints/stats/", "regulator-complaint-stats"),
        ("/r/audit-log/", "regulator-audit-log"),
        ("/r/ledger/", "regulator-ledger"),
    ]:
        visit(browser, regulator, path, name, fits=False)

    # The language switch: the consumer's Chinese page turns English, and stays so.
    consumer.goto(f"{browser.base_url}/c/cards/")
    expect(consumer.locator("html")).to_have_attribute("lang", "zh-hans")
    consumer.select_option("#language-switch", "en")
    expect(consumer.locator("html")).to_have_attribute("lang", "en")
    expect(consumer.locator("h1")).to_have_text("My cards")
    expect(consumer.locator("#language-switch")).to_have_value("en")
    assert consumer.url.endswith("/c/cards/")
    assert_accessible(consumer, fits=True)
    browser.shot(consumer, "consumer-cards-english")
    consumer.click("header nav a[href$='/c/merchants/']")
    expect(consumer.locator("html")).to_have_attribute("lang", "en")
    expect(consumer.locator("h1")).to_have_text("Merchants")

    assert browser.page_errors == []
