"""The merchant's pages: who may see them, and that each form reaches its service."""

from datetime import date, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from complaints.models import Complaint
from consumers.models import Redemption
from consumers.services import redemption_confirm, redemption_reject
from core import clock
from core.formatting import beijing_date
from merchants.models import Merchant, Product
from merchants.services.settlement import settlement_run
from tests.cards import builders
from tests.complaints.complaints_builders import app_complaint
from tests.factories import UserFactory, sign_in
from tests.settlement.test_settlement import day_of_business  # noqa: F401 (fixture)
from tests.web.pages import submission_of

pytestmark = pytest.mark.django_db

PAGES = ["web-merchant-home", "web-merchant-redemptions", "web-merchant-settlements", "web-merchant-closure",
         "web-merchant-complaints", "web-merchant-redemptions-live"]  # fmt: skip


def page_client(user=None) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    if user is not None:
        sign_in(client, user)
    return client


@pytest.fixture
def gym():
    return builders.merchant(category="fitness")


@pytest.fixture
def shop(gym):
    return page_client(gym.user)


def live(client) -> str:
    return client.get(reverse("web-merchant-redemptions-live"), HTTP_HX_REQUEST="true").content.decode()


# --- who sees the pages ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_every_merchant_page_renders_for_its_merchant(shop, name):
    response = shop.get(reverse(name))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("role", ["consumer", "regulator"])
@pytest.mark.parametrize("name", PAGES)
def test_merchant_pages_are_forbidden_to_other_roles(role, name):
    assert page_client(UserFactory(role=role)).get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(name):
    response = page_client().get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web-login"))


