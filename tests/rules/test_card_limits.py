"""The card limits at their boundaries under every shipped profile: the price cap on any card, and
the education limit on one plan and on what a consumer holds unused at one school. Expected
values come from the profile in force, never from literals."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consumers.models import Card
from consumers.services import card_purchase, payment_simulate
from core import clock
from core.rules import profile_version, rule
from merchants.errors import CardLimitExceeded
from merchants.models import Product
from merchants.services.merchants import product_create
from refunds.services import refund_request
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

PROFILES = ["beijing", "shanghai"]
UNIT = 5_000  # fen of face value of one lesson in the stored-value plans below


@pytest.fixture(params=PROFILES)
def profile(request, settings):
    settings.RULES_PROFILE = request.param
    return request.param


def max_sessions() -> int:
    return rule("education_max_sessions", category="education").value


def max_days() -> int:
    return rule("education_max_days", category="education").value


def max_price() -> int:
    return rule("max_price").value


@pytest.fixture
def school():
    return builders.merchant(category="education")


def pack(m, sessions: int) -> Product:
    return product_create(merchant=m, name=f"{sessions} lessons", kind="session_pack", price=1_000, sessions=sessions)


def term_pass(m, days: int) -> Product:
    return product_create(merchant=m, name=f"{days} days", kind="period_pass", price=1_000, days=days)


def lessons_card(m, lessons: int, *, extra: int = 0) -> Product:
    """A stored-value plan worth ``lessons`` lessons at ``UNIT`` (plus ``extra`` fen, less than a lesson)."""
    face_value = lessons * UNIT + extra
    return product_create(
        merchant=m, name="card", kind="stored_value", price=face_value, face_value=face_value, unit_price=UNIT
    )


def buy(product: Product, buyer, *, pay: bool = True) -> Card:
    card = card_purchase(consumer=buyer, product_id=product.pk)
    if pay:
        card = payment_simulate(consumer=buyer, payment_id=card.payment.pk, outcome="succeeded")
    return builders.fresh(card)


@contextmanager
def refused(rule_key: str):
    """Expect a card_limit_exceeded refusal under ``rule_key``."""
    with pytest.raises(CardLimitExceeded) as info:
        yield info
    assert info.value.rule.key == rule_key


# --- one plan -------------------------------------------------------------------------------------


def test_the_price_cap_allows_exactly_the_cap_and_refuses_one_fen_more(profile):
    gym = builders.merchant(category="fitness")
    assert builders.session_pack(gym, price=max_price()).price == max_price()
    with refused("max_price") as info:
        builders.session_pack(gym, price=max_price() + 1)
    assert "price" in info.value.errors and not Product.objects.filter(price=max_price() + 1).exists()


@pytest.mark.parametrize("delta", [-1, 0])
def test_an_education_pack_up_to_the_session_limit_is_sold(profile, school, delta):
    assert pack(school, max_sessions() + delta).sessions == max_sessions() + delta


def test_an_education_pack_one_session_over_the_limit_is_refused(profile, school):
    with refused("education_max_sessions") as info:
        pack(school, max_sessions() + 1)
    assert "sessions" in info.value.errors


@pytest.mark.parametrize("delta", [-1, 0])
def test_an_education_pass_up_to_the_day_limit_is_sold(profile, school, delta):
    assert term_pass(school, max_days() + delta).days == max_days() + delta


def test_an_education_pass_one_day_over_the_limit_is_refused(profile, school):
    with refused("education_max_days") as info:
        term_pass(school, max_days() + 1)
    assert "days" in info.value.errors


def test_a_stored_value_plan_worth_the_session_limit_in_lessons_is_sold(profile, school):
    assert lessons_card(school, max_sessions()).face_value == max_sessions() * UNIT


def test_a_stored_value_plan_worth_one_lesson_more_is_refused(profile, school):
    with refused("education_max_sessions") as info:
        lessons_card(school, max_sessions() + 1)
    assert "face_value" in info.value.errors


def test_a_stored_value_plan_worth_80_lessons_is_refused(profile, school):
    # today's leak: an education stored-value card worth 80 lessons was sold
    assert max_sessions() < 80
    with refused("education_max_sessions"):
        product_create(
            merchant=school, name="80", kind="stored_value", price=400_000, face_value=400_000, unit_price=5_000
        )


def test_a_remainder_below_the_unit_price_buys_no_lesson(profile, school):
    # max lessons and one fen short of another: the card buys max lessons, so it is within the limit
    assert lessons_card(school, max_sessions(), extra=UNIT - 1)


def test_a_gym_is_not_held_to_the_education_limit(profile):
    gym = builders.merchant(category="fitness")
    assert pack(gym, max_sessions() + 1).sessions == max_sessions() + 1
    assert term_pass(gym, max_days() + 1).days == max_days() + 1
    assert lessons_card(gym, max_sessions() + 1)


def test_a_product_records_the_profile_version_it_was_checked_under(profile, school):
    assert pack(school, 1).rules_version == profile_version()


# --- what a consumer holds at one school ----------------------------------------------------------


def test_two_packs_that_make_exactly_the_limit_are_sold_and_one_session_more_is_refused(profile, school):
    buyer = builders.consumer()
    first = max_sessions() * 2 // 3  # 40 of 60
    buy(pack(school, first), buyer)
    with refused("education_max_sessions") as info:
        buy(pack(school, max_sessions() - first + 1), buyer)  # 40 + 21
    assert "product" in info.value.errors
    assert buy(pack(school, max_sessions() - first), buyer).state == Card.State.COOLING_OFF  # 40 + 20


def test_two_packs_each_within_the_limit_are_refused_together_over_it(profile, school):
    # today's leak: two 40-session packs at one school
    buyer = builders.consumer()
    forty = pack(school, max_sessions() * 2 // 3)
    buy(forty, buyer)
    with refused("education_max_sessions"):
        buy(forty, buyer)


def test_a_stored_value_card_counts_its_face_value_left_in_lessons(profile, school):
    buyer = builders.consumer()
    card = buy(lessons_card(school, max_sessions() - 10, extra=UNIT - 1), buyer)  # max-10 whole lessons
    with refused("education_max_sessions"):
        buy(pack(school, 11), buyer)
    use(card, UNIT)  # one lesson taken: one more fits
    assert buy(pack(school, 11), buyer)


def test_a_stored_value_card_bought_on_top_of_a_pack_counts_its_lessons(profile, school):
    buyer = builders.consumer()
    buy(pack(school, max_sessions() - 10), buyer)
    with refused("education_max_sessions"):
        buy(lessons_card(school, 11), buyer)
    assert buy(lessons_card(school, 10), buyer)


def test_used_sessions_free_up_room(profile, school):
    buyer = builders.consumer()
    card = buy(pack(school, max_sessions()), buyer)
    with refused("education_max_sessions"):
        buy(pack(school, 1), buyer)
    use(card)
    assert buy(pack(school, 1), buyer)
    with refused("education_max_sessions"):
        buy(pack(school, 1), buyer)


def test_a_refunded_card_does_not_count(profile, school, django_capture_on_commit_callbacks):
    buyer = builders.consumer()
    card = buy(pack(school, max_sessions()), buyer)
    with django_capture_on_commit_callbacks(execute=True):
        refund_request(consumer=buyer, card_id=card.pk, reason="cooling_off")
    assert builders.fresh(card).state == Card.State.REFUNDED
    assert buy(pack(school, max_sessions()), buyer)


def test_an_exhausted_card_does_not_count(profile, school):
    buyer = builders.consumer()
    card = buy(pack(school, 1), buyer)
    use(card)
    assert builders.fresh(card).state == Card.State.EXHAUSTED
    assert buy(pack(school, max_sessions()), buyer)


def test_a_card_waiting_for_its_payment_counts_until_the_payment_fails(profile, school):
    buyer = builders.consumer()
    waiting = buy(pack(school, max_sessions()), buyer, pay=False)
    with refused("education_max_sessions"):
        buy(pack(school, 1), buyer, pay=False)
    payment_simulate(consumer=buyer, payment_id=waiting.payment.pk, outcome="failed")
    assert buy(pack(school, 1), buyer)


def test_a_purchase_sent_again_under_its_key_returns_the_card_instead_of_refusing_it(profile, school):
    buyer = builders.consumer()
    product = pack(school, max_sessions())
    first = card_purchase(consumer=buyer, product_id=product.pk, idempotency_key="buy-once")
    again = card_purchase(consumer=buyer, product_id=product.pk, idempotency_key="buy-once")
    assert again.pk == first.pk and Card.objects.filter(consumer=buyer).count() == 1


def test_holdings_at_another_school_or_of_another_consumer_do_not_count(profile, school):
    buyer = builders.consumer()
    buy(pack(school, max_sessions()), buyer)
    assert buy(pack(builders.merchant(category="education"), max_sessions()), buyer)
    assert buy(pack(school, max_sessions()), builders.consumer())


def test_passes_count_days_against_the_day_limit(profile, school):
    buyer = builders.consumer()
    first = max_days() - 30
    buy(term_pass(school, first), buyer)
    with refused("education_max_days") as info:
        buy(term_pass(school, 31), buyer)  # one day over
    assert "product" in info.value.errors
    assert buy(term_pass(school, 30), buyer)  # exactly the limit


@pytest.mark.parametrize(("elapsed", "fits"), [(9, False), (10, True), (11, True)])
def test_a_started_pass_counts_the_days_left_from_today(profile, school, elapsed, fits):
    """A full-length pass started 10 days ago leaves max - 10 days: a 10-day pass fits, not on the day before."""
    buyer = builders.consumer()
    started = clock.now()
    card = buy(term_pass(school, max_days()), buyer)
    use(card)  # the first check-in starts the pass today
    with time_machine.travel(started + timedelta(days=elapsed), tick=False):
        if fits:
            assert buy(term_pass(school, 10), buyer)
        else:
            with refused("education_max_days"):
                buy(term_pass(school, 10), buyer)


def test_sessions_and_days_are_counted_apart(profile, school):
    buyer = builders.consumer()
    buy(term_pass(school, max_days()), buyer)
    assert buy(pack(school, max_sessions()), buyer)
    with refused("education_max_days"):
        buy(term_pass(school, 1), buyer)
    with refused("education_max_sessions"):
        buy(lessons_card(school, 1), buyer)


def test_a_gym_sells_any_number_of_sessions_to_one_consumer(profile):
    gym = builders.merchant(category="fitness")
    buyer = builders.consumer()
    big = pack(gym, max_sessions())
    buy(big, buyer)
    assert buy(big, buyer)


def test_a_card_records_the_profile_version_of_its_purchase(profile, school):
    card = buy(pack(school, 1), builders.consumer())
    assert card.rules_version == profile_version()


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("pack"), st.integers(1, 40)),
            st.tuples(st.just("lessons"), st.integers(1, 40)),
            st.tuples(st.just("pass"), st.integers(1, 60)),
            st.tuples(st.just("use"), st.integers(0, 5)),
        ),
        max_size=8,
    )
)
def test_whatever_a_consumer_buys_and_uses_their_holdings_stay_within_the_limit(profile, school, steps):
    buyer = builders.consumer()
    cards: list[Card] = []
    for action, size in steps:
        if action == "use":
            usable = [c for c in cards if builders.fresh(c).state in Card.REDEEMABLE and c.kind != "period_pass"]
            if usable:
                card = builders.fresh(usable[size % len(usable)])
                use(card, UNIT if card.kind == "stored_value" else None)
            continue
        product = {"pack": pack, "lessons": lessons_card, "pass": term_pass}[action](school, size)
        sessions, days = holdings(cards)
        fits = days + size <= max_days() if action == "pass" else sessions + size <= max_sessions()
        try:
            cards.append(buy(product, buyer))
        except CardLimitExceeded:
            assert not fits  # refused only when over
        else:
            assert fits
        sessions, days = holdings(cards)
        assert sessions <= max_sessions() and days <= max_days()


def holdings(cards: list[Card]) -> tuple[int, int]:
    """Unused sessions (with stored-value lessons) and pass days of cards, none of whose passes started."""
    held = [card for card in map(builders.fresh, cards) if card.state in Card.LIMIT_COUNTED]
    sessions = sum(card.sessions_remaining or 0 for card in held) + sum((card.balance or 0) // UNIT for card in held)
    return sessions, sum(card.days for card in held if card.kind == "period_pass")


# --- what people and clients see ------------------------------------------------------------------


def test_a_refusal_over_the_api_names_the_rule_and_its_basis(profile, school):
    buyer = builders.consumer()
    buy(pack(school, max_sessions()), buyer)
    extra = pack(school, 1)
    response = client_for(buyer.user).post(
        "/api/v1/cards", {"product": str(extra.pk)}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 400
    body = response.json()
    found = rule("education_max_sessions", category="education")
    assert body["code"] == "card_limit_exceeded"
    assert body["rule"] == found.key and body["basis"] == found.basis_zh
    assert "education_max_sessions" not in body["detail"] and str(max_sessions()) in body["detail"]


def test_a_product_refusal_over_the_api_names_the_rule_in_english_and_yuan(profile, school):
    response = client_for(school.user).post(
        "/api/v1/products",
        {"name": "x", "kind": "session_pack", "price": max_price() + 1, "sessions": 1},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    body = response.json()
    assert response.status_code == 400 and body["code"] == "card_limit_exceeded"
    assert body["rule"] == "max_price" and body["basis"] == rule("max_price").basis_en
    assert f"¥{max_price() // 100:,}.00" in body["detail"] and "fen" not in body["detail"]
    assert "max_price" not in body["detail"] and "price" in body["errors"]


def product_page(merchant, language: str, fields: dict) -> str:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(merchant.user)
    response = client.post(reverse("web-merchant-product-create"), {"refund_fee_bps": "0", **fields})
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("language", "words"), [("zh-hans", "单张卡金额不得超过 ¥{cap}"), ("en", "A card may cost at most ¥{cap}")]
)
def test_the_product_page_says_the_price_cap_in_words_and_yuan(profile, school, language, words):
    cap = f"{max_price() // 100:,}.00"
    over = f"{max_price() // 100}.01"  # one fen over, typed in yuan
    body = product_page(school, language, {"name": "Year", "kind": "session_pack", "price": over, "sessions": "1"})
    assert words.format(cap=cap) in body
    assert rule("max_price").basis(language) in body
    assert "max_price" not in body and "500000" not in body and " 分" not in body
    assert not Product.objects.filter(merchant=school).exists()


def test_the_product_page_says_the_lesson_limit_of_a_stored_value_plan(profile, school):
    body = product_page(
        school,
        "zh-hans",
        {"name": "Card", "kind": "stored_value", "price": "4000", "face_value": "4000", "unit_price": "50"},
    )
    assert f"一次性收费不得超过 {max_sessions()} 课时" in body and "80 课时" in body
    assert "education_max_sessions" not in body


def test_the_buy_page_says_why_a_purchase_is_refused(profile, school):
    buyer = builders.consumer()
    buy(pack(school, max_sessions()), buyer)
    extra = pack(school, 1)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(buyer.user)
    response = client.post(reverse("web-consumer-buy", args=[extra.pk]), follow=True)
    body = response.content.decode()
    assert f"at most {max_sessions()} class hours at once" in body and "education_max_sessions" not in body
    assert Card.objects.filter(consumer=buyer).count() == 1


def purchase_statements(product: Product) -> list[str]:
    buyer = builders.consumer()
    with CaptureQueriesContext(connection) as queries:
        card_purchase(consumer=buyer, product_id=product.pk)
    return [query["sql"] for query in queries.captured_queries]


def test_a_purchase_outside_education_locks_and_reads_nothing_more(profile):
    gym, school = pack(builders.merchant(category="fitness"), 10), pack(builders.merchant(category="education"), 10)
    for product in (gym, school):  # each statement is prepared once per session: measure the second time
        purchase_statements(product)
    gym_sql, school_sql = purchase_statements(gym), purchase_statements(school)
    assert not any("FOR NO KEY UPDATE" in text or "consumers_consumer" in text for text in gym_sql)
    locks = 1 if connection.vendor == "postgresql" else 0  # SQLite locks no rows
    assert len(school_sql) - len(gym_sql) == locks + 1  # the lock and the read of the consumer's cards there
