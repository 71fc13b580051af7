"""The regulator's pages: who may see them, what they show, and that their forms act through the
same services as the API (flags, refund orders, complaints, the ledger check)."""

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from complaints.models import Complaint
from complaints.services import complaints_mark_overdue
from core import clock
from core.formatting import yuan
from escrow.selectors import ledger_verify
from merchants.models import Merchant
from refunds.models import Refund
from regulator.models import AuditEvent, RegulatorAction, RiskAssessment
from regulator.selectors.dashboard import ledger_head
from regulator.services.actions import merchant_action_take
from regulator.services.risk import compute_risk
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.complaints import complaints_builders
from tests.factories import UserFactory, sign_in
from tests.web.pages import submission_of

pytestmark = pytest.mark.django_db


def browser(user=None, language="en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    if user is not None:
        sign_in(client, user)
    return client


@pytest.fixture
def staff(regulator):
    return browser(regulator)


@pytest.fixture
def city(regulator):
    """A gym in Chaoyang with two cards (one served once), a school in Haidian with one card and a
    flag, a salon in Haidian with nothing sold; risk scored once."""
    gym = builders.merchant(category="fitness", district="朝阳区", name="Iron Gym")
    school = builders.merchant(category="education", district="海淀区", name="Bright School")
    salon = builders.merchant(category="beauty", district="海淀区", name="Quiet Salon")
    pack = builders.session_pack(gym, price=80_000, sessions=8)
    gym_cards = [builders.paid_card(pack), builders.paid_card(pack)]
    use(gym_cards[0])  # releases 10,000 fen to the gym
    builders.paid_card(builders.session_pack(school, price=30_000, sessions=3))
    compute_risk()
    merchant_action_take(merchant_id=school.pk, actor_id=regulator.pk, action="flag", reason="parents complain")
    return {"gym": gym, "school": school, "salon": salon, "gym_cards": gym_cards}


def pages(city) -> list[str]:
    gym = city["gym"]
    action = RegulatorAction.objects.filter(merchant=city["school"]).first()
    return [
        reverse("web-regulator-dashboard"),
        reverse("web-regulator-merchants"),
        reverse("web-regulator-merchant", args=[gym.pk]),
        reverse("web-regulator-action", args=[action.pk]),
        reverse("web-regulator-action-status", args=[action.pk]),
        reverse("web-regulator-complaints"),
        reverse("web-regulator-complaint-stats"),
        reverse("web-regulator-audit-log"),
        reverse("web-regulator-ledger"),
        reverse("web-regulator-refunds"),
        reverse("web-regulator-rules"),
    ]


def ids_of(html: str, name: str) -> list[str]:
    return re.findall(rf'data-testid="{re.escape(name)}"', html)


def element_text(html: str, testid: str) -> str:
    match = re.search(rf'<[^>]*data-testid="{re.escape(testid)}"[^>]*>(.*?)</', html, re.S)
    assert match, f"no element {testid}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def svg(html: str, chart_id: str) -> ET.Element:
    match = re.search(rf'<svg[^>]*id="{chart_id}".*?</svg>', html, re.S)
    assert match, f"no chart {chart_id}"
    return ET.fromstring(match.group(0))


# --- who may see them -------------------------------------------------------------------------------


def test_every_regulator_page_renders_for_a_regulator(staff, city):
    for url in pages(city):
        response = staff.get(url)
        assert response.status_code == 200, url
    pdf = staff.get(reverse("web-regulator-merchant-report", args=[city["gym"].pk]))
    assert pdf.status_code == 200


@pytest.mark.parametrize("role", ["consumer", "merchant"])
def test_consumers_and_merchants_are_refused_every_regulator_page(city, role):
    client = browser(UserFactory(role=role))
    for url in [*pages(city), reverse("web-regulator-merchant-report", args=[city["gym"].pk])]:
        assert client.get(url).status_code == 403, url
    gym = city["gym"]
    response = client.post(reverse("web-regulator-merchant-action", args=[gym.pk]), {"action": "flag", "reason": "x"})
    assert response.status_code == 403
    assert not Merchant.objects.get(pk=gym.pk).flagged


def test_anonymous_visitors_are_sent_to_log_in(city):
    client = browser()
    for url in pages(city):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("web-login")), url
        assert "next=" in response["Location"]


