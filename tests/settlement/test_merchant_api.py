from datetime import date

import pytest
import time_machine

from merchants.services.settlement import settlement_run
from tests.cards import builders
from tests.conftest import client_for
from tests.settlement.test_settlement import day_of_business  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_balance_shows_escrow_outstanding_available_and_paid_out(day_of_business):  # noqa: F811
    gym, _ = day_of_business
    client = client_for(gym.user)
    before = client.get("/api/v1/merchant/balance").json()
    # 3 cards of 100,000: one refunded, two with 90,000 left each; 39,000 released and fees.
    assert before == {"escrow_outstanding": 180_000, "available": 39_000, "paid_out_total": 0, "currency": "cny"}
    with time_machine.travel("2026-03-03 02:00 +0800", tick=False):
        settlement_run(day=date(2026, 3, 2))
    after = client.get("/api/v1/merchant/balance").json()
    assert (after["available"], after["paid_out_total"], after["escrow_outstanding"]) == (0, 39_000, 180_000)


def test_settlements_list_the_merchants_days(day_of_business):  # noqa: F811
    gym, _ = day_of_business
    with time_machine.travel("2026-03-03 02:00 +0800", tick=False):
        settlement_run(day=date(2026, 3, 2))
    body = client_for(gym.user).get("/api/v1/merchant/settlements").json()
    assert body["count"] == 1
    row = body["results"][0]
    assert (
        row["date"],
        row["released"],
        row["fees"],
        row["refunds_count"],
        row["payout_amount"],
        row["payout_state"],
    ) == ("2026-03-02", 30_000, 9_000, 1, 39_000, "paid")
    assert row["payout_reference"] and row["currency"] == "cny"
    assert client_for(builders.merchant().user).get("/api/v1/merchant/settlements").json()["count"] == 0


@pytest.mark.parametrize(("role", "status"), [("consumer", 403), ("regulator", 403)])
def test_merchant_views_are_for_merchants(role, status):
    from tests.factories import UserFactory

    client = client_for(UserFactory(role=role))
    assert client.get("/api/v1/merchant/balance").status_code == status
    assert client.get("/api/v1/merchant/settlements").status_code == status


def test_another_merchants_statement_is_not_found(day_of_business):  # noqa: F811
    with time_machine.travel("2026-03-03 02:00 +0800", tick=False):
        run = settlement_run(day=date(2026, 3, 2))
    settlement = run.settlements.get()
    response = client_for(builders.merchant().user).get(f"/api/v1/merchant/settlements/{settlement.pk}/statement.pdf")
    assert response.status_code == 404


def test_the_merchant_downloads_its_statement_pdf(day_of_business):  # noqa: F811
    gym, _ = day_of_business
    with time_machine.travel("2026-03-03 02:00 +0800", tick=False):
        run = settlement_run(day=date(2026, 3, 2))
    response = client_for(gym.user).get(f"/api/v1/merchant/settlements/{run.settlements.get().pk}/statement.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
