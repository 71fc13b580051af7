"""The counter code: every card gets its own, and a merchant finds its own card by it (or by the
card id / QR text), never another shop's, and learns before starting when the card cannot be served."""

import re

import pytest
from django.db import IntegrityError, transaction

from consumers.errors import CardNotRedeemable
from consumers.models import COUNTER_CODE_ALPHABET, Card, counter_code_new
from consumers.selectors import card_for_counter, counter_code_normalize, phone_tail
from consumers.services import card_purchase
from core.errors import NotFound
from tests.cards import builders

pytestmark = pytest.mark.django_db


def test_a_counter_code_is_eight_unambiguous_symbols():
    assert set(COUNTER_CODE_ALPHABET).isdisjoint("01OIL")
    assert len(set(COUNTER_CODE_ALPHABET)) == 31
    for _ in range(200):
        assert re.fullmatch(f"[{COUNTER_CODE_ALPHABET}]{{8}}", counter_code_new())


def test_every_card_gets_its_own_code_when_it_is_bought_shown_in_two_groups():
    pack = builders.session_pack(builders.merchant())
    cards = [builders.paid_card(pack) for _ in range(3)]
    codes = {card.counter_code for card in cards}
    assert len(codes) == 3
    card = cards[0]
    assert card.counter_code_display == f"{card.counter_code[:4]}-{card.counter_code[4:]}"


def test_the_database_refuses_a_second_card_with_the_same_code():
    pack = builders.session_pack(builders.merchant())
    first, second = builders.paid_card(pack), builders.paid_card(pack)
    with pytest.raises(IntegrityError), transaction.atomic():
        Card.objects.filter(pk=second.pk).update(counter_code=first.counter_code)


@pytest.mark.parametrize(
    "typed",
    [
        "{code}",
        "{lower}",
        "{a}-{b}",
        "{a} {b}",
        " {a_lower} - {b_lower} ",
        "https://x.example/m/redemptions/counter/?code={a}-{b}",
    ],
)
def test_the_code_is_found_in_any_case_grouped_or_not_or_inside_the_qr_link(typed):
    code = "K7QX3MPA"
    text = typed.format(code=code, lower=code.lower(), a=code[:4], b=code[4:], a_lower="k7qx", b_lower="3mpa")
    assert counter_code_normalize(text) == code


@pytest.mark.parametrize("typed", ["", "K7QX3MP", "K7QX3MPA9", "K7QX3MP0", "K7QX-3MPI", "https://x/?card=1"])
def test_text_that_is_no_code_is_no_code(typed):
    assert counter_code_normalize(typed) is None


def test_a_merchant_finds_its_own_card_by_code_by_id_and_by_the_contracts_qr_text():
    gym = builders.merchant()
    card = builders.paid_card(builders.session_pack(gym))
    code = card.counter_code
    for text in (code.lower(), f"{code[:4]} {code[4:]}", str(card.pk), f"卡号：{card.pk}", card.pk.hex.upper()):
        assert card_for_counter(merchant=gym, code_or_id=text).pk == card.pk
    found = card_for_counter(merchant=gym, code_or_id=code)
    assert found.consumer.display_name and found.product.name == "pack"


def test_another_merchants_card_is_not_found_by_code_or_id():
    other = builders.paid_card(builders.session_pack(builders.merchant()))
    gym = builders.merchant()
    for text in (other.counter_code, str(other.pk), "NOTACODE", "hello"):
        with pytest.raises(NotFound):
            card_for_counter(merchant=gym, code_or_id=text)


def test_a_card_that_cannot_be_served_is_refused_with_the_apis_error():
    gym = builders.merchant()
    buyer = builders.consumer()
    unpaid = card_purchase(consumer=buyer, product_id=builders.session_pack(gym).pk)
    with pytest.raises(CardNotRedeemable) as refused:
        card_for_counter(merchant=gym, code_or_id=unpaid.counter_code)
    assert refused.value.code == "card_not_redeemable"


def test_a_merchant_sees_only_the_last_four_digits_of_the_holders_phone():
    assert phone_tail("13800001234") == "****1234"
    assert phone_tail("123") == "****"


@pytest.mark.parametrize("idempotency_key", [None, "buy-once"])
def test_a_purchase_that_draws_a_taken_code_draws_again_and_succeeds(monkeypatch, idempotency_key):
    pack = builders.session_pack(builders.merchant())
    taken = builders.paid_card(pack).counter_code
    fresh = counter_code_new()
    draws = iter([taken, fresh])
    monkeypatch.setattr("consumers.services.counter_code_new", lambda: next(draws))
    card = card_purchase(consumer=builders.consumer(), product_id=pack.pk, idempotency_key=idempotency_key)
    assert Card.objects.get(pk=card.pk).counter_code == fresh
    assert Card.objects.filter(counter_code=taken).count() == 1


def test_a_purchase_gives_up_after_three_taken_draws():
    pack = builders.session_pack(builders.merchant())
    taken = builders.paid_card(pack).counter_code
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("consumers.services.counter_code_new", lambda: taken)
        with pytest.raises(IntegrityError):
            card_purchase(consumer=builders.consumer(), product_id=pack.pk)
    assert Card.objects.filter(product=pack).count() == 1
