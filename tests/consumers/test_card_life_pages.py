"""The pages of a card's top-ups and transfers: the card page's 充值 and 转让 forms, the payment page of
a top-up, the offers waiting on the recipient's cards page, the history, each calling the services."""

import re

import pytest
import time_machine
from django.test import Client

from consumers.models import CardTransfer, TopUp
from consumers.services import redemption_confirm, redemption_request
from consumers.services_transfers import card_transfer_accept, card_transfer_offer
from tests.cards import builders
from tests.web.pages import submission_of

pytestmark = pytest.mark.django_db

BOUGHT = "2026-03-02 10:00 +0800"
NOW = "2026-03-20 10:00 +0800"


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


def browser(consumer, language="en") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(consumer.user)
    return client


def served(product, holder):
    card = builders.paid_card(product, holder, at=BOUGHT)
    with time_machine.travel("2026-03-03 10:00 +0800", tick=False):
        amount = 1_000 if card.kind == "stored_value" else None
        redemption = redemption_request(merchant=card.merchant, card_id=card.pk, amount=amount)
        redemption_confirm(consumer=holder, redemption_id=redemption.pk)
    return builders.fresh(card)


def test_a_stored_value_card_is_topped_up_paid_and_returned_from_its_page():
    holder = builders.consumer(phone="13800001111")
    card = served(builders.stored_value(builders.merchant()), holder)
    client = browser(holder)
    page = client.get(f"/c/cards/{card.pk}/")
    assert b'data-testid="top-up-form"' in page.content

    asked = client.post(
        f"/c/cards/{card.pk}/top-up/", {"amount": "90.00", "submission": submission_of(page.content.decode())}
    )
    top_up = TopUp.objects.get(card=card)
    assert asked.status_code == 302 and asked["Location"] == f"/c/top-ups/{top_up.pk}/pay/"
    assert (top_up.amount, top_up.face_value) == (9_000, 10_000)
    pay_page = client.get(asked["Location"])
    assert b'data-testid="top-up-pay-button"' in pay_page.content and "¥90.00" in pay_page.content.decode()

    paid = client.post(f"/c/top-ups/{top_up.pk}/simulate/", {"outcome": "succeeded"}, follow=True)
    assert "Topped up" in paid.content.decode()
    top_up.refresh_from_db()
    assert top_up.state == TopUp.State.COOLING_OFF
    assert b'data-testid="top-up-refund-button"' in paid.content and b'data-testid="top-up-annex-link"' in paid.content
    annex = client.get(f"/c/top-ups/{top_up.pk}/annex.pdf")
    assert annex.status_code == 200 and annex["Content-Type"] == "application/pdf"

    returned = client.post(f"/c/top-ups/{top_up.pk}/refund/", follow=True)
    assert "Top-up returned" in returned.content.decode()
    top_up.refresh_from_db()
    assert top_up.state == TopUp.State.REFUNDED and b'data-testid="top-up-refund-button"' not in returned.content


def test_a_top_up_form_sent_twice_tops_up_once():
    holder = builders.consumer(phone="13800001111")
    card = served(builders.stored_value(builders.merchant()), holder)
    client = browser(holder)
    token = submission_of(client.get(f"/c/cards/{card.pk}/").content.decode())
    for _ in range(2):
        client.post(f"/c/cards/{card.pk}/top-up/", {"amount": "90.00", "submission": token})
    assert TopUp.objects.filter(card=card).count() == 1


def test_no_top_up_form_on_a_session_pack():
    holder = builders.consumer(phone="13800001111")
    card = served(builders.session_pack(builders.merchant()), holder)
    assert b'id="top-up"' not in browser(holder).get(f"/c/cards/{card.pk}/").content


