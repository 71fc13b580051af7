"""The consumer's pages: who may see them, and each flow through them calling the same services as
the API (buy and pay, cooling-off countdown, refunds, services to confirm, complaints, warnings)."""

from datetime import timedelta
from html.parser import HTMLParser

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from complaints.models import Complaint
from complaints.services import complaint_respond
from consumers.models import Card, Redemption
from consumers.services import redemption_request
from core import clock
from merchants.services.closure import merchant_closure_announce
from refunds.models import Refund
from regulator.services.actions import merchant_action_take
from tests import stripe_fake as fake_stripe
from tests.cards import builders
from tests.factories import UserFactory, sign_in
from tests.web.pages import submission_of

pytestmark = pytest.mark.django_db

stripe_fake = fake_stripe.stripe_fake  # the fixture, for pytest to find under its name


class _Tags(HTMLParser):
    """Every start tag of a page, as (tag, attributes) in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def _tags(response) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(response.content.decode())
    return parser.found


def by_testid(response, testid: str) -> list[dict[str, str | None]]:
    """The attributes of every element whose ``data-testid`` is ``testid``."""
    return [attributes for _tag, attributes in _tags(response) if attributes.get("data-testid") == testid]


def input_value(response, name: str) -> str | None:
    return next(attributes["value"] for tag, attributes in _tags(response) if attributes.get("name") == name)


def browser(user) -> Client:
    client = Client(headers={"accept-language": "en"})
    sign_in(client, user)
    return client


@pytest.fixture
def shop():
    merchant = builders.merchant(name="Sunny Gym")
    return merchant, builders.session_pack(merchant, price=100_000, sessions=10, refund_fee_bps=500)


@pytest.fixture
def alice():
    return builders.consumer()


@pytest.fixture
def alice_web(alice):
    return browser(alice.user)


def buy_and_pay(client, product) -> Card:
    """Buy a card through the merchant's page and pay it with the sandbox bank's button."""
    page = client.get(reverse("web-consumer-merchant", args=[product.merchant_id]))
    (buy_form,) = by_testid(page, "buy-form")
    bought = client.post(buy_form["action"], {"purchase_key": input_value(page, "purchase_key")})
    assert bought.status_code == 302
    card = Card.objects.get(product=product)
    assert bought["Location"] == reverse("web-consumer-card-pay", args=[card.pk])
    assert card.state == Card.State.PENDING_PAYMENT
    pay_page = client.get(bought["Location"])
    (pay_form,) = by_testid(pay_page, "pay-form")
    assert pay_form["action"] == reverse("web-consumer-payment-simulate", args=[card.payment.pk])
    paid = client.post(pay_form["action"], {"outcome": "succeeded"})
    assert paid.status_code == 302
    assert paid["Location"] == reverse("web-consumer-card", args=[card.pk])
    return builders.fresh(card)


# --- who may see the pages ----------------------------------------------------------------------


def _page_urls(card: Card, redemption: Redemption) -> list[str]:
    return [
        reverse("web-consumer-merchants"),
        reverse("web-consumer-merchant", args=[card.merchant_id]),
        reverse("web-consumer-cards"),
        reverse("web-consumer-card", args=[card.pk]),
        reverse("web-consumer-card-pay", args=[card.pk]),
        reverse("web-consumer-card-contract", args=[card.pk]),
        reverse("web-consumer-redemptions"),
        reverse("web-consumer-redemptions-pending"),
        reverse("web-consumer-complaints"),
        reverse("web-consumer-complaint-new"),
    ]


def _post_urls(card: Card, redemption: Redemption) -> list[str]:
    return [
        reverse("web-consumer-buy", args=[card.product_id]),
        reverse("web-consumer-payment-simulate", args=[card.payment.pk]),
        reverse("web-consumer-card-refund", args=[card.pk]),
        reverse("web-consumer-redemption-confirm", args=[redemption.pk]),
        reverse("web-consumer-redemption-reject", args=[redemption.pk]),
        reverse("web-consumer-complaint-new"),
    ]


@pytest.fixture
def card_with_service(shop, alice):
    merchant, product = shop
    card = builders.paid_card(product, alice)
    redemption = redemption_request(merchant=merchant, card_id=card.pk)
    return card, redemption


def test_every_consumer_page_renders_for_its_consumer(alice_web, card_with_service):
    card, redemption = card_with_service
    for url in _page_urls(card, redemption):
        response = alice_web.get(url)
        assert response.status_code == 200, url
        if url.endswith(".pdf"):
            assert response["Content-Type"] == "application/pdf"
            assert response.content.startswith(b"%PDF")
        elif "pending" not in url:  # the polled fragment is part of a page
            assert b'<html lang="en">' in response.content, url


def test_the_pages_are_in_chinese_by_default_with_lang_set(card_with_service, alice):
    client = Client()
    sign_in(client, alice.user)
    response = client.get(reverse("web-consumer-cards"))
    assert response.status_code == 200
    assert b'<html lang="zh-hans">' in response.content


@pytest.mark.parametrize("role", ["merchant", "regulator"])
def test_merchants_and_regulators_are_refused_every_consumer_page(role, card_with_service):
    card, redemption = card_with_service
    client = browser(UserFactory(role=role))
    for url in _page_urls(card, redemption):
        assert client.get(url).status_code == 403, url
    for url in _post_urls(card, redemption):
        assert client.post(url, {}).status_code == 403, url
    assert builders.fresh(card).state == Card.State.COOLING_OFF
    redemption.refresh_from_db()
    assert redemption.state == Redemption.State.AWAITING_CONFIRMATION


def test_anonymous_visitors_are_sent_to_log_in(card_with_service):
    card, redemption = card_with_service
    client = Client()
    for url in _page_urls(card, redemption) + _post_urls(card, redemption):
        response = client.get(url) if url in _page_urls(card, redemption) else client.post(url, {})
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("web-login") + "?next="), url


def test_another_consumers_card_is_not_found(card_with_service):
    card, redemption = card_with_service
    bob = browser(builders.consumer().user)
    for url in (
        reverse("web-consumer-card", args=[card.pk]),
        reverse("web-consumer-card-pay", args=[card.pk]),
        reverse("web-consumer-card-contract", args=[card.pk]),
    ):
        assert bob.get(url).status_code == 404, url
    assert bob.post(reverse("web-consumer-card-refund", args=[card.pk]), {"reason": "cooling_off"}).status_code == 404
    bob.post(reverse("web-consumer-redemption-confirm", args=[redemption.pk]))
    redemption.refresh_from_db()
    assert redemption.state == Redemption.State.AWAITING_CONFIRMATION
    assert not by_testid(bob.get(reverse("web-consumer-redemptions-pending")), "pending-redemption")


# --- merchants and products ---------------------------------------------------------------------


def test_the_merchant_list_shows_active_merchants_filtered_by_district_and_category(alice_web):
    gym = builders.merchant(name="Chaoyang Gym", category="fitness", district="朝阳区")
    school = builders.merchant(name="Haidian School", category="education", district="海淀区")
    closing = builders.merchant(name="Closing Salon", category="beauty")
    merchant_closure_announce(merchant=closing, closes_on=clock.local_date() + timedelta(days=40), reason="moving")

    def listed(**query):
        response = alice_web.get(reverse("web-consumer-merchants"), query)
        assert response.status_code == 200
        return {item["data-merchant-id"] for item in by_testid(response, "merchant-item")}

    assert listed() == {str(gym.pk), str(school.pk)}
    assert listed(district="110108") == {str(school.pk)}
    assert listed(category="fitness") == {str(gym.pk)}
    assert listed(district="110108", category="fitness") == set()
    closing_page = alice_web.get(reverse("web-consumer-merchant", args=[closing.pk]))
    assert by_testid(closing_page, "merchant-closing")
    assert not by_testid(closing_page, "buy-form")


def test_a_flagged_merchants_warning_is_shown_on_its_product_page(alice_web, shop, regulator):
    merchant, _product = shop
    merchant_action_take(
        merchant_id=merchant.pk,
        actor_id=regulator.pk,
        action="flag",
        reason="hotline reports",
        warning="Many unanswered refund complaints.",
    )
    response = alice_web.get(reverse("web-consumer-merchant", args=[merchant.pk]))
    assert response.status_code == 200
    assert by_testid(response, "risk-warning")
    assert "Many unanswered refund complaints." in response.content.decode()
    (buy_form,) = by_testid(response, "buy-form")
    assert "Many unanswered" not in buy_form["data-confirm"]  # the confirmation names the warning in general
    listed = alice_web.get(reverse("web-consumer-merchants"))
    assert by_testid(listed, "merchant-flagged")


def test_an_unflagged_merchant_shows_no_warning(alice_web, shop):
    merchant, _product = shop
    response = alice_web.get(reverse("web-consumer-merchant", args=[merchant.pk]))
    assert not by_testid(response, "risk-warning")
    assert len(by_testid(response, "product-item")) == 1
    assert "¥1,000.00" in response.content.decode()


def test_a_frozen_merchant_offers_no_buy_button(alice_web, shop, regulator):
    merchant, product = shop
    merchant_action_take(merchant_id=merchant.pk, actor_id=regulator.pk, action="freeze_sales", reason="audit")
    response = alice_web.get(reverse("web-consumer-merchant", args=[merchant.pk]))
    assert by_testid(response, "merchant-sales-frozen")
    assert not by_testid(response, "buy-form")
    refused = alice_web.post(reverse("web-consumer-buy", args=[product.pk]), follow=True)
    assert not Card.objects.exists()
    assert "frozen" in refused.content.decode().lower() or "suspend" in refused.content.decode().lower()


# --- buying and paying --------------------------------------------------------------------------


def test_buying_and_paying_through_the_pages_makes_a_card_in_cooling_off(alice_web, shop):
    _merchant, product = shop
    card = buy_and_pay(alice_web, product)
    assert card.state == Card.State.COOLING_OFF
    assert card.escrow_account.balance == 100_000
    page = alice_web.get(reverse("web-consumer-card", args=[card.pk]))
    assert [badge["data-state"] for badge in by_testid(page, "card-state")] == ["cooling_off"]
    assert by_testid(page, "contract-link")


def test_posting_the_same_buy_form_twice_buys_one_card(alice_web, shop):
    _merchant, product = shop
    url = reverse("web-consumer-buy", args=[product.pk])
    first = alice_web.post(url, {"purchase_key": "a" * 32})
    second = alice_web.post(url, {"purchase_key": "a" * 32})
    assert first["Location"] == second["Location"]
    assert Card.objects.count() == 1
    alice_web.post(url, {"purchase_key": "b" * 32})
    assert Card.objects.count() == 2


def test_a_failed_payment_cancels_the_card(alice_web, shop):
    _merchant, product = shop
    bought = alice_web.post(reverse("web-consumer-buy", args=[product.pk]))
    card = Card.objects.get()
    response = alice_web.post(
        reverse("web-consumer-payment-simulate", args=[card.payment.pk]), {"outcome": "failed"}, follow=True
    )
    assert bought.status_code == 302
    assert builders.fresh(card).state == Card.State.CANCELLED
    assert [badge["data-state"] for badge in by_testid(response, "card-state")] == ["cancelled"]
    assert not by_testid(response, "refund-form")


def test_under_stripe_the_payment_page_shows_the_client_secret_and_no_sandbox_bank(alice_web, shop, stripe_fake):
    _merchant, product = shop
    bought = alice_web.post(reverse("web-consumer-buy", args=[product.pk]), {"purchase_key": "c" * 32})
    card = Card.objects.get()
    assert bought["Location"] == reverse("web-consumer-card-pay", args=[card.pk])
    assert card.payment.gateway == "stripe"
    assert card.payment.client_secret
    response = alice_web.get(bought["Location"])
    (stripe,) = by_testid(response, "stripe-payment")
    assert stripe["data-client-secret"] == card.payment.client_secret
    assert not by_testid(response, "sandbox-bank")
    (status,) = by_testid(response, "payment-status")
    assert status["hx-trigger"] == "every 3s"
    fragment = alice_web.get(bought["Location"], headers={"hx-request": "true"})
    assert fragment.content.decode().lstrip().startswith('<div id="payment-status"')
    # The sandbox bank does not exist under Stripe: only Stripe's webhook settles the payment.
    alice_web.post(reverse("web-consumer-payment-simulate", args=[card.payment.pk]), {"outcome": "succeeded"})
    assert builders.fresh(card).state == Card.State.PENDING_PAYMENT


# --- my cards -----------------------------------------------------------------------------------


def test_the_countdown_carries_the_end_of_the_cooling_off_period(alice_web, shop, alice):
    _merchant, product = shop
    with time_machine.travel("2026-03-02 23:50 +0800", tick=False):
        card = builders.paid_card(product, alice)
        response = alice_web.get(reverse("web-consumer-cards"))
    assert card.cooling_off_ends_at == clock.local_midnight(clock.local_date(card.paid_at) + timedelta(days=8))
    (countdown,) = by_testid(response, "cooling-off-countdown")
    assert countdown["data-countdown"] == "2026-03-10T00:00:00+08:00"
    (item,) = by_testid(response, "card-item")
    assert item["data-card-id"] == str(card.pk)
    (escrow,) = by_testid(response, "card-escrow")
    assert "¥1,000.00" in response.content.decode()
    assert escrow is not None


def test_an_active_card_shows_no_countdown(alice_web, shop, alice):
    _merchant, product = shop
    with time_machine.travel("2026-03-02 10:00 +0800", tick=False):
        builders.paid_card(product, alice)
    with time_machine.travel("2026-03-20 10:00 +0800", tick=False):
        response = alice_web.get(reverse("web-consumer-cards"))
    assert not by_testid(response, "cooling-off-countdown")


def test_every_kind_and_state_of_card_is_shown_with_what_it_has_left(alice_web, shop, alice):
    from consumers.services import card_purchase

    merchant, product = shop
    stored = builders.paid_card(builders.stored_value(merchant), alice)
    pass_card = builders.paid_card(builders.period_pass(merchant), alice)
    builders.paid_card(product, alice)
    waiting = card_purchase(consumer=alice, product_id=product.pk)
    response = alice_web.get(reverse("web-consumer-cards"))
    assert sorted(badge["data-state"] for badge in by_testid(response, "card-state")) == [
        "cooling_off",
        "cooling_off",
        "cooling_off",
        "pending_payment",
    ]
    assert len(by_testid(response, "card-remaining")) == 4
    assert len(by_testid(response, "card-escrow")) == 3  # nothing is in escrow before the payment
    (pay_link,) = by_testid(response, "pay-link")
    assert pay_link["href"] == reverse("web-consumer-card-pay", args=[waiting.pk])
    page = response.content.decode()
    assert "¥1,000.00 of ¥1,000.00 face value left" in page
    assert "10 of 10 sessions left" in page
    assert "30-day pass" in page
    for card in (stored, pass_card, waiting):
        assert alice_web.get(reverse("web-consumer-card", args=[card.pk])).status_code == 200


def test_a_closing_merchants_notice_is_shown_on_the_cards_page(
    alice_web, shop, alice, django_capture_on_commit_callbacks
):
    merchant, product = shop
    builders.paid_card(product, alice)
    with django_capture_on_commit_callbacks(execute=True):  # the holders are told in the background
        merchant_closure_announce(merchant=merchant, closes_on=clock.local_date() + timedelta(days=31), reason="moving")
    response = alice_web.get(reverse("web-consumer-cards"))
    (notice,) = by_testid(response, "notification")
    assert notice["data-kind"] == "merchant_closing"
    assert "Sunny Gym" in response.content.decode()


# --- refunds ------------------------------------------------------------------------------------


def test_a_fresh_card_offers_only_the_cooling_off_refund_and_the_refund_works(alice_web, shop, alice):
    _merchant, product = shop
    card = builders.paid_card(product, alice)
    page = alice_web.get(reverse("web-consumer-card", args=[card.pk]))
    options = by_testid(page, "refund-option")
    assert [(o["data-reason"], o["data-amount"], o["data-fee"]) for o in options] == [("cooling_off", "100000", "0")]
    (form,) = by_testid(page, "refund-form")
    assert "¥1,000.00" in form["data-confirm"]  # the amount is asked about before anything happens
    response = alice_web.post(
        reverse("web-consumer-card-refund", args=[card.pk]), {"reason": "cooling_off", "amount_cooling_off": "100000"}
    )
    assert response.status_code == 302
    card = builders.fresh(card)
    assert card.state == Card.State.REFUNDED
    assert card.refunded_total == 100_000
    assert Refund.objects.get(card=card).reason == "cooling_off"
    assert builders.invariant_holds(card)
    after = alice_web.get(reverse("web-consumer-card", args=[card.pk]))
    assert by_testid(after, "refund-record")
    assert not by_testid(after, "refund-form")


def test_after_a_service_only_the_voluntary_refund_is_offered_with_its_fee(alice_web, shop, alice):
    merchant, product = shop
    card = builders.paid_card(product, alice)
    redemption = redemption_request(merchant=merchant, card_id=card.pk)
    alice_web.post(reverse("web-consumer-redemption-confirm", args=[redemption.pk]))
    page = alice_web.get(reverse("web-consumer-card", args=[card.pk]))
    options = by_testid(page, "refund-option")
    # 90,000 left in escrow, 5% fee: 4,500 to the merchant and 85,500 back.
    assert [(o["data-reason"], o["data-amount"], o["data-fee"]) for o in options] == [("voluntary", "85500", "4500")]
    assert "¥855.00" in page.content.decode()


def test_a_refund_whose_amount_changed_since_the_page_was_shown_is_not_made(alice_web, shop, alice):
    _merchant, product = shop
    card = builders.paid_card(product, alice)
    response = alice_web.post(
        reverse("web-consumer-card-refund", args=[card.pk]),
        {"reason": "cooling_off", "amount_cooling_off": "99999"},
        follow=True,
    )
    assert builders.fresh(card).state == Card.State.COOLING_OFF
    assert "¥1,000.00" in response.content.decode()


def test_a_refund_that_does_not_apply_is_refused_with_the_services_reason(alice_web, shop, alice):
    _merchant, product = shop
    card = builders.paid_card(product, alice)
    response = alice_web.post(reverse("web-consumer-card-refund", args=[card.pk]), {"reason": "voluntary"}, follow=True)
    assert builders.fresh(card).state == Card.State.COOLING_OFF
    assert 'class="error"' in response.content.decode()


def test_a_merchant_in_default_puts_the_fee_free_refund_first_and_says_why(alice_web, shop, alice):
    merchant, product = shop
    card = builders.paid_card(product, alice)
    redemption = redemption_request(merchant=merchant, card_id=card.pk)
    alice_web.post(reverse("web-consumer-redemption-confirm", args=[redemption.pk]))
    closes_on = clock.local_date() + timedelta(days=45)
    merchant_closure_announce(merchant=merchant, closes_on=closes_on, reason="moving")
    merchant_action_take(merchant_id=merchant.pk, actor_id=UserFactory(role="regulator").pk, action="flag", reason="r")
    page = alice_web.get(reverse("web-consumer-card", args=[card.pk]))
    options = by_testid(page, "refund-option")
    assert [(o["data-reason"], o["data-amount"], o["data-fee"]) for o in options] == [
        ("merchant_default", "90000", "0"),
        ("voluntary", "85500", "4500"),
    ]
    html = page.content.decode()
    assert by_testid(page, "default-reasons")
    assert "The regulator has flagged the merchant." in html
    assert f"notice of closing on {closes_on:%b}. {closes_on.day}, {closes_on.year}" in html
    listing = alice_web.get(reverse("web-consumer-cards"))
    assert by_testid(listing, "default-refund") and "flagged" in listing.content.decode()
    response = alice_web.post(
        reverse("web-consumer-card-refund", args=[card.pk]),
        {"reason": "merchant_default", "amount_merchant_default": "90000"},
    )
    assert response.status_code == 302
    refund = Refund.objects.get(card=card)
    assert (refund.reason, refund.amount, refund.fee) == ("merchant_default", 90_000, 0)


def test_the_default_reasons_are_shown_in_chinese_with_the_beijing_date(shop, alice):
    merchant, product = shop
    card = builders.paid_card(product, alice)
    closes_on = clock.local_date() + timedelta(days=45)
    merchant_closure_announce(merchant=merchant, closes_on=closes_on, reason="moving")
    client = Client(headers={"accept-language": "zh-hans"})
    sign_in(client, alice.user)
    html = client.get(reverse("web-consumer-card", args=[card.pk])).content.decode()
    assert f"商户已公告停业，将于 {closes_on.year}年{closes_on.month}月{closes_on.day}日 停业" in html
    listing = client.get(reverse("web-consumer-cards")).content.decode()
    assert "商户已公告停业" in listing


def test_a_merchant_in_good_standing_offers_no_default_refund(alice_web, shop, alice):
    _merchant, product = shop
    card = builders.paid_card(product, alice)
    page = alice_web.get(reverse("web-consumer-card", args=[card.pk]))
    assert not by_testid(page, "default-reasons")
    assert "merchant_default" not in [o["data-reason"] for o in by_testid(page, "refund-option")]


# --- services to confirm ------------------------------------------------------------------------


def test_a_merchant_started_service_appears_in_the_polled_fragment_and_confirm_releases_it(alice_web, shop, alice):
    merchant, product = shop
    card = builders.paid_card(product, alice)
    cards_page = alice_web.get(reverse("web-consumer-cards"))
    (poller,) = by_testid(cards_page, "pending-redemptions")
    assert poller["hx-get"] == reverse("web-consumer-redemptions-pending")
    assert poller["hx-trigger"].startswith("every ")
    assert not by_testid(cards_page, "pending-redemption")

    redemption = redemption_request(merchant=merchant, card_id=card.pk)
    fragment = alice_web.get(poller["hx-get"], headers={"hx-request": "true"})
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content
    (pending,) = by_testid(fragment, "pending-redemption")
    assert pending["data-redemption-id"] == str(redemption.pk)

    confirmed = alice_web.post(
        reverse("web-consumer-redemption-confirm", args=[redemption.pk]), headers={"hx-request": "true"}
    )
    assert confirmed.status_code == 200
    assert confirmed["HX-Trigger"] == "cards-changed"
    assert not by_testid(confirmed, "pending-redemption")
    assert "¥100.00" in confirmed.content.decode()  # what the confirmation released, said in the fragment
    redemption.refresh_from_db()
    assert redemption.state == Redemption.State.CONFIRMED
    assert redemption.released == 10_000
    card = builders.fresh(card)
    assert card.released_total == 10_000
    assert card.state == Card.State.ACTIVE
    assert builders.invariant_holds(card)


def test_a_service_can_be_rejected_without_javascript_and_nothing_is_released(alice_web, shop, alice):
    merchant, product = shop
    card = builders.paid_card(product, alice)
    redemption = redemption_request(merchant=merchant, card_id=card.pk)
    card_url = reverse("web-consumer-card", args=[card.pk])
    page = alice_web.get(card_url)
    (row,) = by_testid(page, "redemption-row")
    assert row["data-state"] == "awaiting_confirmation"
    response = alice_web.post(reverse("web-consumer-redemption-reject", args=[redemption.pk]), {"next": card_url})
    assert response["Location"] == card_url
    redemption.refresh_from_db()
    assert redemption.state == Redemption.State.REJECTED
    assert builders.fresh(card).released_total == 0


def test_an_expired_service_is_not_offered_for_confirmation(alice_web, shop, alice):
    merchant, product = shop
    card = builders.paid_card(product, alice)
    redemption_request(merchant=merchant, card_id=card.pk)
    with time_machine.travel(clock.now() + timedelta(minutes=16)):
        fragment = alice_web.get(reverse("web-consumer-redemptions-pending"))
    assert not by_testid(fragment, "pending-redemption")
    assert by_testid(fragment, "no-pending")


def test_the_redemptions_page_lists_decided_services(alice_web, shop, alice):
    merchant, product = shop
    card = builders.paid_card(product, alice)
    redemption = redemption_request(merchant=merchant, card_id=card.pk)
    alice_web.post(reverse("web-consumer-redemption-confirm", args=[redemption.pk]))
    page = alice_web.get(reverse("web-consumer-redemptions"))
    assert [row["data-state"] for row in by_testid(page, "recent-redemption")] == ["confirmed"]


# --- complaints ---------------------------------------------------------------------------------


def test_filing_a_complaint_about_a_card_shows_it_in_the_list_with_its_deadline(alice_web, shop, alice):
    merchant, product = shop
    card = builders.paid_card(product, alice)
    form_page = alice_web.get(reverse("web-consumer-complaint-new"), {"card": card.pk})
    assert form_page.status_code == 200
    assert f'value="{merchant.pk}" selected' in form_page.content.decode()
    response = alice_web.post(
        reverse("web-consumer-complaint-new") + f"?card={card.pk}",
        {
            "merchant": str(merchant.pk),
            "card": str(card.pk),
            "category": "service_quality",
            "description": "The coach never came.",
            "urgent": "on",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("web-consumer-complaints")
    complaint = Complaint.objects.get()
    assert (complaint.consumer_id, complaint.card_id, complaint.source, complaint.urgent) == (
        alice.pk,
        card.pk,
        "app",
        True,
    )
    card_page = alice_web.get(reverse("web-consumer-card", args=[card.pk]))
    assert [c["data-complaint-id"] for c in by_testid(card_page, "card-complaint")] == [str(complaint.pk)]
    listed = alice_web.get(response["Location"])
    (item,) = by_testid(listed, "complaint-item")
    assert item["data-complaint-id"] == str(complaint.pk)
    assert item["data-state"] == "open"
    assert "The coach never came." in listed.content.decode()

    complaint_respond(complaint_id=complaint.pk, merchant=merchant, text="Sorry, he was ill.")
    listed = alice_web.get(reverse("web-consumer-complaints"))
    assert by_testid(listed, "complaint-response")
    assert "Sorry, he was ill." in listed.content.decode()


def test_a_complaint_form_sent_twice_files_one_complaint(alice_web, shop):
    merchant, _product = shop
    token = submission_of(alice_web.get(reverse("web-consumer-complaint-new")).content.decode())
    fields = {"merchant": str(merchant.pk), "category": "other", "description": "Closed.", "submission": token}
    for _ in range(2):
        assert alice_web.post(reverse("web-consumer-complaint-new"), fields).status_code == 302
    assert Complaint.objects.count() == 1


def test_a_complaint_about_a_merchant_without_a_card_can_be_filed_from_its_page(alice_web, shop):
    merchant, _product = shop
    page = alice_web.get(reverse("web-consumer-merchant", args=[merchant.pk]))
    (link,) = by_testid(page, "complain-merchant")
    form_page = alice_web.get(link["href"])
    assert f'value="{merchant.pk}" selected' in form_page.content.decode()
    assert alice_web.get(reverse("web-consumer-complaint-new"), {"merchant": "not-an-id"}).status_code == 200
    response = alice_web.post(
        link["href"], {"merchant": str(merchant.pk), "category": "misleading_sales", "description": "False ads."}
    )
    assert response.status_code == 302
    assert Complaint.objects.get().merchant_id == merchant.pk


def test_a_complaint_naming_a_card_of_another_merchant_is_refused_on_the_form(alice_web, shop, alice):
    merchant, _product = shop
    other = builders.merchant(name="Other Gym")
    other_card = builders.paid_card(builders.session_pack(other), alice)
    response = alice_web.post(
        reverse("web-consumer-complaint-new"),
        {"merchant": str(merchant.pk), "card": str(other_card.pk), "category": "other", "description": "x"},
    )
    assert response.status_code == 200
    assert not Complaint.objects.exists()
    assert 'class="error"' in response.content.decode()


def test_the_complaint_list_filters_by_state(alice_web, shop, alice):
    merchant, _product = shop
    alice_web.post(
        reverse("web-consumer-complaint-new") + f"?merchant={merchant.pk}",
        {"merchant": str(merchant.pk), "category": "other", "description": "First."},
    )
    assert len(by_testid(alice_web.get(reverse("web-consumer-complaints"), {"state": "open"}), "complaint-item")) == 1
    assert not by_testid(alice_web.get(reverse("web-consumer-complaints"), {"state": "closed"}), "complaint-item")
