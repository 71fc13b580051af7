"""The merchant's daily settlement statement (refunds.statement)."""

import io
import re
from datetime import date, datetime, timedelta

import pypdf
import pytest
import time_machine

from core import clock
from core.formatting import yuan
from merchants.models import Settlement
from merchants.services.settlement import settlement_run
from refunds.services import refund_request
from refunds.statement import settlement_statement_lines, settlement_statement_pdf
from tests.cards import builders
from tests.cards.test_redemptions import use

pytestmark = pytest.mark.django_db

GYM = "朝阳健身工作室"


def at(moment):
    return time_machine.travel(moment, tick=False)


def pages_of(pdf: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [re.sub(r"\s*\n\s*", "", page.extract_text()) for page in reader.pages]


def text_of(pdf: bytes) -> str:
    return "".join(pages_of(pdf))


def settle(day: date, when: str, **options) -> Settlement | None:
    with at(when):
        run = settlement_run(day=day, **options)
    return run.settlements.select_related("merchant").first()


@pytest.fixture
def business(django_capture_on_commit_callbacks):
    """A gym's 2 March 2026 (Beijing): three releases of different amounts, a voluntary refund with
    a fee and a cooling-off refund; with a release the day before and one just after midnight."""
    gym = builders.merchant(name=GYM)
    stored = builders.stored_value(gym, price=90_000, face_value=100_000, unit_price=1_000)
    pack = builders.session_pack(gym, price=100_000, sessions=10, refund_fee_bps=1000)
    with at("2026-02-20 10:00 +0800"):
        wallet, other_wallet = builders.paid_card(stored), builders.paid_card(stored)
        gym_pack = builders.paid_card(pack)
    cooling = builders.paid_card(pack, at="2026-03-01 09:00 +0800")
    with at("2026-03-01 18:00 +0800"):
        day_before = use(other_wallet, 4_321).released  # 3,888
    settle(date(2026, 3, 1), "2026-03-02 01:00 +0800")
    with at("2026-03-02 09:15:07 +0800"):
        first = use(wallet, 12_345).released  # 11,110
    with at("2026-03-02 13:40 +0800"):
        second = use(wallet, 6_789).released  # 6,110
    with at("2026-03-02 18:05 +0800"):
        third = use(gym_pack).released  # 10,000
    with at("2026-03-02 20:30 +0800"), django_capture_on_commit_callbacks(execute=True):
        voluntary = refund_request(consumer=gym_pack.consumer, card_id=gym_pack.pk, reason="voluntary")
        refund_request(consumer=cooling.consumer, card_id=cooling.pk, reason="cooling_off")
    with at("2026-03-03 00:00:01 +0800"):
        next_day = use(other_wallet, 2_222).released  # 1,999
    return {
        "gym": gym,
        "cards": (wallet, gym_pack, cooling),
        "releases": [first, second, third],
        "fee": voluntary.fee,
        "day_before": day_before,
        "next_day": next_day,
    }


def test_statement_lists_the_days_releases_fee_refunds_totals_and_payout(business):
    settlement = settle(date(2026, 3, 2), "2026-03-03 02:00 +0800")
    assert settlement.payout_state == Settlement.PayoutState.PAID and settlement.payout_reference
    assert (settlement.released, settlement.fees) == (sum(business["releases"]), business["fee"])

    with at("2026-03-03 09:00 +0800"):
        pdf = settlement_statement_pdf(settlement=settlement)
    assert pdf.startswith(b"%PDF")
    text = text_of(pdf)
    assert "商户资金结算对账单" in text
    assert GYM in text and business["gym"].license_number in text
    assert "2026年3月2日" in text
    assert "2026年3月2日 00:00（北京时间） 至 2026年3月3日 00:00（北京时间）" in text
    for amount in business["releases"]:
        assert yuan(amount) in text
    assert "2026年3月2日 09:15" in text  # a release's time, in Beijing time, 年月日
    assert yuan(business["fee"]) in text and business["fee"] == 9_000
    for total in (settlement.released, settlement.fees, settlement.payout_amount):
        assert yuan(total) in text
    assert settlement.payout_reference in text and "已付款" in text
    wallet, gym_pack, cooling = business["cards"]
    for card in (wallet, gym_pack, cooling):
        assert str(card.pk)[:8] in text
    assert "自愿退款" in text and "冷静期退款" in text
    assert yuan(81_000) in text and yuan(100_000) in text  # the amounts returned to the consumers
    assert "第 1 页 / 共 1 页" in text
    assert "明细合计与结算金额不符" not in text
    # Neither the day before's release nor the one after midnight belongs to this statement.
    assert yuan(business["day_before"]) not in text and yuan(business["next_day"]) not in text


def test_lines_are_exactly_the_settlements_releases_and_fees_in_one_query(business, django_assert_num_queries):
    settlement = settle(date(2026, 3, 2), "2026-03-03 02:00 +0800")
    with django_assert_num_queries(1):
        lines = settlement_statement_lines(settlement=settlement)
    releases = [line for line in lines if line.code == "release"]
    fees = [line for line in lines if line.code == "fee"]
    assert len(releases) == settlement.releases_count == 3
    assert sum(line.amount for line in releases) == settlement.released
    assert [line.amount for line in releases] == business["releases"]
    assert sum(line.amount for line in fees) == settlement.fees == business["fee"]
    wallet, gym_pack, _ = business["cards"]
    assert [line.card_id for line in lines] == [wallet.pk, wallet.pk, gym_pack.pk, gym_pack.pk]
    times = [line.created_at for line in lines]
    assert times == sorted(times) and all(settlement.since < t <= settlement.cutoff for t in times)

    next_day = settle(date(2026, 3, 3), "2026-03-04 02:00 +0800")
    assert [line.amount for line in settlement_statement_lines(settlement=next_day)] == [business["next_day"]]


def test_an_unpaid_payout_is_shown_as_pending(business):
    settlement = settle(date(2026, 3, 2), "2026-03-03 02:00 +0800", deliver=False)
    text = text_of(settlement_statement_pdf(settlement=settlement))
    assert "待付款" in text and yuan(settlement.payout_amount) in text


def test_three_hundred_releases_run_over_several_pages_with_the_header_on_each():
    gym = builders.merchant(name=GYM)
    pack = builders.session_pack(gym, price=100_000, sessions=100)
    with at("2026-02-20 10:00 +0800"):
        cards = [builders.paid_card(pack) for _ in range(3)]
    opening = datetime(2026, 3, 2, 8, 0, tzinfo=clock.BEIJING)
    for n in range(300):
        with at(opening + timedelta(minutes=2 * n)):
            use(cards[n % 3])  # 1,000 each
    settlement = settle(date(2026, 3, 2), "2026-03-03 02:00 +0800")
    assert (settlement.releases_count, settlement.released) == (300, 300_000)

    pages = pages_of(settlement_statement_pdf(settlement=settlement))
    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        assert f"第 {number} 页 / 共 {len(pages)} 页" in page
    release_pages = [page for page in pages if yuan(1_000) in page]
    assert len(release_pages) >= 3
    assert all("时间（北京时间）" in page for page in release_pages)  # the repeated header row
    text = "".join(pages)
    assert "300 笔" in text and yuan(300_000) in text
    assert "2026年3月2日 08:00" in text and "2026年3月2日 17:58" in text  # the first and the last
