"""Inspection cases through the API (API.md, Additions v1.1): open, list, one case with everything
in it, findings with files (multipart), documents asked of the merchant and sent by it, measures,
close, the downloads' headers, the report PDF, and a case outside the jurisdiction answering 404."""

from __future__ import annotations

import base64
import io
import re

import pypdf
import pytest

from regulator.models import AuditEvent, CaseFile, InspectionCase
from regulator.selectors.jurisdiction import Jurisdiction
from regulator.services import cases as services
from regulator.services.actions import merchant_action_take
from tests.cards import builders
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.regulator.cases_helpers import (
    JPEG,
    NOT_A_PDF,
    PDF,
    PNG,
    sha256,
    upload,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_in_tmp")]

CASES = "/api/v1/regulator/cases"


@pytest.fixture
def inspector(db):
    return UserFactory(role="regulator", username="inspector")


@pytest.fixture
def api(inspector):
    return client_for(inspector)


@pytest.fixture
def gym(db):
    return builders.merchant(name="阳光健身")


def opened(api, merchant, reason="投诉集中，疑似停课") -> dict:
    response = api.post(CASES, {"merchant": str(merchant.pk), "reason": reason}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def text_of(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "".join(re.sub(r"\s*\n\s*", "", page.extract_text()) for page in reader.pages)


def test_opening_a_case_answers_201_with_its_id_and_state_open(api, gym):
    body = opened(api, gym)

    assert body["state"] == "open" and body["id"] == str(InspectionCase.objects.get().pk)
    assert (body["merchant"], body["merchant_name"], body["opened_by"]) == (str(gym.pk), "阳光健身", "inspector")
    assert [line["verb"] for line in body["audit"]] == ["case_open"]


def test_opening_again_with_the_same_idempotency_key_replays_the_case(api, gym):
    body = {"merchant": str(gym.pk), "reason": "投诉集中"}

    first = api.post(CASES, body, format="json", HTTP_IDEMPOTENCY_KEY="open-1")
    again = api.post(CASES, body, format="json", HTTP_IDEMPOTENCY_KEY="open-1")

    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] and InspectionCase.objects.count() == 1


def test_opening_refuses_a_missing_merchant_and_a_missing_reason(api, gym):
    missing = api.post(CASES, {"merchant": "00000000-0000-0000-0000-000000000000", "reason": "x"}, format="json")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    blank = api.post(CASES, {"merchant": str(gym.pk)}, format="json")
    assert blank.status_code == 400 and "reason" in blank.json()["errors"]


def test_the_list_is_paginated_and_filtered_by_state_and_merchant(api, gym, inspector):
    other = builders.merchant()
    first, second = opened(api, gym), opened(api, other)
    services.case_close(regulator=inspector, case_id=first["id"], conclusion="结案")

    everything = api.get(CASES).json()
    assert everything["count"] == 2 and {"next", "previous", "results"} <= set(everything)
    assert [row["id"] for row in api.get(CASES, {"state": "open"}).json()["results"]] == [second["id"]]
    assert [row["id"] for row in api.get(CASES, {"merchant": str(gym.pk)}).json()["results"]] == [first["id"]]
    assert api.get(CASES, {"state": "sleeping"}).status_code == 400


def test_a_finding_with_files_is_posted_as_multipart_and_kept_with_its_sha256(api, gym):
    case = opened(api, gym)

    response = api.post(
        f"{CASES}/{case['id']}/findings",
        {"text": "前台无人，课程已停。", "files": [upload("门店.jpg", JPEG, "image/jpeg"), upload("通知.pdf", PDF)]},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    finding = response.json()
    assert finding["text"] == "前台无人，课程已停。" and finding["author"] == "inspector"
    files = {file["name"]: file for file in finding["files"]}
    assert files["门店.jpg"]["sha256"] == sha256(JPEG) and files["门店.jpg"]["content_type"] == "image/jpeg"
    assert files["通知.pdf"]["sha256"] == sha256(PDF) and files["通知.pdf"]["size"] == len(PDF)
    assert files["通知.pdf"]["url"] == f"/api/v1/case-files/{files['通知.pdf']['id']}"
    detail = api.get(f"{CASES}/{case['id']}").json()
    assert detail["findings"][0]["files"] == finding["files"]


def test_a_file_that_is_not_what_its_name_says_is_refused_with_400(api, gym):
    case = opened(api, gym)

    response = api.post(
        f"{CASES}/{case['id']}/findings",
        {"text": "发票", "files": [upload("invoice.pdf", NOT_A_PDF)]},
        format="multipart",
    )

    body = response.json()
    assert (response.status_code, body["code"]) == (400, "case_file_type_not_allowed")
    assert "invoice.pdf" in body["errors"]["files"][0]
    assert not CaseFile.objects.exists()


def test_a_file_over_the_limit_is_refused_with_400(api, gym, settings):
    settings.CASE_FILE_MAX_BYTES = 16
    case = opened(api, gym)

    response = api.post(
        f"{CASES}/{case['id']}/findings", {"text": "x", "files": [upload("a.pdf", PDF)]}, format="multipart"
    )

    assert (response.status_code, response.json()["code"]) == (400, "case_file_too_large")


def test_a_download_is_an_attachment_of_the_type_found_never_sniffed_with_its_digest(api, gym):
    case = opened(api, gym)
    finding = api.post(
        f"{CASES}/{case['id']}/findings",
        {"text": "x", "files": [upload("scan.pdf", PNG, "application/pdf")]},
        format="multipart",
    ).json()
    (file,) = finding["files"]

    response = api.get(file["url"])

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("attachment;") and "scan.png" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["Repr-Digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(sha256(PNG))).decode()}:"


def test_the_merchant_sees_the_request_sends_files_and_downloads_only_them(api, gym):
    case = opened(api, gym)
    evidence = api.post(
        f"{CASES}/{case['id']}/findings", {"text": "x", "files": [upload("e.pdf", PDF)]}, format="multipart"
    ).json()["files"][0]
    asked = api.post(f"{CASES}/{case['id']}/document-requests", {"text": "近三个月签到表"}, format="json")
    assert asked.status_code == 201 and asked.json()["state"] == "open"
    request_id = asked.json()["id"]
    merchant = client_for(gym.user)

    listed = merchant.get("/api/v1/merchant/document-requests").json()
    assert listed["count"] == 1 and listed["results"][0]["text"] == "近三个月签到表"
    assert "reason" not in listed["results"][0]  # nothing of the case but the request
    sent = merchant.post(
        f"/api/v1/merchant/document-requests/{request_id}/submit",
        {"note": "见附件", "files": [upload("签到表.png", PNG, "image/png")]},
        format="multipart",
    )

    assert sent.status_code == 200, sent.content
    assert sent.json()["state"] == "answered" and sent.json()["files"][0]["sha256"] == sha256(PNG)
    assert merchant.get(sent.json()["files"][0]["url"]).status_code == 200
    assert merchant.get(evidence["url"]).status_code == 404  # the inspector's evidence is not the merchant's
    detail = api.get(f"{CASES}/{case['id']}").json()
    assert detail["state"] == "open" and detail["document_requests"][0]["answer"] == "见附件"
    again = merchant.post(f"/api/v1/merchant/document-requests/{request_id}/submit", {"note": "再次"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "document_request_not_open")


def test_another_merchant_cannot_see_or_answer_the_request(api, gym):
    case = opened(api, gym)
    request_id = api.post(f"{CASES}/{case['id']}/document-requests", {"text": "签到表"}, format="json").json()["id"]
    other = client_for(builders.merchant().user)

    assert other.get(f"/api/v1/merchant/document-requests/{request_id}").status_code == 404
    refused = other.post(
        f"/api/v1/merchant/document-requests/{request_id}/submit",
        {"files": [upload("a.pdf", PDF)]},
        format="multipart",
    )
    assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
    assert other.get("/api/v1/merchant/document-requests").json()["count"] == 0


def test_assign_link_a_measure_and_close_then_closing_again_is_409(api, gym, inspector):
    UserFactory(role="regulator", username="colleague")
    case = opened(api, gym)
    action = merchant_action_take(merchant_id=gym.pk, actor_id=inspector.pk, action="freeze_sales", reason="停课")

    assigned = api.post(f"{CASES}/{case['id']}/assign", {"assignee": "colleague"}, format="json")
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "colleague"
    refused = api.post(f"{CASES}/{case['id']}/assign", {"assignee": gym.user.username}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (400, "assignee_not_allowed")
    measure = api.post(f"{CASES}/{case['id']}/measures", {"action": str(action.pk)}, format="json")
    assert measure.status_code == 201
    assert (measure.json()["action"], measure.json()["kind"]) == (str(action.pk), "freeze_sales")
    closed = api.post(f"{CASES}/{case['id']}/close", {"conclusion": "责令整改，结案。"}, format="json")
    assert closed.status_code == 200
    assert (closed.json()["state"], closed.json()["conclusion"], closed.json()["closed_by"]) == (
        "closed",
        "责令整改，结案。",
        "inspector",
    )

    again = api.post(f"{CASES}/{case['id']}/close", {"conclusion": "again"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "case_closed")
    late = api.post(f"{CASES}/{case['id']}/findings", {"text": "late"}, format="json")
    assert (late.status_code, late.json()["code"]) == (409, "case_closed")
    trail = api.get(f"{CASES}/{case['id']}").json()["audit"]
    assert [line["verb"] for line in trail] == ["case_open", "case_assign", "case_measure_link", "case_close"]
    assert AuditEvent.objects.filter(target=f"case:{case['id']}").count() == 4


def test_the_report_pdf_holds_the_findings_the_files_hashes_and_the_conclusion(api, gym):
    case = opened(api, gym, reason="消费者反映连续三周无法上课")
    api.post(
        f"{CASES}/{case['id']}/findings",
        {"text": "现场检查：门店已关闭，张贴停业通知。", "files": [upload("门店照片.jpg", JPEG, "image/jpeg")]},
        format="multipart",
    )
    api.post(f"{CASES}/{case['id']}/document-requests", {"text": "预收款台账"}, format="json")
    api.post(f"{CASES}/{case['id']}/close", {"conclusion": "商户已失联，移交执法。"}, format="json")

    response = api.get(f"{CASES}/{case['id']}/report.pdf")

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = text_of(response.content)
    for expected in (
        "监督检查案件报告",
        "阳光健身",
        gym.license_number,
        "消费者反映连续三周无法上课",
        "现场检查：门店已关闭，张贴停业通知。",
        "门店照片.jpg",
        sha256(JPEG),
        "预收款台账",
        "已撤回",
        "商户已失联，移交执法。",
        "已结案",
        "记录检查发现",
    ):
        assert expected in text, expected


def test_a_long_finding_breaks_across_pages_in_the_report(api, gym):
    case = opened(api, gym)
    long_text = "\n".join(f"第{n}条：" + "现场核查记录，" * 40 for n in range(1, 13))
    assert len(long_text) <= services.TEXT_MAX
    api.post(f"{CASES}/{case['id']}/findings", {"text": long_text}, format="json")

    response = api.get(f"{CASES}/{case['id']}/report.pdf")

    assert response.status_code == 200
    assert len(pypdf.PdfReader(io.BytesIO(response.content)).pages) >= 2
    assert "第12条" in text_of(response.content)


def test_a_case_outside_the_jurisdiction_answers_404_as_a_missing_one(api, gym, jurisdictions):
    elsewhere = UserFactory(role="regulator", username="haidian-only")
    jurisdictions[elsewhere.pk] = Jurisdiction(districts=(builders.merchant(district="海淀区").district,))
    case = opened(api, gym)
    file = api.post(
        f"{CASES}/{case['id']}/findings", {"text": "x", "files": [upload("a.pdf", PDF)]}, format="multipart"
    ).json()["files"][0]
    theirs = client_for(elsewhere)

    missing = theirs.get(f"{CASES}/00000000-0000-0000-0000-000000000000")
    for response in (
        theirs.get(f"{CASES}/{case['id']}"),
        theirs.get(f"{CASES}/{case['id']}/report.pdf"),
        theirs.get(file["url"]),
        theirs.post(f"{CASES}/{case['id']}/findings", {"text": "x"}, format="json"),
        theirs.post(f"{CASES}/{case['id']}/close", {"conclusion": "x"}, format="json"),
        theirs.post(CASES, {"merchant": str(gym.pk), "reason": "x"}, format="json"),
    ):
        assert (response.status_code, response.json()) == (404, missing.json())
    assert theirs.get(CASES).json()["count"] == 0
