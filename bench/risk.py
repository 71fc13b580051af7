"""Benchmark: the merchant risk model (``regulator.services.risk.compute_risk``) over a city's books.

Run it with ``make bench`` or ``.venv/bin/python bench/risk.py`` (``--help`` for options); it needs
PostgreSQL and never runs under ``make test``. See bench/README.md for what it measures and the
recorded runs.

What runs, in order:

1. A database ``bench_risk_<pid>`` is created on ``--server`` and migrated.
2. Six months of business up to now are generated in bulk by SQL (``INSERT ... SELECT``; staging
   tables hold each merchant's and each card's plan): ``--merchants`` merchants in six kinds of
   business, ``--cards`` cards of all three kinds with payments and ``purchase`` entries, the
   ``release`` entries of confirmed services and of passes' daily accruals, refunds with their
   ``fee``, ``refund`` and ``refund_paid`` entries, redemptions confirmed and rejected, and
   complaints, some overdue, so that every signal of the model has something to find:

   ============ ======= ===================================================================
   kind         share   what sets it apart
   ============ ======= ===================================================================
   steady       89 %    sales spread evenly over six months, services used steadily, few
                        refunds and complaints
   blitz        3 %     1.5× the cards, 70 % of them sold in the last 30 days, mostly
                        stored-value cards with a face value twice the price
   stopped      3 %     no service released for the last 25 days while cards still sell;
                        consumers reject the services claimed; overdue complaints
   runaway      1 %     both: a discount blitz, then no service (the merchant about to vanish)
   troubled     3 %     a third of the cards refunded, a quarter of services rejected,
                        ten complaints of which two overdue
   large        1 %     10× the cards at ¥1,500-4,500: escrow above the filing line
   ============ ======= ===================================================================

   The number of service releases is calibrated so that the journal holds exactly ``--postings``
   postings. Every entry balances and every account's balance is set from its postings (the
   loading session runs with ``session_replication_role = replica``, which skips the ledger's
   triggers and the foreign-key checks, as bench/settlement.py does); the generated entries lie
   on chains 3000-3004 with placeholder hashes, so this benchmark does not verify hash chains.
   Each card's totals equal its escrow account's postings; this is checked. The load runs
   without the secondary indexes of the bulk-loaded tables (every index and unique constraint
   that no foreign key depends on: maintained row by row, fourteen indexes of ten million cards
   stalled the load at ``--scale 10``); they are rebuilt after it, as the migrations define them
   (``pg_get_indexdef`` and ``pg_get_constraintdef``), then VACUUM ANALYZE and a CHECKPOINT, so the
   timed runs read the schema production has and do not pay for the load.
3. ``compute_risk()`` runs ``--runs`` times, each in a freshly spawned process (its peak RSS is
   the run's own), timed from the call to its return; its progress lines are shown as they come.
4. Checks on the last run: every merchant has one assessment of that run and carries its score;
   every blitz, stopped and runaway merchant scores above every steady one, and every runaway
   merchant is high and above all others; each kind shows its signals; the large merchants are
   over the filing line; the merchants that turned high in the first run were flagged, each with
   one audit event.
5. With ``--audit-report`` (a diagnostic): the riskiest merchant's audit report PDF
   (``regulator.reports.audit``), timed in a fresh process, with the ledger verification it runs timed
   apart.
6. The database is dropped, whatever happened. Results go to bench/out/risk.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shlex
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402 - needs the repository on the path
    COUNTER_CODE_SQL,
    DEFAULT_SERVER,
    SEQUENCES_FROM_DATA,
    MiB,
    add_scale_argument,
    connect,
    django_env,
    machine,
    out_name,
    process_cpu,
    rss_now,
    run_in_fresh_process,
    say,
    schema_of,
    secondary_indexes_drop,
    secondary_indexes_rebuild,
    throwaway_database,
    vacuum_and_checkpoint,
    verdict,
)

TARGET_S = 60.0
# The baseline: the release postings of the last 90 days summed per merchant in plain SQL, the
# journal's biggest slice and the largest of the signals' reads (as bench/settlement.py's floor).
FLOOR_SQL = """
SELECT m.id, SUM(-p.amount)
FROM escrow_posting p
JOIN escrow_journalentry e ON e.id = p.entry_id
JOIN merchants_merchant m ON m.settlement_account_id = p.account_id
WHERE e.code = 'release' AND e.created_at >= %(since)s AND e.created_at < %(at)s
GROUP BY m.id
"""
FLOOR_RUNS = 3
TARGET_PEAK_MB = 300.0  # megabytes of 10^6 bytes; RSS is shown in MiB
CONSUMERS = 50_000  # card j belongs to consumer j % CONSUMERS
CHAINS = {"purchase": 3000, "release": 3001, "fee": 3002, "refund": 3003, "refund_paid": 3004}
PLACEHOLDER_HASH = "0" * 64
BATCHES = 10  # the release entries are written in this many batches of cards, with a line each
GROUPS = ("steady", "blitz", "stopped", "runaway", "troubled", "large")
# Share of merchants (the rest are steady) and weight of their card count (steady = 2).
GROUP_SHARE = {"blitz": 0.03, "stopped": 0.03, "runaway": 0.01, "troubled": 0.03, "large": 0.01}
GROUP_WEIGHT = {"steady": 2, "blitz": 3, "stopped": 2, "runaway": 3, "troubled": 2, "large": 20}
SURGE = "grp IN ('blitz', 'runaway')"  # most cards sold in the last 30 days, at half their face value
STOP = "grp IN ('stopped', 'runaway')"  # no service released in the last 25 days
SIGNALS = (
    "escrow_outstanding",
    "months_owed",
    "sales_surge",
    "redemption_drop",
    "discount_depth",
    "complaints_per_100_cards",
    "overdue_complaints",
    "refund_rate",
    "rejected_redemptions",
    "filing_threshold",
)
# The signals each kind of business must show (mean normalised value at least 0.5).
EXPECTED = {
    "blitz": ("sales_surge", "discount_depth", "months_owed"),
    "stopped": ("redemption_drop", "overdue_complaints", "rejected_redemptions", "complaints_per_100_cards"),
    "runaway": ("sales_surge", "discount_depth", "redemption_drop", "overdue_complaints", "months_owed"),
    "troubled": ("refund_rate", "rejected_redemptions", "complaints_per_100_cards", "overdue_complaints"),
    "large": ("escrow_outstanding", "filing_threshold"),
}

# uniform [0, 1) number number ``n`` (0-3) of an md5 hex digest
U = "(('x' || substr({h}, {n} * 8 + 1, 8))::bit(32)::bigint / 4294967296.0)"


def u(h: str, n: int) -> str:
    return U.format(h=h, n=n)


# --- The plan: one row per merchant, one per card -------------------------------------------------

# Merchants 0.. are the kinds of GROUP_SHARE in turn, each in a block; the rest are steady. A
# merchant's cards are a contiguous range of card numbers, its share of all by GROUP_WEIGHT.
_KIND_OF_MERCHANT = "".join(
    f"WHEN i < {' + '.join(f'%(n_{n})s' for n in list(GROUP_SHARE)[: k + 1])} THEN '{name}' "
    for k, name in enumerate(GROUP_SHARE)
)
_WEIGHT_OF_KIND = " ".join(f"WHEN '{name}' THEN {weight}" for name, weight in GROUP_WEIGHT.items())
MERCHANT_PLAN = f"""
CREATE TEMP TABLE bench_m AS
WITH g AS (
    SELECT i, CASE {_KIND_OF_MERCHANT} ELSE 'steady' END AS grp
    FROM generate_series(0, %(merchants)s - 1) i
), w AS (
    SELECT i, grp, CASE grp {_WEIGHT_OF_KIND} END::bigint AS w FROM g
), c AS (
    SELECT i, grp, w, (SUM(w) OVER (ORDER BY i))::bigint AS cw, (SUM(w) OVER ())::bigint AS tw FROM w
)
SELECT i, grp, %(cards)s::bigint * (cw - w) / tw AS lo, %(cards)s::bigint * cw / tw AS hi,
       md5('bench-merchant-' || i)::uuid AS id, %(settlement_account_base)s + i AS settlement_account_id
