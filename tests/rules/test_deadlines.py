"""Deadlines from the rules profile, at their boundaries under each shipped profile (one second or
one day before, on, after), each recording the version of the profile that set it; expected values
are read from the profile file, never written here."""

import io
import re
from datetime import datetime, timedelta

import pypdf
import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from complaints.services import complaint_respond, complaints_mark_overdue
from consumers.contract import card_contract_pdf
from core import calendar, clock
from core.formatting import beijing_date
from core.rules import LEGACY_SETTINGS, Profile, profile_version, rule, rule_label, rules_active
from merchants.models import Merchant
from refunds.errors import CoolingOffExpired
from refunds.models import Refund
from refunds.services import refund_request, refunds_mark_overdue
from regulator.web import HotlineForm
from tests.cards import builders
from tests.complaints.complaints_builders import app_complaint
from tests.conftest import client_for
from tests.factories import sign_in

pytestmark = pytest.mark.django_db

PROFILES = ["beijing", "shanghai"]
# Beijing time, 01:00: still the day before in UTC, so a date counted in UTC would be a day short.
MOMENT = datetime(2026, 3, 10, 1, 0, tzinfo=clock.BEIJING)
SECOND = timedelta(seconds=1)


def at(moment):
    return time_machine.travel(moment, tick=False)


@pytest.fixture(params=PROFILES)
def profile(request, settings) -> Profile:
    """The deployment runs under this profile, its legacy settings at the profile's own values (as
    the settings would have loaded them under it), so no value is an override."""
    settings.RULES_PROFILE = request.param
    active = rules_active()
    for key, (name, inner) in LEGACY_SETTINGS.items():
        if inner is None:
            setattr(settings, name, active.rule(key).value)
    return active


def days(profile: Profile, key: str) -> int:
    return profile.rule(key).value


def page_client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    sign_in(client, user)
    return client


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s*\n\s*", "", "".join(page.extract_text() for page in reader.pages))


# --- refunds: due_by -----------------------------------------------------------------------------------


def cooling_off_card():
    return builders.paid_card(builders.session_pack(builders.merchant(), price=100_000), at=MOMENT)


def test_a_refund_is_due_refund_due_days_after_the_request_and_records_the_version(profile):
    card = cooling_off_card()
    with at(MOMENT + timedelta(hours=1)):
        response = client_for(card.consumer.user).post(
            f"/api/v1/cards/{card.pk}/refunds", {"reason": "cooling_off"}, format="json"
        )
    assert response.status_code == 201, response.content
    refund = Refund.objects.get(pk=response.json()["id"])
    assert refund.due_by == refund.created_at + timedelta(days=days(profile, "refund_due_days"))
    assert refund.rules_version == profile.version
    assert response.json()["rules_version"] == profile.version


def test_a_refund_is_overdue_only_after_its_due_by(profile):
    card = cooling_off_card()
    with at(MOMENT + timedelta(hours=1)):
        refund = refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")  # not sent: pending
    due_by = refund.created_at + timedelta(days=days(profile, "refund_due_days"))
    assert refund.due_by == due_by
    with at(due_by - timedelta(days=1)):
        assert not refund.overdue and refunds_mark_overdue() == 0
    with at(due_by - SECOND):
        assert not refund.overdue and refunds_mark_overdue() == 0
    with at(due_by):
        assert not refund.overdue and refunds_mark_overdue() == 0
    with at(due_by + SECOND):
        assert refund.overdue and refunds_mark_overdue() == 1
    refund.refresh_from_db()
    assert refund.overdue_at == due_by + SECOND


def test_the_regulator_sees_the_version_with_the_deadline(profile, regulator):
    card = cooling_off_card()
    with at(MOMENT + timedelta(hours=1)):
        refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    body = client_for(regulator).get("/api/v1/regulator/refunds").json()
    assert [(item["due_by"] is not None, item["rules_version"]) for item in body["results"]] == [
        (True, profile.version)
    ]


def test_an_env_override_of_refund_due_days_wins_and_the_version_is_still_recorded(settings):
    settings.REFUND_DUE_DAYS = 3
    assert rule("refund_due_days").overridden_by == "REFUND_DUE_DAYS"
    card = cooling_off_card()
    with at(MOMENT + timedelta(hours=1)):
        refund = refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    assert refund.due_by == refund.created_at + timedelta(days=3)
    assert refund.rules_version == profile_version() != ""


# --- closure notice ------------------------------------------------------------------------------------


