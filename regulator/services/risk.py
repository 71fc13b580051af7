"""Every merchant's risk score, explainable signal by signal.

Each signal is one SQL aggregate over all merchants at once (GROUP BY merchant on indexed columns);
Python then only turns each merchant's handful of numbers into a score. A signal's ``value`` is what
the regulator can check against the ledger and the complaints; ``normalised`` maps it to 0..1 by
the rule in the table; ``contribution`` = normalised × weight (weights in ``settings.RISK_WEIGHTS``
sum to 100), and the score is the rounded sum.

======================== ===================================================== ========================
signal                   value                                                 normalised to 0..1
======================== ===================================================== ========================
escrow_outstanding       fen still held for future services (cards holding      escrow ÷ filing line
                         escrow)
months_owed              escrow ÷ average monthly release of the last 90 days   3 months → 0, 12 → 1;
                                                                                escrow, no release → 1
sales_surge              card sales of the last 30 days ÷ the monthly average   1.5× → 0, 2.5× → 1;
                         of the 90 days before (of the days it sold, if fewer)  under 30 days → 0
redemption_drop          1 − (weekly releases of the last 14 days ÷ weekly      20 % → 0, 80 % → 1
                         releases of the 8 weeks before)
discount_depth           1 − price ÷ face value of stored-value cards sold in   10 % → 0, 50 % → 1
                         the last 30 days
complaints_per_100_cards complaints of 90 days per 100 cards holding escrow     10 → 1
overdue_complaints       complaints past their deadline without an answer       3 → 1
refund_rate              consumers' refunds ÷ cards sold, both of 90 days       30 % → 1
rejected_redemptions     services the consumer rejected ÷ services decided,     30 % → 1
                         90 days
filing_threshold         escrow at or above the filing line (¥500,000); also    yes → 1
                         1 while a filing the rules require is overdue
refunds_late             refunds of its cards unpaid past ``due_by``, or        3 → 1
                         ``failed`` at the gateway, now
======================== ===================================================== ========================

An overdue filing (merchants.models.Filing: required or returned, past its deadline) counts in
``filing_threshold`` rather than as a twelfth signal: the risk API and pages promise eleven signals.
Its explanation then says how many days the filing is late.

Levels: ``high`` from ``RISK_LEVEL_HIGH``, ``medium`` from ``RISK_LEVEL_MEDIUM``, else ``low``. A
merchant that turns high is flagged automatically (``RISK_AUTO_FLAG``), with an audit event.
"""

from __future__ import annotations

import queue
import threading
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Count, F, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import translation
from django.utils.translation import gettext as _

from complaints.models import Complaint
from consumers.models import Card, Redemption
from core import clock
from escrow.models import JournalEntry, Posting, SettlementDayTotal
from merchants.models import Merchant, Product
from merchants.selectors import filings_overdue_by_merchant
from refunds.models import Refund
from regulator.models import RiskAssessment, RiskLevel
from regulator.services.audit import audit_record

HOLDING = Card.HOLDING
CONSUMER_REFUNDS = (Refund.Reason.COOLING_OFF, Refund.Reason.SMALL_BALANCE, Refund.Reason.VOLUNTARY)
DAYS_PER_MONTH = 30
WRITE_BATCH = 1000
WRITERS = 2  # threads writing the scored batches on a big run


@dataclass
class RiskRun:
    computed_at: datetime
    merchants: int
    high: int
    flagged: int


def _clamp(x: float) -> float:
    return 0.0 if x <= 0 else 1.0 if x >= 1 else x


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator <= 0 else numerator / denominator


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


# --- the signals, one query each -------------------------------------------------------------


def _escrow(merchant_ids: list | None) -> Iterable[tuple]:
    """Escrow outstanding and cards holding it, per merchant (the (merchant, state) index)."""
    scope = Card.objects.filter(state__in=HOLDING)
    if merchant_ids is not None:
        scope = scope.filter(merchant_id__in=merchant_ids)
    rows = scope.values_list("merchant_id").annotate(
        escrow=Sum(F("price") - F("released_total") - F("refunded_total")), cards=Count("pk")
    )
    for merchant, escrow, cards in rows.order_by():
        yield merchant, escrow or 0, cards


