"""Background work done a chunk at a time (a mass refund, a notification fan-out).

A job is a row: ``queued`` until a worker takes its first chunk, ``running`` while chunks remain,
then ``done``, or ``failed`` with ``detail`` when a retry would not help. ``done`` of ``total`` is
its progress for the pages. Each chunk is one transaction that also moves the job's own progress,
so a worker killed mid-way leaves the job where its last chunk committed, and the beat sweep
(``jobs_stale``) kicks every job that has not moved for ``STALE_AFTER`` again.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from core import clock

STALE_AFTER = timedelta(minutes=2)


class Job(FSMModelMixin, models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    ACTIVE = (State.QUEUED, State.RUNNING)

    state = FSMField(default=State.QUEUED, choices=State.choices, protected=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    detail = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @transition(field=state, source=State.QUEUED, target=State.RUNNING)
    def start(self) -> None:
        """A worker took the first chunk."""

    @transition(field=state, source=[State.QUEUED, State.RUNNING], target=State.DONE)
    def finish(self) -> None:
        """Nothing is left to do."""

    @transition(field=state, source=[State.QUEUED, State.RUNNING], target=State.FAILED)
    def fail(self) -> None:
        """A chunk failed for a reason a retry will not fix; ``detail`` says which."""


def jobs_stale(model: type[Job]) -> list[int]:
    """Ids of ``model``'s jobs still to finish that have not moved for ``STALE_AFTER`` (their
    worker died, or their task was lost): the sweep kicks each again."""
    return list(
        model.objects.filter(state__in=Job.ACTIVE, updated_at__lt=clock.now() - STALE_AFTER).values_list(
            "pk", flat=True
        )
    )
