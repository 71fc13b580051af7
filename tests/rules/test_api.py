"""GET /api/v1/rules (anyone) and refusals that cite the rule they were made under."""

import pytest
from django.utils import translation
from rest_framework.test import APIClient, APIRequestFactory

from core.errors import DomainError
from core.exceptions import api_exception_handler
from core.rules import rule

pytestmark = pytest.mark.django_db


class NoticeTooShortForTest(DomainError):
    status_code = 400
    code = "notice_too_short"


def test_anyone_reads_the_active_profile():
    response = APIClient().get("/api/v1/rules")
    assert response.status_code == 200
    body = response.json()
    assert (body["profile"], body["version"]) == ("beijing", "2026.12.3")
    assert (body["cooling_off_days"], body["refund_due_days"], body["closure_notice_days"]) == (7, 5, 30)
    assert (body["complaint_response_hours"], body["complaint_urgent_response_hours"]) == (48, 2)
    assert (body["dispute_window_days"], body["dispute_decision_days"]) == (7, 15)
    assert {item["key"] for item in body["limits"]} == {
        "max_price",
        "education_max_sessions",
        "education_max_days",
        "transfers_per_card_per_year",
    }
    assert body["filing"]["balance_threshold"] == 50_000_000
    assert {item["key"] for item in body["filing"]["rules"]} >= {
        "filing_balance_threshold",
        "transport_filing_collected_threshold",
    }
    assert len(body["districts"]) == 16


def test_every_rule_comes_with_its_basis_and_date():
    body = APIClient().get("/api/v1/rules").json()
    cooling_off = next(item for item in body["rules"] if item["key"] == "cooling_off_days")
    assert cooling_off["basis_zh"].startswith("《北京市单用途预付卡管理条例》")
    assert cooling_off["basis_en"].startswith("Beijing Single-Purpose Prepaid Card Regulations")
    assert (cooling_off["effective"], cooling_off["industry"], cooling_off["overridden_by"]) == (
        "2022-06-01",
        None,
        None,
    )
    assert all(item["basis_zh"] and item["basis_en"] and item["effective"] for item in body["rules"])
    education = next(item for item in body["industries"] if item["key"] == "education")
    assert education["categories"] == ["education"]


def test_the_holiday_calendar_reports_its_gaps():
    calendar = APIClient().get("/api/v1/rules").json()["holiday_calendar"]
    assert calendar["package"] == "chinesecalendar 1.11.0"
    assert calendar["package_years"] == [2004, 2026]
    assert calendar["profile_years"] == []


def test_a_stale_token_does_not_stop_anyone_reading_the_rules():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/v1/rules").status_code == 200


def test_a_deployment_override_shows_in_the_rules(settings):
    settings.REFUND_DUE_DAYS = 3
    body = APIClient().get("/api/v1/rules").json()
    assert body["refund_due_days"] == 3
    due = next(item for item in body["rules"] if item["key"] == "refund_due_days")
    assert (due["value"], due["overridden_by"]) == (3, "REFUND_DUE_DAYS")


def test_the_operation_is_in_the_openapi_schema():
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/rules"]["get"]
    assert operation["operationId"] == "rules_get"
    assert "200" in operation["responses"]


def _handled(exc: Exception, language: str):
    request = APIRequestFactory().get("/api/v1/anything")
    with translation.override(language):
        return api_exception_handler(exc, {"request": request})


def test_a_refusal_under_a_rule_names_the_rule_and_its_basis():
    notice = rule("closure_notice_days")
    response = _handled(NoticeTooShortForTest("Closing needs 30 days' notice.", rule=notice), "zh-hans")
    assert response.status_code == 400
    assert response.data["code"] == "notice_too_short"
    assert response.data["rule"] == "closure_notice_days"
    assert response.data["basis"] == notice.basis_zh
    assert _handled(NoticeTooShortForTest(rule=notice), "en").data["basis"] == notice.basis_en


def test_a_refusal_without_a_rule_keeps_its_body():
    response = _handled(NoticeTooShortForTest("no"), "en")
    assert set(response.data) == {"code", "detail", "errors"}
