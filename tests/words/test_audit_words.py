"""The audit log and the audit report put events in words: what happened, who, why and what
changed, each value translated and formatted (none as 无, yes/no, yuan, Beijing 年月日, a state's
or a source's name), never the machine's keys."""

import io
import re

import pypdf
import pytest
from django.test import Client
from django.urls import reverse

from complaints.models import Complaint
from regulator.reports.audit import audit_report_pdf
from regulator.services.audit import audit_record
from tests.cards import builders
from tests.factories import UserFactory, sign_in
from tests.words.test_no_machine_text import visible_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def events():
    merchant = builders.merchant(name="跑路健身")
    audit_record(
        verb="complaint_create",
        actor_id=None,
        actor_label="12345",
        merchant_id=merchant.pk,
        target="complaint:1",
        reason="BJ12345-0001",
        changes={
            "state": [None, Complaint.State.OPEN],
            "source": [None, Complaint.Source.HOTLINE],
            "category": [None, Complaint.Category.REFUND_REFUSED],
            "urgent": [None, True],
            "respond_by": [None, "2026-03-12T02:00:00+00:00"],
        },
    )
    audit_record(
        verb="risk_auto_flag",
        actor_id=None,
        merchant_id=merchant.pk,
        target=f"merchant:{merchant.pk}",
        reason="risk score 87 ≥ 60",
        changes={"flagged": [False, True], "risk_warning": [None, "该商户风险较高"]},
    )
    return merchant


def _page(language: str) -> str:
    client = Client(headers={"accept-language": language})
    sign_in(client, UserFactory(role="regulator"))
    return visible_text(client.get(reverse("web-regulator-audit-log")).content.decode())


def test_the_audit_log_shows_changes_and_reasons_in_chinese_words(events):
    text = _page("zh-hans")
    assert "来源：无 → 12345 热线" in text
    assert "类别：无 → 拒绝退款" in text and "紧急：无 → 是" in text and "状态：无 → 待答复" in text
    assert "答复期限：无 → 2026年3月12日 10:00" in text
    assert "风险评分达到 87 分，不低于高风险线 60 分" in text
    assert "风险标记：否 → 是" in text and "公开风险提示：无 → 该商户风险较高" in text
    assert "平台（自动）" in text and "system" not in text
    assert "投诉 1" in text and f"商户 {str(events.pk)[:8]}…" in text and "complaint:" not in text
    for key in ("hotline", "source", "refund_refused", "risk score", "respond_by", "None", "True", "False"):
        assert key not in text, key
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text)


def test_the_audit_log_speaks_english_too(events):
    text = _page("en")
    assert "source: none → 12345 hotline" in text
    assert "The risk score reached 87, at or above the high-risk threshold of 60." in text
    assert "refund_refused" not in text and not re.search(r"\d{4}-\d{2}-\d{2}", text)


def test_the_event_filter_is_labelled_for_what_it_filters(events):
    client = Client(headers={"accept-language": "zh-hans"})
    sign_in(client, UserFactory(role="regulator"))
    html = client.get(reverse("web-regulator-audit-log")).content.decode()
    assert "记录类型" in html and "卡种" not in visible_text(html)


def test_the_audit_report_puts_the_same_events_in_words(events):
    pdf = audit_report_pdf(merchant_id=events.pk, generated_by=UserFactory(role="regulator"))
    text = re.sub(r"\s*\n\s*", "", "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages))
    squeezed = text.replace(" ", "")  # a cell wraps anywhere
    assert "来源：无→12345热线" in squeezed and "风险评分达到87分" in squeezed
    assert "hotline" not in text and "risk score" not in text
