"""The bad day, as a holder lives it on a phone: the regulator flags the gym that sold her a card;
she is told (the bell, the notice), her card page shows the regulator's warning and why she may
take everything back without the contract's fee, offers that refund first, and she takes it."""

import pytest
from playwright.sync_api import expect

from consumers.models import Card
from core.formatting import yuan
from merchants.services.merchants import product_create
from refunds.models import Refund
from regulator.services.actions import merchant_action_take
from tests.browser.support import PHONE, assert_accessible
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PRICE = 100_000
SESSIONS = 10
FEE_BPS = 2000  # the contract's 20 % fee on a voluntary refund, which a holder in default does not pay


def test_a_holder_of_a_flagged_merchant_sees_the_warning_and_takes_the_fee_free_refund(browser):
    gym = builders.merchant(name="炫动健身")
    product = product_create(
        merchant=gym, name="10次私教课", kind="session_pack", price=PRICE, sessions=SESSIONS, refund_fee_bps=FEE_BPS
    )
    card = builders.paid_card(product, at="2026-01-05 10:00 +0800")
    use(card)  # one service received: the cooling-off period is over, only refunds by the contract remain
    escrow = PRICE - PRICE // SESSIONS
    inspector = UserFactory(role="regulator")
    merchant_action_take(
        merchant_id=gym.pk,
        actor_id=inspector.pk,
        action="flag",
        reason="Services stopped; complaints unanswered.",
        warning="该商户已停止营业，请勿继续购卡。",
    )

    phone = browser.page(viewport=PHONE)
    browser.log_in(phone, card.consumer.user.username, builders.PASSWORD)
    expect(phone.get_by_test_id("bell-count")).to_have_text("2")  # the service she confirmed, and the flag
    item = phone.locator(f"[data-testid=card-item][data-card-id='{card.pk}']")
    expect(item.get_by_test_id("default-refund")).to_be_visible()
    assert_accessible(phone, fits=True)
    browser.shot(phone, "holder-flagged-cards")

    phone.goto(f"{browser.base_url}/c/cards/{card.pk}/")
    expect(phone.get_by_test_id("card-risk-warning")).to_contain_text("该商户已停止营业")
    expect(phone.get_by_test_id("default-reasons")).to_be_visible()
    options = phone.get_by_test_id("refund-option")
    expect(options.first).to_have_attribute("data-reason", "merchant_default")
    expect(options.first).to_have_attribute("data-amount", str(escrow))
    expect(options.first).to_have_attribute("data-fee", "0")
    expect(phone.locator("[data-testid=refund-option][data-reason=voluntary]")).to_have_attribute(
        "data-fee", str(escrow * FEE_BPS // 10_000)
    )
    assert_accessible(phone, fits=True)
    browser.shot(phone, "holder-flagged-card")

    phone.get_by_test_id("refund-button").click()  # the confirm dialog is accepted
    expect(phone.get_by_test_id("card-state")).to_have_attribute("data-state", "refunded")
    expect(phone.get_by_test_id("card-refunded")).to_have_text(yuan(escrow))
    refund = Refund.objects.get(card=card)
    assert (refund.reason, refund.amount, refund.fee, refund.state) == ("merchant_default", escrow, 0, "paid")
    card = Card.objects.get(pk=card.pk)
    assert card.price == card.released_total + card.refunded_total == PRICE

    phone.goto(f"{browser.base_url}/n/")
    expect(phone.locator("[data-testid=notification][data-kind=merchant_flagged]")).to_contain_text("炫动健身")
    expect(phone.locator("[data-testid=notification][data-kind=refund_paid]")).to_contain_text(yuan(escrow))
    assert_accessible(phone, fits=True)
    browser.shot(phone, "holder-flagged-notices")
    assert browser.page_errors == []