def _nearest_midnight(moment: datetime) -> tuple[datetime, Q, int]:
    """The Beijing midnight ``m`` nearest ``moment``, the postings between them (``[moment, m]``
    when ``m`` is at or after it, ``(m, moment)`` when before) and the sign they carry in
    ``P(before moment) = P(up to m, inclusive) + sign × P(between)``."""
    after = clock.local_midnight(clock.local_date(moment))
    if after < moment:
        after = clock.local_midnight(clock.local_date(moment) + timedelta(days=1))
    before = after - timedelta(days=1)
    if after == moment or after - moment <= moment - before:
        return after, Q(entry__created_at__gte=moment, entry__created_at__lte=after), -1
    return before, Q(entry__created_at__gt=before, entry__created_at__lt=moment), 1


def _releases(at: datetime, merchant_ids: list | None) -> Iterable[tuple]:
    """Fen released to each merchant's settlement account: 90 days, last 14 days, the 56 before,
    as ``(merchant, d90, d14, w8)``.

    Exactly the sum of the windows' release postings, read mostly from the day totals the ledger
    keeps as releases post (``escrow.models.SettlementDayTotal``; a business day ``d`` holds
    ``(midnight of d, next midnight]``, so the days up to a midnight ``m`` hold every posting at or
    before ``m``). The postings before a boundary ``b`` are those up to its nearest midnight ``m``,
    less those of ``[b, m]`` (``m`` after ``b``) or plus those of ``(m, b)`` (``m`` before): a
    window ``[lo, hi)`` is the whole days from ``m(lo)`` to ``m(hi)`` and two such edges. Only the
    edges (half a day each at most; minutes for the nightly run at 01:30) are read from the
    postings: 90 days of a city's releases are ten million postings at 10x."""
    bounds = [at - timedelta(days=90), at - timedelta(days=70), at - timedelta(days=14), at]
    nearest = [_nearest_midnight(b) for b in bounds]
    first_day = [clock.local_date(m) for m, _edge, _sign in nearest]  # each boundary's first whole day
    edges = [edge for _m, edge, _sign in nearest]
    signs = [sign for _m, _edge, sign in nearest]
    # By settlement account, each mapped to its merchant after: no join through the accounts'
    # table (ten million card accounts at 10x) on the day totals' side.
    merchants = Merchant.objects.all() if merchant_ids is None else Merchant.objects.filter(pk__in=merchant_ids)
    accounts = merchants.values("settlement_account_id")
    edge_rows = (
        Posting.objects.filter(
            edges[0] | edges[1] | edges[2] | edges[3], entry__code=JournalEntry.Code.RELEASE, account_id__in=accounts
        )
        .values_list("account_id")
        .annotate(**{f"e{n}": Coalesce(Sum(-F("amount"), filter=edge), 0) for n, edge in enumerate(edges)})
        .order_by()
    )
    day_rows = (
        SettlementDayTotal.objects.filter(day__gte=first_day[0], day__lt=first_day[3], account_id__in=accounts)
        .values_list("account_id")
        .annotate(
            d90=Sum("released"),
            d14=Coalesce(Sum("released", filter=Q(day__gte=first_day[2])), 0),
            w8=Coalesce(Sum("released", filter=Q(day__gte=first_day[1], day__lt=first_day[2])), 0),
        )
        .order_by()
    )
    merchant_of = dict(merchants.values_list("settlement_account_id", "pk"))
    totals: dict[int, list[int]] = {}
    for account, *released in edge_rows:
        e0, e1, e2, e3 = (sign * amount for sign, amount in zip(signs, released, strict=True))
        totals[account] = [e3 - e0, e3 - e2, e2 - e1]
    for account, d90, d14, w8 in day_rows:
        edge = totals.pop(account, None)
        if edge is None:
            yield merchant_of[account], d90, d14, w8
        else:
            yield merchant_of[account], d90 + edge[0], d14 + edge[1], w8 + edge[2]
    for account, (d90, d14, w8) in totals.items():
        yield merchant_of[account], d90, d14, w8