FROM c
"""

# Every card's terms, purchase, refund and how much service it had, from four uniform numbers of
# two digests of its number. Prices, sessions and fees depend only on (merchant kind, card kind,
# tier): they are the terms of one of the merchant's products.
CARD_PLAN = f"""
CREATE TEMP TABLE bench_c AS
WITH base AS MATERIALIZED (
    SELECT j, m.i, m.grp, m.id AS merchant_id, m.settlement_account_id, j - m.lo AS k, m.hi - m.lo AS nk,
           md5('bench-card-' || j) AS h, md5('bench-card-u-' || j) AS h2
    FROM bench_m m, generate_series(m.lo, m.hi - 1) j
), terms AS MATERIALIZED (
    SELECT *,
        CASE
            WHEN {SURGE} THEN CASE WHEN {u("h", 0)} < 0.8 THEN 'stored_value' ELSE 'session_pack' END
            WHEN grp = 'stopped' THEN CASE WHEN {u("h", 0)} < 0.4 THEN 'stored_value' ELSE 'session_pack' END
            WHEN {u("h", 0)} < 0.01 THEN 'period_pass'
            WHEN {u("h", 0)} < 0.41 THEN 'stored_value'
            ELSE 'session_pack' END AS kind,
        floor({u("h", 1)} * 4)::int AS tier,
        {u("h", 2)} AS u_paid, {u("h", 3)} AS u_use, {u("h2", 0)} AS u_refund, {u("h2", 1)} AS u_when,
        {u("h2", 2)} AS u_reject
    FROM base
), priced AS MATERIALIZED (
    SELECT *,
        CASE
            WHEN grp = 'large' THEN (CASE kind WHEN 'period_pass' THEN 150000 ELSE 300000 END) + 50000 * tier
            WHEN kind = 'session_pack' THEN (ARRAY[60000, 80000, 100000, 150000])[tier + 1]
            WHEN kind = 'stored_value' THEN (ARRAY[50000, 100000, 150000, 200000])[tier + 1]
            ELSE (ARRAY[30000, 40000, 50000, 60000])[tier + 1] END::bigint AS price,
        CASE WHEN tier %% 2 = 1 THEN 500 ELSE 0 END AS fee_bps,
        CASE
            WHEN {SURGE} THEN %(at)s::timestamptz - CASE
                WHEN k < nk * 3 / 10 THEN interval '180 days' - (k + u_paid) / (nk * 3 / 10) * interval '150 days'
                ELSE interval '30 days' - (k - nk * 3 / 10 + u_paid) / (nk - nk * 3 / 10) * interval '30 days' END
            ELSE %(at)s::timestamptz - interval '180 days' + (k + u_paid) / nk * interval '180 days'
        END AS paid_raw
    FROM terms
), dated AS MATERIALIZED (
    SELECT *,
        CASE kind WHEN 'stored_value' THEN price * (CASE WHEN {SURGE} THEN 20 ELSE 11 END) / 10 END AS face,
        CASE kind WHEN 'session_pack' THEN 3 + tier %% 3 END AS sessions,
        CASE kind WHEN 'period_pass' THEN 30 END AS days,
        LEAST(paid_raw, %(at)s::timestamptz - interval '5 minutes') AS paid_at,
        ((date_trunc('day', LEAST(paid_raw, %(at)s::timestamptz - interval '5 minutes') AT TIME ZONE 'Asia/Shanghai')
          + interval '8 days') AT TIME ZONE 'Asia/Shanghai') AS cool_end,
        CASE grp WHEN 'troubled' THEN 0.35 WHEN 'stopped' THEN 0.10 WHEN 'runaway' THEN 0.10 WHEN 'blitz' THEN 0.03
                 WHEN 'large' THEN 0.01 ELSE 0.015 END AS refund_share,
        CASE WHEN {SURGE} THEN 0.5 ELSE 0.3 END AS cooling_share
    FROM priced
), refunds AS MATERIALIZED (
    SELECT *,
        CASE
            WHEN u_refund >= refund_share THEN NULL
            WHEN u_when < cooling_share THEN
                CASE WHEN paid_at + (0.1 + 4.5 * u_when / cooling_share) * interval '1 day'
                          < LEAST(cool_end, %(at)s::timestamptz - interval '1 hour')
                     THEN 'cooling_off' END
            WHEN paid_at + (12 + 60 * u_when) * interval '1 day' < %(at)s::timestamptz - interval '1 hour'
                THEN 'voluntary'
        END AS refund_reason,
        CASE WHEN u_when < cooling_share
             THEN paid_at + (0.1 + 4.5 * u_when / cooling_share) * interval '1 day'
             ELSE paid_at + (12 + 60 * u_when) * interval '1 day' END AS refund_when
    FROM dated
)
SELECT j, i, grp, merchant_id, settlement_account_id, kind, tier, price, face,
       CASE kind WHEN 'stored_value' THEN face / 20 END AS unit_price, sessions, days, fee_bps,
       paid_at, cool_end, u_use, u_reject, refund_reason,
       CASE WHEN refund_reason IS NOT NULL THEN refund_when END AS refund_at,
       -- a service's release: a session's share, a quarter of a stored-value card's face value, or
       -- (passes) the day's accrual; the last one sweeps what is left
       CASE kind WHEN 'session_pack' THEN price / sessions WHEN 'stored_value' THEN price / 4 END AS per,
       CASE kind WHEN 'session_pack' THEN sessions WHEN 'stored_value' THEN 4 ELSE days END AS cap,
       CASE WHEN kind = 'period_pass' THEN cool_end ELSE paid_at + interval '1 day' END AS svc_start,
       CASE
           WHEN refund_reason = 'cooling_off' THEN paid_at
           ELSE LEAST(%(at)s::timestamptz, CASE WHEN refund_reason IS NOT NULL THEN refund_when END,
                      CASE WHEN {STOP} THEN %(at)s::timestamptz - interval '25 days' END)
       END AS svc_end,
       0 AS n, 0 AS n_reject
FROM refunds
"""

# Services used: a stored-value card or a session pack is used at an even pace, one service every
# ``period / cap`` days from a phase of its own (``u_use``), so it has had floor(cap × age / period
# + u_use) services by the end of its service window (the release rows are placed at the same
# instants); a refunded card keeps at least one service's worth; a pass accrues once a day.
SET_SERVICES = """
UPDATE bench_c SET n = CASE
    WHEN svc_end <= svc_start THEN 0
    WHEN kind = 'period_pass' THEN LEAST(
        cap - (refund_reason IS NOT NULL)::int,
        GREATEST(0, floor(extract(epoch FROM svc_end - svc_start - interval '2 hours') / 86400))::int)
    ELSE LEAST(
        cap - (refund_reason IS NOT NULL)::int,
        floor(cap * extract(epoch FROM svc_end - svc_start) / 86400 / %(period)s + u_use)::int)
END
"""

SERVICE_TOTALS = """
SELECT COALESCE(SUM(n) FILTER (WHERE kind <> 'period_pass'), 0),
       COALESCE(SUM(n) FILTER (WHERE kind = 'period_pass'), 0),
       COUNT(*) FILTER (WHERE refund_reason IS NOT NULL),
       COUNT(*) FILTER (WHERE refund_reason = 'voluntary' AND fee_bps > 0),
       COUNT(*) FILTER (WHERE refund_reason IS NOT NULL AND refund_at < %(at)s::timestamptz - interval '1 day'),
       COALESCE(SUM(cap * extract(epoch FROM svc_end - svc_start) / 86400)
                FILTER (WHERE kind <> 'period_pass' AND svc_end > svc_start), 0)
FROM bench_c
"""

# The last few services, to land on the exact posting count: one more (or one less) for steady
# cards chosen by their digest, never past what the card allows.
NUDGE_UP = """
UPDATE bench_c SET n = n + 1 WHERE j IN (
    SELECT j FROM bench_c WHERE grp = 'steady' AND kind <> 'period_pass' AND svc_end > svc_start
       AND n < cap - (refund_reason IS NOT NULL)::int
    ORDER BY u_use DESC, j LIMIT %(count)s)
"""
NUDGE_DOWN = """
UPDATE bench_c SET n = n - 1 WHERE j IN (
    SELECT j FROM bench_c WHERE grp = 'steady' AND kind <> 'period_pass' AND n > 0
    ORDER BY u_use, j LIMIT %(count)s)
