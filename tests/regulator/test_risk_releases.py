"""The risk model's release signal, read from the ledger's day totals and the window's edge
postings, equals the plain sum of the release postings of each window, wherever the releases and
the moment of scoring fall (Beijing midnights exactly included)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db.models import F, Q, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escrow.models import JournalEntry, Posting
from escrow.services import ledger_transfer
from regulator.services.risk import _releases
from tests.cards import builders as b
from tests.escrow.ledger_helpers import funded_card, key

pytestmark = pytest.mark.django_db

BEIJING = ZoneInfo("Asia/Shanghai")
MIDNIGHT = datetime(2026, 6, 30, tzinfo=BEIJING)
MICRO = timedelta(microseconds=1)
DAY_US = 86_400_000_000

# The moment of scoring: a Beijing midnight exactly, an instant either side of one, or any time of day.
ats = st.one_of(
    st.sampled_from([MIDNIGHT, MIDNIGHT - MICRO, MIDNIGHT + MICRO]),
    st.integers(min_value=0, max_value=DAY_US - 1).map(lambda us: MIDNIGHT + timedelta(microseconds=us)),
)
# A release before ``at``: at a window's boundary or an instant either side, at a midnight, or anywhere.
edges = [timedelta(days=d) + e for d in (0, 14, 70, 90) for e in (-MICRO, timedelta(0), MICRO)]
offsets = st.one_of(
    st.sampled_from(edges),
    st.tuples(st.integers(min_value=0, max_value=95), st.sampled_from([-MICRO, timedelta(0), MICRO])),
    st.integers(min_value=0, max_value=95 * DAY_US),
)


def _release_time(at: datetime, offset) -> datetime:
    if isinstance(offset, tuple):  # a Beijing midnight some days back (or an instant beside it)
        days, nudge = offset
        midnight = datetime.combine(at.astimezone(BEIJING).date(), datetime.min.time(), tzinfo=BEIJING)
        return midnight - timedelta(days=days) + nudge
    if isinstance(offset, int):
        return at - timedelta(microseconds=offset)
    return at - offset


def plain_sums(at: datetime, merchant_pk) -> tuple[int, int, int]:
    """The three windows summed from the release postings themselves."""
    rows = Posting.objects.filter(
        entry__code=JournalEntry.Code.RELEASE,
        account__merchant=merchant_pk,
        entry__created_at__gte=at - timedelta(days=90),
        entry__created_at__lt=at,
    ).aggregate(
        d90=Sum(-F("amount")),
        d14=Sum(-F("amount"), filter=Q(entry__created_at__gte=at - timedelta(days=14))),
        w8=Sum(
            -F("amount"),
            filter=Q(entry__created_at__gte=at - timedelta(days=70), entry__created_at__lt=at - timedelta(days=14)),
        ),
    )
    return rows["d90"] or 0, rows["d14"] or 0, rows["w8"] or 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    at=ats,
    releases=st.lists(st.tuples(offsets, st.integers(min_value=1, max_value=9_999)), min_size=1, max_size=8),
)
def test_release_signal_equals_the_release_postings_of_each_window(at, releases):
    merchant = b.merchant()
    card = funded_card(10_000 * len(releases))
    for offset, amount in releases:
        when = _release_time(at, offset)
        with time_machine.travel(when, tick=False):
            entry = ledger_transfer(
                code=JournalEntry.Code.RELEASE,
                debit_account_id=card.id,
                credit_account_id=merchant.settlement_account_id,
                amount=amount,
                idempotency_key=key("release"),
            )
        assert entry.created_at == when  # the edge cases are really at their instants
    expected = plain_sums(at, merchant.pk)
    scoped = {row[0]: tuple(row[1:]) for row in _releases(at, [merchant.pk])}
    everyone = {row[0]: tuple(row[1:]) for row in _releases(at, None)}
    assert scoped.get(merchant.pk, (0, 0, 0)) == expected
    assert everyone.get(merchant.pk, (0, 0, 0)) == expected
