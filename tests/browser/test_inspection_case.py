"""An inspection case in the browser, on a 390 px phone: the regulator opens a case from a flagged
merchant's page, records a finding with a photo, asks the merchant for documents; the merchant sends
them from its own pages; the regulator sees them, with their SHA-256, and closes the case with its
conclusion. Every page fits the phone and labels its controls."""

import pytest
from playwright.sync_api import expect

from regulator.models import CaseFile, InspectionCase
from regulator.selectors.cases import case_audit_trail
from regulator.services.actions import merchant_action_take
from tests.browser.support import PHONE, assert_accessible
from tests.cards import builders
from tests.factories import PASSWORD, UserFactory
from tests.regulator.cases_helpers import JPEG, PNG, sha256

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_case_is_opened_a_finding_recorded_with_a_file_documents_sent_and_closed(browser, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    gym = builders.merchant(name="炫动健身（望京店）")
    inspector = UserFactory(role="regulator", username="inspector")
    merchant_action_take(merchant_id=gym.pk, actor_id=inspector.pk, action="flag", reason="三周无课")

    regulator = browser.page(viewport=PHONE)
    browser.log_in(regulator, "inspector", PASSWORD)
    regulator.goto(f"{browser.base_url}/r/merchants/{gym.pk}/")
    regulator.get_by_test_id("open-case-link").click()
    expect(regulator.locator("#open-case-merchant")).to_have_value(str(gym.pk))
    assert_accessible(regulator, fits=True)
    regulator.fill("#open-case-reason", "消费者集中投诉：连续三周无法上课。")
    regulator.get_by_test_id("open-case-submit").click()
    regulator.wait_for_url("**/r/cases/*/")
    case = InspectionCase.objects.get()
    expect(regulator.get_by_test_id("case-state")).to_have_attribute("data-state", "open")

    regulator.fill("#finding-text", "现场检查：门店大门紧闭，张贴“装修暂停营业”告示。")
    regulator.set_input_files(
        "#finding-files", files=[{"name": "门店照片.jpg", "mimeType": "image/jpeg", "buffer": JPEG}]
    )
    regulator.get_by_test_id("finding-submit").click()
    regulator.wait_for_url("**#findings")
    finding = regulator.get_by_test_id("finding")
    expect(finding).to_contain_text("门店大门紧闭")
    expect(finding.get_by_test_id("case-file-sha256")).to_have_text(sha256(JPEG))
    assert CaseFile.objects.get().sha256 == sha256(JPEG)
    assert_accessible(regulator, fits=True)
    browser.shot(regulator, "finding-recorded")

    regulator.fill("#request-text", "近三个月的课程签到表及场地租赁合同")
    regulator.get_by_test_id("request-submit").click()
    regulator.wait_for_url("**#requests")
    expect(regulator.get_by_test_id("case-state")).to_have_attribute("data-state", "awaiting_documents")

    shop = browser.page(viewport=PHONE)
    browser.log_in(shop, gym.user.username, builders.PASSWORD)
    shop.goto(f"{browser.base_url}/m/document-requests/")
    shop.get_by_test_id("document-request-row").get_by_role("link").click()
    expect(shop.get_by_test_id("document-request")).to_contain_text("课程签到表")
    assert_accessible(shop, fits=True)
    shop.set_input_files("#documents-files", files=[{"name": "签到表.png", "mimeType": "image/png", "buffer": PNG}])
    shop.fill("#documents-note", "租赁合同在房东处，下周补交。")
    shop.get_by_test_id("documents-submit").click()
    expect(shop.get_by_test_id("documents-sent")).to_contain_text("签到表.png")
    assert_accessible(shop, fits=True)
    browser.shot(shop, "documents-sent")

    regulator.reload()
    expect(regulator.get_by_test_id("case-state")).to_have_attribute("data-state", "open")
    answer = regulator.get_by_test_id("document-request")
    expect(answer).to_have_attribute("data-state", "answered")
    expect(answer.get_by_test_id("case-file-sha256")).to_have_text(sha256(PNG))

    regulator.fill("#close-conclusion", "商户已停止经营，责令退款，移交执法。")
    regulator.get_by_test_id("close-submit").click()  # the confirm dialog is accepted
    expect(regulator.get_by_test_id("case-state")).to_have_attribute("data-state", "closed")
    expect(regulator.get_by_test_id("case-conclusion")).to_have_text("商户已停止经营，责令退款，移交执法。")
    expect(regulator.get_by_test_id("close-form")).to_have_count(0)
    expect(regulator.get_by_test_id("timeline-step")).to_have_count(5)
    assert_accessible(regulator, fits=True)
    browser.shot(regulator, "case-closed")

    case.refresh_from_db()
    assert case.state == "closed" and case.conclusion == "商户已停止经营，责令退款，移交执法。"
    assert [line.verb for line in case_audit_trail(case=case)] == [
        "case_open",
        "case_finding_add",
        "case_documents_request",
        "case_documents_submit",
        "case_close",
    ]
    assert len(browser.dialogs) == 1
    assert browser.page_errors == []