"""

# What follows from the services: totals, state, rejections, ids of every generated entry.
FINISH_PLAN = f"""
CREATE TEMP TABLE bench_card AS
WITH used AS MATERIALIZED (
    SELECT *,
        CASE
            WHEN kind = 'period_pass' THEN price * n / days
            WHEN n >= cap THEN price
            ELSE per * n END AS released
    FROM bench_c
), refunded AS MATERIALIZED (
    SELECT *,
        CASE WHEN refund_reason = 'voluntary' THEN (price - released) * fee_bps / 10000 ELSE 0 END AS fee
    FROM used
)
SELECT *,
    CASE WHEN refund_reason IS NOT NULL THEN price - released - fee ELSE 0 END AS refund_amount,
    CASE
        WHEN refund_reason IS NOT NULL THEN 'refunded'
        WHEN released = price THEN 'exhausted'
        WHEN %(at)s::timestamptz < cool_end AND n = 0 THEN 'cooling_off'
        ELSE 'active' END AS state,
    refund_reason IS NOT NULL AND refund_at < %(at)s::timestamptz - interval '1 day' AS refund_paid,
    -- rejected services: a quarter of them at the troubled, one on most cards in the stopped
    -- merchants' last 25 days, now and then elsewhere
    CASE
        WHEN svc_end <= svc_start AND NOT {STOP} THEN 0
        WHEN grp = 'troubled' THEN floor(n * 0.35 + u_reject)::int
        WHEN {STOP} THEN CASE WHEN paid_at < %(at)s::timestamptz - interval '2 days'
                                       AND refund_reason IS NULL THEN floor(u_reject + 0.6)::int ELSE 0 END
        WHEN grp = 'blitz' THEN floor(n * 0.04 + u_reject)::int
        ELSE floor(n * 0.02 + u_reject)::int END AS rejected,
    CASE WHEN kind = 'period_pass' THEN n / 3 ELSE 0 END AS check_ins,
    %(entry_base)s + j AS purchase_entry,
    %(release_base)s + SUM(n) OVER w - n AS release_lo,
    %(fee_base)s + COUNT(*) FILTER (WHERE refund_reason = 'voluntary' AND fee_bps > 0) OVER w - 1 AS fee_entry,
    %(refund_base)s + COUNT(*) FILTER (WHERE refund_reason IS NOT NULL) OVER w - 1 AS refund_entry,
    %(refund_paid_base)s + COUNT(*) FILTER (
        WHERE refund_reason IS NOT NULL AND refund_at < %(at)s::timestamptz - interval '1 day') OVER w - 1
        AS refund_paid_entry,
    %(escrow_account_base)s + j AS escrow_account_id,
    md5('bench-product-' || i || '-' || kind || '-' || tier)::uuid AS product_id
FROM refunded
WINDOW w AS (ORDER BY j)
"""

# One row per service release (or pass accrual) of the cards ``lo <= j < hi``.
RELEASE_ROWS = """
CREATE TEMP TABLE bench_r AS
SELECT c.j, c.merchant_id, c.settlement_account_id, c.escrow_account_id, c.kind, c.face, c.release_lo + m - 1 AS id, m,
    CASE
        WHEN c.kind = 'period_pass' THEN c.price * m / c.days - c.price * (m - 1) / c.days
        WHEN m = c.cap THEN c.price - c.per * (c.cap - 1)
        ELSE c.per END AS amount,
    CASE
        WHEN c.kind = 'period_pass' THEN c.svc_start + m * interval '1 day' + interval '90 minutes'
        ELSE LEAST(c.svc_start + (m - c.u_use) * (%(period)s / c.cap) * interval '1 day',
                   c.svc_end - interval '1 minute') END AS at
FROM bench_card c, generate_series(1, c.n) m
WHERE c.n > 0 AND c.j >= %(lo)s AND c.j < %(hi)s
"""


def plan_layout(args: argparse.Namespace, bases: dict[str, int]) -> dict:
    merchants = args.merchants
    shares = {name: max(1, round(merchants * share)) for name, share in GROUP_SHARE.items()}
    return {
        "merchants": merchants,
        "cards": args.cards,
        "postings": args.postings,
        "consumers": min(CONSUMERS, args.cards),
        **{f"n_{name}": count for name, count in shares.items()},
        "merchant_user_base": bases["user"] + 1,
        "consumer_user_base": bases["user"] + merchants + 1,
        "settlement_account_base": bases["account"] + 1,
        "escrow_account_base": bases["account"] + merchants + 1,
        "entry_base": bases["entry"] + 1,
        "custody_id": bases["custody"],
        "refund_payable_id": bases["refund_payable"],
        "zero": PLACEHOLDER_HASH,
        **{f"{code}_chain": chain for code, chain in CHAINS.items()},
    }


# The tables the load writes in bulk (millions of rows at --scale 10), whose secondary indexes are
# dropped before it and rebuilt after; the small ones (users, merchants, products, consumers,
# complaints) keep theirs.
BULK_TABLES = (
    "escrow_account",
    "escrow_journalentry",
    "escrow_posting",
    "consumers_card",
    "consumers_payment",
    "consumers_redemption",
    "refunds_refund",
)
# The load session's memory for its sorts, hashes, temporary tables and index builds (the server's
# defaults are restored before anything is timed).
LOAD_SETTINGS = ("SET work_mem = '256MB'", "SET maintenance_work_mem = '1GB'", "SET temp_buffers = '1GB'")


# The day totals the ledger keeps (escrow.models.SettlementDayTotal, escrow.services): each merchant
# settlement account's release and fee credits per Beijing business day, a day being
# (its midnight, the next midnight]. The generated releases bypass the services, so the load writes
# them from the postings with this, and the checks compare them with it again.
DAY_TOTALS_FROM_POSTINGS = """
SELECT p.account_id, ((e.created_at - interval '1 microsecond') AT TIME ZONE 'Asia/Shanghai')::date AS day,
       COALESCE(SUM(-p.amount) FILTER (WHERE e.code = 'release'), 0) AS released,
       COALESCE(SUM(-p.amount) FILTER (WHERE e.code = 'fee'), 0) AS fees,
       COUNT(*) FILTER (WHERE e.code = 'release') AS releases_count
