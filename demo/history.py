"""Ninety days of a Beijing market, played through the real services with the clock moved.

Every row the demo holds was written by the service that writes it in production: merchants sign
up and put plans on sale, consumers buy cards and pay through the sandbox bank, merchants start
services that consumers confirm or reject, consumers take refunds, the hotline's work orders and
the app's complaints are filed and answered, and the beat's jobs (activation, expiry, the passes'
accrual, overdue complaints, the daily settlement with its payouts) run when the beat would have run
them. Only the clock is not real: ``time_machine`` moves it to each event's moment, so every
journal entry carries the time it happened and ``verify_ledger`` checks the result like any other.

The history is a queue of events ordered by time; an event's handler moves the clock, calls one or
two services and may schedule the card's next event (a consumer keeps using a card at the pace of
its trade until it is spent, refunded or the history ends). The simulation keeps its own small
copy of each card (balance, sessions left, state) only to choose sensible next steps; the
services decide and the database records. Randomness is seeded, so every load tells the same story
relative to the day it is loaded.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import time_machine
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test.utils import override_settings

from complaints.services import (
    complaint_close,
    complaint_file,
    complaint_respond,
    complaints_mark_overdue,
)
from consumers import rules
from consumers.models import Consumer
from consumers.services import (
    card_purchase,
    cards_activate_due,
    consumer_register,
    payment_simulate,
    period_pass_accrue,
    redemption_confirm,
    redemption_reject,
    redemption_request,
    redemptions_expire_due,
)
from core import clock
from core.models import User
from core.services import user_create, user_totp_set
from demo import city
from merchants.models import Merchant, Product
from merchants.registry import DISTRICTS, uscc_check_character
from merchants.services.closure import merchant_closure_announce
from merchants.services.merchants import merchant_register, product_create
from merchants.services.settlement import settlement_run
from refunds.services import refund_request
from regulator.services.risk import compute_risk

HISTORY_DAYS = 90
RISK_HOUR = 1.5  # Beijing time of the nightly risk run (CELERY_BEAT_SCHEDULE's risk-nightly)
CARDS = 2000
CONSUMERS = 300  # with the demo consumer
SEED = 20260101

# Fates of an ordinary card, as cumulative shares: what its buyer will do with it.
FATES = (("failed", 0.012), ("cooling_off", 0.045), ("voluntary", 0.07), ("idle", 0.40), ("use", 1.0))
# Days between two services, by trade (a gym is visited more often than a photo studio).
PACE: dict[str, tuple[float, float]] = {
    "gym": (16, 34),
    "beauty": (26, 46),
    "school": (14, 28),
    "restaurant": (16, 34),
    "laundry": (16, 34),
    "pet": (28, 50),
    "massage": (24, 44),
    "housekeeping": (22, 40),
    "photo": (40, 70),
    "carwash": (16, 34),
    "billiards": (16, 34),
}
REGULARS = (0.08, 0.35)  # this share of card holders come at this fraction of their trade's interval
PASS_SHARE = 0.3  # a period pass sells about a third as well as the trade's other plans
REJECT_SHARE = 0.02  # services a consumer disputes
UNANSWERED_SHARE = 0.01  # service requests nobody confirms (they expire)
RUNAWAY_STOP_DAYS = 19  # a runaway stopped serving this many days before today
RUNAWAY_REGULAR_CARDS = 18
RUNAWAY_BLITZ_CARDS = 42
SPENT_DOWN_CARDS = 6  # stored-value cards used down to a small balance and refunded as such
RUNAWAY_CLAIM_SHARE = 0.35  # after stopping, a requested service the consumer rejects
# Two of the beat's jobs run daily in the recent past and weekly before it, which keeps the load
# fast. Both are cumulative: the passes' accrual releases what the days since its last run earned,
# and a settlement settles everything since the previous run's cutoff (so the older statements
# each cover a week).
ACCRUAL_DAILY_DAYS = 3
SETTLEMENT_DAILY_DAYS = 14

DEMO_PASSWORD = "demo-pass-2026"
REGULATOR = "regulator"
# The demo regulator's authenticator secret (base32, 160 bits): public like the password, so that
# anyone trying the demo can add it to an authenticator app (make run prints its otpauth:// URI).
DEMO_TOTP_SECRET = "PREPAIDDEMOREGULATORKEYABCDEFGHI"
DEMO_CONSUMER = "demo-consumer"
DEMO_MERCHANT = "demo-merchant"


@dataclass
class Seller:
    shop: city.Shop
    username: str
    weight: float
    level: float  # price level: the trade's prices times this
    merchant: Merchant | None = None
    products: list[Product] = field(default_factory=list)
    plans: list[city.Plan] = field(default_factory=list)
    blitz: Product | None = None
    blitz_plan: city.Plan | None = None
    runaway: bool = False
    stops_at: datetime | None = None
    closing_at: datetime | None = None
    cards: list[SimCard] = field(default_factory=list)


@dataclass
class Buyer:
    username: str
    display_name: str
    phone: str
    consumer: Consumer | None = None


@dataclass
class SimCard:
    """The simulation's copy of a card: enough to choose its next step."""

    seller: Seller
    buyer: Buyer | None  # assigned once every card is planned
    plan: city.Plan
    product_index: int  # -1: the seller's blitz plan
    bought_at: datetime
    fate: str  # use, idle, cooling_off, voluntary, failed, pending, scripted
    script: list[tuple[datetime, str, int | None]] = field(default_factory=list)
    id: Any = None
    state: str = "new"  # new, pending, cancelled, live, exhausted, refunded
    served: bool = False
    balance: int | None = None
    sessions_left: int | None = None
    cooling_off_ends_at: datetime | None = None
    pass_ends: datetime | None = None
    pace: float = 1.0

    @property
    def product(self) -> Product:
        return self.seller.blitz if self.product_index < 0 else self.seller.products[self.product_index]

    def usable(self, now: datetime) -> bool:
        if self.state != "live":
            return False
        if self.plan.kind == "period_pass":
            return now < self.pass_ends
        if self.plan.kind == "stored_value":
            return self.balance >= self.plan.unit_price
        return self.sessions_left > 0


