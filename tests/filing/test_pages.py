"""The filing pages: the merchant's page and form, the regulator's list and decision, 已备案 / 未备案 on
the consumer's merchant page and in the contract PDF."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from consumers.contract import card_contract_pdf
from core.formatting import beijing_date
from merchants.models import Filing
from merchants.services.filing import filing_submit
from regulator.services.filings import regulator_filing_accept
from tests.cards import builders as b
from tests.consumers.test_contract_pdf import text_of
from tests.factories import sign_in
from tests.filing.helpers import require

pytestmark = pytest.mark.django_db


def page_client(user=None, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    if user is not None:
        sign_in(client, user)
    return client


def pdf(name: str = "licence.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"%PDF-1.4 test", content_type="application/pdf")


def submitted(merchant) -> Filing:
    require(merchant)
    return filing_submit(
        merchant=merchant, legal_representative="王芳", contact_phone="13800001234", deposit_bank="北京银行",
        documents=[pdf()],
    )  # fmt: skip


# --- the merchant's page ----------------------------------------------------------------------------


def test_the_merchant_page_says_when_no_filing_is_required_and_is_in_the_navigation():
    m = b.merchant()
    html = page_client(m.user).get(reverse("web-merchant-filing")).content.decode()
    assert 'data-status="not_required"' in html and 'data-testid="filing-form"' not in html
    assert reverse("web-merchant-filing") in html  # the navigation links it


def test_the_merchant_page_shows_the_deadline_and_files_with_documents():
    m = b.merchant()
    filing = require(m)
    client = page_client(m.user)
    html = client.get(reverse("web-merchant-filing")).content.decode()
    assert 'data-status="not_filed"' in html and 'data-testid="filing-form"' in html
    assert beijing_date(filing.due_on, language="en") in html
    assert "¥500,000.00" in html  # the line, in yuan
    response = client.post(
        reverse("web-merchant-filing"),
        {"legal_representative": "王芳", "contact_phone": "13800001234", "deposit_bank": "北京银行",
         "documents": [pdf(), pdf("agreement.png")]},
    )  # fmt: skip
    assert response.status_code == 302
    filing.refresh_from_db()
    assert filing.state == "submitted" and filing.documents.count() == 2


def test_the_merchant_page_shows_the_regulator_s_note_on_a_returned_filing(regulator):
    from regulator.services.filings import regulator_filing_return

    m = b.merchant()
    filing = submitted(m)
    regulator_filing_return(filing_id=filing.pk, regulator=regulator, note="请补充资金存管协议")
    html = page_client(m.user, "zh-hans").get(reverse("web-merchant-filing")).content.decode()
    assert "请补充资金存管协议" in html and 'data-testid="filing-form"' in html


def test_a_consumer_cannot_open_the_merchant_filing_page(consumer):
    assert page_client(consumer).get(reverse("web-merchant-filing")).status_code == 403


# --- the regulator's pages --------------------------------------------------------------------------


def test_the_regulator_lists_filings_by_state_and_accepts_one(regulator):
    m, other = b.merchant(name="甲健身"), b.merchant(name="乙美容")
    filing = submitted(m)
    require(other)
    client = page_client(regulator)
    html = client.get(reverse("web-regulator-filings")).content.decode()
    assert "甲健身" in html and "乙美容" in html
    assert reverse("web-regulator-filings") in html  # the navigation links it
    html = client.get(reverse("web-regulator-filings") + "?state=submitted").content.decode()
    assert "甲健身" in html and "乙美容" not in html
    html = client.get(reverse("web-regulator-filing", args=[filing.pk])).content.decode()
    assert "licence.pdf" in html and 'data-testid="filing-accept"' in html
    response = client.post(reverse("web-regulator-filing-decide", args=[filing.pk]), {"decision": "accept", "note": ""})
    assert response.status_code == 302
    assert Filing.objects.get(pk=filing.pk).state == "accepted"


def test_the_regulator_returning_without_a_note_is_refused(regulator):
    filing = submitted(b.merchant())
    client = page_client(regulator)
    response = client.post(reverse("web-regulator-filing-decide", args=[filing.pk]), {"decision": "return"})
    assert response.status_code == 400
    assert Filing.objects.get(pk=filing.pk).state == "submitted"


def test_a_consumer_cannot_open_or_decide_filings(consumer):
    filing = submitted(b.merchant())
    client = page_client(consumer)
    assert client.get(reverse("web-regulator-filings")).status_code == 403
    response = client.post(reverse("web-regulator-filing-decide", args=[filing.pk]), {"decision": "accept"})
    assert response.status_code == 403
    assert Filing.objects.get(pk=filing.pk).state == "submitted"


# --- what consumers see -----------------------------------------------------------------------------


def consumer_view(merchant, language: str) -> str:
    client = page_client(b.consumer().user, language)
    return client.get(reverse("web-consumer-merchant", args=[merchant.pk])).content.decode()


def test_the_consumer_merchant_page_shows_nothing_when_no_filing_is_required():
    m = b.merchant()
    html = consumer_view(m, "zh-hans")
    assert 'data-testid="filing-status"' not in html and "备案" not in html


def test_the_consumer_merchant_page_shows_not_filed_then_filed(regulator):
    m = b.merchant()
    filing = submitted(m)
    assert "未备案" in consumer_view(m, "zh-hans")
    assert "Not filed" in consumer_view(m, "en")
    regulator_filing_accept(filing_id=filing.pk, regulator=regulator)
    assert "已备案" in consumer_view(m, "zh-hans")
    assert ">Filed<" in consumer_view(m, "en")


def test_the_contract_states_the_filing_status(regulator):
    m = b.merchant()
    card = b.paid_card(b.session_pack(m))
    assert "备案状态" not in text_of(card_contract_pdf(card=card))
    filing = submitted(m)
    assert "备案状态未备案" in text_of(card_contract_pdf(card=card))
    regulator_filing_accept(filing_id=filing.pk, regulator=regulator)
    assert "备案状态已备案" in text_of(card_contract_pdf(card=card))