FROM escrow_posting p JOIN escrow_journalentry e ON e.id = p.entry_id
JOIN escrow_account a ON a.id = p.account_id AND a.kind = 'merchant_settlement'
WHERE e.code IN ('release', 'fee') GROUP BY 1, 2
"""


def load(conn, p: dict) -> dict:
    """Plan every row, then write them, on one connection with the triggers off and the bulk-loaded
    tables' secondary indexes dropped (rebuilt at the end); returns the totals. ``p`` is the layout
    plus ``at``, the moment the six months end."""
    timings: dict[str, float] = {}
    with conn, conn.cursor() as cursor:
        for setting in LOAD_SETTINGS:
            cursor.execute(setting)
    schema = schema_of(conn, BULK_TABLES)
    rebuild = secondary_indexes_drop(conn, BULK_TABLES)
    say(f"  {len(rebuild)} secondary indexes of {', '.join(BULK_TABLES)} dropped for the load")

    def step(name: str, statements: list[str], params: dict | None = None) -> None:
        started = time.monotonic()
        with conn, conn.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            for sql in statements:
                cursor.execute(sql, params if params is not None else p)
        timings[name] = round(time.monotonic() - started, 2)
        say(f"  {name}: {timings[name]:.1f} s")

    def one(sql: str, params: dict | None = None) -> tuple:
        with conn, conn.cursor() as cursor:
            cursor.execute(sql, params if params is not None else p)
            return cursor.fetchone()

    conn.autocommit = False
    step("plan: merchants and their kinds of business", [MERCHANT_PLAN])
    step("plan: every card's terms, purchase and refund", [CARD_PLAN])

    # How many services fit: the journal must hold exactly p["postings"] postings, two per entry.
    # Purchases, refunds and passes' accruals do not depend on the usage period; the rest do.
    p["period"] = 240.0
    with conn, conn.cursor() as cursor:
        cursor.execute(SET_SERVICES, p)
    services, accruals, refunds, fees, paid, weighted_days = one(SERVICE_TOTALS)
    fixed_entries = p["cards"] + accruals + refunds + fees + paid
    wanted = p["postings"] // 2 - fixed_entries
    if wanted <= 0 or p["postings"] % 2:
        raise SystemExit(f"--postings must be even and above {2 * fixed_entries} for this many cards")
    for attempt in range(4):  # the cap on uses bends the straight line a little: a few secant steps
        p["period"] = max(1.0, p["period"] * services / wanted) if services else weighted_days / wanted
        with conn, conn.cursor() as cursor:
            cursor.execute(SET_SERVICES, p)
        services = one(SERVICE_TOTALS)[0]
        say(f"  usage period {p['period']:.1f} days: {services:,} services for {wanted:,} wanted (try {attempt + 1})")
        if abs(services - wanted) <= max(10, wanted // 2000):
            break
    gap = wanted - services
    if gap:
        with conn, conn.cursor() as cursor:
            cursor.execute(NUDGE_UP if gap > 0 else NUDGE_DOWN, {"count": abs(gap)})
        services = one(SERVICE_TOTALS)[0]
    if services != wanted:
        raise SystemExit(f"could not place {wanted} services (placed {services}); try other --postings")
    say(
        f"  {services:,} services + {accruals:,} pass accruals + {refunds:,} refunds "
        f"({fees:,} with a fee, {paid:,} paid)"
    )
    releases = services + accruals
    p["release_base"] = p["entry_base"] + p["cards"]
    p["fee_base"] = p["release_base"] + releases
    p["refund_base"] = p["fee_base"] + fees
    p["refund_paid_base"] = p["refund_base"] + refunds
    step("plan: card totals, states and entry numbers", [FINISH_PLAN, "CREATE INDEX ON bench_card (j)"])

    step(
        f"{p['merchants'] + p['consumers']:,} users, {p['merchants']:,} merchants with settlement accounts, "
        f"their products, {p['consumers']:,} consumers",
        [
            """
            INSERT INTO core_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
                                   is_staff, is_active, date_joined, role)
            SELECT %(merchant_user_base)s + i, '!', NULL, false, 'bench-merchant-' || i, '', '', '', false, true,
                   %(at)s::timestamptz - interval '200 days', 'merchant'
            FROM bench_m
            """,
            """
            INSERT INTO core_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
                                   is_staff, is_active, date_joined, role)
            SELECT %(consumer_user_base)s + k, '!', NULL, false, 'bench-consumer-' || k, '', '', '', false, true,
                   %(at)s::timestamptz - interval '200 days', 'consumer'
            FROM generate_series(0, %(consumers)s - 1) k
            """,
            """
            INSERT INTO escrow_account (id, kind, name, balance, currency, created_at)
            SELECT settlement_account_id, 'merchant_settlement', 'bench merchant ' || i, 0, 'cny',
                   %(at)s::timestamptz - interval '200 days'
            FROM bench_m
            """,
            """
            INSERT INTO merchants_merchant (id, name, license_number, category, district, address, status,
                sales_frozen, releases_frozen, flagged, risk_warning, stripe_account_id, created_at,
                settlement_account_id, user_id, closes_on, closure_announced_at, closure_reason,
                risk_score, risk_level, risk_computed_at)
            SELECT id, 'Bench ' || grp || ' ' || i, lpad(i::text, 18, '0'),
                   (ARRAY['fitness', 'beauty', 'education', 'catering', 'laundry', 'other'])[i %% 6 + 1],
                   (ARRAY['110101', '110102', '110105', '110106', '110107', '110108', '110109', '110111', '110112',
                          '110113', '110114', '110115', '110116', '110117', '110118', '110119'])[i %% 16 + 1],
                   'Bench road ' || i, 'active', false, false, false, NULL, '',
                   %(at)s::timestamptz - interval '200 days', settlement_account_id, %(merchant_user_base)s + i,
                   NULL, NULL, '', 0, 'low', NULL
            FROM bench_m
            """,
            """
            INSERT INTO merchants_product (id, name, kind, price, face_value, unit_price, sessions, days,
                                           refund_fee_bps, on_sale, created_at, merchant_id, rules_version)
            SELECT DISTINCT ON (product_id) product_id, 'Bench ' || kind || ' ' || tier, kind, price, face,
                   unit_price, sessions, days, fee_bps, true, %(at)s::timestamptz - interval '200 days', merchant_id,
                   ''
            FROM bench_card ORDER BY product_id
            """,
            """
            INSERT INTO consumers_consumer (id, display_name, phone, created_at, user_id)
            SELECT md5('bench-consumer-' || k)::uuid, 'Bench consumer ' || k, '13800000000',
                   %(at)s::timestamptz - interval '200 days', %(consumer_user_base)s + k
            FROM generate_series(0, %(consumers)s - 1) k
            """,
        ],
    )
    step(
        f"{p['cards']:,} cards with escrow accounts, payments and purchase entries",
        [
            """
            INSERT INTO escrow_account (id, kind, name, balance, currency, created_at)
            SELECT escrow_account_id, 'card_escrow', 'bench card ' || j, 0, 'cny', paid_at FROM bench_card
            """,
            f"""
            INSERT INTO consumers_card (id, kind, state, price, face_value, unit_price, sessions, days, refund_fee_bps,
                released_total, refunded_total, balance, sessions_remaining, valid_from, valid_until, paid_at,
                cooling_off_ends_at, first_service_at, purchase_key, counter_code, created_at, escrow_account_id,
                merchant_id, product_id, consumer_id, rules_version)
            SELECT md5('bench-card-' || j)::uuid, kind, state, price, face, unit_price, sessions, days, fee_bps,
                   released + fee, refund_amount,
                   CASE WHEN kind = 'stored_value' THEN face - LEAST(n, cap) * (face / 4) END,
                   CASE WHEN kind = 'session_pack' THEN sessions - n END,
                   CASE WHEN kind = 'period_pass' AND cool_end <= %(at)s::timestamptz THEN cool_end END,
                   CASE WHEN kind = 'period_pass' AND cool_end <= %(at)s::timestamptz
                        THEN cool_end + days * interval '1 day' END,
                   paid_at, cool_end,
                   CASE WHEN n > 0 AND kind <> 'period_pass'
                        THEN LEAST(svc_start + (1 - u_use) * (%(period)s / cap) * interval '1 day',
                                   svc_end - interval '1 minute') END,
                   'bench:' || j, {COUNTER_CODE_SQL},
                   paid_at - interval '2 minutes', escrow_account_id, merchant_id, product_id,
                   md5('bench-consumer-' || (j %% %(consumers)s))::uuid, ''
            FROM bench_card
            """,
            """
            INSERT INTO consumers_payment (id, gateway, amount, status, external_id, client_secret, created_at,
                                           decided_at, card_id)
            SELECT md5('bench-payment-' || j)::uuid, 'local', price, 'succeeded', 'local_pi_' || md5('pi-' || j), '',
                   paid_at - interval '1 minute', paid_at, md5('bench-card-' || j)::uuid
            FROM bench_card
            ORDER BY 1  -- along the primary key's index (random uuids)
            """,
            """
            INSERT INTO escrow_journalentry (id, code, idempotency_key, actor_label, memo, created_at, chain, seq,
                                             prev_hash, hash, actor_id)
            SELECT purchase_entry, 'purchase', 'bench:purchase:' || j, 'bench', '', paid_at, %(purchase_chain)s,
                   j + 1, %(zero)s, %(zero)s, NULL
            FROM bench_card
            """,
            """
            INSERT INTO escrow_posting (entry_id, account_id, amount)
            SELECT purchase_entry, leg.account_id, leg.amount
            FROM bench_card, LATERAL (VALUES (%(custody_id)s::bigint, price), (escrow_account_id, -price))
                 AS leg (account_id, amount)
            """,
        ],
    )

    say(f"  {releases:,} release entries (services and pass accruals), two postings each, in {BATCHES} batches")
    started = time.monotonic()
    written = 0
    size = -(-p["cards"] // BATCHES)
    for lo in range(0, p["cards"], size):
        batch = {**p, "lo": lo, "hi": min(p["cards"], lo + size)}
        with conn, conn.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            cursor.execute(RELEASE_ROWS, batch)
            cursor.execute(
                """
                INSERT INTO escrow_journalentry (id, code, idempotency_key, actor_label, memo, created_at, chain, seq,
                                                 prev_hash, hash, actor_id)
                SELECT id, 'release', 'bench:release:' || j || ':' || m, 'bench', '', at, %(release_chain)s,
                       id - %(release_base)s + 1, %(zero)s, %(zero)s, NULL
                FROM bench_r
                """,
                batch,
            )
            cursor.execute(
                """
                INSERT INTO escrow_posting (entry_id, account_id, amount)
                SELECT id, leg.account_id, leg.amount
                FROM bench_r, LATERAL (VALUES (escrow_account_id, amount), (settlement_account_id, -amount))
                     AS leg (account_id, amount)
                """
            )
            # the confirmed services behind the releases (a pass's accrual has none)
            cursor.execute(
                """
                INSERT INTO consumers_redemption (id, amount, sessions, released, state, expires_at, decided_at,
                                                  created_at, card_id, merchant_id)
                SELECT md5('bench-redemption-' || j || '-' || m)::uuid,
                       CASE WHEN kind = 'stored_value' THEN face / 4 END,
                       CASE WHEN kind = 'session_pack' THEN 1 END, amount, 'confirmed',
                       at + interval '12 minutes', at, at - interval '3 minutes',
                       md5('bench-card-' || j)::uuid, merchant_id
                FROM bench_r WHERE kind <> 'period_pass'
                ORDER BY 1  -- along the primary key's index (random uuids)
                """
            )
            written += cursor.rowcount
            cursor.execute("DROP TABLE bench_r")
        elapsed = time.monotonic() - started
        say(f"  cards {batch['hi']:,}/{p['cards']:,}: {written:,} services written ({elapsed:.0f} s)")
    timings["releases"] = round(time.monotonic() - started, 2)

    step(
        "rejected services and pass check-ins",
        [
            """
            INSERT INTO consumers_redemption (id, amount, sessions, released, state, expires_at, decided_at,
                                              created_at, card_id, merchant_id)
            SELECT md5('bench-rejected-' || j || '-' || r)::uuid,
                   CASE WHEN kind = 'stored_value' THEN face / 4 END, CASE WHEN kind = 'session_pack' THEN 1 END,
                   0, 'rejected', t + interval '15 minutes', t + interval '5 minutes', t,
                   md5('bench-card-' || j)::uuid, merchant_id
            FROM (
                SELECT c.*, r, CASE
                    WHEN c.grp IN ('stopped', 'runaway')
                        THEN GREATEST(c.paid_at, %(at)s::timestamptz - interval '25 days')
                        + (%(at)s::timestamptz - GREATEST(c.paid_at, %(at)s::timestamptz - interval '25 days'))
                          * ((r - 0.5) / c.rejected)
                    ELSE c.svc_start + (c.svc_end - c.svc_start) * ((r - 0.25) / c.rejected) END AS t
                FROM bench_card c, generate_series(1, c.rejected) r WHERE c.rejected > 0
            ) rejected
            ORDER BY 1
            """,
            """
            INSERT INTO consumers_redemption (id, amount, sessions, released, state, expires_at, decided_at,
                                              created_at, card_id, merchant_id)
            SELECT md5('bench-check-in-' || j || '-' || q)::uuid, NULL, NULL, 0, 'confirmed',
                   t + interval '15 minutes', t + interval '2 minutes', t, md5('bench-card-' || j)::uuid, merchant_id
            FROM (
                SELECT c.j, c.merchant_id, q, c.svc_start + (3 * q - 2) * interval '1 day' + interval '18 hours' AS t
                FROM bench_card c, generate_series(1, c.check_ins) q WHERE c.check_ins > 0
            ) check_ins
            ORDER BY 1
            """,
        ],
    )
    step(
        f"{refunds:,} refunds with their fee, refund and refund_paid entries",
        [
            """
            INSERT INTO refunds_refund (id, reason, amount, fee, state, gateway, external_id, failure_reason,
                                        created_at, due_by, paid_at, attempts, last_error, card_id)
            SELECT md5('bench-refund-' || j)::uuid, refund_reason, refund_amount, fee,
                   CASE WHEN refund_paid THEN 'paid' ELSE 'pending' END, 'local',
                   CASE WHEN refund_paid THEN 'local_re_' || j ELSE '' END, '', refund_at,
                   refund_at + interval '5 days', CASE WHEN refund_paid THEN refund_at + interval '2 hours' END,
                   CASE WHEN refund_paid THEN 1 ELSE 0 END, '', md5('bench-card-' || j)::uuid
            FROM bench_card WHERE refund_reason IS NOT NULL
            """,
            """
            INSERT INTO escrow_journalentry (id, code, idempotency_key, actor_label, memo, created_at, chain, seq,
                                             prev_hash, hash, actor_id)
            SELECT fee_entry, 'fee', 'bench:refund-fee:' || j, 'bench', '', refund_at, %(fee_chain)s,
                   fee_entry - %(fee_base)s + 1, %(zero)s, %(zero)s, NULL
            FROM bench_card WHERE refund_reason = 'voluntary' AND fee_bps > 0
            """,
            """
            INSERT INTO escrow_posting (entry_id, account_id, amount)
            SELECT fee_entry, leg.account_id, leg.amount
            FROM bench_card, LATERAL (VALUES (escrow_account_id, fee), (settlement_account_id, -fee))
                 AS leg (account_id, amount)
            WHERE refund_reason = 'voluntary' AND fee_bps > 0
            """,
            """
            INSERT INTO escrow_journalentry (id, code, idempotency_key, actor_label, memo, created_at, chain, seq,
                                             prev_hash, hash, actor_id)
            SELECT refund_entry, 'refund', 'bench:refund:' || j, 'bench', '', refund_at, %(refund_chain)s,
                   refund_entry - %(refund_base)s + 1, %(zero)s, %(zero)s, NULL
            FROM bench_card WHERE refund_reason IS NOT NULL
            """,
            """
            INSERT INTO escrow_posting (entry_id, account_id, amount)
            SELECT refund_entry, leg.account_id, leg.amount
            FROM bench_card,
                 LATERAL (VALUES (escrow_account_id, refund_amount), (%(refund_payable_id)s::bigint, -refund_amount))
                 AS leg (account_id, amount)
            WHERE refund_reason IS NOT NULL
            """,
            """
            INSERT INTO escrow_journalentry (id, code, idempotency_key, actor_label, memo, created_at, chain, seq,
                                             prev_hash, hash, actor_id)
            SELECT refund_paid_entry, 'refund_paid', 'bench:refund-paid:' || j, 'bench', '',
                   refund_at + interval '2 hours', %(refund_paid_chain)s, refund_paid_entry - %(refund_paid_base)s + 1,
                   %(zero)s, %(zero)s, NULL
            FROM bench_card WHERE refund_paid
            """,
            """
            INSERT INTO escrow_posting (entry_id, account_id, amount)
            SELECT refund_paid_entry, leg.account_id, leg.amount
            FROM bench_card,
                 LATERAL (VALUES (%(refund_payable_id)s::bigint, refund_amount),
                                 (%(custody_id)s::bigint, -refund_amount)) AS leg (account_id, amount)
            WHERE refund_paid
            """,
        ],
    )
    step(
        "complaints",
        [
            """
            INSERT INTO regulator_complaint (id, source, hotline_reference, category, description, urgent, state,
                respond_by, overdue_at, response, responded_at, resolution, closed_at, created_at, card_id,
                closed_by_id, consumer_id, created_by_id, merchant_id)
            SELECT md5('bench-complaint-' || i || '-' || q)::uuid,
                   CASE WHEN q %% 2 = 0 THEN 'hotline' ELSE 'app' END,
                   CASE WHEN q %% 2 = 0 THEN 'BJ12345-' || i || '-' || q END,
                   category, 'bench complaint', q = 1 AND stops, state,
                   created + CASE WHEN q = 1 AND stops THEN interval '2 hours' ELSE interval '48 hours' END,
                   CASE WHEN state = 'overdue' THEN created + interval '49 hours' END,
                   CASE WHEN state IN ('responded', 'closed') THEN 'bench response' ELSE '' END,
                   CASE WHEN state IN ('responded', 'closed') THEN created + interval '20 hours' END,
                   CASE WHEN state = 'closed' THEN 'bench resolution' ELSE '' END,
                   CASE WHEN state = 'closed' THEN created + interval '5 days' END,
                   created, NULL, NULL,
                   CASE WHEN q %% 2 = 1 THEN md5('bench-consumer-' || ((i * 7 + q) %% %(consumers)s))::uuid END,
                   NULL, id
            FROM (
                SELECT m.i, m.id, m.grp, q, m.grp IN ('stopped', 'runaway') AS stops,
                    CASE m.grp WHEN 'blitz' THEN 'misleading_sales' WHEN 'stopped' THEN 'service_unavailable'
                               WHEN 'runaway' THEN 'service_unavailable'
                               WHEN 'troubled' THEN 'refund_refused' ELSE 'service_quality' END AS category,
                    CASE
                        WHEN m.grp IN ('stopped', 'runaway') AND q = 1 THEN %(at)s::timestamptz - interval '1 hour'
                        WHEN m.grp IN ('stopped', 'runaway') THEN %(at)s::timestamptz - q * interval '3 days'
                        WHEN m.grp = 'troubled' THEN %(at)s::timestamptz - q * interval '8 days'
                        WHEN m.grp = 'blitz' THEN %(at)s::timestamptz - q * interval '9 days'
                        ELSE %(at)s::timestamptz - interval '170 days' + (i %% 160) * interval '1 day'
                    END AS created,
                    CASE
                        WHEN m.grp IN ('stopped', 'runaway') AND q = 1 THEN 'open'
                        WHEN m.grp IN ('stopped', 'runaway') AND q <= 4 THEN 'overdue'
                        WHEN m.grp = 'troubled' AND q <= 2 THEN 'overdue'
                        WHEN q %% 3 = 0 THEN 'closed'
                        ELSE 'responded' END AS state
                FROM bench_m m, generate_series(1, CASE m.grp
                    WHEN 'stopped' THEN 8 WHEN 'runaway' THEN 8 WHEN 'troubled' THEN 10 WHEN 'blitz' THEN 3
                    ELSE (m.i %% 5 = 0)::int END) q
            ) plan
            """,
        ],
    )
    step(
        "balances from the postings; identity sequences",
        [
            "CREATE TEMP TABLE bench_totals ON COMMIT DROP AS "
            "SELECT account_id, SUM(amount) AS total FROM escrow_posting GROUP BY account_id",
            # in the order of the accounts' ids (a merge join): the primary key's new entries are
            # written along the index, not at ten million random places
            "SET LOCAL enable_hashjoin = off",
            "SET LOCAL enable_nestloop = off",
            "UPDATE escrow_account a SET balance = CASE WHEN a.kind = 'custody' THEN t.total ELSE -t.total END "
            "FROM bench_totals t WHERE t.account_id = a.id",
            *SEQUENCES_FROM_DATA,
        ],
    )
    step(
        "merchants' day totals of releases and fees (what each release's own transaction adds as it posts)",
        [
            "SET LOCAL enable_nestloop = off",
            f"INSERT INTO escrow_settlementdaytotal (account_id, day, released, fees, releases_count) "
            f"SELECT account_id, day, released, fees, releases_count FROM ({DAY_TOTALS_FROM_POSTINGS}) t "
            f"ORDER BY day, account_id",  # along the (day, account) unique index
        ],
    )
    secondary_indexes_rebuild(conn, rebuild, timings)
    if schema_of(conn, BULK_TABLES) != schema:
        raise SystemExit("the rebuilt indexes and constraints differ from the migrated schema")
    vacuum_and_checkpoint(conn, timings)
    with conn, conn.cursor() as cursor:
        for setting in LOAD_SETTINGS[:2]:  # the floor runs with the server's settings, as the timed runs
            cursor.execute(f"RESET {setting.split()[1]}")
    return {"timings_s": timings, "usage_period_days": round(p["period"], 2), **data_checks(conn)}


def data_checks(conn) -> dict:
    """What was generated, counted back from the tables, and the books' consistency."""
    with conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT COUNT(*) FROM merchants_merchant), (SELECT COUNT(*) FROM consumers_card), "
            "(SELECT COUNT(*) FROM escrow_posting), (SELECT COUNT(*) FROM escrow_journalentry), "
            "(SELECT COUNT(*) FROM consumers_redemption), (SELECT COUNT(*) FROM refunds_refund), "
            "(SELECT COUNT(*) FROM regulator_complaint)"
        )
        merchants, cards, postings, entries, redemptions, refunds, complaints = cursor.fetchone()
        cursor.execute("SELECT kind, COUNT(*) FROM consumers_card GROUP BY kind ORDER BY kind")
        kinds = dict(cursor.fetchall())
        cursor.execute("SELECT code, COUNT(*) FROM escrow_journalentry GROUP BY code ORDER BY code")
        codes = dict(cursor.fetchall())
        cursor.execute("SELECT state, COUNT(*) FROM consumers_redemption GROUP BY state ORDER BY state")
        redemption_states = dict(cursor.fetchall())
        cursor.execute("SELECT state, COUNT(*) FROM regulator_complaint GROUP BY state ORDER BY state")
        complaint_states = dict(cursor.fetchall())
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT entry_id FROM escrow_posting GROUP BY entry_id "
            "HAVING COUNT(*) < 2 OR SUM(amount) <> 0) bad"
        )
        unbalanced = cursor.fetchone()[0]
        cursor.execute(
            "SELECT COUNT(*) FROM consumers_card c JOIN escrow_account a ON a.id = c.escrow_account_id "
            "WHERE a.balance <> c.price - c.released_total - c.refunded_total OR a.balance < 0"
        )
        cards_off = cursor.fetchone()[0]
        cursor.execute(
            "SELECT COALESCE(SUM(balance) FILTER (WHERE kind = 'custody'), 0), "
            "COALESCE(SUM(balance) FILTER (WHERE kind <> 'custody'), 0), COUNT(*) FILTER (WHERE balance < 0) "
            "FROM escrow_account"
        )
        custody, liabilities, negative = (int(value) for value in cursor.fetchone())
        cursor.execute(
            "SELECT COUNT(*) FILTER (WHERE k.account_id IS NULL OR t.account_id IS NULL OR k.released <> t.released "
            "OR k.fees <> t.fees OR k.releases_count <> t.releases_count), COUNT(k.account_id), "
            "COALESCE(SUM(k.released), 0) "
            f"FROM escrow_settlementdaytotal k FULL JOIN ({DAY_TOTALS_FROM_POSTINGS}) t "
            "ON t.account_id = k.account_id AND t.day = k.day"
        )
        day_totals_off, day_totals, day_totals_released = (int(value) for value in cursor.fetchone())
        cursor.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('escrow_posting')), "
            "pg_size_pretty(pg_total_relation_size('escrow_journalentry')), "
            "pg_size_pretty(pg_total_relation_size('consumers_card')), "
            "pg_size_pretty(pg_total_relation_size('consumers_redemption'))"
        )
        sizes = dict(
            zip(
                ("escrow_posting", "escrow_journalentry", "consumers_card", "consumers_redemption"),
                cursor.fetchone(),
                strict=True,
            )
        )
    return {
        "merchants": merchants,
        "cards": cards,
        "card_kinds": kinds,
        "postings": postings,
        "entries": entries,
        "entry_codes": codes,
        "redemptions": redemptions,
        "redemption_states": redemption_states,
        "refunds": refunds,
        "complaints": complaints,
        "complaint_states": complaint_states,
        "unbalanced_entries": unbalanced,
        "cards_off_their_escrow": cards_off,
        "negative_balances": negative,
        "custody": custody,
        "liabilities": liabilities,
        "day_totals": day_totals,
        "day_totals_released": day_totals_released,
        "day_totals_off_their_postings": day_totals_off,
        "books_ok": unbalanced == 0
        and cards_off == 0
        and negative == 0
        and custody == liabilities
        and day_totals_off == 0
        and day_totals > 0,
        "sizes": sizes,
    }


