"""A big risk run writes its batches on connections of its own threads
(PostgreSQL, outside a caller's transaction): what it stores is what a run inside one transaction,
on the caller's connection alone, stores."""

import pytest
from django.db import transaction

from merchants.models import Merchant
from regulator.models import AuditEvent, RiskAssessment
from regulator.services import risk
from regulator.services.risk import compute_risk
from tests.cards import builders as b
from tests.regulator import histories as h

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def stored(at) -> dict:
    return {a.merchant_id: (a.score, a.level, a.signals) for a in RiskAssessment.objects.filter(computed_at=at)}


def test_a_run_in_threads_stores_what_a_run_in_one_transaction_stores(monkeypatch):
    runaway, salon = h.runaway(), h.steady_salon()
    quiet = [b.merchant() for _ in range(3)]
    monkeypatch.setattr(risk, "WRITE_BATCH", 2)  # five merchants make three batches: the threaded path

    with transaction.atomic():  # a caller's transaction: everything on its connection, in place
        alone = compute_risk(at=h.AT)
    alone_stored = stored(h.AT)
    RiskAssessment.objects.all().delete()
    AuditEvent.objects.filter(verb="risk_auto_flag").delete()
    Merchant.objects.update(flagged=False, risk_warning=None, risk_score=0, risk_level="low", risk_computed_at=None)

    messages: list[str] = []
    threaded = compute_risk(at=h.AT, progress=messages.append)

    assert risk._threaded(5)
    assert (
        (threaded.merchants, threaded.high, threaded.flagged)
        == (alone.merchants, alone.high, alone.flagged)
        == (
            5,
            1,
            1,
        )
    )
    assert stored(h.AT) == alone_stored
    assert set(alone_stored) == {runaway.pk, salon.pk, *(m.pk for m in quiet)}
    for merchant in Merchant.objects.all():
        score, level, _signals = alone_stored[merchant.pk]
        assert (merchant.risk_score, merchant.risk_level, merchant.risk_computed_at) == (score, level, h.AT)
    assert AuditEvent.objects.filter(verb="risk_auto_flag", merchant=runaway).count() == 1
    assert messages[-1] == "scored 5/5 merchants"
    assert sum(m.startswith("signals ") for m in messages) == 7
