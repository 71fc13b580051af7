"""The public record: a merchant's record and the search of merchants, for anyone without logging
in (API and pages), rate-limited per client address, cached, and silent about consumers."""

from datetime import timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from complaints.models import Complaint
from core import clock
from regulator.services.actions import merchant_action_take
from regulator.services.filings import regulator_filing_accept
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.filing.helpers import require
from tests.filing.test_flow import submit

pytestmark = pytest.mark.django_db

WARNING = "多名消费者反映该商户已停止营业"


def complaint(merchant, consumer, *, received_days_ago: float, answered_after_hours: float | None):
    """A complaint received ``received_days_ago`` with the usual 48 hours to answer; answered that
    many hours after it was received, or not at all."""
    received = clock.now() - timedelta(days=received_days_ago)
    return Complaint.objects.create(
        merchant=merchant,
        consumer=consumer,
        source=Complaint.Source.APP,
        category=Complaint.Category.SERVICE_QUALITY,
        description="教练不来上课",
        respond_by=received + timedelta(hours=48),
        responded_at=None if answered_after_hours is None else received + timedelta(hours=answered_after_hours),
        created_at=received,
    )


@pytest.fixture
def gym(regulator):
    """Flagged, filed, two cards of ¥600 (one session of six used on one), and complaints: two answered
    on time, one unanswered past its deadline, one still within it, one older than a year."""
    m = builders.merchant(name="铁人健身", district="海淀区")
    pack = builders.session_pack(m, price=60_000, sessions=6)
    holder = builders.consumer()
    cards = [builders.paid_card(pack, holder), builders.paid_card(pack)]
    use(cards[0])  # releases ¥100 of ¥1,200
    require(m)
    filing = submit(m)
    regulator_filing_accept(filing_id=filing.pk, regulator=regulator, note="齐全")
    merchant_action_take(merchant_id=m.pk, actor_id=regulator.pk, action="flag", reason="hotline", warning=WARNING)
    complaint(m, holder, received_days_ago=10, answered_after_hours=24)
    complaint(m, holder, received_days_ago=5, answered_after_hours=47)
    complaint(m, holder, received_days_ago=20, answered_after_hours=None)  # overdue: counted, not on time
    complaint(m, holder, received_days_ago=0.1, answered_after_hours=None)  # still within its 48 hours
    complaint(m, holder, received_days_ago=400, answered_after_hours=1)  # more than 12 months ago
    m.refresh_from_db()
    return m, holder


def test_the_record_of_a_flagged_filed_merchant_with_complaints_and_cards(gym):
    merchant, _ = gym
    response = APIClient().get(f"/api/v1/public/merchants/{merchant.pk}")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("id", "name", "license_number", "district", "district_code", "category")} == {
        "id": str(merchant.pk),
        "name": "铁人健身",
        "license_number": merchant.license_number,
        "district": "海淀区",
        "district_code": "110108",
        "category": "fitness",
    }
    assert body["filing_status"] == "filed"
    assert body["risk_warning"] == WARNING
    assert (body["complaints_answered_on_time"], body["complaints_counted"]) == (66.7, 3)
    assert body["escrow_held_pct"] == 91.7  # ¥1,100 of ¥1,200 paid for the cards in use
    assert response["Cache-Control"].replace(" ", "") == "public,max-age=300"


def test_a_merchant_with_nothing_yet_has_nulls_and_needs_no_filing():
    merchant = builders.merchant(name="新店")
    body = APIClient().get(f"/api/v1/public/merchants/{merchant.pk}", HTTP_ACCEPT_LANGUAGE="en").json()
    assert body["filing_status"] == "not_required"
    assert body["risk_warning"] is None
    assert body["complaints_answered_on_time"] is None and body["complaints_counted"] == 0
    assert body["escrow_held_pct"] is None
    assert body["district"] == "Chaoyang"