# --- The timed run, in a fresh process ------------------------------------------------------------


def _risk_child(env: dict[str, str], results) -> None:
    """``compute_risk()``, timed, with its progress lines and the CPU of both sides."""
    os.environ.update(env)
    rss_bare = rss_now()
    import django

    django.setup()
    from django.db import connection
    from django.db.backends.signals import connection_created

    from regulator.services.risk import compute_risk

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    rss_ready = rss_now()
    statements = 0
    # The run reads and writes on connections of its own threads too: each one's statements are
    # counted, and its backend's CPU read when it opens and after each of its statements (a
    # thread's connection is closed by the end of the run, its process gone).
    threads_cpu: dict[int, list[float]] = {}  # backend pid -> [CPU when opened, after its last statement]
    lock = threading.Lock()

    def count(execute, sql, params, many, context):
        nonlocal statements
        try:
            return execute(sql, params, many, context)
        finally:
            pid = context["connection"].connection.get_backend_pid()
            cpu = process_cpu(pid) if pid in threads_cpu else None
            with lock:
                statements += 1
                if cpu is not None:
                    threads_cpu[pid][1] = cpu

    def opened(sender, connection, **kwargs) -> None:
        pid = connection.connection.get_backend_pid()
        threads_cpu[pid] = [process_cpu(pid) or 0.0] * 2
        connection.execute_wrappers.append(count)

    connection_created.connect(opened)

    started = time.perf_counter()
    phases: list[tuple[str, float]] = []

    def progress(message: str) -> None:
        at = time.perf_counter() - started
        phases.append((message, round(at, 3)))
        say(f"  [{at:6.2f} s] {message}")

    cpu0, backend0 = time.process_time(), process_cpu(backend_pid)
    with connection.execute_wrapper(count):
        started = time.perf_counter()
        run = compute_risk(progress=progress)
        elapsed = time.perf_counter() - started
    cpu1, backend1 = time.process_time(), process_cpu(backend_pid)
    threads_backend = sum(last - first for first, last in threads_cpu.values())
    results.put(
        {
            "computed_at": run.computed_at.isoformat(),
            "merchants": run.merchants,
            "high": run.high,
            "flagged": run.flagged,
            "elapsed_s": elapsed,
            "phases": phases,
            "statements": statements,
            "rss_bare_bytes": rss_bare,
            "rss_ready_bytes": rss_ready,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "python_cpu_s": round(cpu1 - cpu0, 2),
            "backend_cpu_s": None
            if backend0 is None or backend1 is None
            else round(backend1 - backend0 + threads_backend, 2),
            "connections": 1 + len(threads_cpu),
            "loadavg_before": os.getloadavg()[0],
        }
    )
    connection.close()


