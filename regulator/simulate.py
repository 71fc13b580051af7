"""Merchant histories played through the real services, to measure how early the risk model
catches a runaway (``manage.py evaluate_risk``).

Each merchant follows an archetype: healthy ones (steady, seasonal, growing) and runaways (discount
blitz, slow fade, sudden vanish). An archetype is data: a few curves over the simulated day (cards
sold, their discount, how often holders come for a service, complaints, refunds) and, for a runaway,
the day it vanishes (from then on it serves nobody and answers nothing). Every day each merchant's
consumers buy stored-value cards and pay through the sandbox bank (``card_purchase`` +
``payment_simulate``), come for services the merchant starts and they confirm or reject
(``redemption_request`` / ``_confirm`` / ``_reject``), complain in the app (``complaint_file``,
answered with ``complaint_respond`` unless the merchant has stopped answering) and ask for refunds
(``refund_request``); each night the beat's jobs run (activation, overdue complaints) and then the
nightly ``compute_risk`` scores the simulated merchants at that moment. ``time_machine`` moves the
clock to every step, as the demo's history does, so every row carries the moment it happened.

Randomness comes from one ``random.Random(seed)``: a seed tells the same story every time (ids
differ, numbers do not). The evaluation reads the ``RiskAssessment`` rows the nightly runs wrote:
a merchant is *flagged* on the first night its score reaches ``RISK_LEVEL_HIGH`` (the score at
which ``compute_risk`` auto-flags), counted from the end of the warm-up (the first ``warmup`` days,
during which every merchant is new and the model has no history to compare with).
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import time_machine
from django.conf import settings
from django.test.utils import override_settings

from complaints.models import Complaint
from complaints.services import complaint_file, complaint_respond, complaints_mark_overdue
from consumers.models import Consumer
from consumers.services import (
    card_purchase,
    cards_activate_due,
    consumer_register,
    payment_simulate,
    redemption_confirm,
    redemption_reject,
    redemption_request,
)
from core import clock, sql
from merchants.models import Merchant, Product
from merchants.registry import uscc_check_character
from merchants.services.merchants import merchant_register, product_create
from refunds.services import refund_request
from regulator.models import RiskAssessment
from regulator.services.risk import compute_risk

FACE = 150_000  # a stored-value card: ¥1,500 of services
UNIT = 10_000  # ¥100 the cheapest service
VISIT_UNITS = (3, 3, 4, 4, 5)  # a visit uses this many units
PASSWORD = "simulated-merchant-2026"
START = date(2026, 1, 5)  # day 0 (a Monday); the history is placed in the past of no real day
LEAD_DAYS = 14  # a runaway counts as caught when flagged at least this many days before it vanishes
WARMUP_DAYS = 60
DAYS = 150
_RUNS = itertools.count(1)  # keeps the usernames of two runs in one database apart


@dataclass(frozen=True)
class Archetype:
    """How one kind of merchant behaves. Curves take ``(day, vanish)``: the simulated day and the
    day the merchant vanishes (None for a healthy one) and return a number for that day."""

    name: str
    runaway: bool
    sales: Callable[[int, int | None], float]  # cards sold a day, on average
    discount: Callable[[int, int | None], float]  # share off the face value of the cards sold that day
    service: Callable[[int, int | None], float]  # share of the normal visits the merchant still serves
    complaints: Callable[[int, int | None], float]  # complaints a day, on average
    refunds: Callable[[int, int | None], float]  # chance a day that a holder of a live card asks a refund
    claims: Callable[[int, int | None], float] = lambda d, v: 0.0  # share of visits claimed, not given
    answers: Callable[[int, int | None], bool] = lambda d, v: True  # whether it answers complaints
    vanish: tuple[int, int] | None = None  # vanishes this many days before the end (a range)


def _before(day: int, vanish: int | None) -> int:
    """Days until the merchant vanishes (a large number for a healthy one)."""
    return 10_000 if vanish is None else vanish - day


def _ramp(days_left: int, span: int) -> float:
    """0 until ``span`` days before vanishing, then rising linearly to 1 on the day."""
    return _clamp01(1 - days_left / span)


def _clamp01(x: float) -> float:
    return max(0.0, min(1.0, x))


def _gone(day: int, vanish: int | None) -> bool:
    return vanish is not None and day >= vanish


BASE_SALES = 0.7
HEALTHY_COMPLAINTS = 0.01
HEALTHY_REFUNDS = 0.0008

ARCHETYPES: dict[str, Archetype] = {
    a.name: a
    for a in (
        Archetype(
            name="steady",
            runaway=False,
            sales=lambda d, v: BASE_SALES,
            discount=lambda d, v: 0.05,
            service=lambda d, v: 1.0,
            complaints=lambda d, v: HEALTHY_COMPLAINTS,
            refunds=lambda d, v: HEALTHY_REFUNDS,
        ),
        # A 60-day cycle of busy and quiet weeks, and a 10-day holiday promotion every 60 days
        # (twice the sales at 20 % off): the honest merchant a surge signal must not catch.
        Archetype(
            name="seasonal",
            runaway=False,
            sales=lambda d, v: BASE_SALES * (1 + 0.5 * math.sin(2 * math.pi * d / 60)) * (2.0 if d % 60 >= 50 else 1),
            discount=lambda d, v: 0.2 if d % 60 >= 50 else 0.05,
            service=lambda d, v: 1.0,
            complaints=lambda d, v: HEALTHY_COMPLAINTS,
            refunds=lambda d, v: HEALTHY_REFUNDS,
        ),
        # Sales growing 1.2 % a day (×6 over 150 days), services keeping pace.
        Archetype(
            name="growing",
            runaway=False,
            sales=lambda d, v: 0.4 * 1.012**d,
            discount=lambda d, v: 0.1,
            service=lambda d, v: 1.0,
            complaints=lambda d, v: HEALTHY_COMPLAINTS * 1.012**d / 2,
            refunds=lambda d, v: HEALTHY_REFUNDS,
        ),
        # Discount blitz: 40 days before vanishing it sells four times its cards at 45 % off; it
        # keeps serving until 10 days before, then serves less and less.
        Archetype(
            name="discount_blitz",
            runaway=True,
            sales=lambda d, v: 0.0 if _gone(d, v) else BASE_SALES * (4.0 if _before(d, v) <= 40 else 1),
            discount=lambda d, v: 0.45 if _before(d, v) <= 40 else 0.05,
            service=lambda d, v: 0.0 if _gone(d, v) else 1 - _ramp(_before(d, v), 10),
            complaints=lambda d, v: 0.5 if _gone(d, v) else HEALTHY_COMPLAINTS + 0.1 * _ramp(_before(d, v), 10),
            refunds=lambda d, v: 0.03 if _gone(d, v) else HEALTHY_REFUNDS,
            answers=lambda d, v: _before(d, v) > 5,
            vanish=(10, 40),
        ),
        # Slow fade: over its last 60 days it serves less and less (claiming some visits it never
        # gives), keeps selling at a growing discount, complaints rise and go unanswered at the end.
        Archetype(
            name="slow_fade",
            runaway=True,
            sales=lambda d, v: 0.0 if _gone(d, v) else BASE_SALES * (1 + 0.5 * _ramp(_before(d, v), 60)),
            discount=lambda d, v: 0.05 + 0.25 * _ramp(_before(d, v), 60),
            service=lambda d, v: 0.0 if _gone(d, v) else 1 - 0.9 * _ramp(_before(d, v), 60),
            complaints=lambda d, v: 0.5 if _gone(d, v) else HEALTHY_COMPLAINTS + 0.15 * _ramp(_before(d, v), 60),
            refunds=lambda d, v: 0.03 if _gone(d, v) else HEALTHY_REFUNDS + 0.004 * _ramp(_before(d, v), 60),
            claims=lambda d, v: 0.0 if _gone(d, v) else 0.15 * _ramp(_before(d, v), 60),
            answers=lambda d, v: _before(d, v) > 20,
            vanish=(10, 40),
        ),
        # Sudden vanish: serves normally to the last day. Its only warning is a quiet last push:
        # 30 days before, 60 % more cards at 25 % off.
        Archetype(
            name="sudden_vanish",
            runaway=True,
            sales=lambda d, v: 0.0 if _gone(d, v) else BASE_SALES * (1.6 if _before(d, v) <= 30 else 1),
            discount=lambda d, v: 0.25 if _before(d, v) <= 30 else 0.05,
            service=lambda d, v: 0.0 if _gone(d, v) else 1.0,
            complaints=lambda d, v: 0.5 if _gone(d, v) else HEALTHY_COMPLAINTS,
            refunds=lambda d, v: 0.03 if _gone(d, v) else HEALTHY_REFUNDS,
            answers=lambda d, v: not _gone(d, v),
            vanish=(10, 40),
        ),
    )
}

COOLING_OFF_MARGIN = settings.COOLING_OFF_DAYS + 1
VISIT_EVERY = 8.0  # days between two visits of a card's holder, on average


@dataclass
class SimCard:
    id: Any
    consumer: Consumer
    balance: int
    bought: int  # the simulated day it was bought
    live: bool = True


@dataclass
class SimMerchant:
    archetype: Archetype
    index: int
    vanish: int | None
    merchant: Merchant | None = None
    products: dict[int, Product] = field(default_factory=dict)  # by price
    cards: list[SimCard] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    served_days: list[int] = field(default_factory=list)  # days it confirmed at least one service

    @property
    def label(self) -> str:
        return f"{self.archetype.name}-{self.index + 1}"

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


@dataclass
class Simulation:
    seed: int
    days: int
    warmup: int
    start: date
    merchants: list[SimMerchant]
    seconds: float = 0.0

    def day_of(self, moment: datetime) -> int:
        return (clock.local_date(moment) - self.start).days


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; means here are small)."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _licence(rng: random.Random, district: str) -> str:
    while True:
        digits = "".join(rng.choice("0123456789") for _ in range(8))
        check = 11 - sum(int(d) * w for d, w in zip(digits, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
        first17 = "91" + district + digits + {10: "X", 11: "0"}.get(check, str(check))
        code = first17 + uscc_check_character(first17)
        if not Merchant.objects.filter(license_number=code).exists():
            return code


@contextmanager
def _fast_and_inline() -> Iterator[None]:
    """A fast password hasher and no query log; the tasks services queue after commit (refund
    payments) run inline at the moved clock, as the worker would have run them then."""
    from config.celery import app

    eager = app.conf.task_always_eager
    loggers = [logging.getLogger(name) for name in ("celery.app.trace", "kombu.connection", "notifications.sms")]
    levels = [logger.level for logger in loggers]
    app.conf.task_always_eager = True
    for logger in loggers:
        logger.setLevel(logging.ERROR)  # the console SMS backend logs every message at INFO
    try:
        with override_settings(DEBUG=False, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
            yield
    finally:
        app.conf.task_always_eager = eager
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class _Player:
    def __init__(self, sim: Simulation, rng: random.Random, coords: Any) -> None:
        self.sim, self.rng, self.coords = sim, rng, coords
        self.now = clock.local_midnight(sim.start)
        self.consumers: list[Consumer] = []
        self.run = f"{sim.seed}.{next(_RUNS)}"
        # Licences come from their own generator: one already taken (by an earlier run in the same
        # database) is drawn again without changing the story's draws.
        self.licences = random.Random(self.run)

    def go(self, when: datetime) -> None:
        self.now = max(when, self.now + timedelta(seconds=1))
        self.coords.move_to(self.now)

    def step(self, seconds: float = 30) -> None:
        self.go(self.now + timedelta(seconds=seconds))

    def moment(self, day: int, hour: float) -> datetime:
        return clock.local_midnight(self.sim.start + timedelta(days=day)) + timedelta(hours=hour)

    def consumer(self) -> Consumer:
        """A new buyer for most cards (a consumer's card count does not matter to the model)."""
        n = len(self.consumers)
        consumer = consumer_register(
            username=f"sim-consumer-{self.run}-{n}",
            password=PASSWORD,
            display_name=f"模拟消费者{n}",
            phone=f"139{self.sim.seed % 10_000:04d}{n:04d}"[-11:],
        )
        self.consumers.append(consumer)
        return consumer

    def register(self, m: SimMerchant) -> None:
        district = self.rng.choice(("110101", "110102", "110105", "110106", "110108"))
        m.merchant = merchant_register(
            username=f"sim-{self.run}-{m.label}",
            password=PASSWORD,
            name=f"模拟商户 {m.label}（{self.sim.seed}）",
            license_number=_licence(self.licences, district),
            category=Merchant.Category.BEAUTY,
            district=district,
            address="北京市模拟路1号",
        )

    def product(self, m: SimMerchant, discount: float) -> Product:
        price = max(UNIT, round(FACE * (1 - discount) / 1000) * 1000)
        if price not in m.products:
            m.products[price] = product_create(
                merchant=m.merchant,
                name=f"储值卡 ¥{FACE // 100} 售 ¥{price // 100}",
                kind=Product.Kind.STORED_VALUE,
                price=price,
                face_value=FACE,
                unit_price=UNIT,
            )
        return m.products[price]

    def sell(self, m: SimMerchant, day: int) -> None:
        a = m.archetype
        for _ in range(_poisson(self.rng, a.sales(day, m.vanish))):
            self.step(self.rng.uniform(600, 3600))
            product = self.product(m, a.discount(day, m.vanish))
            consumer = self.consumer()
            card = card_purchase(consumer=consumer, product_id=product.pk)
            self.step()
            payment_simulate(consumer=consumer, payment_id=card.payment.pk, outcome="succeeded")
            m.cards.append(SimCard(id=card.pk, consumer=consumer, balance=FACE, bought=day))
            m.count("cards")

    def serve(self, m: SimMerchant, day: int) -> None:
        a = m.archetype
        pace, claims = a.service(day, m.vanish), a.claims(day, m.vanish)
        for card in m.cards:
            if not card.live or self.rng.random() >= 1 / VISIT_EVERY:
                continue
            # The holder comes; the merchant serves (a share ``pace`` of the time), or claims a
            # service it does not give (the consumer rejects it), or turns them away.
            roll = self.rng.random()
            if roll < claims:
                self.step(self.rng.uniform(300, 1800))
                amount = min(card.balance, UNIT * self.rng.choice(VISIT_UNITS))
                r = redemption_request(merchant=m.merchant, card_id=card.id, amount=amount)
                self.step()
                redemption_reject(consumer=card.consumer, redemption_id=r.pk)
                m.count("rejected")
            elif roll < claims + pace * (1 - claims):
                self.step(self.rng.uniform(300, 1800))
                amount = min(card.balance, UNIT * self.rng.choice(VISIT_UNITS))
                r = redemption_request(merchant=m.merchant, card_id=card.id, amount=amount)
                self.step()
                redemption_confirm(consumer=card.consumer, redemption_id=r.pk)
                card.balance -= amount
                card.live = card.balance > 0
                m.count("services")
                if not m.served_days or m.served_days[-1] != day:
                    m.served_days.append(day)

    def complain(self, m: SimMerchant, day: int) -> None:
        a = m.archetype
        held = [c for c in m.cards if c.live]
        for _ in range(_poisson(self.rng, a.complaints(day, m.vanish))):
            if not held:
                return
            card = self.rng.choice(held)
            self.step(self.rng.uniform(300, 1800))
            category = Complaint.Category.CLOSURE if _gone(day, m.vanish) else Complaint.Category.SERVICE_QUALITY
            complaint = complaint_file(
                actor=card.consumer.user,
                merchant_id=m.merchant.pk,
                card_id=card.id,
                category=category,
                description="模拟投诉：服务未按约定提供。",
                source=Complaint.Source.APP,
            )
            m.count("complaints")
            if a.answers(day, m.vanish):
                self.step(self.rng.uniform(1800, 7200))
                complaint_respond(complaint_id=complaint.pk, merchant=m.merchant, text="已联系顾客，安排补课。")
                m.count("answered")

    def refund(self, m: SimMerchant, day: int) -> None:
        chance = m.archetype.refunds(day, m.vanish)
        for card in m.cards:
            # A voluntary refund once the cooling-off period is over (the card is active).
            if card.live and day - card.bought > COOLING_OFF_MARGIN and self.rng.random() < chance:
                self.step(self.rng.uniform(300, 1800))
                refund_request(consumer=card.consumer, card_id=card.id, reason="voluntary")
                card.live = False
                m.count("refunds")

    def night(self, day: int) -> None:
        self.go(self.moment(day, 23.5))
        cards_activate_due()
        complaints_mark_overdue()
        self.step(60)
        compute_risk(at=self.now, merchant_ids=[m.merchant.pk for m in self.sim.merchants])


def simulate(
    *,
    merchants_per_archetype: int = 3,
    days: int = DAYS,
    warmup: int = WARMUP_DAYS,
    seed: int = 18,
    archetypes: list[str] | None = None,
    say: Callable[[str], None] | None = None,
) -> Simulation:
    """Play ``days`` days of the archetypes' merchants through the services, scoring every night."""
    say = say or (lambda message: None)
    names = archetypes or list(ARCHETYPES)
    rng = random.Random(seed)
    cast = []
    for name in names:
        a = ARCHETYPES[name]
        for i in range(merchants_per_archetype):
            vanish = None
            if a.vanish is not None:
                lo, hi = a.vanish
                vanish = max(warmup + LEAD_DAYS + 1, days - rng.randint(lo, hi))
            cast.append(SimMerchant(archetype=a, index=i, vanish=vanish))
    sim = Simulation(seed=seed, days=days, warmup=warmup, start=START, merchants=cast)
    started = time.perf_counter()
    with (
        _fast_and_inline(),
        sql.commits_unsynced(),
        time_machine.travel(clock.local_midnight(START) + timedelta(hours=8), tick=False) as tm,
    ):
        player = _Player(sim, rng, tm)
        player.go(player.moment(0, 8))
        for m in cast:
            player.register(m)
            player.step()
        for day in range(days):
            player.go(player.moment(day, 9))
            for m in cast:
                player.sell(m, day)
                player.serve(m, day)
                player.complain(m, day)
                player.refund(m, day)
            player.night(day)
            if day % 10 == 9 or day == days - 1:
                cards = sum(m.counts.get("cards", 0) for m in cast)
                services = sum(m.counts.get("services", 0) for m in cast)
                say(f"[{time.perf_counter() - started:6.1f}s] day {day + 1}/{days}: {cards} cards, {services} services")
    sim.seconds = time.perf_counter() - started
    return sim


# --- the evaluation ---------------------------------------------------------------------------


@dataclass
class Outcome:
    label: str
    archetype: str
    runaway: bool
    vanish: int | None
    first_flagged: int | None  # simulated day of the first night at or above the high level
    peak: int  # highest score after the warm-up
    counts: dict[str, int]

    @property
    def lead(self) -> int | None:
        """Days between the first flag and vanishing (negative: flagged after it vanished)."""
        if self.vanish is None or self.first_flagged is None:
            return None
        return self.vanish - self.first_flagged

    @property
    def caught(self) -> bool:
        return self.runaway and self.lead is not None and self.lead >= LEAD_DAYS


@dataclass
class Evaluation:
    outcomes: list[Outcome]
    weights: dict[str, int]
    high: int
    seconds: float

    @property
    def runaways(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.runaway]

    @property
    def healthy(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.runaway]

    @property
    def caught_share(self) -> float:
        return sum(o.caught for o in self.runaways) / max(len(self.runaways), 1)

    @property
    def false_share(self) -> float:
        return sum(o.first_flagged is not None for o in self.healthy) / max(len(self.healthy), 1)

    @property
    def met(self) -> bool:
        return self.caught_share >= 0.9 and self.false_share <= 0.05


def nightly_signals(sim: Simulation) -> dict[str, list[tuple[int, dict[str, float]]]]:
    """Each simulated merchant's nights after the warm-up as ``(day, {signal: normalised})``, read
    from the ``RiskAssessment`` rows (normalised = contribution ÷ weight). A signal's normalised
    value does not depend on the weights, so any weights can be scored on one simulation."""
    out: dict[str, list[tuple[int, dict[str, float]]]] = {}
    for m in sim.merchants:
        rows = RiskAssessment.objects.filter(merchant=m.merchant).order_by("computed_at")
        nights = []
        for at, signals in rows.values_list("computed_at", "signals"):
            day = sim.day_of(at)
            if day >= sim.warmup:
                norms = {s["name"]: (s["contribution"] / s["weight"] if s["weight"] else 0.0) for s in signals}
                nights.append((day, norms))
        out[m.label] = nights
    return out


def score(norms: dict[str, float], weights: dict[str, int]) -> int:
    """The score ``compute_risk`` gives for these normalised signals under ``weights``."""
    return min(100, round(sum(norms.get(name, 0.0) * weight for name, weight in weights.items())))


def evaluate(
    sim: Simulation,
    *,
    weights: dict[str, int] | None = None,
    high: int | None = None,
    nights: dict[str, list[tuple[int, dict[str, float]]]] | None = None,
) -> Evaluation:
    """Each simulated merchant's first night at or above ``high`` after the warm-up. Under the
    configured weights and level (the default) this is the score the nightly runs stored; other
    weights are scored from the stored signals."""
    weights = dict(weights or settings.RISK_WEIGHTS)
    high = high or settings.RISK_LEVEL_HIGH
    nights = nights if nights is not None else nightly_signals(sim)
    stored = weights == dict(settings.RISK_WEIGHTS)
    outcomes = []
    for m in sim.merchants:
        if stored:
            rows = RiskAssessment.objects.filter(merchant=m.merchant).order_by("computed_at")
            scores = [(sim.day_of(at), s) for at, s in rows.values_list("computed_at", "score")]
            scores = [(day, s) for day, s in scores if day >= sim.warmup]
        else:
            scores = [(day, score(norms, weights)) for day, norms in nights[m.label]]
        first = next((day for day, s in scores if s >= high), None)
        outcomes.append(
            Outcome(
                label=m.label,
                archetype=m.archetype.name,
                runaway=m.archetype.runaway,
                vanish=m.vanish,
                first_flagged=first,
                peak=max((s for _, s in scores), default=0),
                counts=dict(m.counts),
            )
        )
    return Evaluation(outcomes=outcomes, weights=weights, high=high, seconds=sim.seconds)


def tune(
    sim: Simulation,
    *,
    tries: int = 4000,
    seed: int = 0,
    nights: dict | None = None,
    highs: range = range(20, 81),
    bounds: tuple[int, int] = (2, 30),
) -> tuple[dict[str, int], int, Evaluation]:
    """A seeded search over integer weights summing to 100 and the high level (``highs``) for the
    best evaluation: most runaways caught, then fewest healthy flagged, then the widest margin
    between the runaways' scores and the healthy merchants'. Half the tries are random weights,
    half move a few points from one signal to another in the best found so far. Each weight stays
    within ``bounds``: every one of the eleven signals keeps a say (the pages explain all eleven)
    and none alone decides, so the search cannot fit a single trait of the simulated runaways.
    Starts from the configured weights and level; returns ``(weights, high, evaluation)``."""
    nights = nights if nights is not None else nightly_signals(sim)
    rng = random.Random(seed)
    names = list(settings.RISK_WEIGHTS)
    by_label = {m.label: m for m in sim.merchants}
    lo, hi = bounds

    def judge(weights: dict[str, int], fixed_high: int | None = None) -> tuple[tuple, int]:
        early, healthy = [], []
        for label, rows in nights.items():
            m = by_label[label]
            if m.vanish is None:
                healthy.append(max((score(n, weights) for _, n in rows), default=0))
            else:
                early.append(max((score(n, weights) for d, n in rows if d <= m.vanish - LEAD_DAYS), default=0))
        best: tuple[tuple, int] | None = None
        for high in [fixed_high] if fixed_high else highs:
            caught = sum(e >= high for e in early) / max(len(early), 1)
            false = sum(h >= high for h in healthy) / max(len(healthy), 1)
            margin = min(early, default=0) - max(healthy, default=0)
            merit = (caught - 2 * max(0.0, false - 0.05), -false, margin, -abs(high - settings.RISK_LEVEL_HIGH))
            if best is None or merit > best[0]:
                best = (merit, high)
        assert best is not None
        return best

    best_weights = dict(settings.RISK_WEIGHTS)
    best_merit, best_high = judge(best_weights, settings.RISK_LEVEL_HIGH)
    for attempt in range(tries):
        if attempt % 2 == 0:
            weights = {n: lo for n in names}
            while sum(weights.values()) < 100:  # hand out the rest a point at a time, unevenly
                n = rng.choice(names[: rng.randint(1, len(names))])
                if weights[n] < hi:
                    weights[n] += 1
        else:
            weights = dict(best_weights)
            for _ in range(rng.randint(1, 3)):
                give, take = rng.sample(names, 2)
                moved = min(weights[give] - lo, hi - weights[take], rng.randint(1, 5))
                if moved > 0:
                    weights[give] -= moved
                    weights[take] += moved
        merit, high = judge(weights)
        if merit > best_merit:
            best_weights, best_merit, best_high = weights, merit, high
    return best_weights, best_high, evaluate(sim, weights=best_weights, high=best_high, nights=nights)


def nights_dump(sim: Simulation, nights: dict) -> dict[str, Any]:
    """The histories' nightly signals as JSON (``--save``), to study them without simulating again."""
    return {
        "seed": sim.seed,
        "days": sim.days,
        "warmup": sim.warmup,
        "merchants": [
            {"label": m.label, "archetype": m.archetype.name, "vanish": m.vanish, "counts": m.counts}
            for m in sim.merchants
        ],
        "nights": nights,
    }


def report_lines(evaluation: Evaluation) -> list[str]:
    """The evaluation as a table a person reads, then the summary."""
    lines = [
        f"{'merchant':<18} {'kind':<8} {'vanish':>6} {'flagged':>7} {'lead':>5} {'peak':>4}"
        "  cards services complaints refunds",
    ]
    for o in evaluation.outcomes:
        c = o.counts
        lines.append(
            f"{o.label:<18} {'runaway' if o.runaway else 'healthy':<8} {_or_dash(o.vanish):>6}"
            f" {_or_dash(o.first_flagged):>7} {_or_dash(o.lead):>5} {o.peak:>4}"
            f"  {c.get('cards', 0):>5} {c.get('services', 0):>8} {c.get('complaints', 0):>10} {c.get('refunds', 0):>7}"
        )
    caught = sum(o.caught for o in evaluation.runaways)
    falsely = sum(o.first_flagged is not None for o in evaluation.healthy)
    lines += [
        "",
        f"flag threshold: score >= {evaluation.high} (RISK_LEVEL_HIGH); weights: {evaluation.weights}",
        f"runaways flagged >= {LEAD_DAYS} days before vanishing: {caught}/{len(evaluation.runaways)}"
        f" ({evaluation.caught_share:.0%}; target >= 90%)",
        f"healthy merchants ever flagged: {falsely}/{len(evaluation.healthy)}"
        f" ({evaluation.false_share:.0%}; target <= 5%)",
        f"target {'met' if evaluation.met else 'not met'}; simulated in {evaluation.seconds:.1f}s",
    ]
    return lines


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)