def _sales(at: datetime, merchant_ids: list | None) -> Iterable[tuple]:
    """Card sales (price paid) of the last 30 days and the 90 before; stored-value face and price of
    the last 30 days; cards sold in 90 days (the refund rate's base). The ``paid_at`` index."""
    scope = Card.objects.filter(paid_at__gte=at - timedelta(days=120), paid_at__lt=at)
    if merchant_ids is not None:
        scope = scope.filter(merchant_id__in=merchant_ids)
    last30 = Q(paid_at__gte=at - timedelta(days=30))
    sv30 = last30 & Q(kind=Product.Kind.STORED_VALUE)
    rows = scope.values_list("merchant_id").annotate(
        s30=Coalesce(Sum("price", filter=last30), 0),
        s90before=Coalesce(Sum("price", filter=Q(paid_at__lt=at - timedelta(days=30))), 0),
        face30=Coalesce(Sum("face_value", filter=sv30), 0),
        price30=Coalesce(Sum("price", filter=sv30), 0),
        sold90=Count("pk", filter=Q(paid_at__gte=at - timedelta(days=90))),
        first=Min("paid_at"),
    )
    # The base period is the 90 days before the last 30, or less for a merchant that began selling
    # within them: its monthly average is taken over the days it was selling.
    base_end, start = at - timedelta(days=30), at - timedelta(days=120)
    for merchant, s30, s90before, face30, price30, sold90, first in rows.order_by():
        yield merchant, s30, s90before, face30, price30, sold90, max(0, (base_end - max(first, start)).days)


def _complaints(at: datetime, merchant_ids: list | None) -> Iterable[tuple]:
    """Complaints of 90 days, and those now past their deadline without an answer."""
    scope = Complaint.objects.filter(
        Q(created_at__gte=at - timedelta(days=90), created_at__lt=at)
        | Q(state=Complaint.State.OVERDUE)
        | Q(state=Complaint.State.OPEN, respond_by__lt=at)
    )
    if merchant_ids is not None:
        scope = scope.filter(merchant_id__in=merchant_ids)
    overdue = Q(state=Complaint.State.OVERDUE) | Q(state=Complaint.State.OPEN, respond_by__lt=at)
    rows = scope.values_list("merchant_id").annotate(
        c90=Count("pk", filter=Q(created_at__gte=at - timedelta(days=90), created_at__lt=at)),
        overdue=Count("pk", filter=overdue),
    )
    return rows.order_by()


def _refunds(at: datetime, merchant_ids: list | None) -> Iterable[tuple]:
    """Cards consumers returned in 90 days (closures and orders are not the consumer's choice; a
    top-up returned in its cooling-off period is not a card returned)."""
    scope = Refund.objects.filter(
        created_at__gte=at - timedelta(days=90), created_at__lt=at, reason__in=CONSUMER_REFUNDS, top_up__isnull=True
    )
    if merchant_ids is not None:
        scope = scope.filter(card__merchant_id__in=merchant_ids)
    return scope.values_list("card__merchant_id").annotate(n=Count("pk")).order_by()


def _late_refunds(at: datetime, merchant_ids: list | None) -> Iterable[tuple]:
    """Refunds not paid: ``failed`` at the gateway, or pending past their deadline (the (state,
    due_by) index). The merchant's customers wait for money it owes them."""
    scope = Refund.objects.filter(
        Q(state=Refund.State.FAILED) | Q(state=Refund.State.PENDING, due_by__lt=at), created_at__lt=at
    )
    if merchant_ids is not None:
        scope = scope.filter(card__merchant_id__in=merchant_ids)
    rows = scope.values_list("card__merchant_id").annotate(
        late=Count("pk", filter=Q(state=Refund.State.PENDING)), failed=Count("pk", filter=Q(state=Refund.State.FAILED))
    )
    return rows.order_by()


def _redemptions(at: datetime, merchant_ids: list | None) -> Iterable[tuple]:
    """Services decided in 90 days, and those the consumer rejected (the (merchant, created) index)."""
    decided = (Redemption.State.CONFIRMED, Redemption.State.REJECTED)
    scope = Redemption.objects.filter(created_at__gte=at - timedelta(days=90), created_at__lt=at, state__in=decided)
    if merchant_ids is not None:
        scope = scope.filter(merchant_id__in=merchant_ids)
    rows = scope.values_list("merchant_id").annotate(
        decided=Count("pk"), rejected=Count("pk", filter=Q(state=Redemption.State.REJECTED))
    )
    return rows.order_by()


