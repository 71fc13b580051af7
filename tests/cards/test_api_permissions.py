"""Who may call what: one table per endpoint over anonymous, the card's owner, another consumer,
the card's merchant, another merchant and a regulator. Another's card is "not found", never 403."""

import pytest

from consumers.services import redemption_request
from tests.cards import builders
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "owner", "other_consumer", "merchant", "other_merchant", "regulator"]


@pytest.fixture
def world(api):
    merchant = builders.merchant()
    product = builders.session_pack(merchant)
    card = builders.paid_card(product)
    redemption = redemption_request(merchant=merchant, card_id=card.pk)
    clients = {
        "anonymous": api,
        "owner": client_for(card.consumer.user),
        "other_consumer": client_for(builders.consumer().user),
        "merchant": client_for(merchant.user),
        "other_merchant": client_for(builders.merchant().user),
        "regulator": client_for(UserFactory(role="regulator")),
    }
    return {"card": card, "product": product, "redemption": redemption, "clients": clients}


def call(world, role, method, path, body=None):
    client = world["clients"][role]
    path = path.format(card=world["card"].pk, payment=world["card"].payment.pk, redemption=world["redemption"].pk)
    return getattr(client, method)(path, body, format="json") if method == "post" else client.get(path)


MATRIX = [
    ("get", "/api/v1/cards/{card}", None, [401, 200, 404, 200, 404, 200]),
    ("get", "/api/v1/cards/{card}/contract.pdf", None, [401, 200, 404, 200, 404, 200]),
    ("post", "/api/v1/cards/{card}/refunds", {"reason": "cooling_off"}, [401, 201, 404, 403, 403, 403]),
    ("post", "/api/v1/payments/{payment}/simulate", {"outcome": "succeeded"}, [401, 200, 404, 403, 403, 403]),
    ("post", "/api/v1/redemptions/{redemption}/confirm", None, [401, 200, 404, 403, 403, 403]),
    ("post", "/api/v1/redemptions/{redemption}/reject", None, [401, 200, 404, 403, 403, 403]),
    ("get", "/api/v1/products", None, [200, 200, 200, 200, 200, 200]),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "role", "status"),
    [(m, p, b, role, s) for m, p, b, statuses in MATRIX for role, s in zip(ROLES, statuses, strict=True)],
)
def test_endpoint_answers_each_role_as_the_matrix_says(world, method, path, body, role, status):
    response = call(world, role, method, path, body)
    assert response.status_code == status, response.content[:300]
    if status >= 400:
        assert response.json()["code"]


@pytest.mark.parametrize(("role", "status"), list(zip(ROLES, [401, 403, 403, 201, 404, 403], strict=True)))
def test_only_the_cards_merchant_starts_a_redemption(world, role, status):
    response = call(world, role, "post", "/api/v1/redemptions", {"card": str(world["card"].pk)})
    assert response.status_code == status


@pytest.mark.parametrize(("role", "status"), list(zip(ROLES, [401, 201, 201, 403, 403, 403], strict=True)))
def test_only_consumers_buy_cards(world, role, status):
    response = call(world, role, "post", "/api/v1/cards", {"product": str(world["product"].pk)})
    assert response.status_code == status


@pytest.mark.parametrize(("role", "status"), list(zip(ROLES, [401, 403, 403, 201, 201, 403], strict=True)))
def test_only_merchants_create_products(world, role, status):
    body = {"name": "x", "kind": "session_pack", "price": 1_000, "sessions": 2}
    assert call(world, role, "post", "/api/v1/products", body).status_code == status


@pytest.mark.parametrize(("role", "count"), list(zip(ROLES[1:], [1, 0, 1, 0, 1], strict=True)))
def test_card_list_shows_each_role_only_its_cards(world, role, count):
    response = call(world, role, "get", "/api/v1/cards")
    assert response.status_code == 200
    assert response.json()["count"] == count


def test_card_list_refuses_anonymous(world):
    assert call(world, "anonymous", "get", "/api/v1/cards").status_code == 401
