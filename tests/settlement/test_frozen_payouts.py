"""While the regulator has frozen a merchant's releases its money stays in custody: the day is
still settled, but the payout is held, with its reason, until the freeze is lifted; then it is
paid once."""

from datetime import date

import pytest
import time_machine
from django.db.models import Sum

from core.models import OutboxMessage
from core.outbox import outbox_deliver
from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from merchants.models import Settlement
from merchants.services.settlement import payouts_deliver, settlement_payout_retry, settlement_run
from payments.models import BankTransaction
from regulator.models import AuditEvent
from regulator.services.actions import merchant_action_take
from tests.cards import builders
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.settlement.test_settlement import day_of_business  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

SETTLED = "2026-03-03 02:00 +0800"


def at(moment):
    return time_machine.travel(moment, tick=False)


def act(merchant, action, *, capture):
    regulator = UserFactory(role="regulator")
    with capture(execute=True):
        return merchant_action_take(merchant_id=merchant.pk, actor_id=regulator.pk, action=action, reason="inspection")


def custody_balance() -> int:
    """Every custody account together: the city-wide one and each merchant's."""
    return Account.objects.filter(kind=Account.Kind.CUSTODY).aggregate(total=Sum("balance"))["total"] or 0


def test_a_frozen_merchants_settlement_is_computed_but_its_payout_held_in_custody(
    day_of_business,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    gym, _ = day_of_business
    other = builders.merchant()
    with at("2026-03-02 12:00 +0800"):
        builders.paid_card(builders.session_pack(other, price=20_000, sessions=2))
    act(gym, "freeze_releases", capture=django_capture_on_commit_callbacks)
    custody = custody_balance()
    with at(SETTLED):
        settlement_run(day=date(2026, 3, 2))
    settlement = Settlement.objects.get(merchant=gym)
    assert (settlement.released, settlement.fees, settlement.payout_amount) == (30_000, 9_000, 39_000)
    assert settlement.payout_state == "held"
    assert "froze" in settlement.held_reason or "冻结" in settlement.held_reason
    assert not JournalEntry.objects.filter(code="payout").exists()
    assert not BankTransaction.objects.filter(kind="payout").exists()
    assert custody_balance() == custody
    assert Account.objects.get(pk=gym.settlement_account_id).balance == 39_000  # still owed, in custody

    row = client_for(gym.user).get("/api/v1/merchant/settlements").json()["results"][0]
    assert (row["payout_state"], row["held_reason"]) == ("held", settlement.held_reason)
    with at(SETTLED):
        settlement_run(day=date(2026, 3, 2))  # the job again: still held, nothing paid
    assert Settlement.objects.get(pk=settlement.pk).payout_state == "held"
    assert ledger_ok(ledger_verify())


def test_unfreezing_pays_the_held_payouts_once(day_of_business, django_capture_on_commit_callbacks):  # noqa: F811
    gym, _ = day_of_business
    act(gym, "freeze_releases", capture=django_capture_on_commit_callbacks)
    with at(SETTLED):
        run = settlement_run(day=date(2026, 3, 2))
    act(gym, "unfreeze_releases", capture=django_capture_on_commit_callbacks)
    settlement = Settlement.objects.get(merchant=gym)
    assert (settlement.payout_state, settlement.held_reason) == ("paid", "")
    event = AuditEvent.objects.filter(verb="unfreeze_releases").get()
    assert event.changes["payouts_released"] == [0, 1]

    # Whatever runs again afterwards pays nothing more: the job, the delivery, a retry, another
    # freeze and unfreeze.
    with at(SETTLED):
        settlement_run(day=date(2026, 3, 2))
    payouts_deliver(run=run)
    settlement_payout_retry(settlement_id=settlement.pk)
    act(gym, "freeze_releases", capture=django_capture_on_commit_callbacks)
    act(gym, "unfreeze_releases", capture=django_capture_on_commit_callbacks)
    for message in OutboxMessage.objects.filter(topic="payout.send"):
        outbox_deliver(message_id=message.pk)
    assert JournalEntry.objects.filter(code="payout").count() == 1
    assert BankTransaction.objects.filter(kind="payout").get().amount == -39_000
    assert Account.objects.get(pk=gym.settlement_account_id).balance == 0
    assert ledger_ok(ledger_verify())


def test_a_payout_delivered_alone_is_held_when_the_merchant_was_frozen_after_settling(
    day_of_business,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    gym, _ = day_of_business
    with at(SETTLED):
        settlement_run(day=date(2026, 3, 2), deliver=False)  # settled; the payout waits in the outbox
    act(gym, "freeze_releases", capture=django_capture_on_commit_callbacks)
    (message,) = OutboxMessage.objects.filter(topic="payout.send", state="pending")
    assert outbox_deliver(message_id=message.pk) == "sent"  # the one-at-a-time path (other gateways)
    assert Settlement.objects.get(merchant=gym).payout_state == "held"
    assert not BankTransaction.objects.filter(kind="payout").exists()
    act(gym, "unfreeze_releases", capture=django_capture_on_commit_callbacks)
    assert Settlement.objects.get(merchant=gym).payout_state == "paid"
    assert BankTransaction.objects.filter(kind="payout").count() == 1
