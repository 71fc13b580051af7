"""What a government system keeps of its administrators and of the people in its records: every
regulator's sign-in, failure, sign-out and export is a line of the audit log; consumers' names and
phone numbers are masked in what regulators list, and shown in full only inside a case, logged."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from consumers.services import consumer_register
from core.errors import InvalidInput, NotFound
from refunds.services import refund_request
from regulator.models import AuditEvent
from regulator.services.contacts import consumer_contact_reveal
from tests.cards import builders
from tests.conftest import client_for
from tests.factories import PASSWORD, UserFactory, sign_in, totp_code

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"


@pytest.fixture
def frozen():
    with time_machine.travel("2026-03-02 10:00 +0800", tick=False) as traveller:
        yield traveller


@pytest.fixture
def inspector(db):
    return UserFactory(role="regulator")


def token_call(username: str, password: str = PASSWORD, **extra):
    body = {"username": username, "password": password, **extra}
    return APIClient().post(TOKEN, body, format="json", REMOTE_ADDR="10.1.2.3")


def events(verb: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(verb=verb).order_by("created_at", "pk"))


# --- sign-ins ------------------------------------------------------------------------------------------


def test_a_regulators_token_sign_in_is_logged_with_its_address(inspector, frozen):
    assert token_call(inspector.username, otp=totp_code(inspector)).status_code == 200
    [line] = events("login")
    assert (line.actor, line.target, line.changes) == (inspector, "token", {"address": [None, "10.1.2.3"]})


def test_a_regulators_page_sign_in_is_logged_once_both_factors_passed(inspector, frozen):
    browser = Client()
    browser.post("/login/", {"username": inspector.username, "password": PASSWORD})
    assert not events("login")  # the password alone is not a sign-in
    browser.post("/login/code/", {"code": totp_code(inspector)})
    [line] = events("login")
    assert (line.actor, line.target) == (inspector, "session")


@pytest.mark.parametrize(
    ("extra", "reason"),
    [({"password": "not-the-password"}, "password"), ({}, "otp_required"), ({"otp": "12"}, "otp_invalid")],
)
def test_each_refused_sign_in_of_a_regulator_is_logged_with_why(inspector, frozen, extra, reason):
    response = token_call(inspector.username, **extra)
    assert response.status_code in (400, 401)
    [line] = events("login_failed")
    assert (line.actor, line.reason, line.target) == (inspector, reason, "token")
    assert line.changes == {"address": [None, "10.1.2.3"]}
    assert not events("login")


def test_a_wrong_code_on_the_code_page_is_logged(inspector, frozen):
    browser = Client()
    browser.post("/login/", {"username": inspector.username, "password": PASSWORD})
    browser.post("/login/code/", {"code": totp_code(inspector, offset_steps=8)})
    [line] = events("login_failed")
    assert (line.actor, line.reason, line.target) == (inspector, "otp_invalid", "session")


def test_a_replayed_code_is_logged_as_invalid(inspector, frozen):
    code = totp_code(inspector)
    token_call(inspector.username, otp=code)
    token_call(inspector.username, otp=code)
    assert [line.reason for line in events("login_failed")] == ["otp_invalid"]


@pytest.mark.usefixtures("login_throttling")
def test_a_sign_in_refused_by_the_lockout_is_logged_as_such(inspector, frozen, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        token_call(inspector.username, password="not-the-password")
    token_call(inspector.username, otp=totp_code(inspector))
    reasons = [line.reason for line in events("login_failed")]
    # the failure that reaches the limit starts the lockout; the right password and code are then refused
    assert reasons == ["password"] * (settings.AXES_FAILURE_LIMIT - 1) + ["locked_out", "locked_out"]


def test_consumers_and_merchants_sign_ins_are_not_the_regulators_log():
    consumer = UserFactory(role="consumer")
    assert token_call(consumer.username).status_code == 200
    token_call(consumer.username, password="not-the-password")
    token_call("nobody-at-all")
    assert not AuditEvent.objects.exists()


def test_a_regulators_sign_out_is_logged(inspector):
    browser = sign_in(Client(), inspector)
    browser.post("/logout/")
    [line] = events("logout")
    assert (line.actor, line.reason) == (inspector, "")


def test_an_idle_session_ending_is_logged_as_idle(inspector, frozen, settings):
    browser = sign_in(Client(), inspector)
    browser.get("/r/")
    frozen.shift(timedelta(minutes=settings.REGULATOR_SESSION_IDLE_MINUTES, seconds=1))
    browser.get("/r/")
    [line] = events("logout")
    assert (line.actor, line.reason) == (inspector, "idle")


def test_the_audit_log_page_says_sign_ins_in_words(inspector, frozen):
    token_call(inspector.username, otp="12")
    frozen.shift(2)
    token_call(inspector.username, otp=totp_code(inspector))
    page = Client(headers={"accept-language": "en"})
    html = sign_in(page, UserFactory(role="regulator")).get("/r/audit-log/").content.decode()
    assert "sign-in refused" in html and "wrong or already used authenticator code" in html
    assert "signed in (password and code)" in html and "an API token" in html and "10.1.2.3" in html
    zh = sign_in(Client(headers={"accept-language": "zh-hans"}), inspector).get("/r/audit-log/").content.decode()
    assert "登录" in zh and "动态验证码" in zh


# --- exports -------------------------------------------------------------------------------------------


def test_a_merchants_audit_report_is_an_export_in_the_log(inspector):
    merchant = builders.merchant()
    assert client_for(inspector).get(f"/api/v1/regulator/merchants/{merchant.pk}/report.pdf").status_code == 200
    assert sign_in(Client(), inspector).get(f"/r/merchants/{merchant.pk}/report.pdf").status_code == 200
    lines = events("export")
    assert [(line.actor, line.merchant_id, line.target) for line in lines] == [
        (inspector, merchant.pk, f"report:{merchant.pk}.pdf")
    ] * 2


# --- masks ---------------------------------------------------------------------------------------------


def test_a_consumer_behind_a_journal_entry_is_masked_in_the_audit_log(inspector):
    holder = consumer_register(username="13812341234", password=PASSWORD, display_name="张三丰", phone="13812341234")
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=10_000, sessions=2), holder)
    refund_request(consumer=holder, card_id=card.pk, reason="cooling_off")  # the holder is its entry's actor
    rows = client_for(inspector).get("/api/v1/regulator/audit-log?kind=journal").json()["results"]
    refund = next(row for row in rows if row["verb"] == "refund")
    assert refund["actor"] == "138****1234"
    html = sign_in(Client(), inspector).get("/r/audit-log/?kind=journal").content.decode()
    assert "138****1234" in html and "13812341234" not in html


# --- a consumer's contact in full, inside a case ------------------------------------------------------


@pytest.fixture
def holder():
    return consumer_register(username="wang", password=PASSWORD, display_name="王小明", phone="13912345678")


def test_a_consumers_contact_is_shown_in_full_for_a_case_and_the_showing_is_logged(inspector, holder):
    merchant = builders.merchant()
    contact = consumer_contact_reveal(
        regulator=inspector, consumer=holder, case_id="case-7", reason="call the holder about the closure",
        merchant_id=merchant.pk,
    )  # fmt: skip
    assert (contact.name, contact.phone) == ("王小明", "13912345678")
    assert (contact.masked_name, contact.masked_phone) == ("王**", "139****5678")
    [line] = events("contact_reveal")
    assert (line.actor, line.merchant_id, line.target) == (inspector, merchant.pk, "case:case-7")
    assert line.reason == "call the holder about the closure"
    assert line.changes == {"consumer": [None, str(holder.pk)]}
    html = sign_in(Client(headers={"accept-language": "en"}), inspector).get("/r/audit-log/").content.decode()
    assert "a consumer&#x27;s full name and phone number shown" in html
    assert "13912345678" not in html and "王小明" not in html


@pytest.mark.parametrize(("case_id", "reason", "field"), [("case-7", "  ", "reason"), ("", "why", "case_id")])
def test_a_contact_is_not_shown_without_a_case_and_a_reason(inspector, holder, case_id, reason, field):
    with pytest.raises(InvalidInput) as refused:
        consumer_contact_reveal(regulator=inspector, consumer=holder, case_id=case_id, reason=reason)
    assert field in refused.value.errors
    assert not events("contact_reveal")


def test_only_a_regulator_may_see_a_contact(holder):
    merchant_user = builders.merchant().user
    with pytest.raises(NotFound):
        consumer_contact_reveal(regulator=merchant_user, consumer=holder, case_id="case-7", reason="curious")
    assert not events("contact_reveal")


def test_regulators_pages_and_exports_never_show_a_consumers_full_name_or_number(inspector, holder):
    from complaints.services import complaint_file

    card = builders.paid_card(builders.session_pack(builders.merchant(), price=10_000, sessions=2), holder)
    complaint_file(
        actor=holder.user, merchant_id=card.merchant_id, card_id=card.pk, category="other", description="x",
        source="app",
    )  # fmt: skip
    refund_request(consumer=holder, card_id=card.pk, reason="cooling_off")
    browser = sign_in(Client(), inspector)
    pages = [
        "/r/",
        "/r/merchants/",
        "/r/complaints/",
        "/r/refunds/",
        "/r/audit-log/",
        f"/r/merchants/{card.merchant_id}/",
    ]
    for path in pages:
        html = browser.get(path).content.decode()
        assert "13912345678" not in html and "王小明" not in html, path
    for name in ("cards", "complaints", "refunds"):
        body = b"".join(client_for(inspector).get(f"/api/v1/regulator/exports/{name}.csv").streaming_content)
        text = body.decode("utf-8-sig")
        assert "13912345678" not in text and "王小明" not in text, name
        assert "王**" in text, name
        assert "139****5678" in text or name == "refunds", name  # the refunds export has no phone column