@dataclass
class ComplaintPlan:
    seller: Seller
    when: datetime
    source: str
    category: str
    urgent: bool = False
    answer_after: timedelta | None = None
    close_after: timedelta | None = None
    buyer: Buyer | None = None


@dataclass
class Loaded:
    users: list[int]
    seconds: float
    counts: Counter


class History:
    """Plans and plays the demo's ninety days (see the module's docstring)."""

    def __init__(self, *, end: datetime, say: Callable[[str], None]) -> None:
        self.rng = random.Random(SEED)
        self.say = say
        self.end = end
        self.horizon = end - timedelta(minutes=20)  # the history stops here; the present follows
        self.today = clock.local_date(end)
        self.day0 = self.today - timedelta(days=HISTORY_DAYS - 1)
        self.started = time.perf_counter()
        self.counts: Counter = Counter()
        self.spent: Counter = Counter()
        self.users: list[int] = []
        self._events: list = []
        self._seq = itertools.count()
        self._coords = None
        self.now = self.moment(-35, 9)
        self._hotline_no = itertools.count(3817, 7)
        self.regulator: User | None = None
        self.sellers: list[Seller] = []
        self.buyers: list[Buyer] = []
        self.cards: list[SimCard] = []
        self.demo_buyer: Buyer | None = None
        self.demo_seller: Seller | None = None

    # --- time --------------------------------------------------------------------------------

    def moment(self, day: int, hour: float) -> datetime:
        """Beijing ``hour`` o'clock of history day ``day`` (0 = 89 days ago, 89 = today)."""
        return clock.local_midnight(self.day0 + timedelta(days=day)) + timedelta(hours=hour)

    def daytime(self, day: int, lo: float = 9.5, hi: float = 21.0) -> datetime:
        """A moment in opening hours of ``day``; of the day before if that is still to come."""
        when = self.moment(day, self.rng.uniform(lo, hi))
        return when if when < self.horizon else self.daytime(day - 1, lo, hi)

    def later(self, after: datetime, lo: float, hi: float) -> datetime:
        """A moment in opening hours some ``lo``-``hi`` days after ``after``."""
        target = clock.local_date(after + timedelta(days=self.rng.uniform(lo, hi)))
        when = clock.local_midnight(target) + timedelta(hours=self.rng.uniform(9.5, 21.0))
        return when if when > after else after + timedelta(hours=self.rng.uniform(1, 3))

    def at(self, when: datetime, handler: Callable, *args: Any) -> None:
        if when < self.horizon:
            heapq.heappush(self._events, (when, next(self._seq), handler, args))

    def step(self, seconds: float) -> None:
        """Move the clock on a little: the next step of the same event (a payment, a confirmation)."""
        self._go(self.now + timedelta(seconds=seconds))

    def _go(self, when: datetime) -> None:
        self.now = max(when, self.now + timedelta(milliseconds=1))
        self._coords.move_to(self.now)

    def progress(self, message: str) -> None:
        self.say(f"[{time.perf_counter() - self.started:5.1f}s] {message}")

    # --- the plan ------------------------------------------------------------------------------

    def plan(self) -> None:
        self._plan_cast()
        self._plan_cards()
        self._plan_complaints()
        self._plan_jobs()

    def _licence(self, shop: city.Shop, taken: set[str]) -> str:
        """A unified social credit code: authority 9, type 1 (enterprise) or 2 (individual
        business), the district, a 9-character organisation code with its GB 11714 check, and the
        GB 32100 check character."""
        while True:
            digits = "".join(self.rng.choice("0123456789") for _ in range(8))
            total = sum(int(d) * w for d, w in zip(digits, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
            check = 11 - total % 11
            org = digits + {10: "X", 11: "0"}.get(check, str(check))
            first17 = ("92" if shop.individual else "91") + shop.district + org
            code = first17 + uscc_check_character(first17)
            if code not in taken:
                taken.add(code)
                return code

    def _plan_cast(self) -> None:
        self.at(self.moment(-32, 9), self._register_regulator)
        taken: set[str] = set()
        for n, shop in enumerate(city.SHOPS):
            demo = shop.brand == city.DEMO_SHOP
            seller = Seller(
                shop=shop,
                username=DEMO_MERCHANT if demo else f"merchant-{n:02d}",
                weight={"catering": 1.4, "laundry": 1.3, "education": 0.7, "other": 0.8}.get(shop.category, 1.0)
                * (1.4 if demo else 1.0),
                level=1.0 if demo else self.rng.choice((0.8, 0.9, 1.0, 1.0, 1.1, 1.2)),
                runaway=shop.brand in city.RUNAWAYS,
            )
            seller.plans = [self._priced(plan, seller.level) for plan in city.PLANS[shop.trade]]
            if seller.runaway:
                seller.stops_at = self.moment(HISTORY_DAYS - RUNAWAY_STOP_DAYS, 0)
                seller.blitz_plan = city.BLITZ_PLANS[shop.brand]
                self.at(self.moment(HISTORY_DAYS - 30, 21), self._launch_blitz, seller)
            if shop.brand == city.CLOSING_SHOP:
                seller.closing_at = self.moment(HISTORY_DAYS - 6, 10)
                self.at(seller.closing_at, self._announce_closure, seller)
            if demo:
                self.demo_seller = seller
            self.sellers.append(seller)
            self.at(self.daytime(-30 + n // 2), self._register_merchant, seller, self._licence(shop, taken))

        self.demo_buyer = Buyer(DEMO_CONSUMER, "林晓雨", "13910002026")
        self.buyers.append(self.demo_buyer)
        for n in range(1, CONSUMERS):
            name = self.rng.choice(city.SURNAMES) + self.rng.choice(city.GIVEN_NAMES)
            phone = self.rng.choice(("139", "138", "136", "135", "186", "188", "150", "158", "177", "199"))
            self.buyers.append(Buyer(f"consumer-{n:03d}", name, phone + f"{self.rng.randrange(10**8):08d}"))

    @staticmethod
    def _priced(plan: city.Plan, level: float) -> city.Plan:
        """The plan at a merchant's price level, rounded to whole yuan tens (a bonus kept in proportion)."""
        if level == 1.0:
            return plan
        price = min(500_000, round(plan.price * level / 1000) * 1000)
        face = None if plan.face_value is None else round(plan.face_value * price / plan.price / 1000) * 1000
        return city.Plan(
            plan.name, plan.kind, price, face, plan.unit_price, plan.sessions, plan.days, plan.refund_fee_bps
        )

    def _seller(self, brand: str) -> Seller:
        return next(s for s in self.sellers if s.shop.brand == brand)

    def _card(self, seller: Seller, buyer: Buyer | None, index: int, bought_at: datetime, fate: str) -> SimCard:
        plan = seller.blitz_plan if index < 0 else seller.plans[index]
        card = SimCard(seller=seller, buyer=buyer, plan=plan, product_index=index, bought_at=bought_at, fate=fate)
        self.cards.append(card)
        return card

    def _choose_plan(self, seller: Seller) -> int:
        weights = [PASS_SHARE if plan.kind == "period_pass" else 1.0 for plan in seller.plans]
        return self.rng.choices(range(len(seller.plans)), weights)[0]

    def _fate(self) -> str:
        roll = self.rng.random()
        return next(fate for fate, share in FATES if roll < share)

    def _plan_demo_consumer(self) -> None:
        """The demo consumer's cards, one in every state, each with its story."""
        me = self.demo_buyer
        gym, cafe, laundry = self.demo_seller, self._seller("胡同咖啡"), self._seller("洁净洗衣")
        salon, restaurant, gym2 = self._seller("悦容美容会所"), self._seller("和记茶餐厅"), self._seller("力健健身")
        runaway = self._seller(city.RUNAWAYS[0])
        # Active, with sessions left: the demo merchant asks it to confirm a session at the end.
        card = self._card(gym, me, 1, self.moment(55, 19.2), "scripted")
        card.script = [(self.moment(d, 19.5), "use", None) for d in (57, 62, 66, 71, 75, 80, 84, 87)]
        # In the cooling-off period, with days left: bought yesterday evening.
        self._card(cafe, me, 0, self.moment(HISTORY_DAYS - 2, 18.7), "scripted")
        # Exhausted: ten items of dry cleaning, all used.
        card = self._card(laundry, me, 1, self.moment(8, 12.1), "scripted")
        card.script = [(self.moment(10 + 5 * k, 12.4), "use", None) for k in range(10)]
        # Refunded within the cooling-off period, no questions asked.
        card = self._card(salon, me, 0, self.moment(48, 15.3), "scripted")
        card.script = [(self.moment(50, 11.0), "refund", "cooling_off")]
        # Refunded after two visits, less the contract's fee.
        card = self._card(gym2, me, 0, self.moment(4, 18.0), "scripted")
        card.script = [
            (self.moment(9, 19.0), "use", 17_600),
            (self.moment(20, 19.0), "use", 8_800),
            (self.moment(44, 10.0), "refund", "voluntary"),
        ]
        # A stored-value card with a small balance left (below the cheapest dish): refundable as such.
        card = self._card(restaurant, me, 0, self.moment(30, 12.0), "scripted")
        spent = card.plan.face_value - card.plan.unit_price + 200
        meals = (spent * 3 // 1000 * 100, spent * 4 // 1000 * 100)
        meals += (spent - sum(meals),)
        card.script = [(self.moment(d, 12.3), "use", a) for d, a in zip((33, 47, 61), meals, strict=True)]
        # The runaway's blitz: one visit, then sessions it never gave, then a complaint.
        card = self._card(runaway, me, -1, self.moment(HISTORY_DAYS - 28, 20.0), "scripted")
        card.script = [
            (self.moment(HISTORY_DAYS - 25, 19.0), "use", 8_800),
            (self.moment(HISTORY_DAYS - 12, 19.0), "reject", 17_600),
            (self.moment(HISTORY_DAYS - 9, 19.0), "reject", 17_600),
        ]

    def _plan_cards(self) -> None:
        self._plan_demo_consumer()
        last = HISTORY_DAYS - 1
        for seller in self.sellers:
            if not seller.runaway:
                continue
            # No passes: a pass's escrow is released by the calendar, whether or not it serves.
            served = [n for n, plan in enumerate(seller.plans) if plan.kind != "period_pass"]
            for _ in range(RUNAWAY_REGULAR_CARDS):
                index = self.rng.choice(served)
                self._card(seller, None, index, self.daytime(self.rng.randrange(0, 58)), self._fate())
            for _ in range(RUNAWAY_BLITZ_CARDS):
                roll = self.rng.random()
                fate = "cooling_off" if roll < 0.08 else "voluntary" if roll < 0.14 else "use"
                self._card(seller, None, -1, self.daytime(self.rng.randint(HISTORY_DAYS - 29, last)), fate)
        ordinary = [s for s in self.sellers if not s.runaway]
        weights = [s.weight for s in ordinary]
        for seller in self.rng.choices(ordinary, weights, k=CARDS - len(self.cards)):
            bought_at = self.daytime(self.rng.randint(0, last))
            if seller.closing_at and bought_at >= seller.closing_at:
                bought_at = self.daytime(self.rng.randint(0, HISTORY_DAYS - 8))
            self._card(seller, None, self._choose_plan(seller), bought_at, self._fate())
        # A few buyers who have just started a purchase and not paid yet.
        for card in self.rng.sample([c for c in self.cards if c.buyer is None and not c.seller.closing_at], 3):
            card.fate, card.bought_at = "pending", self.horizon - timedelta(minutes=self.rng.uniform(5, 90))
        # A few stored-value cards spent down to less than the cheapest service, then refunded.
        cheap = [
            c
            for c in self.cards
            if c.fate == "use" and c.plan.kind == "stored_value" and c.plan.face_value <= 110_000 and c.buyer is None
        ]
        for card in self.rng.sample(cheap, SPENT_DOWN_CARDS):
            self._spend_down(card)
        # Every consumer has a card; some have many.
        anonymous = [c for c in self.cards if c.buyer is None]
        self.rng.shuffle(anonymous)
        generic = self.buyers[1:]
        appetite = [self.rng.uniform(0.3, 2.5) for _ in generic]
        # One card per buyer at a school: two would be refused together over the education limit
        # (merchants.services.limits), a purchase the platform does not make.
        at_school: set[tuple[str, str]] = {
            (c.buyer.username, c.seller.shop.brand) for c in self.cards if c.buyer is not None
        }
        for n, card in enumerate(anonymous):
            buyer = generic[n] if n < len(generic) else self.rng.choices(generic, appetite)[0]
            if card.seller.shop.category == "education":
                start = generic.index(buyer)
                buyer = next(
                    b
                    for b in generic[start:] + generic[:start]
                    if (b.username, card.seller.shop.brand) not in at_school
                )
                at_school.add((buyer.username, card.seller.shop.brand))
            card.buyer = buyer
        first: dict[str, datetime] = {}
        for card in self.cards:
            card.bought_at = min(card.bought_at, self.horizon - timedelta(minutes=1))
            first[card.buyer.username] = min(first.get(card.buyer.username, card.bought_at), card.bought_at)
            self.at(card.bought_at, self._buy, card)
            card.seller.cards.append(card)
        for buyer in self.buyers:
            joined = max(first[buyer.username] - timedelta(days=self.rng.uniform(0.02, 12)), self.moment(-20, 9))
            self.at(joined, self._register_consumer, buyer)

    def _spend_down(self, card: SimCard) -> None:
        """Script a card bought early to be used down to a small balance and refunded as such."""
        plan = card.plan
        card.bought_at = self.daytime(self.rng.randint(0, 30))
        left = self.rng.randrange(1, plan.unit_price // 100) * 100  # below the cheapest service
        uses = self.rng.randint(2, 5)
        amounts = [(plan.face_value - left) // uses // 100 * 100] * (uses - 1)
        amounts.append(plan.face_value - left - sum(amounts))
        when = card.bought_at
        for amount in amounts:
            when = self.later(when, 3, 9)
            card.script.append((when, "use", amount))
        card.script.append((self.later(when, 1, 6), "refund", "small_balance"))
        card.fate = "scripted"

    def _plan_complaints(self) -> None:
        rng, plans = self.rng, []
        ordinary = [s for s in self.sellers if not s.runaway and s is not self.demo_seller]
        for _ in range(40):
            answer = rng.random()
            plans.append(
                ComplaintPlan(
                    seller=rng.choice(ordinary),
                    when=self.daytime(rng.randint(3, HISTORY_DAYS - 1)),
                    source=rng.choice(("app", "app", "hotline")),
                    category=rng.choice(("service_quality", "service_quality", "refund_refused", "contract_terms")),
                    urgent=rng.random() < 0.08,
                    answer_after=timedelta(hours=rng.uniform(1, 40))
                    if answer < 0.7
                    else timedelta(hours=rng.uniform(60, 120))
                    if answer < 0.8
                    else None,
                    close_after=timedelta(days=rng.uniform(1, 5)) if rng.random() < 0.55 else None,
                )
            )
        for seller in (s for s in self.sellers if s.runaway):
            for _ in range(8):
                plans.append(
                    ComplaintPlan(
                        seller=seller,
                        when=self.daytime(rng.randint(HISTORY_DAYS - 20, HISTORY_DAYS - 1)),
                        source=rng.choice(("app", "hotline", "hotline")),
                        category=rng.choice(
                            (
                                "service_unavailable",
                                "service_unavailable",
                                "closure",
                                "misleading_sales",
                                "refund_refused",
                            )
                        ),
                        urgent=rng.random() < 0.25,
                    )
                )
        demo, last = self.demo_seller, HISTORY_DAYS - 1
        hours = timedelta(hours=1)
        plans += [
            ComplaintPlan(
                demo, self.moment(60, 14), "app", "service_quality", answer_after=5 * hours, close_after=2 * 24 * hours
            ),
            ComplaintPlan(demo, self.moment(80, 10.5), "hotline", "refund_refused", answer_after=20 * hours),
            ComplaintPlan(demo, self.moment(84, 16), "hotline", "contract_terms"),  # never answered: overdue
            ComplaintPlan(demo, self.horizon - 20 * hours, "app", "service_quality"),  # open: to answer
            ComplaintPlan(demo, self.horizon - 3 * hours, "hotline", "misleading_sales"),  # open: to answer
            ComplaintPlan(
                self._seller(city.RUNAWAYS[0]),
                self.moment(last - 6, 21),
                "app",
                "service_unavailable",
                buyer=self.demo_buyer,
            ),
        ]
        for plan in plans:
            self.at(plan.when, self._file_complaint, plan)

    def _plan_jobs(self) -> None:
        for day in range(HISTORY_DAYS):
            if day % 10 == 0:
                self.at(self.moment(day, 0), self._report, day)
            if day >= HISTORY_DAYS - ACCRUAL_DAILY_DAYS or day % 7 == 0:
                self.at(
                    self.moment(day, 0.3), self._job, "accrual", lambda d=day: period_pass_accrue(day=self._date(d))
                )
            self.at(self.moment(day, 0.6), self._job, "activation", cards_activate_due)
            settled = day - 1  # at 02:00 the day before is settled
            if settled >= HISTORY_DAYS - 1 - SETTLEMENT_DAILY_DAYS or (settled >= 0 and settled % 7 == 6):
                self.at(
                    self.moment(day, 2), self._job, "settlement", lambda d=settled: settlement_run(day=self._date(d))
                )
            self.at(self.moment(day, 3), self._job, "expiry", redemptions_expire_due)
            # The nightly risk run, as the beat schedule runs it: every merchant scored on that night's
            # data (and flagged when it turns high), so each merchant's trend is a score a day.
            self.at(self.moment(day, RISK_HOUR), self._job, "risk", compute_risk)
            self.at(self.moment(day, 9), self._job, "overdue", complaints_mark_overdue)

    def _date(self, day: int) -> date:
        return self.day0 + timedelta(days=day)

    # --- the play --------------------------------------------------------------------------------

    def play(self) -> None:
        self.progress(f"history from {self.day0} to {self.today}: {len(self._events)} events planned")
        with time_machine.travel(self.now, tick=False) as coords:
            self._coords = coords
            while self._events:
                when, _, handler, args = heapq.heappop(self._events)
                self._go(when)
                t = time.process_time()
                handler(*args)
                self.spent[args[0] if handler == self._job else handler.__name__] += time.process_time() - t
            self._coords = None
        spent = ", ".join(f"{name.strip('_')} {seconds:.1f}s" for name, seconds in self.spent.most_common(6))
        self.progress(f"history played; CPU time went most to {spent}")

    def _report(self, day: int) -> None:
        c = self.counts
        self.progress(
            f"day {day:2d}/{HISTORY_DAYS} ({self._date(day)}): {c['cards']} cards, {c['services']} services, "
            f"{c['refunds']} refunds, {c['complaints']} complaints, {c['settlement']} settlements"
        )

    def _job(self, name: str, run: Callable[[], Any]) -> None:
        run()
        self.counts[name] += 1

    def _register_regulator(self) -> None:
        self.regulator = user_create(username=REGULATOR, password=DEMO_PASSWORD, role=User.Role.REGULATOR)
        user_totp_set(user=self.regulator, secret=DEMO_TOTP_SECRET)
        self.users.append(self.regulator.pk)

    def _register_merchant(self, seller: Seller, licence: str) -> None:
        shop = seller.shop
        area, street = city.STREETS[shop.district][shop.street]
        district = DISTRICTS[shop.district][0]
        number = self.rng.randint(1, 188)
        seller.merchant = merchant_register(
            username=seller.username,
            password=DEMO_PASSWORD,
            name=f"{shop.brand}（{area}{'校区' if shop.category == 'education' else '店'}）",
            license_number=licence,
            category=shop.category,
            district=shop.district,
            address=f"北京市{district}{street}{number}号{self.rng.choice(city.ADDRESS_TAILS)}",
        )
        self.users.append(seller.merchant.user_id)
        for plan in seller.plans:
            self.step(60)
            seller.products.append(self._product(seller, plan))

    def _product(self, seller: Seller, plan: city.Plan) -> Product:
        return product_create(
            merchant=seller.merchant,
            name=plan.title(),
            kind=plan.kind,
            price=plan.price,
            face_value=plan.face_value,
            sessions=plan.sessions,
            days=plan.days,
            unit_price=plan.unit_price,
            refund_fee_bps=plan.refund_fee_bps,
        )

    def _launch_blitz(self, seller: Seller) -> None:
        seller.blitz = self._product(seller, seller.blitz_plan)

    def _announce_closure(self, seller: Seller) -> None:
        merchant_closure_announce(
            merchant=seller.merchant,
            closes_on=clock.local_date() + timedelta(days=32),
            reason="租约到期，门店不再续租。卡内余额将在闭店当日全额退还。",
        )

    def _register_consumer(self, buyer: Buyer) -> None:
        buyer.consumer = consumer_register(
            username=buyer.username, password=DEMO_PASSWORD, display_name=buyer.display_name, phone=buyer.phone
        )
        self.users.append(buyer.consumer.user_id)

    def _buy(self, card: SimCard) -> None:
        consumer = card.buyer.consumer
        bought = card_purchase(consumer=consumer, product_id=card.product.pk)
        card.id = bought.pk
        self.counts["cards"] += 1
        if card.fate == "pending":
            card.state = "pending"
            return
        self.step(self.rng.uniform(15, 90))
        outcome = "failed" if card.fate == "failed" else "succeeded"
        payment_simulate(consumer=consumer, payment_id=bought.payment.pk, outcome=outcome)
        if outcome == "failed":
            card.state = "cancelled"
            return
        card.state = "live"
        card.cooling_off_ends_at = rules.cooling_off_ends_at(self.now)
        plan = card.plan
        card.balance = plan.face_value if plan.kind == "stored_value" else None
        card.sessions_left = plan.sessions if plan.kind == "session_pack" else None
        if plan.kind == "period_pass":
            card.pass_ends = clock.local_midnight(clock.local_date(self.now)) + timedelta(days=plan.days)
        if card.fate == "scripted":
            for when, action, value in card.script:
                self.at(when, self._scripted, card, action, value)
        elif card.fate == "cooling_off":
            self.at(
                min(self.later(self.now, 0.3, 6), card.cooling_off_ends_at - timedelta(hours=3)),
                self._refund,
                card,
                "cooling_off",
            )
        elif card.fate in ("use", "voluntary"):
            share, pace = REGULARS
            card.pace = pace if self.rng.random() < share else 1.0
            self.at(self.later(self.now, 0.1, 9 * card.pace), self._use, card)
            if card.fate == "voluntary":
                self.at(self.later(card.cooling_off_ends_at, 1, 40), self._refund, card, "voluntary")

    def _scripted(self, card: SimCard, action: str, value: Any) -> None:
        if action == "refund":
            self._refund(card, value)
        else:
            self._serve(card, amount=value, reject=action == "reject")

    def _use(self, card: SimCard) -> None:
        """The card's holder comes for a service (and will come again)."""
        if card.state != "live":
            return
        seller, plan = card.seller, card.plan
        lo, hi = PACE[seller.shop.trade]
        if seller.runaway and self.now >= seller.stops_at:
            # Services stopped; now and then the merchant claims one the consumer never had.
            if card.usable(self.now) and self.rng.random() < RUNAWAY_CLAIM_SHARE:
                self._serve(card, amount=self._amount(card), reject=True)
            self.at(self.later(self.now, 3, 8), self._use, card)
            return
        if plan.kind == "stored_value" and 0 < card.balance < plan.unit_price:
            if self.rng.random() < 0.6:
                self._refund(card, "small_balance")
            return
        if not card.usable(self.now):
            return
        roll = self.rng.random()
        self._serve(card, amount=self._amount(card), reject=roll < REJECT_SHARE, expire=roll > 1 - UNANSWERED_SHARE)
        self.at(self.later(self.now, lo * card.pace, hi * card.pace), self._use, card)

    def _amount(self, card: SimCard) -> int | None:
        """Face value a stored-value service uses: one to a few of the cheapest service."""
        if card.plan.kind != "stored_value":
            return None
        unit = card.plan.unit_price
        amount = round(unit * self.rng.choice((1, 1.5, 2, 2, 3, 4, 5)) / 100) * 100
        return amount if amount <= card.balance else card.balance

    def _serve(self, card: SimCard, *, amount: int | None, reject: bool = False, expire: bool = False) -> None:
        """The merchant starts a service; its consumer confirms (or rejects, or lets it expire)."""
        redemption = redemption_request(merchant=card.seller.merchant, card_id=card.id, amount=amount)
        self.counts["requests"] += 1
        if expire:
            return
        self.step(self.rng.uniform(20, 300))
        consumer = card.buyer.consumer
        if reject:
            redemption_reject(consumer=consumer, redemption_id=redemption.pk)
            self.counts["rejected"] += 1
            return
        redemption_confirm(consumer=consumer, redemption_id=redemption.pk)
        self.counts["services"] += 1
        card.served = True
        if card.plan.kind == "stored_value":
            card.balance -= amount
            if card.balance == 0:
                card.state = "exhausted"
        elif card.plan.kind == "session_pack":
            card.sessions_left -= 1
            if card.sessions_left == 0:
                card.state = "exhausted"

    def _refund(self, card: SimCard, reason: str) -> None:
        if card.state != "live":
            return
        if reason == "cooling_off" and (card.served or self.now >= card.cooling_off_ends_at):
            return
        if card.plan.kind == "period_pass" and self.now >= card.pass_ends:
            return  # the pass has run its course: nothing left to refund
        refund_request(consumer=card.buyer.consumer, card_id=card.id, reason=reason)
        card.state = "refunded"
        self.counts["refunds"] += 1

    def _file_complaint(self, plan: ComplaintPlan) -> None:
        seller = plan.seller
        source, card = plan.source, None
        if source == "app":
            held = [c for c in seller.cards if c.id is not None and c.state != "pending" and c.state != "cancelled"]
            if plan.buyer is not None:
                held = [c for c in held if c.buyer is plan.buyer]
            card = self.rng.choice(held) if held else None
            source = "app" if card else "hotline"
        texts = city.complaint_texts(seller.shop.category, plan.category)
        if source == "app":
            complaint = complaint_file(
                actor=card.buyer.consumer.user,
                merchant_id=seller.merchant.pk,
                card_id=card.id,
                category=plan.category,
                description=self.rng.choice(texts),
                source="app",
                urgent=plan.urgent,
            )
        else:
            received = self.now - timedelta(minutes=self.rng.uniform(10, 240))
            complaint = complaint_file(
                actor=self.regulator,
                merchant_id=seller.merchant.pk,
                category=plan.category,
                description="12345来电：" + self.rng.choice(texts),
                source="hotline",
                urgent=plan.urgent,
                hotline_reference=f"12345-{clock.local_date(received):%Y%m%d}-{next(self._hotline_no):05d}",
                received_at=received,
            )
        self.counts["complaints"] += 1
        if plan.answer_after is not None:
            answered = self.now + plan.answer_after
            self.at(answered, self._answer, seller, complaint.pk)
            if plan.close_after is not None:
                self.at(answered + plan.close_after, self._close, complaint.pk)

    def _answer(self, seller: Seller, complaint_id: Any) -> None:
        complaint_respond(complaint_id=complaint_id, merchant=seller.merchant, text=self.rng.choice(city.RESPONSES))

    def _close(self, complaint_id: Any) -> None:
        complaint_close(
            complaint_id=complaint_id, regulator=self.regulator, resolution=self.rng.choice(city.RESOLUTIONS)
        )

    # --- the present ------------------------------------------------------------------------------

    def present(self) -> None:
        """At the real time: the jobs catch up with today, and the demo merchant starts services
        that wait for their consumers (the demo consumer's among them) to confirm."""
        yesterday = self.today - timedelta(days=1)
        settlement_run(day=yesterday)  # a no-op when the history's 02:00 run settled it already
        period_pass_accrue()
        cards_activate_due()
        redemptions_expire_due()
        complaints_mark_overdue()
        demo_card = next(c for c in self.cards if c.buyer is self.demo_buyer and c.seller is self.demo_seller)
        now = clock.now()
        others = [
            c
            for c in self.demo_seller.cards
            if c.buyer is not self.demo_buyer and c.usable(now) and c.plan.kind != "stored_value"
        ]
        for card in [demo_card, *others[:2]]:
            redemption_request(merchant=card.seller.merchant, card_id=card.id, amount=self._amount(card))
            self.counts["requests"] += 1
        self.progress("today's jobs run; services awaiting confirmation at the demo merchant")


@contextmanager
def quick() -> Iterator[None]:
    """Register users with a fast hasher (``passwords_seal`` then gives them all one strong hash of
    the demo password, computed once: the default hasher takes most of a second per password),
    and keep no log of queries under DEBUG (formatting it would take a third of the time)."""
    with override_settings(DEBUG=False, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


def passwords_seal(user_ids: list[int]) -> None:
    User.objects.filter(pk__in=user_ids).update(password=make_password(DEMO_PASSWORD))


@contextmanager
def tasks_inline() -> Iterator[None]:
    """Run the tasks services queue after commit (refund and payout deliveries) inline, at the
    moved clock, as the worker would have run them then; keep their log lines out of the output."""
    from config.celery import app

    eager = app.conf.task_always_eager
    loggers = {name: logging.getLogger(name) for name in ("celery.app.trace", "kombu.connection")}
    levels = {name: logger.level for name, logger in loggers.items()}
    app.conf.task_always_eager = True
    for logger in loggers.values():
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        app.conf.task_always_eager = eager
        for name, logger in loggers.items():
            logger.setLevel(levels[name])


@contextmanager
def commits_unsynced() -> Iterator[None]:
    """Commit without waiting for the disk while loading, on this connection only: on a shared
    disk the waits took half of the time. PostgreSQL (``synchronous_commit = off``) may then lose
    the last commits in a crash but never corrupts; SQLite (``PRAGMA synchronous=OFF``) may damage
    the file in a power cut. Either is a price a half-loaded demo pays anyway: it is loaded again,
    into an empty database."""
    vendor = connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        yield
        return
    with connection.cursor() as cursor:
        if vendor == "sqlite":
            cursor.execute("PRAGMA synchronous")
            (before,) = cursor.fetchone()
            cursor.execute("PRAGMA synchronous=OFF")
        else:
            cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if vendor == "sqlite":
                cursor.execute(f"PRAGMA synchronous={int(before)}")
            else:
                cursor.execute("RESET synchronous_commit")


def history_load(*, say: Callable[[str], None]) -> Loaded:
    """Plan and play the history, then the present; returns the users made and the counts."""
    history = History(end=clock.now(), say=say)
    with quick(), tasks_inline(), commits_unsynced():
        history.plan()
        history.play()
        history.present()
    passwords_seal(history.users)
    history.progress("passwords set")
    run = compute_risk()
    history.progress(f"risk computed for {run.merchants} merchants: {run.high} high, {run.flagged} flagged")
    return Loaded(users=history.users, seconds=time.perf_counter() - history.started, counts=history.counts)