# --- from numbers to a score -----------------------------------------------------------------


def _explain(zh: str, en: str) -> dict[str, str]:
    return {"zh-hans": zh, "en": en}


def _signals(
    *, escrow, cards, releases, sales, complaints, refunds, redemptions, late_refunds=(0, 0), filing_overdue=(0, 0)
) -> list[tuple[str, Any, float, dict[str, str]]]:
    """The eleven signals of one merchant as ``(name, value, normalised, explanation)``."""
    filing = settings.RISK_FILING_THRESHOLD
    d90, d14, w8 = releases
    s30, s90before, face30, price30, sold90, base_days = sales
    c90, overdue = complaints
    decided, rejected = redemptions
    out = []

    out.append(
        (
            "escrow_outstanding",
            escrow,
            _clamp(escrow / filing),
            _explain(
                f"消费者预付、尚未消费的资金 {_yuan(escrow)}，存于 {cards} 张卡的托管账户中。",
                f"{_yuan(escrow)} prepaid and not yet used is held in escrow on {cards} cards.",
            ),
        )
    )

    monthly = d90 * DAYS_PER_MONTH // 90
    if escrow <= 0:
        months, norm = 0.0, 0.0
        zh, en = "没有待履行的预付资金。", "No prepaid service is owed."
    elif monthly <= 0:
        months, norm = None, 1.0
        zh = f"近 90 天没有任何服务释放，托管余额 {_yuan(escrow)} 无法按当前履约速度消化。"
        en = f"No service was released in 90 days, so the {_yuan(escrow)} owed is not being worked off."
    else:
        months = round(escrow / monthly, 1)
        norm = _clamp((escrow / monthly - 3) / 9)
        zh = f"按近 90 天平均每月释放 {_yuan(monthly)} 计算，托管余额相当于 {months} 个月的服务。"
        en = (
            f"At the last 90 days' average release of {_yuan(monthly)} a month,"
            f" escrow covers {months} months of service."
        )
    out.append(("months_owed", months, norm, _explain(zh, en)))

    base = s90before * DAYS_PER_MONTH // base_days if base_days >= DAYS_PER_MONTH else 0
    surge = _ratio(s30, base)
    if surge is None:
        value, norm = None, 0.0
        zh = f"近 30 天售卡 {_yuan(s30)}；此前销售不足一个月，无法比较。"
        en = f"Card sales of {_yuan(s30)} in the last 30 days; under a month of earlier sales to compare with."
    else:
        value, norm = round(surge, 2), _clamp(surge - 1.5)
        zh = f"近 30 天售卡 {_yuan(s30)}，是此前 {base_days} 天月均 {_yuan(base)} 的 {value} 倍。"
        en = (
            f"Card sales of {_yuan(s30)} in the last 30 days are {value}× the monthly average of"
            f" {_yuan(base)} over the {base_days} days before."
        )
    out.append(("sales_surge", value, norm, _explain(zh, en)))

    weekly_before = w8 / 8
    if weekly_before <= 0:
        value, norm = None, 0.0
        zh, en = "此前 8 周没有服务释放，无法比较。", "No service was released in the 8 weeks before to compare with."
    else:
        drop = 1 - (d14 / 2) / weekly_before
        value, norm = round(drop, 2), _clamp((drop - 0.2) / 0.6)
        zh = f"近 14 天每周释放 {_yuan(d14 // 2)}，此前 8 周每周 {_yuan(w8 // 8)}，下降 {round(drop * 100)}%。"
        en = (
            f"Releases of {_yuan(d14 // 2)} a week in the last 14 days against {_yuan(w8 // 8)} a week in the"
            f" 8 weeks before: a {round(drop * 100)}% drop."
        )
    out.append(("redemption_drop", value, norm, _explain(zh, en)))

    if face30 <= 0:
        value, norm = None, 0.0
        zh, en = "近 30 天未售出储值卡。", "No stored-value card was sold in the last 30 days."
    else:
        depth = 1 - price30 / face30
        value, norm = round(depth, 2), _clamp((depth - 0.1) / 0.4)
        zh = f"近 30 天售出的储值卡面值 {_yuan(face30)}、实收 {_yuan(price30)}，折扣深度 {round(depth * 100)}%。"
        en = (
            f"Stored-value cards sold in the last 30 days: face value {_yuan(face30)} for {_yuan(price30)},"
            f" a {round(depth * 100)}% discount."
        )
    out.append(("discount_depth", value, norm, _explain(zh, en)))

    per100 = round(c90 * 100 / max(cards, 1), 2)
    out.append(
        (
            "complaints_per_100_cards",
            per100,
            _clamp(per100 / 10),
            _explain(
                f"近 90 天投诉 {c90} 件，持有余额的卡 {cards} 张，每百张卡 {per100} 件。",
                f"{c90} complaints in 90 days against {cards} cards holding escrow: {per100} per 100 cards.",
            ),
        )
    )
    out.append(
        (
            "overdue_complaints",
            overdue,
            _clamp(overdue / 3),
            _explain(
                f"{overdue} 件投诉已过答复期限仍未答复。",
                f"{overdue} complaints are past their deadline without an answer.",
            ),
        )
    )

    rate = _ratio(refunds, sold90)
    value = None if rate is None else round(rate, 2)
    out.append(
        (
            "refund_rate",
            value,
            0.0 if rate is None else _clamp(rate / 0.3),
            _explain(
                f"近 90 天消费者退卡 {refunds} 张，售卡 {sold90} 张。",
                f"Consumers refunded {refunds} cards in 90 days; {sold90} cards were sold.",
            ),
        )
    )

    rate = _ratio(rejected, decided)
    value = None if rate is None else round(rate, 2)
    out.append(
        (
            "rejected_redemptions",
            value,
            0.0 if rate is None else _clamp(rate / 0.3),
            _explain(
                f"近 90 天消费者拒绝确认 {rejected} 次服务（共 {decided} 次）。",
                f"Consumers rejected {rejected} of {decided} services in 90 days.",
            ),
        )
    )

    over = escrow >= filing
    overdue_filing, days_late = filing_overdue
    zh = f"托管余额{'已达到' if over else '未达到'}北京市备案标准 {_yuan(filing)}。"
    en = f"Escrow is {'at or above' if over else 'below'} Beijing's filing line of {_yuan(filing)}."
    if overdue_filing:
        zh += f"规则要求的备案已逾期 {days_late} 天仍未提交（或被退回后未重新提交）。"
        en += (
            f" A filing the rules require is {days_late} day(s) past its deadline and not submitted"
            " (or returned and not resubmitted)."
        )
    out.append(("filing_threshold", over, 1.0 if over or overdue_filing else 0.0, _explain(zh, en)))

    late, failed = late_refunds
    out.append(
        (
            "refunds_late",
            late + failed,
            _clamp((late + failed) / 3),
            _explain(
                f"{late} 笔退款已超过付款期限仍未到账，{failed} 笔退款被银行拒付、等待处理。",
                f"{late} refunds to its customers are past their deadline unpaid and {failed} were refused"
                " by the bank and wait for an operator.",
            ),
        )
    )

    return out


