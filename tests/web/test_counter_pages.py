"""At the counter: the holder's card page shows a QR code and the counter code while the card can
be served; the merchant types (or scans) the code, sees whose card it is, and starts the service,
which waits for the holder's confirmation."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from consumers.models import Redemption
from consumers.services import card_purchase
from core.qr import qr_modules
from tests.cards import builders
from tests.factories import UserFactory, sign_in
from tests.web.pages import submission_of

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client(headers={"accept-language": "en"})
    sign_in(client, user)
    return client


@pytest.fixture
def gym():
    return builders.merchant(category="fitness")


@pytest.fixture
def card(gym):
    holder = builders.consumer()
    return builders.paid_card(builders.session_pack(gym, price=100_000, sessions=10), holder)


def card_page(card) -> str:
    return client_of(card.consumer.user).get(reverse("web-consumer-card", args=[card.pk])).content.decode()


def test_the_card_page_shows_a_qr_code_of_the_counter_link_and_the_code_in_two_groups(card):
    body = card_page(card)
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="qr" role="img"' in body and 'id="counter-qr"' in body
    qr_text = re.search(r'data-qr-text="([^"]+)"', body).group(1).replace("&amp;", "&")
    link = f"http://testserver{reverse('web-merchant-counter')}?code={card.counter_code[:4]}-{card.counter_code[4:]}"
    assert qr_text == link
    assert f'data-code="{card.counter_code}"' in body and f"{card.counter_code[:4]}-{card.counter_code[4:]}" in body


def test_the_qr_svg_draws_every_dark_module_of_the_code():
    modules = qr_modules("http://testserver/m/redemptions/counter/?code=K7QX-3MPA")
    assert len(modules) == len(modules[0]) >= 21
    assert modules[0][:7] == [True] * 7  # a finder pattern's top edge


def test_a_card_that_cannot_be_served_shows_no_qr_code_nor_code(gym):
    holder = builders.consumer()
    unpaid = card_purchase(consumer=holder, product_id=builders.session_pack(gym).pk)
    body = client_of(holder.user).get(reverse("web-consumer-card", args=[unpaid.pk])).content.decode()
    assert 'id="counter-qr"' not in body and unpaid.counter_code not in body


def test_the_merchants_page_offers_the_counter_form_and_the_scanner(gym):
    body = client_of(gym.user).get(reverse("web-merchant-redemptions")).content.decode()
    assert 'id="counter-form"' in body and f'action="{reverse("web-merchant-counter")}"' in body
    assert 'id="counter-scan"' in body and "vendor/jsQR.js" in body and "js/counter-scan.js" in body


def test_the_typed_code_shows_the_holder_product_and_what_is_left_before_starting(gym, card):
    code = card.counter_code.lower()
    response = client_of(gym.user).get(reverse("web-merchant-counter"), {"code": f"{code[:4]} {code[4:]}"})
    body = response.content.decode()
    assert response.status_code == 200
    assert f'data-card-id="{card.pk}"' in body and card.consumer.display_name in body
    assert "****1234" in body and "13800001234" not in body
    assert "pack" in body and "10 of 10 sessions left" in body and 'data-state="cooling_off"' in body
    assert f'name="card" value="{card.pk.hex}"' in body and 'id="counter-start"' in body
    assert not Redemption.objects.exists()  # nothing starts before the merchant presses the button


def test_the_qr_link_itself_opens_the_confirmation(gym, card):
    qr_text = re.search(r'data-qr-text="([^"]+)"', card_page(card)).group(1).replace("&amp;", "&")
    response = client_of(gym.user).get(qr_text.removeprefix("http://testserver"))
    assert response.status_code == 200 and f'data-card-id="{card.pk}"' in response.content.decode()


def test_starting_from_the_confirmation_creates_the_pending_service(gym, card):
    shop = client_of(gym.user)
    body = shop.get(reverse("web-merchant-counter"), {"code": card.counter_code}).content.decode()
    response = shop.post(
        reverse("web-merchant-redemption-start"),
        {"card": card.pk.hex, "counter": "1", "submission": submission_of(body)},
    )
    assert response.status_code == 302 and response["Location"] == reverse("web-merchant-redemptions")
    redemption = Redemption.objects.get(card=card)
    assert redemption.state == Redemption.State.AWAITING_CONFIRMATION and redemption.merchant == gym


def test_a_stored_value_card_asks_the_amount_and_shows_the_refusal_on_the_confirmation(gym):
    card = builders.paid_card(builders.stored_value(gym, face_value=100_000))
    shop = client_of(gym.user)
    body = shop.get(reverse("web-merchant-counter"), {"code": card.counter_code}).content.decode()
    assert 'id="id_amount"' in body
    response = shop.post(
        reverse("web-merchant-redemption-start"),
        {"card": card.pk.hex, "counter": "1", "amount": "2000.00", "submission": submission_of(body)},
    )
    body = response.content.decode()
    assert response.status_code == 200 and f'data-card-id="{card.pk}"' in body
    assert "The amount is more than the card&#x27;s balance." in body
    assert not Redemption.objects.exists()


def test_another_shops_code_is_not_found_and_an_unpaid_card_is_refused(gym):
    other = builders.paid_card(builders.session_pack(builders.merchant()))
    shop = client_of(gym.user)
    response = shop.get(reverse("web-merchant-counter"), {"code": other.counter_code})
    assert response.status_code == 404 and "None of the cards you sold has this code." in response.content.decode()
    unpaid = card_purchase(consumer=builders.consumer(), product_id=builders.session_pack(gym).pk)
    response = shop.get(reverse("web-merchant-counter"), {"code": unpaid.counter_code})
    assert "This card cannot be used for a service in its present state." in response.content.decode()


def test_the_start_form_takes_a_counter_code_as_well_as_a_card_id(gym, card):
    shop = client_of(gym.user)
    shop.post(reverse("web-merchant-redemption-start"), {"card": card.counter_code.lower()})
    assert Redemption.objects.filter(card=card).count() == 1


def test_the_counter_page_without_a_code_goes_back_to_the_form(gym):
    response = client_of(gym.user).get(reverse("web-merchant-counter"))
    assert response.status_code == 302 and response["Location"].endswith("#counter")


@pytest.mark.parametrize("role", ["consumer", "regulator"])
def test_the_counter_page_is_the_merchants_only(role):
    assert (
        client_of(UserFactory(role=role)).get(reverse("web-merchant-counter"), {"code": "K7QX3MPA"}).status_code == 403
    )
