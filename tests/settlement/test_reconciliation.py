"""Every fen is accounted for against the custody bank's own record."""

from datetime import date

import pytest
import time_machine

from core import clock
from escrow.models import Reconciliation
from escrow.services import reconciliation_run
from merchants.services.settlement import settlement_run
from payments.models import BankTransaction
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.settlement.test_settlement import day_of_business  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_ledger_custody_matches_the_sandbox_banks_record_after_payments_refunds_and_payouts(day_of_business):  # noqa: F811
    with time_machine.travel("2026-03-03 02:00 +0800", tick=False):
        settlement_run(day=date(2026, 3, 2))
    result = reconciliation_run()
    # 3 cards paid (300,000), one refunded (81,000 back), one payout (39,000).
    assert (result.ledger_custody, result.gateway_balance, result.difference) == (180_000, 180_000, 0)
    assert result.matches


def test_a_planted_discrepancy_is_recorded_and_shown_to_the_regulator(day_of_business):  # noqa: F811
    # The bank took 1,234 fen the ledger knows nothing about (say, a charge it mis-booked).
    BankTransaction.objects.create(kind="payout", reference="mystery", amount=-1_234, created_at=clock.now())
    result = reconciliation_run()
    assert result.difference == -1_234 and not result.matches
    reconciliation_run_ok = Reconciliation.objects.count()
    regulator = client_for(UserFactory(role="regulator"))
    body = regulator.get("/api/v1/regulator/reconciliations?discrepancies=1").json()
    assert body["count"] == reconciliation_run_ok
    row = body["results"][0]
    assert (row["difference"], row["matches"], row["gateway"]) == (-1_234, False, "local")


def test_reconciliations_are_for_regulators_only(day_of_business):  # noqa: F811
    gym, _ = day_of_business
    assert client_for(gym.user).get("/api/v1/regulator/reconciliations").status_code == 403