def _report_child(env: dict[str, str], merchant_id: str, results) -> None:
    """Diagnostic: one merchant's audit report PDF (``regulator.reports.audit``), timed, with the ledger
    verification it runs timed apart."""
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    import regulator.reports.audit as report

    verify = report.ledger_verify
    timings: dict[str, float] = {}

    def timed_verify():
        started = time.perf_counter()
        outcome = verify()
        timings["ledger_verify_s"] = time.perf_counter() - started
        return outcome

    report.ledger_verify = timed_verify  # instrumentation only: the same function, timed
    started = time.perf_counter()
    pdf = report.audit_report_pdf(merchant_id=merchant_id)
    elapsed = time.perf_counter() - started
    results.put(
        {
            "merchant_id": merchant_id,
            "elapsed_s": elapsed,
            "ledger_verify_s": timings.get("ledger_verify_s"),
            "bytes": len(pdf),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
    )
    connection.close()


# --- Checks ---------------------------------------------------------------------------------------


def risk_checks(conn, *, computed_at: str, merchants: int, first_high: int) -> dict:
    """Every merchant assessed once in the (last) run and carrying its score; the kinds of business
    told apart: score by kind, and each signal's mean normalised value (contribution ÷ weight) by
    kind; the merchants that turned high in the first run flagged, once each, with an audit event."""
    with conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), COUNT(DISTINCT merchant_id) FROM regulator_riskassessment WHERE computed_at = %s",
            [computed_at],
        )
        assessments, assessed = cursor.fetchone()
        cursor.execute(
            "SELECT COUNT(*) FROM merchants_merchant m JOIN regulator_riskassessment r ON r.merchant_id = m.id "
            "AND r.computed_at = %s WHERE m.risk_computed_at = r.computed_at AND m.risk_score = r.score "
            "AND m.risk_level = r.level",
            [computed_at],
        )
        carried = cursor.fetchone()[0]
        cursor.execute(
            """
            SELECT split_part(m.name, ' ', 2) AS grp, COUNT(*), MIN(r.score), percentile_disc(0.5) WITHIN GROUP
                   (ORDER BY r.score), MAX(r.score), COUNT(*) FILTER (WHERE r.level = 'high'),
                   COUNT(*) FILTER (WHERE r.level = 'medium')
            FROM regulator_riskassessment r JOIN merchants_merchant m ON m.id = r.merchant_id
            WHERE r.computed_at = %s GROUP BY grp
            """,
            [computed_at],
        )
        scores = {
            grp: {"merchants": n, "min": lo, "median": mid, "max": hi, "high": high, "medium": medium}
            for grp, n, lo, mid, hi, high, medium in cursor.fetchall()
        }
        cursor.execute(
            """
            SELECT split_part(m.name, ' ', 2) AS grp, s->>'name',
                   AVG(CASE WHEN (s->>'weight')::numeric > 0
                            THEN (s->>'contribution')::numeric / (s->>'weight')::numeric END),
                   COUNT(*) FILTER (WHERE s->'value' IS NOT NULL AND jsonb_typeof(s->'value') <> 'null')
            FROM regulator_riskassessment r JOIN merchants_merchant m ON m.id = r.merchant_id,
                 jsonb_array_elements(r.signals) s
            WHERE r.computed_at = %s GROUP BY grp, s->>'name'
            """,
            [computed_at],
        )
        signals: dict[str, dict[str, float]] = {}
        for grp, name, mean, _ in cursor.fetchall():
            signals.setdefault(grp, {})[name] = round(float(mean or 0), 3)
        cursor.execute(
            """
            SELECT COUNT(*) FILTER (WHERE s->>'value' = 'true'), COUNT(*)
            FROM regulator_riskassessment r JOIN merchants_merchant m ON m.id = r.merchant_id,
                 jsonb_array_elements(r.signals) s
            WHERE r.computed_at = %s AND m.name LIKE 'Bench large %%' AND s->>'name' = 'filing_threshold'
            """,
            [computed_at],
        )
        over_line, large = cursor.fetchone()
        cursor.execute(
            "SELECT (SELECT COUNT(*) FROM merchants_merchant WHERE flagged), "
            "(SELECT COUNT(*) FROM regulator_auditevent WHERE verb = 'risk_auto_flag'), "
            "(SELECT COUNT(DISTINCT merchant_id) FROM regulator_auditevent WHERE verb = 'risk_auto_flag')"
        )
        flagged, flag_events, flagged_merchants = cursor.fetchone()
    steady_max = scores.get("steady", {}).get("max", 0)
    failures = []
    if not assessments == assessed == carried == merchants:
        failures.append(f"{assessments} assessments of {assessed} merchants ({carried} carry it) for {merchants}")
    for grp in ("blitz", "stopped", "runaway"):
        if scores.get(grp, {}).get("min", -1) <= steady_max:
            failures.append(f"a {grp} merchant scores {scores.get(grp, {}).get('min')} <= steady max {steady_max}")
    others_max = max(s["max"] for grp, s in scores.items() if grp != "runaway")
    runaway = scores.get("runaway", {})
    if runaway.get("min", -1) <= others_max or runaway.get("high") != runaway.get("merchants"):
        failures.append(f"runaway merchants: {runaway}, not all high and above every other ({others_max})")
    if not flagged == flag_events == flagged_merchants == first_high:
        failures.append(
            f"{flagged} merchants flagged, {flag_events} auto-flag events for {flagged_merchants}; {first_high} high"
        )
    for grp, names in EXPECTED.items():
        for name in names:
            if signals.get(grp, {}).get(name, 0) < 0.5:
                failures.append(f"{grp}: {name} mean {signals.get(grp, {}).get(name)} < 0.5")
    if over_line != large:
        failures.append(f"{over_line} of {large} large merchants over the filing line")
    silent = [name for name in SIGNALS if max(by_name.get(name, 0) for by_name in signals.values()) <= 0]
    if silent:
        failures.append(f"signals never raised: {', '.join(silent)}")
    return {
        "assessments": assessments,
        "merchants_assessed": assessed,
        "merchants_carrying_it": carried,
        "scores": scores,
        "signal_means": signals,
        "large_over_filing_line": f"{over_line}/{large}",
        "flagged": flagged,
        "auto_flag_events": flag_events,
        "failures": failures,
        "ok": not failures,
    }


