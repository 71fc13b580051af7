"""The risk model's evaluation: the simulator plays merchant histories through the real services
(deterministic for a seed), a runaway vanishes on its day, and the report agrees with the nightly
``RiskAssessment`` rows."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test.utils import override_settings

from complaints.models import Complaint
from consumers.models import Redemption
from core import clock
from regulator.models import RiskAssessment
from regulator.simulate import ARCHETYPES, evaluate, nightly_signals, report_lines, score, simulate, tune

pytestmark = pytest.mark.django_db

TINY = {"merchants_per_archetype": 1, "days": 32, "warmup": 4, "seed": 7}


def nightly_scores(sim) -> dict[str, list[tuple[int, int]]]:
    return {
        m.label: [
            (sim.day_of(at), s)
            for at, s in RiskAssessment.objects.filter(merchant=m.merchant)
            .order_by("computed_at")
            .values_list("computed_at", "score")
        ]
        for m in sim.merchants
    }


def test_the_archetypes_are_the_issue_s_six():
    assert set(ARCHETYPES) == {"steady", "seasonal", "growing", "discount_blitz", "slow_fade", "sudden_vanish"}
    assert {n for n, a in ARCHETYPES.items() if a.runaway} == {"discount_blitz", "slow_fade", "sudden_vanish"}


def test_a_seed_tells_the_same_story_and_a_sudden_vanish_serves_nobody_from_its_day():
    first = simulate(archetypes=["steady", "sudden_vanish"], **TINY)
    second = simulate(archetypes=["steady", "sudden_vanish"], **TINY)
    for a, b in zip(first.merchants, second.merchants, strict=True):
        assert (a.label, a.vanish, a.counts, a.served_days) == (b.label, b.vanish, b.counts, b.served_days)
    assert {k: [s for _, s in v] for k, v in nightly_scores(first).items()} == {
        k: [s for _, s in v] for k, v in nightly_scores(second).items()
    }
    # One assessment a night for each merchant, on each simulated day.
    assert all([d for d, _ in rows] == list(range(TINY["days"])) for rows in nightly_scores(first).values())

    steady, runaway = first.merchants
    assert steady.vanish is None and runaway.vanish is not None
    assert TINY["warmup"] < runaway.vanish < TINY["days"]
    vanished_at = clock.local_midnight(first.start + timedelta(days=runaway.vanish))
    served = Redemption.objects.filter(merchant=runaway.merchant, state=Redemption.State.CONFIRMED)
    assert served.filter(created_at__lt=vanished_at).exists()
    assert not served.filter(created_at__gte=vanished_at).exists()
    assert max(runaway.served_days) < runaway.vanish
    # After vanishing its holders complain and nobody answers; the steady merchant answers all.
    gone = Complaint.objects.filter(merchant=runaway.merchant, created_at__gte=vanished_at)
    assert gone.exists() and not gone.filter(state=Complaint.State.RESPONDED).exists()
    healthy = Complaint.objects.filter(merchant=steady.merchant)
    assert healthy.count() <= 2
    assert not healthy.exclude(state=Complaint.State.RESPONDED).exists()
    assert steady.counts.get("rejected", 0) == 0 and steady.counts["services"] > 0


def test_the_report_agrees_with_the_nightly_assessments():
    # A low level, so that the tiny histories have flags to report.
    with override_settings(RISK_LEVEL_HIGH=15):
        sim = simulate(archetypes=["steady", "discount_blitz"], **TINY)
        evaluation = evaluate(sim)
        nights = nightly_signals(sim)
        lines = report_lines(evaluation)
    scores = nightly_scores(sim)
    for outcome in evaluation.outcomes:
        after = [(d, s) for d, s in scores[outcome.label] if d >= sim.warmup]
        assert outcome.first_flagged == next((d for d, s in after if s >= 15), None)
        assert outcome.peak == max(s for _, s in after)
        if outcome.runaway:
            assert outcome.lead == outcome.vanish - outcome.first_flagged
            assert outcome.caught == (outcome.lead >= 14)
        # The stored signals score back to the stored score (contributions are rounded to 0.1).
        for (day, stored), (day2, norms) in zip(after, nights[outcome.label], strict=True):
            assert day == day2 and abs(score(norms, evaluation.weights) - stored) <= 1
    blitz = next(o for o in evaluation.outcomes if o.runaway)
    assert blitz.first_flagged is not None
    assert evaluation.caught_share == float(blitz.caught)
    assert any(line.startswith("discount_blitz-1") for line in lines)
    assert any("runaways flagged >= 14 days before vanishing:" in line for line in lines)
    assert any("healthy merchants ever flagged:" in line for line in lines)

    # Other weights are scored from the same histories without simulating again.
    weights = dict(evaluation.weights, sales_surge=evaluation.weights["sales_surge"] + 5, refunds_late=0)
    other = evaluate(sim, weights=weights, high=15, nights=nights)
    assert [o.label for o in other.outcomes] == [o.label for o in evaluation.outcomes]
    assert other.weights == weights

    # The search over weights and levels returns weights summing to 100 and their evaluation.
    with override_settings(RISK_LEVEL_HIGH=15):
        best, high, tuned = tune(sim, tries=40, seed=1, nights=nights)
    assert sum(best.values()) == 100 and all(w >= 0 for w in best.values()) and 20 <= high <= 80
    assert tuned.weights == best and tuned.high == high
    assert tuned.caught_share >= evaluation.caught_share or tuned.false_share < evaluation.false_share


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weights", "{"], "not JSON"),
        (["--weights", '{"sales_surge": 21}'], "sum to 101"),
        (["--weights", '{"charm": 1}'], "unknown signals"),
        (["--days", "30", "--warmup", "20"], "at least --warmup"),
    ],
)
def test_the_command_refuses_weights_it_cannot_use(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("evaluate_risk", *args)