def risk_level(score: int) -> str:
    if score >= settings.RISK_LEVEL_HIGH:
        return RiskLevel.HIGH
    if score >= settings.RISK_LEVEL_MEDIUM:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW


def _score(raw: list) -> tuple[int, list[dict[str, Any]]]:
    weights = settings.RISK_WEIGHTS
    signals = []
    total = 0.0
    for name, value, norm, explanation in raw:
        weight = weights[name]
        contribution = round(norm * weight, 1)
        total += norm * weight
        signals.append(
            {"name": name, "value": value, "weight": weight, "contribution": contribution, "explanation": explanation}
        )
    return min(100, round(total)), signals


def auto_warning() -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _("The regulator rates this merchant's risk as high. Think carefully before buying a prepaid card.")


# --- the run -------------------------------------------------------------------------------


# Each signal query's numbers per merchant, after the merchant: how many, and their defaults.
_WIDTHS = {
    "escrow": 2,
    "releases": 3,
    "sales": 6,
    "complaints": 2,
    "refunds": 1,
    "redemptions": 2,
    "late_refunds": 2,
}


class _Numbers:
    """The signal queries' numbers of every merchant of a run, in one flat integer array per query,
    a merchant's at its place in the run's (sorted) list: 8 bytes a number, where a dictionary of
    tuples keyed by uuid objects took about ten times that (issue 20: 100,000 merchants)."""

    def __init__(self, ids: list) -> None:
        self.place = {merchant_id: n for n, merchant_id in enumerate(ids)}
        self.columns = {name: array("q", bytes(8 * width * len(ids))) for name, width in _WIDTHS.items()}

    def fill(self, name: str, rows: Iterable[tuple]) -> int:
        """Keep ``rows`` (``(merchant, *numbers)``) of query ``name``; returns how many merchants."""
        column, width, place, count = self.columns[name], _WIDTHS[name], self.place, 0
        for merchant_id, *numbers in rows:
            at = place.get(merchant_id)
            if at is None:  # a merchant that signed up after the run listed them
                continue
            column[at * width : (at + 1) * width] = array("q", map(int, numbers))
            count += 1
        return count

    def of(self, name: str, n: int) -> tuple[int, ...]:
        width = _WIDTHS[name]
        return tuple(self.columns[name][n * width : (n + 1) * width])