def test_pages_are_chinese_by_default_and_english_on_request(regulator, city):
    zh = browser(regulator, language="zh-hans").get(reverse("web-regulator-dashboard")).content.decode()
    en = browser(regulator, language="en").get(reverse("web-regulator-dashboard")).content.decode()
    assert '<html lang="zh-hans">' in zh and '<html lang="en">' in en


# --- dashboard ---------------------------------------------------------------------------------------


def test_dashboard_shows_the_totals_and_three_charts(staff, city, regulator):
    complaints_builders.hotline_call(city["gym"], regulator=regulator, received_at=clock.now() - timedelta(days=3))
    complaints_mark_overdue()
    html = staff.get(reverse("web-regulator-dashboard")).content.decode()
    # 80,000 + 70,000 left on the gym's cards, 30,000 on the school's card
    assert element_text(html, "escrow-total") == yuan(180_000) == "¥1,800.00"
    assert element_text(html, "escrow-cards").startswith("on 3 cards")
    levels = {lv: int(element_text(html, f"risk-level-{lv}")) for lv in ("low", "medium", "high")}
    assert sum(levels.values()) == 3 and levels == {
        lv: Merchant.objects.filter(risk_level=lv).count() for lv in ("low", "medium", "high")
    }
    assert element_text(html, "overdue-complaints") == "1"
    assert element_text(html, "flagged-count").startswith("1")
    assert "Bright School" in element_text(html, "flagged-merchant")

    histogram = svg(html, "chart-risk-histogram")
    assert len(list(histogram.iter("{http://www.w3.org/2000/svg}rect"))) == 10
    districts = svg(html, "chart-escrow-by-district")
    bar_titles = [t.text for t in districts.iter("{http://www.w3.org/2000/svg}title")]
    assert "Chaoyang: ¥1,500.00" in bar_titles and "Haidian: ¥300.00" in bar_titles
    trend = svg(html, "chart-sales-releases")
    assert len(list(trend.iter("{http://www.w3.org/2000/svg}polyline"))) == 2
    month = f"{clock.local_date():%Y-%m}"
    tooltips = [t.text for t in trend.iter("{http://www.w3.org/2000/svg}title")]
    assert f"{month}: Card sales {yuan(190_000)}" in tooltips  # two gym cards and the school's
    assert f"{month}: Releases to merchants {yuan(10_000)}" in tooltips


def test_dashboard_sales_and_releases_cover_six_months_oldest_first(city):
    from regulator.selectors.dashboard import dashboard_sales_and_releases
    from regulator.selectors.jurisdiction import CITY

    rows = dashboard_sales_and_releases(jurisdiction=CITY)
    assert len(rows) == 6 and rows[-1]["month"].month == clock.local_date().month
    assert [r["month"] for r in rows] == sorted(r["month"] for r in rows)
    assert (rows[-1]["sales"], rows[-1]["cards"], rows[-1]["released"]) == (190_000, 3, 10_000)
    assert all(r["sales"] == r["released"] == 0 for r in rows[:-1])


def test_dashboard_and_list_cost_the_same_few_queries_however_many_merchants(
    staff, city, django_assert_max_num_queries
):
    for n in range(30):
        builders.merchant(name=f"Shop {n:02d}")
    # Two of them are the regulator's session's: its authenticator (django-otp's verified session)
    # and its last activity written (the idle timeout); one is its jurisdiction.
    with django_assert_max_num_queries(15):
        assert staff.get(reverse("web-regulator-dashboard")).status_code == 200
    with django_assert_max_num_queries(9):
        assert staff.get(reverse("web-regulator-merchants")).status_code == 200


def test_recompute_all_scores_every_merchant_in_the_background(staff, city):
    before = RiskAssessment.objects.count()
    response = staff.post(reverse("web-regulator-risk-compute-all"))
    assert response.status_code == 302 and response["Location"] == reverse("web-regulator-dashboard")
    assert RiskAssessment.objects.count() == before + 3  # tasks run inline in the tests


# --- merchant list -----------------------------------------------------------------------------------


def listed(client, **params) -> list[str]:
    html = client.get(reverse("web-regulator-merchants"), params).content.decode()
    return re.findall(r'data-testid="merchant-row" data-merchant-id="[^"]+">\s*<td><a [^>]+>([^<]+)</a>', html)


