"""A small city with a known March 2026 (Beijing time) for the periodic report's tests, built through
the real services where money moves (cards, services, refunds) and as rows where only the record
matters (complaints, filings, risk assessments, a refund's payment).

Merchants: a gym in 朝阳区 (``gym``), a salon in 海淀区 (``salon``), a school in 朝阳区 (``school``).

Money, fen (escrow per (district, trade); March is [1 March 00:00, 1 April 00:00) Beijing):

=====================  ==========  ========  ========  ========  ==========  =====
pair                   held start  paid in   released  refunded  held end    sold
=====================  ==========  ========  ========  ========  ==========  =====
朝阳区 · 健身 (gym)     100,000     0         20,000    0         80,000      0
海淀区 · 美容 (salon)   0           180,000   0         90,000    90,000      2
朝阳区 · 教育 (school)  0           50,000    0         50,000    0           1
total                  100,000     230,000   20,000    140,000   170,000     3
=====================  ==========  ========  ========  ========  ==========  =====

- the gym's pack (100,000 / 10 sessions) was bought on 20 February and used twice on 10 March
  (2 × 10,000 released) and once on 5 April (after March: not in it); a second pack bought at
  00:30 Beijing on 1 April (16:30 UTC on 31 March) is April's;
- the salon's first stored-value card (90,000) was bought on 2 March and refunded in cooling-off on
  3 March, never paid (due 8 March: unpaid past due); its second at 23:30 Beijing on 31 March
  (15:30 UTC that day) is March's;
- the school's pack (50,000) was bought on 15 March and refunded in cooling-off on 16 March, paid
  on 18 March (before its due_by, 21 March).

Complaints received in March: two about the gym (service quality; answered on time, answered
late), two about the salon (refund refused; unanswered past its deadline, and a hotline work order
received at 23:00 on 31 March still within its deadline when the report is made at ``REPORT_AT``).
One on 28 February and one at 00:10 Beijing on 1 April are outside.

Filings: the gym's, required 3 March, submitted 5 March, accepted 6 March; the salon's, required
in February, due by the end of 19 March and never submitted (missed); the school's, required on
25 March, due in May.

Risk: the gym scored 70 (high) at 01:30 on 31 March and 20 on 1 April (after March); the salon 40
(medium) on 15 March; the school was never assessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import time_machine

from complaints.models import Complaint
from core import clock
from merchants.models import Filing, Merchant
from refunds.models import Refund
from refunds.services import refund_request
from regulator.models import RiskAssessment
from tests.cards import builders
from tests.cards.test_redemptions import use

REPORT_AT = "2026-04-01 04:10 +0800"  # when the scheduled job makes March's report
CHAOYANG, HAIDIAN = "110105", "110108"


def bj(text: str) -> datetime:
    """``"2026-03-05 09:00"`` Beijing time."""
    return datetime.fromisoformat(text).replace(tzinfo=clock.BEIJING)


@dataclass
class City:
    gym: Merchant
    salon: Merchant
    school: Merchant


def complaint(merchant: Merchant, *, at: str, category: str, responded: str | None = None, hotline: bool = False):
    created = bj(at)
    return Complaint.objects.create(
        merchant=merchant,
        source=Complaint.Source.HOTLINE if hotline else Complaint.Source.APP,
        category=category,
        description="课程无法预约",
        state=Complaint.State.RESPONDED if responded else Complaint.State.OPEN,
        respond_by=created + timedelta(hours=48),
        responded_at=bj(responded) if responded else None,
        created_at=created,
    )


def filing(merchant: Merchant, *, created: str, due_on: str, state: str = "required", **moments: str) -> Filing:
    due_day = datetime.fromisoformat(due_on).date()
    return Filing.objects.create(
        merchant=merchant,
        state=state,
        trigger="filing_balance_threshold",
        measured=60_000_000,
        threshold=50_000_000,
        unit="fen",
        profile="beijing",
        profile_version="test",
        due_on=due_day,
        due_by=clock.local_midnight(due_day + timedelta(days=1)),
        created_at=bj(created),
        **{name: bj(value) for name, value in moments.items()},
    )


def assess(merchant: Merchant, *, at: str, score: int, level: str, **values) -> RiskAssessment:
    signals = [
        {"name": name, "value": value, "weight": 10, "contribution": contribution, "explanation": {}}
        for name, (value, contribution) in values.items()
    ]
    return RiskAssessment.objects.create(
        merchant=merchant, computed_at=bj(at), score=score, level=level, signals=signals
    )


def build_city() -> City:
    gym = builders.merchant(name="朝阳健身", district="朝阳区", category="fitness")
    salon = builders.merchant(name="海淀美发", district="海淀区", category="beauty")
    school = builders.merchant(name="朝阳培训", district="朝阳区", category="education")
    pack = builders.session_pack(gym, price=100_000, sessions=10)
    stored = builders.stored_value(salon, price=90_000, face_value=100_000, unit_price=5_000)
    lessons = builders.session_pack(school, price=50_000, sessions=5)

    gym_card = builders.paid_card(pack, at="2026-02-20 10:00 +0800")
    with time_machine.travel("2026-03-10 18:00 +0800", tick=False):
        use(gym_card), use(gym_card)
    builders.paid_card(pack, at="2026-04-01 00:30 +0800")  # 16:30 UTC on 31 March: April's
    with time_machine.travel("2026-04-05 18:00 +0800", tick=False):
        use(gym_card)

    returned = builders.paid_card(stored, at="2026-03-02 10:00 +0800")
    with time_machine.travel("2026-03-03 10:00 +0800", tick=False):
        refund_request(consumer=returned.consumer, card_id=returned.pk, reason="cooling_off")
    builders.paid_card(stored, at="2026-03-31 23:30 +0800")  # 15:30 UTC on 31 March: March's

    school_card = builders.paid_card(lessons, at="2026-03-15 10:00 +0800")
    with time_machine.travel("2026-03-16 10:00 +0800", tick=False):
        paid = refund_request(consumer=school_card.consumer, card_id=school_card.pk, reason="cooling_off")
    Refund.objects.filter(pk=paid.pk).update(state=Refund.State.PAID, paid_at=bj("2026-03-18 10:00"))

    complaint(gym, at="2026-03-05 09:00", category="service_quality", responded="2026-03-06 09:00")
    complaint(gym, at="2026-03-08 09:00", category="service_quality", responded="2026-03-12 09:00")
    complaint(salon, at="2026-03-20 09:00", category="refund_refused")
    complaint(salon, at="2026-03-31 23:00", category="refund_refused", hotline=True)
    complaint(salon, at="2026-02-28 23:30", category="refund_refused")
    complaint(gym, at="2026-04-01 00:10", category="service_quality")

    filing(
        gym,
        created="2026-03-03 01:00",
        due_on="2026-04-10",
        state="accepted",
        submitted_at="2026-03-05 10:00",
        decided_at="2026-03-06 10:00",
    )
    filing(salon, created="2026-02-10 01:00", due_on="2026-03-19")
    filing(school, created="2026-03-25 01:00", due_on="2026-05-20")

    assess(
        gym,
        at="2026-03-31 01:30",
        score=70,
        level="high",
        overdue_complaints=(3, 20.0),
        sales_surge=(2.5, 15.0),
        refund_rate=(0.4, 10.0),
        discount_depth=(0.1, 2.0),
    )
    assess(gym, at="2026-04-01 01:30", score=20, level="low", overdue_complaints=(0, 0.0))
    assess(salon, at="2026-03-15 01:30", score=40, level="medium", months_owed=(8, 12.0))
    return City(gym=gym, salon=salon, school=school)