def compute_risk(
    *, at: datetime | None = None, merchant_ids: list | None = None, progress: Callable[[str], None] | None = None
) -> RiskRun:
    """Score every merchant (or those of ``merchant_ids``) as of ``at`` (default now), keep each
    score in the history and on the merchant, and flag those that turned high. Safe to run again:
    each run adds one assessment per merchant."""
    at = at or clock.now()
    say = progress or (lambda message: None)
    merchants = Merchant.objects.all()
    if merchant_ids is not None:
        merchants = merchants.filter(pk__in=merchant_ids)
    ids = list(merchants.order_by("pk").values_list("pk", flat=True))
    numbers = _Numbers(ids)
    queries: list[tuple[str, Callable[[], Iterable[tuple]]]] = [
        ("escrow", lambda: _escrow(merchant_ids)),
        ("releases", lambda: _releases(at, merchant_ids)),
        ("sales", lambda: _sales(at, merchant_ids)),
        ("complaints", lambda: _complaints(at, merchant_ids)),
        ("refunds", lambda: _refunds(at, merchant_ids)),
        ("redemptions", lambda: _redemptions(at, merchant_ids)),
        ("late_refunds", lambda: _late_refunds(at, merchant_ids)),
    ]
    _signals_read(numbers, queries, say=say)
    # Overdue filings: one small indexed query ((state, due_by)), not counted among the signal queries.
    overdue_filings = filings_overdue_by_merchant(at=at, merchant_ids=merchant_ids)

    high = 0
    with _Writer(at=at, inline=not _threaded(len(ids)), total=len(ids), say=say) as writer:
        for start in range(0, len(ids), WRITE_BATCH):
            batch = ids[start : start + WRITE_BATCH]
            assessments = []
            for n, merchant_id in enumerate(batch, start):
                escrow, cards = numbers.of("escrow", n)
                score, signals = _score(
                    _signals(
                        escrow=escrow,
                        cards=cards,
                        releases=numbers.of("releases", n),
                        sales=numbers.of("sales", n),
                        complaints=numbers.of("complaints", n),
                        refunds=numbers.of("refunds", n)[0],
                        redemptions=numbers.of("redemptions", n),
                        late_refunds=numbers.of("late_refunds", n),
                        filing_overdue=overdue_filings.get(merchant_id, (0, 0)),
                    )
                )
                level = risk_level(score)
                high += level == RiskLevel.HIGH
                assessments.append(
                    RiskAssessment(merchant_id=merchant_id, computed_at=at, score=score, level=level, signals=signals)
                )
            writer.write(assessments, batch)
    return RiskRun(computed_at=at, merchants=len(ids), high=high, flagged=writer.flagged)


def _threaded(merchants: int) -> bool:
    """Whether a run writes on connections of its own threads besides the caller's: on PostgreSQL,
    for more than one batch, and never inside a caller's transaction (whose rows other connections
    cannot see, and which must hold the writes)."""
    return merchants > WRITE_BATCH and connection.vendor == "postgresql" and not connection.in_atomic_block


