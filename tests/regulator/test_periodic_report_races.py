"""The periodic report under races, on PostgreSQL: two requests for the same report at once make one,
and two workers stepping the same report (a redelivered task beside a live one) write each step once."""

from __future__ import annotations

import threading

import pytest
import time_machine
from django.db import connections

from regulator.models import PeriodicReport, PeriodicReportFile
from regulator.reports.periods import MONTH, Period
from regulator.selectors.jurisdiction import CITY
from regulator.services.periodic_reports import STEPS, periodic_report_generate, periodic_report_step
from tests.regulator.periodic_world import REPORT_AT, build_city

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

MARCH = Period(MONTH, 2026, 3)


def together(work, count: int = 2) -> list:
    """Run ``work()`` in ``count`` threads released at the same moment; their results, or raise."""
    start = threading.Barrier(count)
    results, errors = [], []

    def run():
        try:
            start.wait()
            results.append(work())
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_two_requests_for_the_same_report_at_once_make_one():
    with time_machine.travel(REPORT_AT, tick=False):
        # Committed at once, each request's steps run inline (eager tasks) in its own thread.
        reports = together(lambda: periodic_report_generate(jurisdiction=CITY, period=MARCH))
    assert reports[0].pk == reports[1].pk
    report = PeriodicReport.objects.get()
    assert report.generation == 1 and report.state == "done" and report.done == STEPS
    assert PeriodicReportFile.objects.filter(report=report).count() == 2


def test_two_workers_stepping_one_report_write_each_step_once(monkeypatch):
    build_city()
    # Nothing is queued: the two threads are the workers.
    monkeypatch.setattr("regulator.services.periodic_reports.periodic_report_kick", lambda **_: None)
    with time_machine.travel(REPORT_AT, tick=False):
        report = periodic_report_generate(jurisdiction=CITY, period=MARCH)

        def work() -> int:
            steps = 0
            while periodic_report_step(report_id=report.pk):
                steps += 1
            return steps

        together(work)
    report.refresh_from_db()
    assert report.state == "done" and report.done == report.total == STEPS
    assert report.figures["refunds"][0]["amount"] == 140_000
    assert PeriodicReportFile.objects.filter(report=report).count() == 2
