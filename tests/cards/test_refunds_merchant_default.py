"""``merchant_default`` refunds: a holder (or the regulator, for one card) takes all the escrow left,
without a fee, while the merchant is in default (closing, flagged, frozen, or a complaint about the
card upheld), and never otherwise; each such refund is in the regulator's audit log."""

from datetime import date, timedelta

import pytest

from complaints.services import complaint_close, complaint_file
from core import clock
from core.formatting import mask_account
from escrow.selectors import ledger_ok, ledger_verify
from merchants.services.closure import merchant_closure_announce
from refunds.models import Refund, RefundEntitlement
from refunds.selectors import merchant_default_reasons
from regulator.models import AuditEvent
from regulator.selectors.audit import audit_log_keys, audit_log_rows
from regulator.selectors.jurisdiction import CITY
from regulator.services.actions import merchant_action_take
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def active_card(*, fee_bps: int = 1000):
    """A card with one session used (released), out of cooling-off: a voluntary refund costs a fee."""
    merchant = builders.merchant()
    card = builders.paid_card(builders.session_pack(merchant, price=100_000, sessions=10, refund_fee_bps=fee_bps))
    use(card)
    return builders.fresh(card)


def card_complaint(card):
    return complaint_file(
        actor=card.consumer.user,
        merchant_id=card.merchant_id,
        card_id=card.pk,
        category="refund_refused",
        description="They will not refund my card.",
        source="app",
    )


def ask(card, reason="merchant_default", **headers):
    return client_for(card.consumer.user).post(
        f"/api/v1/cards/{card.pk}/refunds", {"reason": reason}, format="json", **headers
    )


def act(merchant, action: str) -> None:
    merchant_action_take(merchant_id=merchant.pk, actor_id=UserFactory(role="regulator").pk, action=action, reason="t")


def test_merchant_in_good_standing_refuses_a_merchant_default_refund():
    card = active_card()
    response = ask(card)
    assert response.status_code == 409 and response.json()["code"] == "merchant_not_in_default"
    assert not Refund.objects.filter(card=card).exists()


@pytest.mark.parametrize("action", ["flag", "freeze_sales", "freeze_releases"])
def test_flagged_or_frozen_merchant_lets_the_holder_take_all_escrow_without_fee(action):
    card = active_card(fee_bps=1000)
    act(card.merchant, action)
    response = ask(card)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["reason"], body["amount"], body["fee"]) == ("merchant_default", 90_000, 0)
    assert {"due_by", "paid_at", "overdue", "attempts", "last_error"} <= set(body)
    fresh = builders.fresh(card)
    assert fresh.state == "refunded" and fresh.refunded_total == 90_000 and fresh.escrow_account.balance == 0
    assert ledger_ok(ledger_verify())


def test_closing_notice_puts_the_merchant_in_default():
    card = active_card()
    merchant_closure_announce(merchant=card.merchant, closes_on=clock.local_date() + timedelta(days=40), reason="r")
    card.merchant.refresh_from_db()
    assert merchant_default_reasons(merchant=card.merchant) == ["closing"]
    assert ask(card).status_code == 201


def test_upheld_complaint_about_the_card_entitles_only_that_card():
    card = active_card()
    other = builders.paid_card(builders.session_pack(card.merchant), builders.consumer())
    complaint = card_complaint(card)
    regulator = UserFactory(role="regulator")
    complaint_close(complaint_id=complaint.pk, regulator=regulator, resolution="Refund owed.", upheld=True)
    assert RefundEntitlement.objects.filter(card=card, source=f"complaint:{complaint.pk}").exists()
    event = AuditEvent.objects.get(verb="complaint_close")
    assert event.changes["upheld"] == [None, True]
    assert ask(other).json()["code"] == "merchant_not_in_default"
    assert ask(card).status_code == 201