def test_a_polled_fragment_whose_session_ended_redirects_htmx_to_log_in():
    response = page_client().get(reverse("web-merchant-redemptions-live"), HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"] == reverse("web-login")


def test_posting_to_another_merchants_forms_as_a_consumer_is_forbidden():
    client = page_client(UserFactory(role="consumer"))
    assert client.post(reverse("web-merchant-product-create"), {"name": "x"}).status_code == 403
    assert client.post(reverse("web-merchant-redemption-start"), {"card": "x"}).status_code == 403


# --- (1) the shop ---------------------------------------------------------------------------------


def test_the_shop_shows_its_profile_balance_and_regulator_flags(gym, shop):
    card = builders.paid_card(builders.session_pack(gym, price=100_000))
    Merchant.objects.filter(pk=gym.pk).update(
        sales_frozen=True, flagged=True, risk_warning="Many unanswered complaints."
    )
    body = shop.get(reverse("web-merchant-home")).content.decode()
    assert gym.name in body and gym.license_number in body and "Chaoyang" in body
    assert 'data-testid="flag-sales-frozen"' in body and 'data-testid="flag-flagged"' in body
    assert 'data-testid="flag-releases-frozen"' not in body
    assert "Many unanswered complaints." in body
    assert "¥1,000.00" in body  # in escrow
    assert card.escrow_account.balance == 100_000


def test_adding_a_product_puts_it_on_sale_with_prices_in_fen(gym, shop):
    response = shop.post(
        reverse("web-merchant-product-create"),
        {
            "name": "Gold card",
            "kind": "stored_value",
            "price": "900",
            "face_value": "1000.50",
            "unit_price": "50",
            "refund_fee_bps": "5",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("web-merchant-home")
    product = Product.objects.get(merchant=gym)
    assert (product.kind, product.price, product.face_value, product.unit_price, product.refund_fee_bps) == (
        "stored_value", 90_000, 100_050, 5_000, 500,
    )  # fmt: skip
    body = shop.get(reverse("web-merchant-home")).content.decode()
    assert f'data-product-id="{product.pk}"' in body and "Gold card" in body and "5%" in body


def test_a_product_form_sent_twice_puts_one_product_on_sale(gym, shop):
    token = submission_of(shop.get(reverse("web-merchant-home")).content.decode())
    fields = {"name": "10 sessions", "kind": "session_pack", "price": "500", "sessions": "10", "refund_fee_bps": "0"}
    fields["submission"] = token
    for _ in range(2):
        assert shop.post(reverse("web-merchant-product-create"), fields).status_code == 302
    assert Product.objects.filter(merchant=gym).count() == 1
    # Back, a field changed, sent again: that is another product.
    assert shop.post(reverse("web-merchant-product-create"), {**fields, "name": "20 sessions"}).status_code == 302
    assert sorted(Product.objects.filter(merchant=gym).values_list("name", flat=True)) == ["10 sessions", "20 sessions"]


def test_a_product_missing_the_terms_of_its_kind_shows_the_field_error(gym, shop):
    response = shop.post(
        reverse("web-merchant-product-create"),
        {"name": "Pack", "kind": "session_pack", "price": "100", "refund_fee_bps": "0"},
    )
    assert response.status_code == 200
    assert "Required for this kind of card." in response.content.decode()
    assert not Product.objects.filter(merchant=gym).exists()


def test_a_product_above_the_national_price_cap_shows_the_limit_error(gym, shop):
    response = shop.post(
        reverse("web-merchant-product-create"),
        {"name": "Year", "kind": "period_pass", "price": "5000.01", "days": "365", "refund_fee_bps": "0"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "national cap" in body and "¥5,000.00" in body and "max_price" not in body
    assert not Product.objects.filter(merchant=gym).exists()


def test_an_education_merchant_cannot_sell_more_than_sixty_class_hours():
    school = builders.merchant(category="education")
    response = page_client(school.user).post(
        reverse("web-merchant-product-create"),
        {"name": "Term", "kind": "session_pack", "price": "3000", "sessions": "61", "refund_fee_bps": "0"},
    )
    assert "at most 60 class hours" in response.content.decode()
    assert not Product.objects.filter(merchant=school).exists()


# --- (2) redemptions --------------------------------------------------------------------------------


def test_the_redemptions_page_polls_its_fragment(shop):
    body = shop.get(reverse("web-merchant-redemptions")).content.decode()
    assert f'hx-get="{reverse("web-merchant-redemptions-live")}"' in body and 'hx-trigger="every 3s"' in body


def test_starting_a_redemption_by_card_id_shows_it_pending_in_the_polled_fragment(gym, shop):
    card = builders.paid_card(builders.session_pack(gym))
    response = shop.post(reverse("web-merchant-redemption-start"), {"card": str(card.pk)})
    assert response.status_code == 302 and response["Location"] == reverse("web-merchant-redemptions")
    redemption = Redemption.objects.get(card=card)
    assert (redemption.state, redemption.sessions) == ("awaiting_confirmation", 1)
    fragment = live(shop)
    assert f'data-redemption-id="{redemption.pk}" data-state="awaiting_confirmation"' in fragment
    assert "data-countdown=" in fragment


def test_a_start_form_sent_twice_starts_one_service_and_the_next_rendering_another(gym, shop):
    card = builders.paid_card(builders.session_pack(gym))
    token = submission_of(shop.get(reverse("web-merchant-redemptions")).content.decode())
    for _ in range(2):  # a double click, or the page sent again
        response = shop.post(reverse("web-merchant-redemption-start"), {"card": str(card.pk), "submission": token})
        assert response.status_code == 302
    assert Redemption.objects.filter(card=card).count() == 1
    fresh = submission_of(shop.get(reverse("web-merchant-redemptions")).content.decode())
    assert fresh != token
    shop.post(reverse("web-merchant-redemption-start"), {"card": str(card.pk), "submission": fresh})
    assert Redemption.objects.filter(card=card).count() == 2


def test_a_redemption_can_be_started_from_the_contracts_qr_text_with_an_amount(gym, shop):
    card = builders.paid_card(builders.stored_value(gym, price=90_000, face_value=100_000, unit_price=5_000))
    qr_text = f"卡号：{str(card.pk).upper()}"
    assert shop.post(reverse("web-merchant-redemption-start"), {"card": qr_text, "amount": "12.50"}).status_code == 302
    redemption = Redemption.objects.get(card=card)
    assert redemption.amount == 1_250
    assert f'data-redemption-id="{redemption.pk}"' in live(shop)


def test_a_consumers_confirmation_shows_confirmed_in_the_fragment(gym, shop):
    card = builders.paid_card(builders.session_pack(gym, price=100_000, sessions=10))
    shop.post(reverse("web-merchant-redemption-start"), {"card": str(card.pk)})
    redemption = Redemption.objects.get(card=card)
    redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
    fragment = live(shop)
    assert f'data-redemption-id="{redemption.pk}" data-state="confirmed"' in fragment
    assert "awaiting_confirmation" not in fragment and "¥100.00" in fragment


def test_a_consumers_rejection_shows_rejected_in_the_fragment(gym, shop):
    card = builders.paid_card(builders.session_pack(gym))
    shop.post(reverse("web-merchant-redemption-start"), {"card": str(card.pk)})
    redemption = Redemption.objects.get(card=card)
    redemption_reject(consumer=card.consumer, redemption_id=redemption.pk)
    assert f'data-redemption-id="{redemption.pk}" data-state="rejected"' in live(shop)


def test_another_shops_card_is_not_found_and_text_without_an_id_is_refused(shop):
    other = builders.paid_card(builders.session_pack(builders.merchant()))
    response = shop.post(reverse("web-merchant-redemption-start"), {"card": str(other.pk)})
    assert response.status_code == 200 and "None of the cards you sold has this id." in response.content.decode()
    response = shop.post(reverse("web-merchant-redemption-start"), {"card": "hello"})
    assert "No card id in this text." in response.content.decode()
    assert not Redemption.objects.exists()


def test_a_stored_value_card_needs_an_amount(gym, shop):
    card = builders.paid_card(builders.stored_value(gym))
    response = shop.post(reverse("web-merchant-redemption-start"), {"card": str(card.pk)})
    assert "Required for a stored-value card." in response.content.decode()
    assert not Redemption.objects.exists()


def test_the_redemptions_page_lists_the_cards_sold(gym, shop):
    mine = builders.paid_card(builders.session_pack(gym))
    theirs = builders.paid_card(builders.session_pack(builders.merchant()))
    body = shop.get(reverse("web-merchant-redemptions")).content.decode()
    assert f'data-card-id="{mine.pk}"' in body and f'data-card-id="{theirs.pk}"' not in body
    prefilled = shop.get(reverse("web-merchant-redemptions"), {"card": str(mine.pk)}).content.decode()
    assert f'value="{mine.pk}"' in prefilled


# --- (3) settlements --------------------------------------------------------------------------------


@pytest.fixture
def settled(day_of_business):  # noqa: F811
    gym, _cards = day_of_business
    with time_machine.travel("2026-03-03 02:00 +0800", tick=False):
        run = settlement_run(day=date(2026, 3, 2))
    return gym, run.settlements.get(merchant=gym)


def test_settlements_list_the_days_with_a_statement_link(settled):
    gym, settlement = settled
    body = page_client(gym.user).get(reverse("web-merchant-settlements")).content.decode()
    assert f'data-settlement-id="{settlement.pk}" data-payout-state="paid"' in body
    assert "March 2, 2026" in body and "¥300.00" in body and "¥90.00" in body and "¥390.00" in body
    assert settlement.payout_reference in body
    assert reverse("web-merchant-settlement-statement", args=[settlement.pk]) in body


def test_the_statement_link_returns_the_merchants_pdf(settled):
    gym, settlement = settled
    response = page_client(gym.user).get(reverse("web-merchant-settlement-statement", args=[settlement.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_another_merchants_statement_is_not_found(settled):
    _gym, settlement = settled
    stranger = page_client(builders.merchant().user)
    assert stranger.get(reverse("web-merchant-settlement-statement", args=[settlement.pk])).status_code == 404


# --- (4) closure ------------------------------------------------------------------------------------


def test_closing_with_too_short_notice_shows_the_error(gym, shop):
    too_soon = clock.local_date() + timedelta(days=29)
    response = shop.post(reverse("web-merchant-closure"), {"closes_on": too_soon.isoformat(), "reason": "Moving"})
    earliest = clock.local_date() + timedelta(days=30)
    assert (
        response.status_code == 200
        and f"{beijing_date(earliest, language='en')} at the earliest" in response.content.decode()
    )
    gym.refresh_from_db()
    assert gym.status == Merchant.Status.ACTIVE


def test_closing_with_thirty_days_notice_puts_the_shop_into_closing(gym, shop):
    builders.paid_card(builders.session_pack(gym))
    closes_on = clock.local_date() + timedelta(days=30)
    response = shop.post(reverse("web-merchant-closure"), {"closes_on": closes_on.isoformat(), "reason": "Moving"})
    assert response.status_code == 302
    gym.refresh_from_db()
    assert (gym.status, gym.closes_on, gym.closure_reason) == ("closing", closes_on, "Moving")
    body = shop.get(response["Location"]).content.decode()
    assert "1 consumer(s) were told" in body and 'id="closure-notice"' in body and 'id="closure-form"' not in body
    assert 'data-status="closing"' in shop.get(reverse("web-merchant-home")).content.decode()


def test_the_closure_form_asks_for_confirmation(shop):
    body = shop.get(reverse("web-merchant-closure")).content.decode()
    assert 'id="closure-form"' in body and "data-confirm=" in body


# --- (5) complaints ---------------------------------------------------------------------------------


def test_complaints_show_their_deadline_and_answering_marks_them_responded(gym, shop):
    complaint = app_complaint(builders.consumer(), gym)
    body = shop.get(reverse("web-merchant-complaints")).content.decode()
    assert f'data-complaint-id="{complaint.pk}" data-state="open"' in body
    assert 'data-testid="complaint-deadline"' in body and f'id="complaint-{complaint.pk}-text"' in body
    response = shop.post(
        reverse("web-merchant-complaint-respond", args=[complaint.pk]), {"text": "Refunded at the front desk."}
    )
    assert response.status_code == 302
    complaint.refresh_from_db()
    assert (complaint.state, complaint.response) == ("responded", "Refunded at the front desk.")
    body = shop.get(reverse("web-merchant-complaints")).content.decode()
    assert 'data-testid="complaint-row"' in body and "Refunded at the front desk." in body


def test_a_complaint_past_its_deadline_shows_overdue_and_still_takes_a_late_answer(gym, shop):
    with time_machine.travel("2026-03-01 10:00 +0800", tick=False):
        complaint = app_complaint(builders.consumer(), gym)
    body = shop.get(reverse("web-merchant-complaints")).content.decode()
    assert 'data-testid="complaint-overdue"' in body
    shop.post(reverse("web-merchant-complaint-respond", args=[complaint.pk]), {"text": "Sorry, late."})
    complaint.refresh_from_db()
    assert complaint.state == Complaint.State.RESPONDED


def test_an_empty_answer_shows_the_error_and_another_shops_complaint_is_untouched(gym, shop):
    mine = app_complaint(builders.consumer(), gym)
    response = shop.post(reverse("web-merchant-complaint-respond", args=[mine.pk]), {"text": "  "})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    theirs = app_complaint(builders.consumer(), builders.merchant())
    shop.post(reverse("web-merchant-complaint-respond", args=[theirs.pk]), {"text": "Not ours."})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.state == theirs.state == Complaint.State.OPEN
