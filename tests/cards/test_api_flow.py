"""A card's whole life over HTTP, as a consumer app and a merchant's till would drive it."""

import pytest

from consumers.models import Card
from escrow.selectors import ledger_ok, ledger_verify
from tests.cards import builders
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def parties():
    merchant = builders.merchant()
    product = builders.session_pack(merchant, price=60_000, sessions=3)
    consumer = builders.consumer()
    return client_for(merchant.user), client_for(consumer.user), product


def test_buy_pay_redeem_confirm_and_refund_over_http(parties, django_capture_on_commit_callbacks):
    till, app, product = parties
    bought = app.post("/api/v1/cards", {"product": str(product.pk)}, format="json", HTTP_IDEMPOTENCY_KEY="buy-1")
    assert bought.status_code == 201
    card = bought.json()
    assert (card["state"], card["price"], card["currency"], card["payment"]["gateway"]) == (
        "pending_payment",
        60_000,
        "cny",
        "local",
    )

    paid = app.post(f"/api/v1/payments/{card['payment']['id']}/simulate", {"outcome": "succeeded"}, format="json")
    assert paid.status_code == 200 and paid.json()["state"] == "cooling_off" and paid.json()["escrow_balance"] == 60_000
    assert paid.json()["cooling_off_ends_at"].endswith("T00:00:00+08:00")

    asked = till.post("/api/v1/redemptions", {"card": card["id"]}, format="json")
    assert (
        asked.status_code == 201 and asked.json()["state"] == "awaiting_confirmation" and asked.json()["sessions"] == 1
    )
    confirmed = app.post(f"/api/v1/redemptions/{asked.json()['id']}/confirm", HTTP_IDEMPOTENCY_KEY="confirm-1")
    assert (
        confirmed.status_code == 200
        and confirmed.json()["state"] == "confirmed"
        and confirmed.json()["released"] == 20_000
    )
    replay = app.post(f"/api/v1/redemptions/{asked.json()['id']}/confirm", HTTP_IDEMPOTENCY_KEY="confirm-1")
    assert replay.json() == confirmed.json() and replay["Idempotent-Replayed"] == "true"

    after = app.get(f"/api/v1/cards/{card['id']}").json()
    assert (after["state"], after["escrow_balance"], after["released_total"], after["sessions_remaining"]) == (
        "active",
        40_000,
        20_000,
        2,
    )

    refused = app.post(f"/api/v1/cards/{card['id']}/refunds", {"reason": "cooling_off"}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "cooling_off_expired"
    with django_capture_on_commit_callbacks(execute=True):
        refunded = app.post(f"/api/v1/cards/{card['id']}/refunds", {"reason": "voluntary"}, format="json")
    assert refunded.status_code == 201
    assert (refunded.json()["amount"], refunded.json()["fee"], refunded.json()["currency"]) == (40_000, 0, "cny")
    final = app.get(f"/api/v1/cards/{card['id']}").json()
    assert (
        final["state"] == "refunded"
        and final["price"] == final["escrow_balance"] + final["released_total"] + final["refunded_total"]
    )
    assert ledger_ok(ledger_verify())


def test_buying_twice_with_one_idempotency_key_makes_one_card(parties):
    _, app, product = parties
    first = app.post("/api/v1/cards", {"product": str(product.pk)}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    second = app.post("/api/v1/cards", {"product": str(product.pk)}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.json()["id"] == second.json()["id"]
    assert Card.objects.count() == 1
    other = app.post(
        "/api/v1/cards",
        {"product": str(builders.session_pack(product.merchant).pk)},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"


def test_failed_payment_cancels_the_card_and_moves_nothing(parties):
    _, app, product = parties
    card = app.post("/api/v1/cards", {"product": str(product.pk)}, format="json").json()
    failed = app.post(f"/api/v1/payments/{card['payment']['id']}/simulate", {"outcome": "failed"}, format="json")
    assert failed.json()["state"] == "cancelled" and failed.json()["escrow_balance"] == 0
    again = app.post(f"/api/v1/payments/{card['payment']['id']}/simulate", {"outcome": "succeeded"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "payment_not_pending"


def test_frozen_sales_refuse_a_purchase_with_merchant_sales_frozen(parties):
    _, app, product = parties
    product.merchant.sales_frozen = True
    product.merchant.save(update_fields=["sales_frozen"])
    response = app.post("/api/v1/cards", {"product": str(product.pk)}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "merchant_sales_frozen"


def test_stored_value_redemption_needs_an_amount_and_other_kinds_refuse_one(parties):
    _, _, product = parties
    card = builders.paid_card(product)
    response = client_for(card.merchant.user).post(
        "/api/v1/redemptions", {"card": str(card.pk), "amount": 100}, format="json"
    )
    assert response.status_code == 400 and "amount" in response.json()["errors"]
    stored = builders.paid_card(builders.stored_value(card.merchant))
    response = client_for(card.merchant.user).post("/api/v1/redemptions", {"card": str(stored.pk)}, format="json")
    assert response.status_code == 400 and "amount" in response.json()["errors"]
    response = client_for(card.merchant.user).post(
        "/api/v1/redemptions", {"card": str(stored.pk), "amount": 12.5}, format="json"
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_unknown_card_ids_are_404_and_malformed_ones_too(parties):
    _, app, _ = parties
    assert app.get("/api/v1/cards/5b5b7976-d0ca-4fc5-8ed8-3689ddfa954f").json()["code"] == "not_found"
    assert app.get("/api/v1/cards/not-a-card").status_code == 404
    response = app.post("/api/v1/cards", {"product": "not-a-uuid"}, format="json")
    assert response.status_code == 400 and "product" in response.json()["errors"]
    response = app.post("/api/v1/cards", {"product": "5b5b7976-d0ca-4fc5-8ed8-3689ddfa954f"}, format="json")
    assert response.status_code == 400 and "product" in response.json()["errors"]


def test_contract_pdf_is_served_to_the_owner(parties):
    _, app, product = parties
    card = app.post("/api/v1/cards", {"product": str(product.pk)}, format="json").json()
    response = app.get(f"/api/v1/cards/{card['id']}/contract.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_schema_documents_every_card_operation_and_its_error_codes(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/cards",
        "/api/v1/cards/{card_id}",
        "/api/v1/cards/{card_id}/refunds",
        "/api/v1/cards/{card_id}/contract.pdf",
        "/api/v1/payments/{payment_id}/simulate",
        "/api/v1/redemptions",
        "/api/v1/redemptions/{redemption_id}/confirm",
        "/api/v1/redemptions/{redemption_id}/reject",
        "/api/v1/products",
        "/api/v1/consumers",
        "/api/v1/merchants",
    ):
        assert path in paths, path
    refund_409 = paths["/api/v1/cards/{card_id}/refunds"]["post"]["responses"]["409"]["description"]
    assert "cooling_off_expired" in refund_409 and "balance_not_small" in refund_409


def test_schema_documents_money_as_integer_fen(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    price = schema["components"]["schemas"]["ProductListCreateInputRequest"]["properties"]["price"]
    assert price["type"] == "integer" and price["minimum"] == 1