def _signals_read(
    numbers: _Numbers, queries: list[tuple[str, Callable[[], Iterable[tuple]]]], *, say: Callable[[str], None]
) -> None:
    """Run the signal queries into ``numbers``, one after another on the caller's connection.

    Each query's rows are fetched whole (as a queryset does), not through ``.iterator()``:
    PostgreSQL runs a server-side cursor's query without its parallel workers (the redemptions'
    aggregate took 2.3 s that way at 1x, against 0.36 s). Not two at a time on connections of
    their own either: at 10x each query already keeps both of the server's cores busy (its
    parallel workers), so the pair took as long as the sequence (20 s), and two results of 100,000
    rows held at once took the run's peak memory to 296 MiB (2026-12-07)."""
    for n, (name, query) in enumerate(queries, 1):
        count = numbers.fill(name, query())
        say(f"signals {n}/{len(queries)}: {name} ({count} merchants)")


class _Writer:
    """Writes each scored batch (its assessments, then ``_apply``) in a transaction of its own.

    On PostgreSQL, outside a caller's transaction and for more than one batch, the writes run in
    ``WRITERS`` threads, each with its own connection, while the next batch is scored: psycopg2
    releases the interpreter lock while the server works, so the scoring (Python) and the writing
    (mostly the server's, on as many of its cores) overlap. One batch waits at most, so memory
    holds ``WRITERS + 2`` batches. The batches' merchants are disjoint, so the writers lock
    different rows. Otherwise (a caller's transaction must hold the writes; SQLite; a single
    batch) each batch is written in place, in order."""

    def __init__(self, *, at: datetime, inline: bool, total: int, say: Callable[[str], None]) -> None:
        self.at, self.inline, self.total, self.say = at, inline, total, say
        self.flagged = self.written = 0
        self.lock = threading.Lock()
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> _Writer:
        if not self.inline:
            for n in range(WRITERS):
                thread = threading.Thread(target=self._run, name=f"risk-writer-{n}", daemon=True)
                thread.start()
                self.threads.append(thread)
        return self

    def _write(self, assessments: list[RiskAssessment], batch: list) -> None:
        with transaction.atomic():
            RiskAssessment.objects.bulk_create(assessments)
            flagged = _apply(at=self.at, merchant_ids=batch)
        with self.lock:
            self.flagged += flagged
            self.written += len(batch)
            self.say(f"scored {self.written}/{self.total} merchants")

    def _run(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                if self.error is None:
                    self._write(*item)
        except BaseException as error:  # noqa: BLE001 (handed to the scoring thread and raised there)
            self.error = error
            while self.queue.get() is not None:  # let the scoring side finish its puts
                pass
        finally:
            connections.close_all()  # this thread's own connection

    def write(self, assessments: list[RiskAssessment], batch: list) -> None:
        if self.inline:
            self._write(assessments, batch)
            return
        if self.error is not None:
            raise self.error
        self.queue.put((assessments, batch))

    def __exit__(self, kind, value, tb) -> None:
        for _thread in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()
        if self.error is not None and value is None:
            raise self.error


def _apply(*, at: datetime, merchant_ids: list) -> int:
    """Copy the batch's new assessments onto the merchants (one UPDATE), then flag the merchants
    that are high and not yet flagged, each with its audit event. Returns how many were flagged."""
    mine = RiskAssessment.objects.filter(merchant_id=OuterRef("pk"), computed_at=at).order_by("-pk")
    Merchant.objects.filter(pk__in=merchant_ids).update(
        risk_score=Subquery(mine.values("score")[:1]),
        risk_level=Subquery(mine.values("level")[:1]),
        risk_computed_at=at,
    )
    if not settings.RISK_AUTO_FLAG:
        return 0
    to_flag = list(
        Merchant.objects.select_for_update()
        .filter(pk__in=merchant_ids, risk_level=RiskLevel.HIGH, flagged=False)
        .order_by("pk")
    )
    warning = auto_warning()
    for merchant in to_flag:
        audit_record(
            verb="risk_auto_flag",
            actor_id=None,
            merchant_id=merchant.pk,
            target=f"merchant:{merchant.pk}",
            reason=f"risk score {merchant.risk_score} ≥ {settings.RISK_LEVEL_HIGH}",
            changes={"flagged": [False, True], "risk_warning": [merchant.risk_warning, warning]},
        )
    if to_flag:
        Merchant.objects.filter(pk__in=[m.pk for m in to_flag]).update(flagged=True, risk_warning=warning)
    return len(to_flag)
