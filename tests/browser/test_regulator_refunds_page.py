"""The regulator's page of refunds late or failed, on a 390 px phone: every refund a card that fits
the screen (no sideways scrolling, however long the bank's error), and its retry button pays it.
The holder's card page, for a merchant in default, fits too and offers the fee-free refund first."""

import pytest

from refunds.models import Refund
from refunds.services import refund_request
from regulator.services.actions import merchant_action_take
from tests.browser.support import PHONE, assert_accessible, wait_until
from tests.cards import builders
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_failed_refunds_read_on_a_phone_and_are_sent_again(browser, settings):
    gym = builders.merchant(name="阳光健身 Sunshine Gym with a rather long name for a phone screen")
    pack = builders.session_pack(gym, price=100_000, sessions=10, refund_fee_bps=500)
    settings.SANDBOX_REFUSE_REFUNDS = True
    settings.OUTBOX_MAX_ATTEMPTS = 1
    refunds = [
        refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
        for card in (builders.paid_card(pack), builders.paid_card(pack))
    ]
    assert set(Refund.objects.values_list("state", flat=True)) == {"failed"}
    settings.SANDBOX_REFUSE_REFUNDS = False
    inspector = UserFactory(role="regulator", username="inspector")
    held = builders.paid_card(pack)
    merchant_action_take(merchant_id=gym.pk, actor_id=inspector.pk, action="flag", reason="Complaints.")

    regulator = browser.page(viewport=PHONE)
    browser.log_in(regulator, inspector.username, PASSWORD)
    regulator.goto(f"{browser.base_url}/r/refunds/")
    assert regulator.locator("[data-testid=refund-row]").count() == 2
    assert_accessible(regulator, fits=True)
    browser.shot(regulator, "regulator-refunds-phone")
    regulator.locator("[data-testid=refund-retry-submit]").first.click()  # the confirm dialog is accepted
    wait_until(
        lambda: Refund.objects.filter(state="paid").count() == 1, timeout=15, message="the retried refund was not paid"
    )
    assert Refund.objects.get(pk__in=[r.pk for r in refunds], state="paid")

    holder = browser.page(viewport=PHONE)
    browser.log_in(holder, held.consumer.user.username, builders.PASSWORD)
    holder.goto(f"{browser.base_url}/c/cards/{held.pk}/")
    reasons = holder.locator("[data-testid=refund-option]")
    assert reasons.first.get_attribute("data-reason") == "merchant_default"
    assert_accessible(holder, fits=True)
    holder.goto(f"{browser.base_url}/c/cards/")
    assert holder.locator("[data-testid=default-refund]").count() == 1
    assert_accessible(holder, fits=True)
    assert browser.page_errors == []