def test_search_finds_merchants_by_a_fragment_of_the_name_and_by_district():
    haidian = builders.merchant(name="阳光健身海淀店", district="海淀区")
    chaoyang = builders.merchant(name="阳光健身朝阳店", district="朝阳区")
    builders.merchant(name="洁净洗衣", district="海淀区")
    api = APIClient()

    def names(query: str) -> list[str]:
        body = api.get(f"/api/v1/public/merchants{query}").json()
        assert set(body) == {"count", "next", "previous", "results"}
        return [row["name"] for row in body["results"]]

    assert sorted(names("?q=阳光")) == sorted([haidian.name, chaoyang.name])
    assert names("?q=阳光&district=海淀区") == [haidian.name]
    assert names("?q=阳光&district=110105") == [chaoyang.name]
    assert names(f"?q={haidian.license_number}") == [haidian.name]
    assert names("?district=nowhere") == []

    page = api.get("/p/merchants/", {"q": "阳光", "district": "110108"})
    assert page.status_code == 200
    html = page.content.decode()
    assert haidian.name in html and chaoyang.name not in html
    assert f"/p/merchants/{haidian.pk}/" in html


def test_nothing_about_consumers_is_in_the_json_or_the_page(gym):
    merchant, holder = gym
    api = APIClient()
    shown = [
        api.get(f"/api/v1/public/merchants/{merchant.pk}").content.decode(),
        api.get("/api/v1/public/merchants", {"q": merchant.name}).content.decode(),
        api.get(f"/p/merchants/{merchant.pk}/").content.decode(),
        api.get("/p/merchants/", {"q": merchant.name}).content.decode(),
    ]
    for text in shown:
        for secret in (holder.display_name, holder.phone, holder.user.username, "教练不来上课", "王芳", "6512"):
            assert secret not in text
    assert merchant.license_number in shown[2] and WARNING in shown[2]


def test_the_page_shows_the_figures_and_says_what_they_mean(gym):
    merchant, _ = gym
    response = APIClient().get(f"/p/merchants/{merchant.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-status="filed"' in html and "66.7%" in html and "91.7%" in html
    assert "近 12 个月" in html  # the complaints' window is stated, in words
    assert response["Cache-Control"].replace(" ", "") == "public,max-age=300"


def test_a_logged_in_visitor_gets_the_page_privately_cached(gym, consumer):
    merchant, _ = gym
    client = APIClient()
    client.force_login(consumer)
    response = client.get(f"/p/merchants/{merchant.pk}/")
    assert response.status_code == 200
    assert "private" in response["Cache-Control"] and "public" not in response["Cache-Control"]


def test_requests_beyond_the_limit_are_refused_with_retry_after_per_address(settings):
    settings.PUBLIC_RATE_LIMIT = 3
    merchant = builders.merchant()
    first, second = APIClient(REMOTE_ADDR="10.0.0.1"), APIClient(REMOTE_ADDR="10.0.0.2")
    url = f"/api/v1/public/merchants/{merchant.pk}"
    with time_machine.travel("2026-05-04 10:00:15 +08:00", tick=False):
        assert [first.get(url).status_code for _ in range(3)] == [200, 200, 200]
        refused = first.get(url)
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited" and refused.json()["detail"]
        assert refused["Retry-After"] == "45"  # the seconds left in this minute
        assert first.get("/p/merchants/").status_code == 429  # the pages count against the same limit
        assert first.get("/api/v1/public/merchants").status_code == 429
        assert second.get(url).status_code == 200  # another address has its own count
    with time_machine.travel("2026-05-04 10:01:01 +08:00", tick=False):
        assert first.get(url).status_code == 200  # a new minute


def test_a_cached_record_is_served_without_touching_the_database(gym, django_assert_num_queries):
    merchant, _ = gym
    api = APIClient()
    assert api.get(f"/api/v1/public/merchants/{merchant.pk}").status_code == 200
    with django_assert_num_queries(0):
        assert api.get(f"/api/v1/public/merchants/{merchant.pk}").json()["escrow_held_pct"] == 91.7
    with django_assert_num_queries(0):
        assert api.get(f"/p/merchants/{merchant.pk}/").status_code == 200


@pytest.mark.parametrize("merchant_id", ["00000000-0000-0000-0000-000000000000", "not-an-id"])
def test_an_unknown_merchant_is_404_in_the_apis_error_shape(merchant_id):
    response = APIClient().get(f"/api/v1/public/merchants/{merchant_id}")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert APIClient().get("/p/merchants/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_the_login_page_and_the_consumers_merchant_page_link_the_public_record(consumer):
    assert "/p/merchants/" in APIClient().get("/login/").content.decode()
    merchant = builders.merchant()
    client = APIClient()
    client.force_login(consumer)
    assert f"/p/merchants/{merchant.pk}/" in client.get(f"/c/merchants/{merchant.pk}/").content.decode()