def test_a_card_is_offered_from_its_page_and_accepted_from_the_recipients_cards_page():
    giver, taker = builders.consumer(phone="13800001111"), builders.consumer(phone="13900002222")
    card = served(builders.session_pack(builders.merchant(name="阳光健身")), giver)
    client = browser(giver)
    page = client.get(f"/c/cards/{card.pk}/").content.decode()
    assert 'data-testid="transfer-form"' in page
    token = re.findall(r'name="submission" value="([0-9a-f]{32})"', page)[-1]  # the transfer form's
    offered = client.post(f"/c/cards/{card.pk}/transfer/", {"to_phone": "139 0000 2222", "submission": token})
    assert offered.status_code == 302
    transfer = CardTransfer.objects.get(card=card)
    shown = client.get(f"/c/cards/{card.pk}/").content.decode()
    assert 'data-testid="open-offer"' in shown and "139****2222" in shown and 'data-testid="transfer-form"' not in shown

    recipient = browser(taker)
    cards_page = recipient.get("/c/cards/").content.decode()
    assert f'data-transfer-id="{transfer.pk}"' in cards_page and "阳光健身" in cards_page
    accepted = recipient.post(f"/c/card-transfers/{transfer.pk}/accept/", follow=True)
    assert accepted.redirect_chain[-1][0] == f"/c/cards/{card.pk}/"
    assert b'data-testid="card-received"' in accepted.content
    assert builders.fresh(card).consumer_id == taker.pk

    gone = client.get(f"/c/cards/{card.pk}/")
    assert gone.status_code == 404
    given = client.get("/c/cards/").content.decode()
    assert 'data-testid="given-card"' in given
    assert client.get(f"/c/card-transfers/{transfer.pk}/contract.pdf").status_code == 200


def test_the_recipient_declines_and_the_holder_withdraws_from_the_pages():
    giver, taker = builders.consumer(phone="13800001111"), builders.consumer(phone="13900002222")
    product = builders.session_pack(builders.merchant())
    first, second = served(product, giver), served(product, giver)
    one = card_transfer_offer(consumer=giver, card_id=first.pk, to_phone="13900002222")
    two = card_transfer_offer(consumer=giver, card_id=second.pk, to_phone="13900002222")
    browser(taker).post(f"/c/card-transfers/{one.pk}/decline/")
    browser(giver).post(f"/c/card-transfers/{two.pk}/cancel/")
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.state, two.state) == ("declined", "cancelled")
    assert b'data-testid="transfer-offer"' not in browser(taker).get("/c/cards/").content


def test_a_refused_offer_says_why_on_the_page():
    giver = builders.consumer(phone="13800001111")
    card = served(builders.session_pack(builders.merchant()), giver)
    redemption_request(merchant=card.merchant, card_id=card.pk)  # waits for the holder's confirmation
    client = browser(giver)
    token = re.findall(r'name="submission" value="([0-9a-f]{32})"', client.get(f"/c/cards/{card.pk}/").content.decode())
    answer = client.post(
        f"/c/cards/{card.pk}/transfer/", {"to_phone": "13900002222", "submission": token[-1]}, follow=True
    )
    assert "A service on this card waits for the holder" in answer.content.decode()
    assert not CardTransfer.objects.exists()


def test_the_history_shows_how_the_card_came_and_not_a_former_holders_other_offers():
    giver, taker = builders.consumer(phone="13800001111"), builders.consumer(phone="13900002222")
    card = served(builders.session_pack(builders.merchant()), giver)
    withdrawn = card_transfer_offer(consumer=giver, card_id=card.pk, to_phone="13700003333")
    browser(giver).post(f"/c/card-transfers/{withdrawn.pk}/cancel/")
    transfer = card_transfer_offer(consumer=giver, card_id=card.pk, to_phone="13900002222")
    card_transfer_accept(consumer=taker, transfer_id=transfer.pk)
    page = browser(taker, language="zh-hans").get(f"/c/cards/{card.pk}/").content.decode()
    assert page.count('data-testid="transfer"') == 1 and "137****3333" not in page
    assert "转让" in page