def close(merchant: Merchant, closes_on):
    return client_for(merchant.user).post(
        "/api/v1/merchant/closure",
        {"closes_on": closes_on.isoformat(), "reason": "lease ends"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_closure_notice_one_day_short_is_refused_naming_the_rule_and_its_basis(profile):
    gym = builders.merchant()
    notice = profile.rule("closure_notice_days")
    earliest = MOMENT.date() + timedelta(days=notice.value)
    with at(MOMENT):
        response = close(gym, earliest - timedelta(days=1))
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["rule"], body["basis"]) == ("notice_too_short", "closure_notice_days", notice.basis_en)
    assert f"{beijing_date(earliest, language='en')} at the earliest (Beijing time)" in body["detail"]
    assert "closes_on" in body["errors"]
    gym.refresh_from_db()
    assert gym.status == Merchant.Status.ACTIVE and gym.closure_rules_version == ""


def test_closure_notice_of_exactly_the_notice_days_is_accepted_and_records_the_version(profile):
    gym = builders.merchant()
    closes_on = MOMENT.date() + timedelta(days=days(profile, "closure_notice_days"))
    with at(MOMENT):
        response = close(gym, closes_on)
    assert response.status_code == 201, response.content
    assert response.json()["rules_version"] == profile.version
    gym.refresh_from_db()
    assert (gym.status, gym.closes_on, gym.closure_rules_version) == ("closing", closes_on, profile.version)


def test_closure_notice_a_day_longer_is_accepted(profile):
    closes_on = MOMENT.date() + timedelta(days=days(profile, "closure_notice_days") + 1)
    with at(MOMENT):
        assert close(builders.merchant(), closes_on).status_code == 201


def test_the_closure_page_says_in_words_why_the_day_is_too_soon_and_the_earliest_day(profile):
    gym = builders.merchant()
    notice = profile.rule("closure_notice_days")
    earliest = MOMENT.date() + timedelta(days=notice.value)
    with at(MOMENT):
        html = page_client(gym.user).post(
            reverse("web-merchant-closure"),
            {"closes_on": (earliest - timedelta(days=1)).isoformat(), "reason": "Moving"},
        )
    assert html.status_code == 200
    text = html.content.decode()
    words = f"Closing needs {notice.value} days' notice ({rule_label(notice.key)}, under {notice.basis_en})"
    assert escape(words) in text
    assert f"{beijing_date(earliest, language='en')} at the earliest (Beijing time)" in text
    assert "closure_notice_days" not in text  # words, never the key


def test_the_closure_form_states_the_notice_days_its_basis_and_the_earliest_day(profile):
    gym = builders.merchant()
    notice = profile.rule("closure_notice_days")
    with at(MOMENT):
        text = page_client(gym.user).get(reverse("web-merchant-closure")).content.decode()
    earliest = MOMENT.date() + timedelta(days=notice.value)
    assert f"The law asks for {notice.value} days" in text
    assert escape(notice.basis_en) in text
    assert (
        f"At least {notice.value} days from today: {beijing_date(earliest, language='en')} (Beijing time) or later."
        in text
    )


# --- complaints: respond_by ----------------------------------------------------------------------------


@pytest.mark.parametrize("urgent,key", [(False, "complaint_response_hours"), (True, "complaint_urgent_response_hours")])
def test_a_complaint_answered_on_its_deadline_is_in_time_and_a_second_later_is_overdue(profile, urgent, key):
    gym, alice = builders.merchant(), builders.consumer()
    with at(MOMENT):
        on_time = app_complaint(alice, gym, urgent=urgent)
        late = app_complaint(alice, gym, urgent=urgent)
    respond_by = MOMENT + timedelta(hours=profile.rule(key).value)
    assert on_time.respond_by == late.respond_by == respond_by
    assert on_time.rules_version == profile.version
    with at(respond_by - SECOND):
        assert complaints_mark_overdue() == 0
    with at(respond_by):
        assert complaints_mark_overdue() == 0
        answered = complaint_respond(complaint_id=on_time.pk, merchant=gym, text="Refunded.")
    assert answered.state == "responded" and answered.overdue_at is None
    with at(respond_by + SECOND):
        assert complaints_mark_overdue() == 1
    late.refresh_from_db()
    assert late.state == "overdue" and late.overdue_at == respond_by + SECOND


def test_the_complaint_shows_its_version_with_its_deadline(profile):
    gym, alice = builders.merchant(), builders.consumer()
    with at(MOMENT):
        response = client_for(alice.user).post(
            "/api/v1/complaints",
            {"merchant": str(gym.pk), "category": "refund_refused", "description": "No refund.", "source": "app"},
            format="json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    hours = profile.rule("complaint_response_hours").value
    assert datetime.fromisoformat(body["respond_by"]) == MOMENT + timedelta(hours=hours)
    assert body["rules_version"] == profile.version


def test_the_complaint_forms_state_the_hours_of_the_profile(profile):
    alice = builders.consumer()
    text = page_client(alice.user).get(reverse("web-consumer-complaint-new")).content.decode()
    urgent, normal = (
        profile.rule(key).value for key in ("complaint_urgent_response_hours", "complaint_response_hours")
    )
    assert f"The merchant must answer within {urgent} hours instead of {normal}." in text
    assert str(HotlineForm().fields["urgent"].help_text) == f"The merchant must answer within {urgent} hours."


def test_an_env_override_of_the_complaint_hours_wins_and_the_version_is_still_recorded(settings):
    settings.COMPLAINT_URGENT_RESPONSE_HOURS = 1
    gym, alice = builders.merchant(), builders.consumer()
    with at(MOMENT):
        complaint = app_complaint(alice, gym, urgent=True)
    assert complaint.respond_by == MOMENT + timedelta(hours=1)
    assert complaint.rules_version == profile_version()


# --- cooling-off ---------------------------------------------------------------------------------------


def test_a_cooling_off_refund_is_accepted_until_the_last_second_and_refused_at_its_end(profile):
    first, second = cooling_off_card(), cooling_off_card()
    ends_at = calendar.period_ends_at(MOMENT.date(), days(profile, "cooling_off_days"))
    assert first.cooling_off_ends_at == second.cooling_off_ends_at == ends_at
    with at(ends_at - SECOND):
        assert refund_request(consumer=first.consumer, card_id=first.pk, reason="cooling_off").amount == first.price
    with at(ends_at), pytest.raises(CoolingOffExpired) as refused:
        refund_request(consumer=second.consumer, card_id=second.pk, reason="cooling_off")
    assert refused.value.rule.key == "cooling_off_days"  # the refusal names its rule


def test_a_late_cooling_off_refund_is_refused_naming_its_rule_and_basis(profile):
    card = cooling_off_card()
    ends_at = calendar.period_ends_at(MOMENT.date(), days(profile, "cooling_off_days"))
    with at(ends_at):
        response = client_for(card.consumer.user).post(
            f"/api/v1/cards/{card.pk}/refunds", {"reason": "cooling_off"}, format="json"
        )
    body = response.json()
    assert (response.status_code, body["code"], body["rule"]) == (409, "cooling_off_expired", "cooling_off_days")
    assert body["basis"] == profile.rule("cooling_off_days").basis_zh


def test_the_contract_states_the_cooling_off_end_and_cites_the_basis_of_its_terms(profile):
    card = cooling_off_card()
    cooling_off = profile.rule("cooling_off_days")
    with at(MOMENT + timedelta(hours=1)):
        text = pdf_text(card_contract_pdf(card=card))
    ends_at = calendar.period_ends_at(MOMENT.date(), cooling_off.value)
    last_day = ends_at.date() - timedelta(days=1)
    assert f"{ends_at.year}年{ends_at.month}月{ends_at.day}日 00:00（北京时间）" in text
    assert f"第{cooling_off.value}日（{last_day.month}月{last_day.day}日）24:00 届满" in text
    assert "法定节假日" in text
    assert f"{days(profile, 'refund_due_days')}日内退回" in text
    assert f"依据{profile.name_zh}规则（版本 {profile.version}）" in text
    assert cooling_off.basis_zh in text
    assert profile.rule("refund_due_days").basis_zh in text


def test_a_cooling_off_period_ending_on_a_statutory_holiday_runs_on_and_the_contract_says_so(profile):
    cooling_off = days(profile, "cooling_off_days")
    national_day = datetime(2026, 10, 1, 10, 0, tzinfo=clock.BEIJING)
    paid_at = national_day - timedelta(days=cooling_off)  # its last day would be the holiday
    card = builders.paid_card(builders.session_pack(builders.merchant()), at=paid_at)
    moved = calendar.last_day(paid_at.date(), cooling_off)
    assert moved > national_day.date()
    assert card.cooling_off_ends_at == clock.local_midnight(moved + timedelta(days=1))
    text = pdf_text(card_contract_pdf(card=card))
    assert f"第{cooling_off}日为法定节假日，顺延至其后的第一个工作日" in text
    assert f"购卡次日起第{(moved - paid_at.date()).days}日（{moved.month}月{moved.day}日）24:00 届满" in text


def test_the_merchant_page_states_the_cooling_off_days_their_basis_and_the_holiday_rule(profile):
    gym, alice = builders.merchant(), builders.consumer()
    cooling_off = profile.rule("cooling_off_days")
    text = page_client(alice.user).get(reverse("web-consumer-merchant", args=[gym.pk])).content.decode()
    assert f"For {cooling_off.value} days after the purchase day" in text
    assert "statutory holiday, the period runs on to the first working day after it" in text
    assert escape(cooling_off.basis_en) in text


# --- the error schema ----------------------------------------------------------------------------------


def test_the_openapi_error_schema_documents_rule_and_basis_as_optional():
    from drf_spectacular.generators import SchemaGenerator

    error = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]["Error"]
    assert {"rule", "basis"} <= set(error["properties"])
    assert not {"rule", "basis"} & set(error.get("required", []))
