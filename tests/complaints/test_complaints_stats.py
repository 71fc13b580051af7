"""The regulator's complaint statistics over known data: by district, category and Beijing month, the
month's top problems against the month before, and overdue counts; a fixed number of queries."""

import pytest

from complaints.services import complaint_respond, complaints_mark_overdue
from tests.cards import builders
from tests.complaints.complaints_builders import at, hotline_call
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def inspector():
    return UserFactory(role="regulator")


@pytest.fixture
def year_of_complaints(inspector):
    """Chaoyang (110105) and Haidian (110108); the month asked about is 2026-03.

    2025-03-20  haidian  other             (outside the 12 months 2025-04 .. 2026-03)
    2026-01-15  haidian  service_quality
    2026-02-10  chaoyang refund_refused x2 (answered)
    2026-02-11  haidian  service_quality
    2026-03-05  haidian  refund_refused x3
    2026-03-06  chaoyang refund_refused, chaoyang closure (answered)
    2026-03-31 23:30 Beijing  haidian service_quality (15:30 UTC: still March in Beijing)
    2026-04-01 00:30 Beijing  chaoyang other          (16:30 UTC on 03-31: April in Beijing)
    The overdue job runs on 2026-04-01 at 01:00: every unanswered complaint due by then is overdue.
    """
    chaoyang = builders.merchant(district="朝阳区")
    haidian = builders.merchant(district="海淀区")

    def call(merchant, when, category):
        return hotline_call(merchant, regulator=inspector, received_at=when, category=category)

    call(haidian, "2025-03-20T10:00:00+08:00", "other")
    call(haidian, "2026-01-15T10:00:00+08:00", "service_quality")
    answered = [call(chaoyang, "2026-02-10T10:00:00+08:00", "refund_refused") for _ in range(2)]
    call(haidian, "2026-02-11T10:00:00+08:00", "service_quality")
    for _ in range(3):
        call(haidian, "2026-03-05T10:00:00+08:00", "refund_refused")
    call(chaoyang, "2026-03-06T10:00:00+08:00", "refund_refused")
    answered.append(call(chaoyang, "2026-03-06T11:00:00+08:00", "closure"))
    call(haidian, "2026-03-31T23:30:00+08:00", "service_quality")
    call(chaoyang, "2026-04-01T00:30:00+08:00", "other")
    with at("2026-03-06 12:00 +0800"):
        for complaint in answered:
            complaint_respond(complaint_id=complaint.pk, merchant=complaint.merchant, text="Refunded.")
    with at("2026-04-01 01:00 +0800"):
        assert complaints_mark_overdue() == 7
    return chaoyang, haidian