def test_merchant_list_filters_by_level_district_category_and_flag(staff, city):
    assert sorted(listed(staff)) == ["Bright School", "Iron Gym", "Quiet Salon"]
    assert sorted(listed(staff, district="110108")) == ["Bright School", "Quiet Salon"]
    assert listed(staff, category="fitness") == ["Iron Gym"]
    assert listed(staff, flagged="yes") == ["Bright School"]
    assert sorted(listed(staff, flagged="no")) == ["Iron Gym", "Quiet Salon"]
    level = Merchant.objects.get(pk=city["gym"].pk).risk_level
    assert "Iron Gym" in listed(staff, risk_level=level)
    assert listed(staff, district="110108", category="fitness") == []


def test_merchant_list_sorts_by_the_selectors_orderings(staff, city):
    assert listed(staff, ordering="name") == ["Bright School", "Iron Gym", "Quiet Salon"]
    assert listed(staff, ordering="-name") == ["Quiet Salon", "Iron Gym", "Bright School"]
    assert listed(staff, ordering="-escrow_outstanding") == ["Iron Gym", "Bright School", "Quiet Salon"]
    assert listed(staff, ordering="escrow_outstanding") == ["Quiet Salon", "Bright School", "Iron Gym"]
    # an unknown ordering is shown as the field's error and the default order applies
    response = staff.get(reverse("web-regulator-merchants"), {"ordering": "password"})
    assert response.status_code == 200 and len(ids_of(response.content.decode(), "merchant-row")) == 3


