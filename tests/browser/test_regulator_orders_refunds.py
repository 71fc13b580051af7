"""The regulator flags a merchant, freezes its sales and orders its cards refunded, then watches a
real Celery worker refund them chunk by chunk on the action's progress bar."""

import time

import pytest
from django.db.models import Count
from playwright.sync_api import expect

from consumers.models import Card
from escrow.models import Account
from escrow.selectors import ledger_ok, ledger_verify
from merchants.models import Merchant
from refunds.models import MassRefund, Refund
from refunds.services import MASS_REFUND_CHUNK
from tests.browser.support import DESKTOP, assert_accessible, wait_until
from tests.cards import builders
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CARDS = 2 * MASS_REFUND_CHUNK + 20  # three chunks: 250, 250, 20
BUYERS = 20
PRICE = 20_000

PROGRESS_JS = """() => {
  const status = document.querySelector("[data-testid=action-status]");
  const bar = document.querySelector("[data-testid=refund-progress]");
  return {state: status && status.dataset.state, value: bar && Number(bar.value), max: bar && Number(bar.max)};
}"""


def merchant_with_cards() -> Merchant:
    """A gym whose CARDS paid cards all hold escrow, bought by BUYERS consumers."""
    gym = builders.merchant(name="倒闭健身 Vanishing Gym")
    pack = builders.session_pack(gym, price=PRICE, sessions=4)
    buyers = [builders.consumer() for _ in range(BUYERS)]
    for n in range(CARDS):
        builders.paid_card(pack, buyers[n % BUYERS])
    return gym


def take_action(browser, page, *, action: str, reason: str, warning: str = "") -> None:
    page.select_option("#action-action", action)
    page.fill("#action-reason", reason)
    if warning:
        page.fill("#action-warning", warning)
    asked = len(browser.dialogs)
    page.get_by_test_id("action-submit").click()
    page.wait_for_url("**/r/actions/*/")
    assert len(browser.dialogs) == asked + 1, "the action was not confirmed first"


def test_regulator_orders_refunds_and_watches_a_worker_refund_every_card_once(browser, celery_worker):
    started = time.monotonic()
    gym = merchant_with_cards()
    built = time.monotonic() - started
    inspector = UserFactory(role="regulator", username="inspector")

    desk = browser.page(viewport=DESKTOP, mobile=False)
    browser.log_in(desk, inspector.username, PASSWORD)
    assert_accessible(desk)
    browser.shot(desk, "regulator-dashboard")

    desk.click("header nav a[href$='/r/merchants/']")
    desk.locator(f"[data-testid=merchant-row][data-merchant-id='{gym.pk}'] a").click()
    expect(desk.get_by_test_id("merchant-name")).to_have_text(gym.name)
    assert_accessible(desk)
    browser.shot(desk, "regulator-merchant")

    # Flag it, with a public warning.
    take_action(
        browser, desk, action="flag", reason="Members report the doors closed for a week.",
        warning="This gym may have stopped trading.",
    )  # fmt: skip
    expect(desk.get_by_test_id("action-status")).to_have_attribute("data-state", "done")
    assert_accessible(desk)
    browser.shot(desk, "regulator-flagged")
    desk.get_by_test_id("action-merchant").click()
    expect(desk.get_by_test_id("merchant-flagged")).to_be_visible()
    expect(desk.get_by_test_id("merchant-risk-warning")).to_contain_text("This gym may have stopped trading.")

    # Freeze its sales.
    take_action(browser, desk, action="freeze_sales", reason="No new cards while we look into it.")
    expect(desk.get_by_test_id("action-status")).to_have_attribute("data-state", "done")
    desk.get_by_test_id("action-merchant").click()
    expect(desk.get_by_test_id("merchant-sales-frozen")).to_be_visible()
    browser.shot(desk, "regulator-flagged-and-frozen")

    # Order every card refunded, and watch the worker do it.
    take_action(browser, desk, action="order_refunds", reason="The gym has closed; every member gets the rest back.")
    expect(desk.get_by_test_id("refund-progress")).to_have_attribute("max", str(CARDS))
    assert_accessible(desk)
    browser.shot(desk, "regulator-refunds-ordered")
    seen, midway = [], None
    ordered = time.monotonic()
    try:
        while True:
            progress = desk.evaluate(PROGRESS_JS)
            if progress["value"] is not None and (not seen or seen[-1] != progress["value"]):
                seen.append(progress["value"])
                if midway is None and 0 < progress["value"] < CARDS:  # a moment worth keeping, when caught
                    midway = browser.shot(desk, "regulator-refunds-midway")
            if progress["state"] in ("done", "failed"):
                break
            assert time.monotonic() - ordered < 90, f"refunds unfinished: {progress}; worker:\n{celery_worker.tail()}"
            desk.wait_for_timeout(100)
    finally:
        (browser.shots / "progress.txt").write_text(
            f"{CARDS} cards built in {built:.1f}s, refunded in chunks of {MASS_REFUND_CHUNK} "
            f"in {time.monotonic() - ordered:.1f}s\nprogress bar values seen: {seen}\n"
        )
    expect(desk.get_by_test_id("action-final")).to_be_visible()
    assert progress == {"state": "done", "value": CARDS, "max": CARDS}, celery_worker.tail()
    expect(desk.get_by_test_id("refund-progress-text")).to_contain_text(str(CARDS))
    assert seen == sorted(seen), f"the bar went back: {seen}"
    browser.shot(desk, "regulator-refunds-done")

    # Every card refunded exactly once, in full; the worker pays the refunds out through the outbox.
    job = MassRefund.objects.get(merchant=gym)
    assert (job.state, job.done, job.total) == ("done", CARDS, CARDS)
    cards = Card.objects.filter(merchant=gym)
    assert cards.count() == CARDS and not cards.exclude(state=Card.State.REFUNDED).exists()
    refunds = Refund.objects.filter(card__merchant=gym)
    assert refunds.count() == CARDS
    assert not refunds.values("card").annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert set(refunds.values_list("amount", "fee")) == {(PRICE, 0)}  # in full
    assert not Account.objects.filter(pk__in=cards.values("escrow_account"), balance__gt=0).exists()
    wait_until(
        lambda: not refunds.exclude(state=Refund.State.PAID).exists(),
        timeout=60,
        message=lambda: f"refunds not paid: {refunds.exclude(state='paid').count()}; worker:\n{celery_worker.tail()}",
    )
    celery_worker.stop()
    assert celery_worker.process.returncode is not None
    assert ledger_ok(ledger_verify())

    gym.refresh_from_db()
    assert gym.flagged and gym.sales_frozen
    assert browser.page_errors == []