def stats(inspector, **params):
    with at("2026-04-02 12:00 +0800"):
        response = client_for(inspector).get("/api/v1/regulator/complaints/stats", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_counts_by_district_category_and_beijing_month(year_of_complaints, inspector):
    body = stats(inspector, month="2026-03")
    assert body["month"] == "2026-03" and body["window"] == {"from": "2025-04", "to": "2026-03"}
    assert body["by_district"] == [
        {"district": "110108", "district_name": "海淀区", "count": 6, "overdue": 5},
        {"district": "110105", "district_name": "朝阳区", "count": 4, "overdue": 1},
    ]
    assert body["by_category"] == [
        {"category": "refund_refused", "count": 6, "overdue": 4},
        {"category": "service_quality", "count": 3, "overdue": 2},
        {"category": "closure", "count": 1, "overdue": 0},
    ]
    months = {row["month"]: row["count"] for row in body["by_month"]}
    assert list(months) == [f"2025-{m:02d}" for m in range(4, 13)] + ["2026-01", "2026-02", "2026-03"]
    assert months["2026-01"] == 1 and months["2026-02"] == 3 and months["2026-03"] == 6
    assert sum(months.values()) == 10
    assert body["by_month"][-1] == {"month": "2026-03", "count": 6, "overdue": 4}


def test_the_months_top_problems_with_share_and_change_against_the_month_before(year_of_complaints, inspector):
    body = stats(inspector, month="2026-03")
    assert body["total"] == 6
    assert body["top_categories"] == [
        {"category": "refund_refused", "count": 4, "share": 0.6667, "previous": 2, "change": 2},
        {"category": "service_quality", "count": 1, "share": 0.1667, "previous": 1, "change": 0},
        {"category": "closure", "count": 1, "share": 0.1667, "previous": 0, "change": 1},
    ]
    assert body["top_pairs"] == [
        {"district": "110108", "district_name": "海淀区", "category": "refund_refused", "count": 3},
        {"district": "110105", "district_name": "朝阳区", "category": "closure", "count": 1},
        {"district": "110105", "district_name": "朝阳区", "category": "refund_refused", "count": 1},
        {"district": "110108", "district_name": "海淀区", "category": "service_quality", "count": 1},
    ]
    assert body["overdue"] == {"unanswered_now": 7, "month": 4}


def test_a_category_that_fell_to_zero_shows_its_drop(year_of_complaints, inspector):
    body = stats(inspector, month="2026-04")
    assert body["total"] == 1
    ranked = {row["category"]: (row["count"], row["previous"], row["change"]) for row in body["top_categories"]}
    assert ranked == {
        "other": (1, 0, 1),
        "refund_refused": (0, 4, -4),
        "service_quality": (0, 1, -1),
        "closure": (0, 1, -1),
    }
    assert body["top_categories"][0]["share"] == 1.0


def test_the_month_defaults_to_the_current_beijing_month(year_of_complaints, inspector):
    with at("2026-03-31 23:59 +0800"):
        march = client_for(inspector).get("/api/v1/regulator/complaints/stats").json()
    with at("2026-04-01 00:01 +0800"):  # still March in UTC
        april = client_for(inspector).get("/api/v1/regulator/complaints/stats").json()
    assert march["month"] == "2026-03" and april["month"] == "2026-04"


def test_district_and_category_narrow_every_figure(year_of_complaints, inspector):
    haidian = stats(inspector, month="2026-03", district="海淀区")
    assert haidian["district"] == "110108" and haidian["total"] == 4
    assert [row["district"] for row in haidian["by_district"]] == ["110108"]
    refunds = stats(inspector, month="2026-03", category="refund_refused")
    assert refunds["total"] == 4 and [row["category"] for row in refunds["top_categories"]] == ["refund_refused"]
    both = stats(inspector, month="2026-03", district="chaoyang", category="refund_refused")
    assert both["total"] == 1 and both["overdue"] == {"unanswered_now": 1, "month": 1}


def test_district_names_follow_the_request_language(year_of_complaints, inspector):
    with at("2026-04-02 12:00 +0800"):
        body = (
            client_for(inspector)
            .get("/api/v1/regulator/complaints/stats", {"month": "2026-03"}, HTTP_ACCEPT_LANGUAGE="en")
            .json()
        )
    assert [row["district_name"] for row in body["by_district"]] == ["Haidian", "Chaoyang"]


@pytest.mark.parametrize(
    "params", [{"month": "2026-13"}, {"month": "March"}, {"district": "Gotham"}, {"category": "x"}]
)
def test_bad_statistics_parameters_are_a_400(inspector, params):
    response = client_for(inspector).get("/api/v1/regulator/complaints/stats", params)
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert set(params) <= set(response.json()["errors"])


def test_statistics_take_a_fixed_number_of_queries_however_many_complaints(
    year_of_complaints, inspector, django_assert_max_num_queries
):
    chaoyang, _ = year_of_complaints
    for day in range(1, 29):
        hotline_call(chaoyang, regulator=inspector, received_at=f"2026-03-{day:02d}T09:00:00+08:00")
    client = client_for(inspector)
    with at("2026-04-02 12:00 +0800"), django_assert_max_num_queries(8):  # the token, then one query per figure
        body = client.get("/api/v1/regulator/complaints/stats", {"month": "2026-03"}).json()
    assert body["total"] == 34
