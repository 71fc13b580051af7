"""The risk model against merchants with known histories: each signal and the ranking come out as a
regulator would expect, every score is kept, and a merchant turning high is flagged with an audit row."""

from datetime import timedelta

import pytest
from django.core.management import call_command

from merchants.models import Merchant
from regulator.models import AuditEvent, RiskAssessment
from regulator.services.risk import compute_risk
from tests.cards import builders as b
from tests.regulator import histories as h

pytestmark = pytest.mark.django_db


def signals_of(merchant: Merchant) -> dict:
    latest = RiskAssessment.objects.filter(merchant=merchant).latest("computed_at")
    return {s["name"]: s for s in latest.signals}


@pytest.fixture
def city():
    return {
        "salon": h.steady_salon(),
        "gym": h.blitz_gym(),
        "school": h.stalled_school(),
        "runaway": h.runaway(),
    }


def test_histories_rank_runaway_first_then_school_and_gym_and_the_steady_salon_last(city):
    run = compute_risk(at=h.AT)
    assert run.merchants == 4
    score = {name: Merchant.objects.get(pk=m.pk).risk_score for name, m in city.items()}
    assert score["runaway"] > score["school"] > score["salon"]
    assert score["runaway"] > score["gym"] > score["salon"]
    levels = {name: Merchant.objects.get(pk=m.pk).risk_level for name, m in city.items()}
    assert levels["salon"] == "low"
    assert levels["gym"] in ("medium", "high") and levels["school"] in ("medium", "high")
    assert levels["runaway"] == "high"


def test_each_signal_points_at_what_went_wrong(city):
    compute_risk(at=h.AT)
    salon, gym, school, runaway = (signals_of(city[k]) for k in ("salon", "gym", "school", "runaway"))
    # The salon: services keep pace with sales.
    assert salon["months_owed"]["value"] < 3 and salon["months_owed"]["contribution"] == 0
    assert salon["sales_surge"]["contribution"] == 0 and salon["redemption_drop"]["contribution"] == 0
    assert salon["discount_depth"]["value"] is None  # sells no stored-value card
    # The gym's blitz: sales of the last 30 days far above its monthly average, at 40 % off.
    assert gym["sales_surge"]["value"] >= 2.5 and gym["sales_surge"]["contribution"] == gym["sales_surge"]["weight"]
    assert gym["discount_depth"]["value"] == pytest.approx(0.4, abs=0.02)
    assert gym["redemption_drop"]["contribution"] == 0
    # The school: services stopped, its students complain and it does not answer.
    assert school["redemption_drop"]["value"] == 1.0
    assert school["redemption_drop"]["contribution"] == school["redemption_drop"]["weight"]
    assert school["overdue_complaints"]["value"] == 2
    assert school["complaints_per_100_cards"]["value"] > 0
    assert school["sales_surge"]["contribution"] == 0
    # The runaway: consumers reject the services it claims.
    assert runaway["rejected_redemptions"]["value"] > 0.05
    assert runaway["overdue_complaints"]["value"] == 4


def test_signal_values_are_explained_from_the_ledger_in_both_languages(city):
    compute_risk(at=h.AT)
    gym = city["gym"]
    escrow = sum(c.escrow_left for c in gym.cards.filter(state__in=["cooling_off", "active", "frozen"]))
    signals = signals_of(gym)
    assert signals["escrow_outstanding"]["value"] == escrow
    yuan = f"¥{escrow // 100:,}.{escrow % 100:02d}"
    assert yuan in signals["escrow_outstanding"]["explanation"]["zh-hans"]
    assert yuan in signals["escrow_outstanding"]["explanation"]["en"]
    for signal in signals.values():
        assert set(signal) == {"name", "value", "weight", "contribution", "explanation"}
        assert 0 <= signal["contribution"] <= signal["weight"]
    assert sum(s["weight"] for s in signals.values()) == 100


def test_score_is_the_rounded_sum_of_contributions_and_each_run_is_kept(city):
    compute_risk(at=h.AT)
    compute_risk(at=h.AT.replace(day=29))
    runaway = city["runaway"]
    assert RiskAssessment.objects.filter(merchant=runaway).count() == 2
    latest = RiskAssessment.objects.filter(merchant=runaway).latest("computed_at")
    assert latest.computed_at == h.AT
    assert abs(latest.score - sum(s["contribution"] for s in latest.signals)) <= 1


