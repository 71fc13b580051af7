"""Filing end to end: the daily check on real cards, submit, accept, return and submit again, the
refusals with their codes, who may do what, and an overdue filing as a risk signal."""

from datetime import datetime, timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from core import clock
from core.errors import InvalidInput
from core.rules import rules_active
from merchants.errors import FilingNotRequired, FilingNotSubmitted
from merchants.models import Filing
from merchants.selectors import filing_measures, filings_for_regulator, merchant_filing_status
from merchants.services.filing import filing_require, filing_submit, filing_trigger, filings_check
from regulator.models import AuditEvent, RiskAssessment
from regulator.services.filings import regulator_filing_accept, regulator_filing_return
from regulator.services.risk import compute_risk
from tests.cards import builders as b
from tests.conftest import client_for
from tests.filing.helpers import require, transport_profile

pytestmark = pytest.mark.django_db

DETAILS = {"legal_representative": "王芳", "contact_phone": "010-6512 3456", "deposit_bank": "北京银行朝阳支行"}


def pdf(name: str = "licence.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"%PDF-1.4 test", content_type="application/pdf")


def submit(merchant, **extra) -> Filing:
    return filing_submit(merchant=merchant, **{**DETAILS, "documents": [pdf()], **extra})


# --- the daily check ------------------------------------------------------------------------------


def test_the_daily_check_requires_a_filing_of_a_merchant_at_the_line_and_only_once(settings):
    settings.RISK_FILING_THRESHOLD = 800_000  # the deployment's override of the profile's line
    big, small = b.merchant(), b.merchant()
    pack = b.session_pack(big, price=400_000)
    b.paid_card(pack), b.paid_card(pack)
    b.paid_card(b.session_pack(small, price=400_000))
    assert filing_measures(merchant=big).balance == 800_000

    at = datetime(2026, 11, 4, 9, 0, tzinfo=clock.BEIJING)
    assert filings_check(at=at) == 1
    filing = Filing.objects.get(merchant=big)
    assert (filing.state, filing.trigger, filing.measured, filing.threshold, filing.unit) == (
        "required",
        "filing_balance_threshold",
        800_000,
        800_000,
        "fen",
    )
    assert filing.profile_version == rules_active().version
    assert filing.due_on.isoformat() == "2026-11-11"
    assert not Filing.objects.filter(merchant=small).exists()
    assert filings_check(at=at) == 0
    assert merchant_filing_status(merchant=big) == "not_filed"
    assert merchant_filing_status(merchant=small) == "not_required"


def test_the_daily_check_counts_unredeemed_cards_for_a_transport_style_merchant():
    profile = transport_profile(category="fitness", transport_filing_unredeemed_cards=2)
    m = b.merchant(category="fitness")
    pack = b.session_pack(m, price=10_000)
    b.paid_card(pack), b.paid_card(pack)
    assert filings_check(profile=profile) == 0  # 2 cards: not more than 2
    b.paid_card(pack)
    assert filings_check(profile=profile) == 1
    filing = Filing.objects.get(merchant=m)
    assert (filing.trigger, filing.measured, filing.threshold, filing.unit) == (
        "transport_filing_unredeemed_cards",
        3,
        2,
        "cards",
    )


def test_a_merchant_has_one_open_filing_at_a_time():
    m = b.merchant()
    require(m)
    assert filing_require(merchant=m, trigger=_balance_trigger(m))[1] is False
    first = Filing.objects.get(merchant=m)
    with pytest.raises(IntegrityError), transaction.atomic():
        Filing.objects.create(
            merchant=m, trigger="x", measured=1, threshold=1, unit="fen", profile="beijing", profile_version="v",
            due_on=first.due_on, due_by=first.due_by, created_at=clock.now(),
        )  # fmt: skip


def _balance_trigger(m):
    from merchants.selectors import FilingMeasures

    return filing_trigger(category=m.category, measures=FilingMeasures(balance=10**9, collected=0, unredeemed=0))


# --- submit, accept, return ----------------------------------------------------------------------


def test_submit_then_accept_files_the_merchant_with_an_audit_line(regulator):
    m = b.merchant()
    filing = require(m)
    filing = submit(m)
    assert (filing.state, filing.submissions) == ("submitted", 1)
    assert filing.documents.get().name == "licence.pdf"
    filing = regulator_filing_accept(filing_id=filing.pk, regulator=regulator, note="齐全")
    assert filing.state == "accepted" and filing.decided_by == regulator
    assert merchant_filing_status(merchant=m) == "filed"
    event = AuditEvent.objects.get(verb="filing_accept")
    assert (event.merchant_id, event.actor_id, event.changes["state"]) == (
        m.pk,
        regulator.pk,
        ["submitted", "accepted"],
    )
    assert filings_check() == 0  # filed: no new filing


def test_a_returned_filing_shows_the_note_and_is_submitted_again(regulator):
    m = b.merchant()
    require(m)
    filing = submit(m)
    filing = regulator_filing_return(filing_id=filing.pk, regulator=regulator, note="缺少资金存管协议")
    assert (filing.state, filing.regulator_note) == ("returned", "缺少资金存管协议")
    assert merchant_filing_status(merchant=m) == "not_filed"
    filing = submit(m, documents=[pdf("agreement.pdf")])
    assert (filing.state, filing.submissions) == ("submitted", 2)
    assert sorted(filing.documents.values_list("submission", "name")) == [(1, "licence.pdf"), (2, "agreement.pdf")]
    regulator_filing_accept(filing_id=filing.pk, regulator=regulator, note="")
    assert AuditEvent.objects.filter(verb__in=["filing_return", "filing_accept"]).count() == 2


def test_a_submit_when_none_is_required_is_refused_naming_the_rule():
    with pytest.raises(FilingNotRequired) as refused:
        submit(b.merchant())
    assert refused.value.rule is not None and refused.value.rule.key == "filing_balance_threshold"


def test_a_second_submit_while_the_regulator_has_it_is_refused():
    m = b.merchant()
    require(m)
    submit(m)
    with pytest.raises(FilingNotRequired):
        submit(m)


def test_a_submit_needs_a_document_of_an_accepted_kind():
    m = b.merchant()
    require(m)
    with pytest.raises(InvalidInput) as refused:
        submit(m, documents=[])
    assert "documents" in refused.value.errors
    with pytest.raises(InvalidInput):
        submit(m, documents=[SimpleUploadedFile("run.exe", b"MZ", content_type="application/octet-stream")])
    assert Filing.objects.get(merchant=m).state == "required"


def test_accept_or_return_of_a_filing_not_submitted_is_refused(regulator):
    filing = require(b.merchant())
    with pytest.raises(FilingNotSubmitted):
        regulator_filing_accept(filing_id=filing.pk, regulator=regulator)
    with pytest.raises(FilingNotSubmitted):
        regulator_filing_return(filing_id=filing.pk, regulator=regulator, note="x")


def test_a_return_needs_a_note(regulator):
    m = b.merchant()
    require(m)
    filing = submit(m)
    with pytest.raises(InvalidInput):
        regulator_filing_return(filing_id=filing.pk, regulator=regulator, note="  ")


# --- the API ---------------------------------------------------------------------------------------


def test_api_merchant_reads_its_status_and_submits_with_documents(regulator):
    m = b.merchant()
    client = client_for(m.user)
    assert client.get("/api/v1/merchant/filing").json() == {"status": "not_required", "filing": None}
    require(m)
    body = client.get("/api/v1/merchant/filing").json()
    assert body["status"] == "not_filed"
    assert body["filing"]["state"] == "required" and body["filing"]["trigger"]["rule"] == "filing_balance_threshold"
    assert body["filing"]["trigger"]["basis"]
    response = client.post(
        "/api/v1/merchant/filing", {**DETAILS, "documents": [pdf(), pdf("b.png")]}, format="multipart"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["filing"]["state"] == "submitted"
    assert len(response.json()["filing"]["documents"]) == 2


def test_api_submit_when_none_is_required_is_409_with_rule_and_basis():
    client = client_for(b.merchant().user)
    response = client.post("/api/v1/merchant/filing", {**DETAILS, "documents": [pdf()]}, format="multipart")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "filing_not_required"
    assert body["rule"] == "filing_balance_threshold" and body["basis"]


def test_api_regulator_lists_by_state_and_overdue_and_accepts(regulator):
    m, late = b.merchant(), b.merchant()
    require(m)
    require(late, at=clock.now() - timedelta(days=30))
    filing = submit(m)
    client = client_for(regulator)
    ids = lambda query: [row["id"] for row in client.get(f"/api/v1/regulator/filings{query}").json()["results"]]  # noqa: E731
    assert ids("?state=submitted") == [str(filing.pk)]
    late_id = str(Filing.objects.get(merchant=late).pk)
    assert ids("?overdue=true") == [late_id]
    assert late_id not in ids("?overdue=false")
    response = client.post(f"/api/v1/regulator/filings/{filing.pk}/accept", {"note": "ok"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "accepted"
    response = client.post(f"/api/v1/regulator/filings/{late_id}/accept", {"note": "ok"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "filing_not_submitted")
    response = client.post(f"/api/v1/regulator/filings/{late_id}/return", {"note": "x"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "filing_not_submitted")


def test_api_a_consumer_or_a_merchant_cannot_accept_or_list(consumer):
    m = b.merchant()
    require(m)
    filing = submit(m)
    for user in (consumer, m.user):
        client = client_for(user)
        assert (
            client.post(f"/api/v1/regulator/filings/{filing.pk}/accept", {"note": ""}, format="json").status_code == 403
        )
        assert client.get("/api/v1/regulator/filings").status_code == 403
    assert Filing.objects.get(pk=filing.pk).state == "submitted"


def test_a_document_opens_for_its_merchant_and_the_regulator_only(regulator, consumer):
    m = b.merchant()
    require(m)
    document = submit(m).documents.get()
    url = f"/api/v1/filings/documents/{document.pk}"
    assert client_for(m.user).get(url).status_code == 200
    assert b"".join(client_for(regulator).get(url).streaming_content) == b"%PDF-1.4 test"
    assert client_for(consumer).get(url).status_code == 404
    assert client_for(b.merchant().user).get(url).status_code == 404


def test_the_operations_are_in_the_openapi_schema():
    paths = APIClient().get("/api/v1/schema/?format=json").json()["paths"]
    assert paths["/api/v1/merchant/filing"]["post"]["operationId"] == "merchant_filing_submit"
    assert "multipart/form-data" in paths["/api/v1/merchant/filing"]["post"]["requestBody"]["content"]
    assert paths["/api/v1/regulator/filings"]["get"]["operationId"] == "regulator_filing_list"
    for action in ("accept", "return"):
        operation = paths[f"/api/v1/regulator/filings/{{filing_id}}/{action}"]["post"]
        assert "409" in operation["responses"]


# --- overdue: a risk signal ------------------------------------------------------------------------


def signals_of(merchant) -> dict:
    return {s["name"]: s for s in RiskAssessment.objects.filter(merchant=merchant).latest("computed_at").signals}


def test_an_overdue_filing_is_a_risk_signal_and_submitting_clears_it():
    m = b.merchant()  # no escrow: only the overdue filing can count
    start = datetime(2026, 11, 4, 9, 0, tzinfo=clock.BEIJING)
    filing = require(m, at=start)
    compute_risk(at=filing.due_by - timedelta(minutes=1))
    signal = signals_of(m)["filing_threshold"]
    assert (signal["value"], signal["contribution"]) == (False, 0)
    assert "past its deadline" not in signal["explanation"]["en"]
    compute_risk(at=filing.due_by)
    signals = signals_of(m)
    signal = signals["filing_threshold"]
    assert (signal["value"], signal["contribution"]) == (False, signal["weight"])
    assert "filing the rules require is 1 day(s) past its deadline" in signal["explanation"]["en"]
    assert "备案已逾期 1 天" in signal["explanation"]["zh-hans"]
    assert len(signals) == 11 and sum(s["weight"] for s in signals.values()) == 100
    with time_machine.travel(filing.due_by + timedelta(days=2), tick=False):
        assert Filing.objects.get(pk=filing.pk).overdue
        assert list(filings_for_regulator(overdue=True)) == [filing]
        submit(m)
        compute_risk()
    assert signals_of(m)["filing_threshold"]["contribution"] == 0
