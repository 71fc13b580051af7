"""The education limit under concurrent purchases: on PostgreSQL, with real threads, a consumer's
purchases at one school are counted one after the other (the purchase locks the consumer's row),
so packs bought at once never add up to more than the limit."""

import pytest

from consumers.models import Card
from consumers.services import card_purchase
from core.rules import rule
from merchants.errors import CardLimitExceeded
from merchants.services.merchants import product_create
from tests.cards import builders
from tests.cards.test_card_races_postgres import race
from tests.conftest import client_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def third_of_the_limit_pack():
    limit = rule("education_max_sessions", category="education").value
    school = builders.merchant(category="education")
    product = product_create(merchant=school, name="term", kind="session_pack", price=1_000, sessions=limit // 3)
    return limit, product


def test_racing_purchases_at_one_school_never_pass_the_limit_together():
    limit, product = third_of_the_limit_pack()
    buyer = builders.consumer()
    outcomes, errors = race(6, lambda _: card_purchase(consumer=buyer, product_id=product.pk))
    fit = limit // product.sessions
    assert len(outcomes) == fit and len(errors) == 6 - fit
    assert all(isinstance(error, CardLimitExceeded) for error in errors)
    assert sum(card.sessions_remaining for card in Card.objects.filter(consumer=buyer)) <= limit


def test_racing_purchases_over_the_api_never_pass_the_limit_together():
    limit, product = third_of_the_limit_pack()
    buyer = builders.consumer()
    client_for(buyer.user)  # its token, made before the threads start

    def buy(index):
        response = client_for(buyer.user).post(
            "/api/v1/cards", {"product": str(product.pk)}, format="json", HTTP_IDEMPOTENCY_KEY=f"race-{index}"
        )
        return response.status_code, response.json().get("code")

    outcomes, errors = race(6, buy)
    fit = limit // product.sessions
    assert not errors
    assert sorted(outcomes) == [(201, None)] * fit + [(400, "card_limit_exceeded")] * (6 - fit)
    assert Card.objects.filter(consumer=buyer).count() == fit


def test_consumers_buying_at_once_at_one_school_are_each_held_to_their_own_holdings():
    _, product = third_of_the_limit_pack()
    buyers = [builders.consumer() for _ in range(6)]
    outcomes, errors = race(6, lambda i: card_purchase(consumer=buyers[i], product_id=product.pk))
    assert not errors and len(outcomes) == 6