def test_merchant_list_pages_and_htmx_gets_only_the_results(staff, city):
    for n in range(26):
        builders.merchant(name=f"Shop {n:02d}")
    first = staff.get(reverse("web-regulator-merchants"), {"ordering": "name"}).content.decode()
    assert len(ids_of(first, "merchant-row")) == 25 and 'data-testid="pagination-next"' in first
    second = staff.get(reverse("web-regulator-merchants"), {"ordering": "name", "page": 2}).content.decode()
    assert len(ids_of(second, "merchant-row")) == 4
    partial = staff.get(reverse("web-regulator-merchants"), {"category": "fitness"}, HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert "<html" not in body and body.lstrip().startswith('<section class="panel" id="merchant-results"')
    assert "HX-Request" in partial["Vary"]


# --- one merchant ------------------------------------------------------------------------------------


def test_merchant_page_shows_each_signal_and_the_score_over_time(staff, regulator, city):
    gym = city["gym"]
    compute_risk(at=clock.now() + timedelta(minutes=1), merchant_ids=[gym.pk])
    html = staff.get(reverse("web-regulator-merchant", args=[gym.pk])).content.decode()
    signals = re.findall(r'data-testid="risk-signal" data-signal="([a-z_0-9]+)"', html)
    latest = RiskAssessment.objects.filter(merchant=gym).order_by("-computed_at").first()
    assert signals == [s["name"] for s in latest.signals] and len(signals) == 11
    escrow = next(s for s in latest.signals if s["name"] == "escrow_outstanding")
    assert escrow["explanation"]["en"] in html.replace("&#x27;", "'")
    assert "Escrow outstanding" in html and "¥1,500.00" in html
    chart = svg(html, "chart-risk-history")
    points = next(chart.iter("{http://www.w3.org/2000/svg}polyline")).get("points").split()
    assert len(points) == 2  # two assessments
    zh = browser(regulator, language="zh-hans").get(reverse("web-regulator-merchant", args=[gym.pk]))
    assert escrow["explanation"]["zh-hans"] in zh.content.decode()
    assert 'data-testid="action-form"' in html and "data-confirm=" in html


def test_recompute_now_scores_the_merchant_again(staff, city):
    gym = city["gym"]
    before = RiskAssessment.objects.filter(merchant=gym).count()
    response = staff.post(reverse("web-regulator-merchant-risk-compute", args=[gym.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("web-regulator-merchant", args=[gym.pk])
    assert RiskAssessment.objects.filter(merchant=gym).count() == before + 1


def test_a_merchant_that_does_not_exist_is_404(staff):
    import uuid

    assert staff.get(reverse("web-regulator-merchant", args=[uuid.uuid4()])).status_code == 404


def test_the_audit_report_route_returns_the_pdf(staff, city):
    response = staff.get(reverse("web-regulator-merchant-report", args=[city["gym"].pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


# --- actions -----------------------------------------------------------------------------------------


def test_a_flag_with_a_reason_flags_the_merchant_and_shows_in_the_audit_log(staff, regulator, city):
    gym = city["gym"]
    response = staff.post(
        reverse("web-regulator-merchant-action", args=[gym.pk]),
        {"action": "flag", "reason": "closed doors, many calls", "warning": "Doors closed since Monday"},
    )
    action = RegulatorAction.objects.get(merchant=gym, action="flag")
    assert response.status_code == 302 and response["Location"] == reverse("web-regulator-action", args=[action.pk])
    gym.refresh_from_db()
    assert gym.flagged and gym.risk_warning == "Doors closed since Monday"
    assert AuditEvent.objects.get(verb="flag", merchant=gym).actor == regulator

    page = staff.get(response["Location"]).content.decode()
    assert element_text(page, "action-state") == "done" and 'data-testid="refund-progress"' not in page
    merchant_page = staff.get(reverse("web-regulator-merchant", args=[gym.pk])).content.decode()
    assert 'data-testid="merchant-flagged"' in merchant_page and "Doors closed since Monday" in merchant_page

    log = staff.get(reverse("web-regulator-audit-log"), {"kind": "action"}).content.decode()
    row = re.search(r'<tr data-testid="audit-row" data-kind="action" data-verb="flag">.*?</tr>', log, re.S).group(0)
    assert "closed doors, many calls" in row and "Iron Gym" in row and regulator.username in row


def test_an_action_without_a_reason_is_refused_on_the_form(staff, city):
    gym = city["gym"]
    response = staff.post(reverse("web-regulator-merchant-action", args=[gym.pk]), {"action": "flag", "reason": ""})
    assert response.status_code == 400
    assert 'class="error"' in response.content.decode()
    assert not Merchant.objects.get(pk=gym.pk).flagged and not RegulatorAction.objects.filter(merchant=gym).exists()


def test_an_action_the_service_refuses_comes_back_as_a_message(staff, city):
    school = city["school"]  # already flagged
    response = staff.post(
        reverse("web-regulator-merchant-action", args=[school.pk]), {"action": "flag", "reason": "again"}, follow=True
    )
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("web-regulator-merchant", args=[school.pk])
    assert "already in the state" in html
    assert RegulatorAction.objects.filter(merchant=school).count() == 1


def test_an_order_to_refund_shows_its_progress_and_ends_done(staff, city, django_capture_on_commit_callbacks):
    gym = city["gym"]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            reverse("web-regulator-merchant-action", args=[gym.pk]),
            {"action": "order_refunds", "reason": "the gym has vanished"},
        )
    action = RegulatorAction.objects.get(merchant=gym, action="order_refunds")
    assert response["Location"] == reverse("web-regulator-action", args=[action.pk])
    html = staff.get(response["Location"]).content.decode()
    progress = re.search(r'<progress[^>]*data-testid="refund-progress"[^>]*>', html).group(0)
    assert 'max="2"' in progress and 'value="2"' in progress
    assert element_text(html, "action-state") == "done"
    assert element_text(html, "refund-progress-text") == "2 of 2 cards refunded"
    assert element_text(html, "action-final").startswith("Done.")
    assert 'hx-trigger="every 1s"' not in html  # finished: no more polling
    assert Refund.objects.filter(card__merchant=gym, reason="merchant_closure").count() == 2


def test_a_running_refund_order_is_polled_until_it_finishes(staff, regulator, city):
    gym = city["gym"]
    # Outside captured on-commit callbacks the background work never starts: the order stays queued.
    action = merchant_action_take(merchant_id=gym.pk, actor_id=regulator.pk, action="order_refunds", reason="gone")
    status = staff.get(reverse("web-regulator-action-status", args=[action.pk])).content.decode()
    assert status.lstrip().startswith('<div id="action-status"')
    assert 'hx-trigger="every 1s"' in status
    assert f'hx-get="{reverse("web-regulator-action-status", args=[action.pk])}"' in status
    assert re.search(r'<progress[^>]*max="2" value="0"', status)
    assert element_text(status, "action-state") == "queued"


# --- complaints --------------------------------------------------------------------------------------


def test_the_queue_puts_overdue_complaints_first_with_their_badge_and_open_ones_count_down(staff, regulator, city):
    gym, school = city["gym"], city["school"]
    now = clock.now()
    fresh = complaints_builders.hotline_call(gym, regulator=regulator, received_at=now - timedelta(hours=1))
    late = complaints_builders.hotline_call(school, regulator=regulator, received_at=now - timedelta(days=3))
    assert complaints_mark_overdue() == 1
    html = staff.get(reverse("web-regulator-complaints")).content.decode()
    order = re.findall(r'id="complaint-([0-9a-f-]+)" data-testid="complaint-row" data-state="(\w+)"', html)
    assert order == [(str(late.pk), "overdue"), (str(fresh.pk), "open")]
    late_row = html[html.index(f'id="complaint-{late.pk}"') : html.index(f'id="complaint-{fresh.pk}"')]
    assert 'data-testid="complaint-overdue"' in late_row and "data-countdown" not in late_row
    fresh_row = html[html.index(f'id="complaint-{fresh.pk}"') :]
    countdown = re.search(r'data-testid="complaint-countdown" data-countdown="([^"]+)"', fresh_row).group(1)
    assert countdown == clock.local(fresh.respond_by).isoformat()
    assert (
        staff.get(reverse("web-regulator-complaints"), {"state": "open"})
        .content.decode()
        .count('data-testid="complaint-row"')
        == 1
    )


def test_the_queue_filters_by_district_category_and_source(staff, regulator, city, consumer):
    gym, school = city["gym"], city["school"]
    complaints_builders.hotline_call(gym, regulator=regulator, received_at=clock.now(), category="refund_refused")
    complaints_builders.hotline_call(school, regulator=regulator, received_at=clock.now())
    buyer = city["gym_cards"][0].consumer
    complaints_builders.app_complaint(buyer, gym)

    def rows(**params) -> int:
        html = staff.get(reverse("web-regulator-complaints"), params).content.decode()
        return len(ids_of(html, "complaint-row"))

    assert rows() == 3
    assert rows(district="110105") == 2
    assert rows(category="refund_refused") == 2
    assert rows(source="app") == 1
    assert rows(source="hotline", district="110108") == 1
    assert rows(merchant=str(school.pk)) == 1


def test_closing_a_complaint_needs_a_resolution_and_closes_it(staff, regulator, city):
    complaint = complaints_builders.hotline_call(city["gym"], regulator=regulator, received_at=clock.now())
    url = reverse("web-regulator-complaint-close", args=[complaint.pk])
    refused = staff.post(url, {"resolution": ""}, follow=True)
    assert Complaint.objects.get(pk=complaint.pk).state == "open"
    assert "Write the resolution" in refused.content.decode()
    response = staff.post(url, {"resolution": "Merchant reopened; refund agreed", "next": "/r/complaints/?state=open"})
    assert response.status_code == 302 and response["Location"] == "/r/complaints/?state=open"
    complaint.refresh_from_db()
    assert (complaint.state, complaint.resolution, complaint.closed_by) == (
        "closed",
        "Merchant reopened; refund agreed",
        regulator,
    )
    assert AuditEvent.objects.filter(verb="complaint_close", target=f"complaint:{complaint.pk}").exists()
    again = staff.post(url, {"resolution": "twice", "next": "https://evil.example/"}, follow=True)
    assert again.redirect_chain[0][0] == reverse("web-regulator-complaints")  # no open redirect
    assert "already closed" in again.content.decode()


def test_a_hotline_call_without_a_reference_sent_twice_is_entered_once(staff, city):
    token = submission_of(staff.get(reverse("web-regulator-complaints")).content.decode())
    fields = {"merchant": str(city["gym"].pk), "category": "other", "description": "Shut", "submission": token}
    for _ in range(2):
        assert staff.post(reverse("web-regulator-complaints"), fields).status_code == 302
    assert Complaint.objects.filter(description="Shut").count() == 1


def test_staff_enter_a_hotline_call_by_licence_number(staff, regulator, city):
    gym = city["gym"]
    response = staff.post(
        reverse("web-regulator-complaints"),
        {
            "merchant": gym.license_number.lower(),
            "category": "service_unavailable",
            "description": "Caller says the gym is shut",
            "urgent": "on",
            "hotline_reference": "WO-777",
        },
    )
    complaint = Complaint.objects.get(hotline_reference="WO-777")
    assert response.status_code == 302 and response["Location"].endswith(f"#complaint-{complaint.pk}")
    assert (complaint.merchant_id, complaint.source, complaint.urgent, complaint.created_by) == (
        gym.pk,
        "hotline",
        True,
        regulator,
    )
    assert complaint.respond_by - complaint.created_at == timedelta(hours=2)
    called = clock.local(clock.now() - timedelta(hours=5)).replace(second=0, microsecond=0)
    staff.post(
        reverse("web-regulator-complaints"),
        {
            "merchant": str(gym.pk),
            "category": "other",
            "description": "Called this morning",
            "hotline_reference": "WO-778",
            "received_at": called.strftime("%Y-%m-%dT%H:%M"),  # the browser's datetime-local, Beijing time
        },
    )
    earlier = Complaint.objects.get(hotline_reference="WO-778")
    assert earlier.created_at == called and earlier.respond_by == called + timedelta(hours=48)
    unknown = staff.post(
        reverse("web-regulator-complaints"),
        {"merchant": "no-such-merchant", "category": "other", "description": "x"},
    )
    assert unknown.status_code == 400 and "No merchant has this id." in unknown.content.decode()
    duplicate = staff.post(
        reverse("web-regulator-complaints"),
        {"merchant": str(gym.pk), "category": "other", "description": "x", "hotline_reference": "WO-777"},
    )
    assert duplicate.status_code == 400 and Complaint.objects.filter(hotline_reference="WO-777").count() == 1


def test_complaint_statistics_count_by_district_category_and_month(staff, regulator, city):
    gym, school = city["gym"], city["school"]
    now = clock.now()
    complaints_builders.hotline_call(gym, regulator=regulator, received_at=now, category="refund_refused")
    complaints_builders.hotline_call(gym, regulator=regulator, received_at=now, category="refund_refused")
    complaints_builders.hotline_call(school, regulator=regulator, received_at=now, category="service_quality")
    html = staff.get(reverse("web-regulator-complaint-stats")).content.decode()
    assert element_text(html, "stats-total") == "3"
    assert element_text(html, "stats-month") == f"{clock.local_date():%Y-%m}"
    top = re.findall(r'data-testid="top-category" data-category="(\w+)"><td>[^<]*</td><td class="num">(\d+)', html)
    assert top[:2] == [("refund_refused", "2"), ("service_quality", "1")]
    districts = svg(html, "chart-complaints-by-district")
    assert "Chaoyang: 2" in [t.text for t in districts.iter("{http://www.w3.org/2000/svg}title")]
    svg(html, "chart-complaints-by-category")
    svg(html, "chart-complaints-by-month")
    bad = staff.get(reverse("web-regulator-complaint-stats"), {"month": "2026-13"})
    assert bad.status_code == 200 and "A month as YYYY-MM." in bad.content.decode()


# --- audit log and ledger ----------------------------------------------------------------------------


def test_the_audit_log_filters_by_kind_and_merchant_and_pages(staff, regulator, city):
    gym = city["gym"]
    everything = staff.get(reverse("web-regulator-audit-log")).content.decode()
    kinds = set(re.findall(r'data-testid="audit-row" data-kind="(\w+)"', everything))
    assert kinds == {"action", "journal"}
    journal = staff.get(reverse("web-regulator-audit-log"), {"kind": "journal"}).content.decode()
    assert set(re.findall(r'data-kind="(\w+)"', journal)) == {"journal"}
    assert "¥800.00" in journal  # a gym card's purchase
    mine = staff.get(reverse("web-regulator-audit-log"), {"merchant": gym.license_number}).content.decode()
    assert 'data-testid="audit-merchant-filter"' in mine
    verbs = re.findall(r'data-testid="audit-row" data-kind="\w+" data-verb="(\w+)"', mine)
    assert sorted(verbs) == ["purchase", "purchase", "release"]  # the school's flag is not the gym's
    unknown = staff.get(reverse("web-regulator-audit-log"), {"merchant": "nobody"}).content.decode()
    assert "No merchant has this id or licence number." in unknown and not ids_of(unknown, "audit-row")
    for n in range(50):
        merchant_action_take(
            merchant_id=gym.pk, actor_id=regulator.pk, action="flag" if n % 2 == 0 else "unflag", reason=f"r{n}"
        )
    first = staff.get(reverse("web-regulator-audit-log"), {"kind": "action"}).content.decode()
    assert len(ids_of(first, "audit-row")) == 50 and 'data-testid="pagination-next"' in first
    second = staff.get(reverse("web-regulator-audit-log"), {"kind": "action", "page": 2}).content.decode()
    # 52 lines: the 50 above, the school's flag and the regulator's sign-in
    assert len(ids_of(second, "audit-row")) == 2


def test_the_ledger_page_shows_the_head_hash_and_verifies_on_demand(staff, city):
    url = reverse("web-regulator-ledger")
    before = staff.get(url).content.decode()
    head = ledger_head()["head_hash"]
    assert element_text(before, "ledger-head-hash") == head
    assert 'data-testid="verified-head-hash"' not in before
    response = staff.post(url)
    assert response.status_code == 302 and response["Location"] == url
    after = staff.get(url).content.decode()
    expected = ledger_verify()
    assert element_text(after, "verified-head-hash") == expected["head_hash"] == head
    assert element_text(after, "ledger-entries") == str(expected["entries"])
    assert 'data-ok="true"' in after and element_text(after, "ledger-chain-ok") == "yes"
    partial = staff.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<section class="panel" id="ledger-result"') and "<html" not in partial


# --- refunds of a merchant in default, refunds late or failed -----------------------------------------


def _card_complaint(card):
    from complaints.services import complaint_file

    return complaint_file(
        actor=card.consumer.user, merchant_id=card.merchant_id, card_id=card.pk, category="refund_refused",
        description="No refund.", source="app",
    )  # fmt: skip


def test_an_upheld_complaint_offers_refund_this_card_and_the_button_refunds_it_once(staff, regulator, city):
    card = city["gym_cards"][0]
    complaint = _card_complaint(card)
    close = reverse("web-regulator-complaint-close", args=[complaint.pk])
    staff.post(close, {"resolution": "The gym must refund.", "upheld": "on"})
    page = staff.get(reverse("web-regulator-complaints")).content.decode()
    assert 'data-testid="card-refund-form"' in page
    token = re.search(r'data-testid="card-refund-form".*?name="submission" value="([0-9a-f]{32})"', page, re.S)[1]
    url = reverse("web-regulator-card-refund", args=[card.pk])
    for _ in range(2):  # the same form sent twice refunds once
        response = staff.post(url, {"submission": token, "note": "complaint"})
        assert response.status_code == 302
    refund = Refund.objects.get(card=card)
    assert (refund.reason, refund.amount, refund.fee) == ("merchant_default", 70_000, 0)
    assert AuditEvent.objects.filter(verb="refund_merchant_default", actor=regulator).count() == 1
    assert 'data-testid="card-refund-form"' not in staff.get(reverse("web-regulator-complaints")).content.decode()


def test_a_complaint_not_upheld_offers_no_card_refund(staff, city):
    complaint = _card_complaint(city["gym_cards"][1])
    staff.post(reverse("web-regulator-complaint-close", args=[complaint.pk]), {"resolution": "Not founded."})
    assert 'data-testid="card-refund-form"' not in staff.get(reverse("web-regulator-complaints")).content.decode()


def test_refunds_page_lists_failed_refunds_with_attempts_and_error_and_sends_them_again(
    staff, city, settings, django_capture_on_commit_callbacks
):
    from refunds.services import refund_request

    card = city["gym_cards"][1]
    settings.SANDBOX_REFUSE_REFUNDS = True
    settings.OUTBOX_MAX_ATTEMPTS = 1
    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    settings.SANDBOX_REFUSE_REFUNDS = False
    response = staff.get(reverse("web-regulator-refunds"))
    html = response.content.decode()
    assert f'data-refund-id="{refund.pk}" data-state="failed"' in html
    assert 'data-testid="refund-attempts">1<' in html and "refuses refunds" in html
    assert reverse("web-regulator-refunds") in staff.get(reverse("web-regulator-dashboard")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(reverse("web-regulator-refund-retry", args=[refund.pk]))
    refund.refresh_from_db()
    assert refund.state == "paid"
    assert 'data-testid="no-refunds"' in staff.get(reverse("web-regulator-refunds")).content.decode()


def test_refunds_page_is_for_regulators_only(city):
    consumer = browser(city["gym_cards"][0].consumer.user)
    assert consumer.get(reverse("web-regulator-refunds")).status_code in (302, 403)