def test_complaint_closed_without_upholding_entitles_nobody():
    card = active_card()
    complaint = card_complaint(card)
    complaint_close(complaint_id=complaint.pk, regulator=UserFactory(role="regulator"), resolution="No.")
    assert not RefundEntitlement.objects.exists()
    assert ask(card).json()["code"] == "merchant_not_in_default"


def test_card_without_escrow_is_not_refundable_even_when_merchant_is_in_default():
    merchant = builders.merchant()
    card = builders.paid_card(builders.session_pack(merchant, price=100_000, sessions=1))
    use(card)  # the only session: the card is exhausted
    act(merchant, "flag")
    response = ask(builders.fresh(card))
    assert response.status_code == 409 and response.json()["code"] == "card_not_refundable"


def test_voluntary_refund_of_a_merchant_in_good_standing_is_unchanged():
    card = active_card(fee_bps=1000)
    body = ask(card, "voluntary").json()
    assert (body["reason"], body["amount"], body["fee"]) == ("voluntary", 81_000, 9_000)


def test_consumer_merchant_default_refund_is_in_the_audit_log_with_actor_and_reason():
    card = active_card()
    act(card.merchant, "flag")
    assert ask(card).status_code == 201
    rows = audit_log_rows(list(audit_log_keys(jurisdiction=CITY, kind="journal", merchant=card.merchant)[:5]))
    refund_rows = [r for r in rows if r["verb"] == "refund"]
    # the holder, masked as regulators see consumers (the minimum necessary)
    assert refund_rows and refund_rows[0]["actor"] == mask_account(card.consumer.user.username)
    assert "merchant_default" in refund_rows[0]["reason"] and "flagged" in refund_rows[0]["reason"]


def test_due_by_is_refund_due_days_after_the_request(settings):
    settings.REFUND_DUE_DAYS = 5
    card = active_card()
    act(card.merchant, "flag")
    refund = Refund.objects.get(pk=ask(card).json()["id"])
    assert refund.due_by - refund.created_at == timedelta(days=5)


# --- the regulator, one card ------------------------------------------------------------------------


def regulator_refund(card, regulator, body=None, **headers):
    return client_for(regulator).post(
        f"/api/v1/regulator/cards/{card.pk}/refund",
        body or {"reason": "merchant_default", "note": "hotline 12345-1"},
        format="json",
        **headers,
    )


def test_regulator_refunds_one_card_of_a_merchant_in_default_once_with_an_audit_line(regulator):
    card = active_card()
    act(card.merchant, "freeze_releases")
    first = regulator_refund(card, regulator, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201, first.content
    assert (first.json()["reason"], first.json()["amount"], first.json()["fee"]) == ("merchant_default", 90_000, 0)
    again = regulator_refund(card, regulator, HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert Refund.objects.filter(card=card).count() == 1
    event = AuditEvent.objects.get(verb="refund_merchant_default")
    assert event.actor == regulator and event.reason == "hotline 12345-1" and event.target == f"card:{card.pk}"
    assert event.changes["default_reasons"] == [None, ["releases_frozen"]]
    assert ledger_ok(ledger_verify())


def test_regulator_card_refund_of_a_merchant_in_good_standing_is_refused(regulator):
    card = active_card()
    response = regulator_refund(card, regulator)
    assert response.status_code == 409 and response.json()["code"] == "merchant_not_in_default"
    assert not AuditEvent.objects.filter(verb="refund_merchant_default").exists()


def test_regulator_card_refund_takes_only_the_merchant_default_reason(regulator):
    card = active_card()
    response = regulator_refund(card, regulator, {"reason": "voluntary"})
    assert response.status_code == 400 and "reason" in response.json()["errors"]


def test_closing_date_is_kept_for_the_holder_pages():
    card = active_card()
    closes_on = clock.local_date() + timedelta(days=31)
    merchant_closure_announce(merchant=card.merchant, closes_on=closes_on, reason="r")
    card.merchant.refresh_from_db()
    assert card.merchant.closes_on == closes_on and isinstance(closes_on, date)