def test_filing_threshold_counts_at_the_beijing_line(settings):
    m = b.merchant()
    pack = b.session_pack(m, price=400_000, sessions=10)
    for _ in range(2):
        b.paid_card(pack, at=h.AT.replace(day=20))
    settings.RISK_FILING_THRESHOLD = 800_000
    compute_risk(at=h.AT)
    assert signals_of(m)["filing_threshold"]["value"] is True
    settings.RISK_FILING_THRESHOLD = 800_001
    compute_risk(at=h.AT + timedelta(minutes=1))
    assert signals_of(m)["filing_threshold"]["value"] is False


def test_a_merchant_turning_high_is_flagged_once_with_a_public_warning_and_an_audit_row(city):
    compute_risk(at=h.AT)
    runaway = Merchant.objects.get(pk=city["runaway"].pk)
    assert runaway.flagged and runaway.risk_warning
    event = AuditEvent.objects.get(merchant=runaway, verb="risk_auto_flag")
    assert event.actor is None and event.actor_label == "system"
    assert event.changes["flagged"] == [False, True]
    compute_risk(at=h.AT)
    assert AuditEvent.objects.filter(merchant=runaway, verb="risk_auto_flag").count() == 1
    assert not Merchant.objects.get(pk=city["salon"].pk).flagged


def test_a_merchant_with_no_history_scores_zero_and_low():
    m = b.merchant()
    compute_risk(at=h.AT)
    m.refresh_from_db()
    assert (m.risk_score, m.risk_level, m.risk_computed_at) == (0, "low", h.AT)


def test_compute_risk_command_scores_every_merchant_and_reports_progress(capsys):
    b.merchant(), b.merchant()
    call_command("compute_risk")
    out, err = capsys.readouterr()
    assert "scored 2 merchants" in out
    assert "signals 7/7" in err
    assert RiskAssessment.objects.count() == 2


def test_a_young_merchant_with_steady_sales_shows_no_surge():
    """Selling the same each month for 60 days: the base is its 30 selling days before the last 30,
    not a 90-day window it was not open for."""
    m = b.merchant()
    pack = b.session_pack(m, price=30_000, sessions=3)
    for day in range(0, 61, 3):  # 61, 58, ..., 1 days ago: 11 cards in the 31 base days, 10 in the last 30
        b.paid_card(pack, at=h.AT - timedelta(days=61 - day))
    compute_risk(at=h.AT)
    surge = signals_of(m)["sales_surge"]
    assert surge["value"] == pytest.approx(1.0, abs=0.15) and surge["contribution"] == 0


def test_a_merchant_selling_for_under_a_month_has_no_surge_to_compare():
    m = b.merchant()
    pack = b.session_pack(m, price=30_000, sessions=3)
    for day in range(5):
        b.paid_card(pack, at=h.AT - timedelta(days=day + 1))
    compute_risk(at=h.AT)
    assert signals_of(m)["sales_surge"]["value"] is None


def test_refunds_late_or_failed_count_against_the_merchant_and_are_explained():
    from refunds.services import refund_request

    m = b.merchant()
    pack = b.session_pack(m, price=10_000, sessions=10)
    cards = [b.paid_card(pack) for _ in range(4)]
    # In this test's transaction nothing commits, so the outbox never sends them: they stay pending.
    refunds = [refund_request(consumer=c.consumer, card_id=c.pk, reason="cooling_off") for c in cards]
    compute_risk()
    signal = signals_of(m)["refunds_late"]
    assert signal["value"] == 0 and signal["contribution"] == 0  # pending, within their deadline
    compute_risk(at=refunds[0].due_by + timedelta(hours=1))
    signal = signals_of(m)["refunds_late"]
    assert signal["value"] == 4 and signal["contribution"] == signal["weight"] == 5
    assert "4 refunds" in signal["explanation"]["en"] and "4 笔退款" in signal["explanation"]["zh-hans"]