def run_floor(conn, *, at: datetime) -> dict:
    """The plain-SQL baseline: the 90 days of releases the model reads, summed per merchant."""
    window = {"since": at - timedelta(days=90), "at": at}
    runs, rows = [], []
    for attempt in range(FLOOR_RUNS):
        with conn, conn.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(FLOOR_SQL, window)
            rows = cursor.fetchall()
            runs.append(time.perf_counter() - started)
        say(f"  floor run {attempt + 1}/{FLOOR_RUNS}: {runs[-1]:.3f} s, {len(rows)} merchants")
    return {
        "sql": " ".join(FLOOR_SQL.split()),
        "runs_s": [round(value, 4) for value in runs],
        "median_s": statistics.median(runs),
        "merchants": len(rows),
    }


# --- Report ---------------------------------------------------------------------------------------


def print_report(report: dict) -> None:
    data, runs, checks = report["data"], report["runs"], report["checks"]
    times = [run["elapsed_s"] for run in runs]
    peaks = [run["peak_rss_bytes"] for run in runs]
    print()
    print(
        f"compute_risk() over {data['merchants']:,} merchants, {data['cards']:,} cards, {data['postings']:,} "
        f"postings (PostgreSQL, DEBUG off)"
    )
    print(f"command: {report['command']}")
    host = report["machine"]
    print(
        f"machine: {host['nproc']} CPUs, {host['cpu']}, {host['memory_gb']} GB; PostgreSQL {host['postgresql']}; "
        f"Python {host['python']}"
    )
    print(f"date:    {report['date_utc']}")
    if report["settings"]["quick"]:
        print("(--quick: a hundredth of the data; the targets are set for the defaults)")
    print()
    rows = [
        (f"wall time, slowest of {len(runs)}", f"{max(times):.2f} s", f"<= {TARGET_S:.0f} s", report["time_verdict"]),
        ("  median", f"{statistics.median(times):.2f} s", "", ""),
        (
            f"peak RSS, largest of {len(runs)}",
            f"{max(peaks) / MiB:.0f} MiB",
            f"<= {TARGET_PEAK_MB:.0f} MB",
            report["memory_verdict"],
        ),
        ("  of which Django loaded and connected", f"{runs[0]['rss_ready_bytes'] / MiB:.0f} MiB", "", ""),
        ("floor: plain SUM of 90 days' releases", f"{report['floor']['median_s']:.3f} s", "", ""),
        ("ratio slowest run / floor", f"{report['ratio_to_floor']:.1f}", "recorded", ""),
    ]
    print(f"{'':40}  {'measured':>12}  {'target':>10}  result")
    for label, value, target, result in rows:
        print(f"{label:40}  {value:>12}  {target:>10}  {result}")
    print()
    for number, run in enumerate(runs, start=1):
        phases = ", ".join(
            f"{message.split(': ', 1)[-1].split(' ')[0]} {at:.2f}"
            for message, at in run["phases"]
            if message.startswith("signals")
        )
        print(
            f"run {number}: {run['elapsed_s']:.2f} s, peak {run['peak_rss_bytes'] / MiB:.0f} MiB, "
            f"{run['statements']:,} statements on {run.get('connections', 1)} connections, "
            f"CPU {run['python_cpu_s']} s Python / {run['backend_cpu_s']} s backend, "
            f"load average before {run['loadavg_before']:.2f}; {run['high']} high, {run['flagged']} flagged"
        )
        print(f"       signal queries done at (s): {phases}")
    print()
    print(
        f"data: {data['cards']:,} cards {data['card_kinds']}; entries {data['entry_codes']}; "
        f"redemptions {data['redemption_states']}; {data['refunds']:,} refunds; complaints {data['complaint_states']}"
    )
    print(
        f"books: unbalanced entries {data['unbalanced_entries']}, "
        f"cards off their escrow {data['cards_off_their_escrow']}, negative balances {data['negative_balances']}, "
        f"custody {data['custody']} = liabilities {data['liabilities']}, "
        f"day totals off their postings {data['day_totals_off_their_postings']} of {data['day_totals']:,}: "
        f"ok={data['books_ok']}"
    )
    print(f"sizes: {data['sizes']}; generated in {report['load_s']:.0f} s")
    print()
    print(f"{'score by kind':14} {'merchants':>9} {'min':>4} {'median':>6} {'max':>4} {'high':>5} {'medium':>6}")
    for grp in GROUPS:
        s = checks["scores"].get(grp)
        if s:
            print(
                f"{grp:14} {s['merchants']:>9,} {s['min']:>4} {s['median']:>6} {s['max']:>4} {s['high']:>5} "
                f"{s['medium']:>6}"
            )
    print()
    print("mean normalised signal (contribution / weight) by kind")
    print(f"{'':26}" + "".join(f"{grp:>10}" for grp in GROUPS))
    for name in SIGNALS:
        print(f"{name:26}" + "".join(f"{checks['signal_means'].get(grp, {}).get(name, 0):>10.2f}" for grp in GROUPS))
    print()
    print(
        f"checks: {checks['assessments']:,} assessments of {checks['merchants_assessed']:,} merchants, "
        f"{checks['merchants_carrying_it']:,} carry their score; large over the filing line "
        f"{checks['large_over_filing_line']}; {checks['flagged']} merchants flagged with "
        f"{checks['auto_flag_events']} audit events; ok={checks['ok']}"
    )
    for failure in checks["failures"]:
        print(f"  FAILED: {failure}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--merchants", type=int, help="merchants (default 10,000 x --scale)")
    parser.add_argument("--cards", type=int, help="cards (default 1,000,000 x --scale)")
    parser.add_argument("--postings", type=int, help="ledger postings (default 5,000,000 x --scale)")
    add_scale_argument(parser)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of compute_risk (default 3)")
    parser.add_argument("--quick", action="store_true", help="a hundredth: 100 merchants, 10k cards, 50k postings")
    parser.add_argument(
        "--audit-report",
        action="store_true",
        help="diagnostic: also time the audit report PDF of the riskiest merchant (a full ledger verification)",
    )
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"PostgreSQL server URL (default {DEFAULT_SERVER})")
    parser.add_argument(
        "--keep-database", action="store_true", help="keep the generated database after the run (to study it)"
    )
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be at least 1")
    if args.quick:
        args.merchants, args.cards, args.postings = 100, 10_000, 50_000
    args.merchants = args.merchants or 10_000 * args.scale
    args.cards = args.cards or 1_000_000 * args.scale
    args.postings = args.postings or 5_000_000 * args.scale
    if args.merchants < 20 or args.cards < 20 * args.merchants // 10 or args.runs < 1:
        parser.error("need at least 20 merchants, 2 cards per merchant and one run")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    python = sys.executable
    if python.startswith(f"{REPO}{os.sep}"):
        python = os.path.relpath(python, REPO)
    command = shlex.join([python, "bench/risk.py", *argv])
    started_at = datetime.now(UTC)
    host = machine(args.server)
    say(f"command: {command}")
    say(
        f"machine: {host['nproc']} CPUs ({host['cpu']}), PostgreSQL {host['postgresql']}, Python {host['python']}, "
        f"load average {host['loadavg_at_start']:.2f}"
    )
    with throwaway_database(args.server, f"bench_risk_{os.getpid()}", keep=args.keep_database) as url:
        env = django_env(url, secrets.token_urlsafe(32))
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from core import clock

        say("migrating")
        call_command("migrate", interactive=False, verbosity=0)
        connections.close_all()
        conn = connect(url)
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(
                    "SELECT (SELECT COALESCE(MAX(id), 0) FROM core_user), "
                    "(SELECT COALESCE(MAX(id), 0) FROM escrow_account), "
                    "(SELECT COALESCE(MAX(id), 0) FROM escrow_journalentry), "
                    "(SELECT id FROM escrow_account WHERE kind = 'custody'), "
                    "(SELECT id FROM escrow_account WHERE kind = 'refund_payable')"
                )
                user, account, entry, custody, refund_payable = cursor.fetchone()
            layout = plan_layout(
                args,
                {
                    "user": user,
                    "account": account,
                    "entry": entry,
                    "custody": custody,
                    "refund_payable": refund_payable,
                },
            )
            at = clock.now().replace(second=0, microsecond=0)
            say(
                f"generating six months up to {at.isoformat()}: {args.merchants:,} merchants, {args.cards:,} cards, "
                f"{args.postings:,} postings"
            )
            loaded_at = time.monotonic()
            data = load(conn, {**layout, "at": at})
            load_s = time.monotonic() - loaded_at
            say(
                f"data ready in {load_s:.0f} s: {data['postings']:,} postings, {data['entries']:,} entries, "
                f"{data['redemptions']:,} redemptions, {data['complaints']:,} complaints; books ok={data['books_ok']}"
            )
            say("floor: plain SUM ... GROUP BY merchant over the last 90 days' releases")
            floor = run_floor(conn, at=at)
            runs = []
            for number in range(1, args.runs + 1):
                say(
                    f"compute_risk() run {number}/{args.runs} in a fresh process "
                    f"(load average {os.getloadavg()[0]:.2f})"
                )
                run = run_in_fresh_process(_risk_child, (env,), what="risk process")
                say(f"  {run['elapsed_s']:.2f} s, peak RSS {run['peak_rss_bytes'] / MiB:.0f} MiB")
                runs.append(run)
            say(f"checking the assessments of run {len(runs)}")
            checks = risk_checks(
                conn, computed_at=runs[-1]["computed_at"], merchants=args.merchants, first_high=runs[0]["high"]
            )
            audit_report = None
            if args.audit_report:
                with conn, conn.cursor() as cursor:
                    cursor.execute("SELECT id::text FROM merchants_merchant ORDER BY risk_score DESC, id LIMIT 1")
                    riskiest = cursor.fetchone()[0]
                say(f"diagnostic: the audit report of merchant {riskiest}")
                audit_report = run_in_fresh_process(_report_child, (env, riskiest), what="report process")
                took, verify = audit_report["elapsed_s"], audit_report["ledger_verify_s"]
                say(
                    f"  {took:.1f} s, of which ledger_verify {verify:.1f} s; {audit_report['bytes']:,} bytes, "
                    f"peak RSS {audit_report['peak_rss_bytes'] / MiB:.0f} MiB"
                )
        finally:
            conn.close()

    median_s = statistics.median(run["elapsed_s"] for run in runs)
    slowest_s = max(run["elapsed_s"] for run in runs)
    peak = max(run["peak_rss_bytes"] for run in runs)
    report = {
        "benchmark": "merchant risk model",
        "command": command,
        "date_utc": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": host,
        "settings": {
            "merchants": args.merchants,
            "cards": args.cards,
            "postings": args.postings,
            "runs": args.runs,
            "scale": args.scale,
            "quick": args.quick,
            "generated_up_to": at.isoformat(),
        },
        "targets": {"wall_s": TARGET_S, "peak_rss_mb": TARGET_PEAK_MB},
        "data": data,
        "load_s": load_s,
        "runs": runs,
        "median_s": median_s,
        "slowest_s": slowest_s,
        "floor": floor,
        "ratio_to_floor": slowest_s / floor["median_s"],
        "time_verdict": verdict(slowest_s <= TARGET_S),
        "memory_verdict": verdict(peak <= TARGET_PEAK_MB * 1e6),
        "checks": checks,
        "audit_report": audit_report,
    }
    print_report(report)
    out_dir = REPO / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / out_name("risk", args.scale)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"results: {out.relative_to(REPO)}")
    if not data["books_ok"] or not checks["ok"]:
        print("FAIL: checks failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
