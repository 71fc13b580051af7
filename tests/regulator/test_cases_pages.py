"""The pages of inspection cases: the regulator opens a case from a merchant's page (flagged
merchants offered first), takes each step from the case's page, and the merchant answers a request
for documents from its own pages; the downloads are attachments."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from notifications.models import Notification
from regulator.models import CaseFile, DocumentRequest, InspectionCase
from regulator.services import cases as services
from regulator.services.actions import merchant_action_take
from tests.cards import builders
from tests.factories import UserFactory, sign_in
from tests.regulator.cases_helpers import JPEG, NOT_A_PDF, PDF, PNG, sha256, upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_in_tmp")]


@pytest.fixture
def inspector(db):
    return UserFactory(role="regulator", username="inspector")


@pytest.fixture
def gym(db):
    return builders.merchant(name="阳光健身")


def browser(user) -> Client:
    client = Client()
    sign_in(client, user)
    return client


def open_case(regulator, merchant) -> InspectionCase:
    return services.case_open(regulator=regulator, merchant_id=merchant.pk, reason="投诉集中")


def test_the_merchant_page_links_to_a_case_form_with_the_merchant_chosen(inspector, gym):
    page = browser(inspector).get(f"/r/merchants/{gym.pk}/").content.decode()
    assert f'href="/r/cases/?merchant={gym.pk}#open-case"' in page

    form = browser(inspector).get(f"/r/cases/?merchant={gym.pk}").content.decode()
    assert re.search(rf'<option value="{gym.pk}"[^>]*selected', form)


def test_the_open_form_offers_the_flagged_merchants_first(inspector, gym):
    runaway = builders.merchant(name="炫动健身")
    merchant_action_take(merchant_id=runaway.pk, actor_id=inspector.pk, action="flag", reason="停课")

    page = browser(inspector).get("/r/cases/").content.decode()

    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', page, re.DOTALL)
    assert [label for label, _ in groups] == ["已标记风险", "其他商户（风险从高到低）"]
    assert "炫动健身" in groups[0][1] and "阳光健身" not in groups[0][1]
    assert "阳光健身" in groups[1][1]


def test_a_case_is_opened_from_the_form_by_choice_or_licence_number(inspector, gym):
    client = browser(inspector)

    chosen = client.post("/r/cases/", {"merchant": str(gym.pk), "reason": "投诉集中"})
    by_licence = client.post("/r/cases/", {"reference": gym.license_number.lower(), "reason": "复查"})
    neither = client.post("/r/cases/", {"reason": "x"})

    first, second = InspectionCase.objects.order_by("created_at")
    assert chosen.status_code == 302 and chosen["Location"] == f"/r/cases/{first.pk}/"
    assert by_licence.status_code == 302 and second.merchant == gym and second.reason == "复查"
    assert neither.status_code == 400 and InspectionCase.objects.count() == 2


def test_the_open_form_sent_twice_opens_one_case(inspector, gym):
    client = browser(inspector)
    form = {"merchant": str(gym.pk), "reason": "投诉集中", "submission": "a" * 32}

    first, second = client.post("/r/cases/", form), client.post("/r/cases/", form)

    assert first["Location"] == second["Location"] and InspectionCase.objects.count() == 1


def test_a_finding_with_a_file_is_recorded_from_the_case_page_and_shown_with_its_sha256(inspector, gym):
    case = open_case(inspector, gym)
    client = browser(inspector)

    response = client.post(
        f"/r/cases/{case.pk}/findings/", {"text": "门店已关闭", "files": [upload("门店.jpg", JPEG, "image/jpeg")]}
    )

    assert response.status_code == 302 and response["Location"] == f"/r/cases/{case.pk}/#findings"
    row = CaseFile.objects.get()
    page = client.get(f"/r/cases/{case.pk}/").content.decode()
    assert "门店已关闭" in page and sha256(JPEG) in page and f'href="/case-files/{row.pk}/"' in page
    download = client.get(f"/case-files/{row.pk}/")
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")
    assert download["X-Content-Type-Options"] == "nosniff" and download["Content-Type"] == "image/jpeg"


def test_a_file_that_is_not_a_pdf_is_refused_on_the_page_with_its_reason(inspector, gym):
    case = open_case(inspector, gym)

    response = browser(inspector).post(
        f"/r/cases/{case.pk}/findings/", {"text": "发票", "files": [upload("invoice.pdf", NOT_A_PDF)]}
    )

    assert response.status_code == 400
    assert "invoice.pdf 不是 PDF、JPEG 或 PNG 文件" in response.content.decode()
    assert not CaseFile.objects.exists()


def test_every_step_from_the_case_page_ends_in_a_closed_case_with_its_timeline(inspector, gym):
    UserFactory(role="regulator", username="colleague")
    action = merchant_action_take(merchant_id=gym.pk, actor_id=inspector.pk, action="freeze_sales", reason="停课")
    case = open_case(inspector, gym)
    client = browser(inspector)

    for path, data in (
        ("assign", {"assignee": "colleague"}),
        ("document-requests", {"text": "签到表"}),
        ("measures", {"action": str(action.pk)}),
        ("close", {"conclusion": "责令整改"}),
    ):
        response = client.post(f"/r/cases/{case.pk}/{path}/", data)
        assert response.status_code == 302, (path, response.content[:300])

    case.refresh_from_db()
    assert (case.state, case.assignee.username, case.conclusion) == ("closed", "colleague", "责令整改")
    page = client.get(f"/r/cases/{case.pk}/").content.decode()
    assert page.count('data-testid="timeline-step"') == 5
    assert 'data-testid="close-form"' not in page and 'data-testid="finding-form"' not in page
    refused = client.post(f"/r/cases/{case.pk}/close/", {"conclusion": "again"}, follow=True)
    assert "案件已结案" in refused.content.decode()


def test_the_merchant_answers_a_request_from_its_page_and_another_merchant_cannot(inspector, gym):
    case = open_case(inspector, gym)
    asked = services.case_documents_request(regulator=inspector, case_id=case.pk, text="近三个月签到表")
    merchant = browser(gym.user)

    notice = Notification.objects.get(user=gym.user, kind="documents_requested")
    assert f"/m/document-requests/{asked.pk}/" in notice.body
    assert f'href="/m/document-requests/{asked.pk}/"' in merchant.get("/m/document-requests/").content.decode()
    assert 'id="shop-document-requests-link"' in merchant.get("/m/").content.decode()
    other = browser(builders.merchant().user)
    assert other.get(f"/m/document-requests/{asked.pk}/").status_code == 404
    assert other.post(f"/m/document-requests/{asked.pk}/", {"note": "x"}).status_code == 404

    sent = merchant.post(
        f"/m/document-requests/{asked.pk}/", {"note": "见附件", "files": [upload("签到表.png", PNG, "image/png")]}
    )

    assert sent.status_code == 302
    asked.refresh_from_db()
    assert asked.state == DocumentRequest.State.ANSWERED
    file = asked.files.get()
    page = merchant.get(f"/m/document-requests/{asked.pk}/").content.decode()
    assert 'data-testid="documents-sent"' in page and f"/case-files/{file.pk}/" in page
    assert merchant.get(f"/case-files/{file.pk}/").status_code == 200
    assert other.get(f"/case-files/{file.pk}/").status_code == 404
    case.refresh_from_db()
    assert case.state == "open"


def test_the_case_report_is_served_to_the_regulator_as_a_pdf(inspector, gym):
    case = open_case(inspector, gym)
    services.case_finding_add(regulator=inspector, case_id=case.pk, text="x", files=[upload("a.pdf", PDF)])

    response = browser(inspector).get(f"/r/cases/{case.pk}/report.pdf")

    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    assert browser(gym.user).get(f"/r/cases/{case.pk}/report.pdf").status_code == 403


def test_the_audit_log_page_says_each_case_step_in_words(inspector, gym):
    case = open_case(inspector, gym)
    services.case_finding_add(regulator=inspector, case_id=case.pk, text="x", files=[upload("a.pdf", PDF)])

    page = browser(inspector).get("/r/audit-log/").content.decode()

    assert "立案检查" in page and "记录检查发现" in page and sha256(PDF) in page
    assert "case_finding_add" not in re.sub(r"<[^>]+>", "", page)  # the key only in attributes
