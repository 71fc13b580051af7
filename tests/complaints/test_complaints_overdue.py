"""The overdue job: open complaints past their deadline become overdue, once, and their merchants are told."""

import threading

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction

from complaints.models import Complaint
from complaints.services import complaint_respond, complaints_mark_overdue
from complaints.tasks import complaints_mark_overdue_task
from tests.cards import builders
from tests.complaints.complaints_builders import app_complaint, at, hotline_call
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def gym():
    gym = builders.merchant(name="阳光健身")
    gym.user.email = "owner@gym.example"
    gym.user.save(update_fields=["email"])
    return gym


@pytest.fixture
def alice():
    return builders.consumer()


def test_only_open_complaints_past_their_deadline_become_overdue(gym, alice, django_capture_on_commit_callbacks):
    with at("2026-03-02 10:00 +0800"):
        urgent = app_complaint(alice, gym, urgent=True)  # due 12:00
        normal = app_complaint(alice, gym)  # due 03-04 10:00
        answered = app_complaint(alice, gym, urgent=True)  # due 12:00, but answered
        complaint_respond(complaint_id=answered.pk, merchant=gym, text="Done.")
    with at("2026-03-02 12:00 +0800"):
        assert complaints_mark_overdue() == 0  # at the deadline itself it is not yet past
    with at("2026-03-02 12:00:01 +0800"), django_capture_on_commit_callbacks(execute=True):
        assert complaints_mark_overdue() == 1
    got = {c.pk: (c.state, c.overdue_at) for c in Complaint.objects.all()}
    assert got[urgent.pk][0] == "overdue" and got[urgent.pk][1].isoformat() == "2026-03-02T04:00:01+00:00"
    assert got[normal.pk] == ("open", None)
    assert got[answered.pk] == ("responded", None)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["owner@gym.example"]
    assert "阳光健身" in mail.outbox[0].subject


def test_running_the_job_twice_marks_and_tells_nothing_twice(gym, alice, django_capture_on_commit_callbacks):
    with at("2026-03-02 10:00 +0800"):
        complaint = app_complaint(alice, gym)
    with at("2026-03-04 10:01 +0800"), django_capture_on_commit_callbacks(execute=True):
        assert complaints_mark_overdue() == 1
    with at("2026-03-04 10:06 +0800"), django_capture_on_commit_callbacks(execute=True):
        assert complaints_mark_overdue() == 0
    complaint = Complaint.objects.get(pk=complaint.pk)
    assert complaint.state == "overdue" and complaint.overdue_at.isoformat() == "2026-03-04T02:01:00+00:00"
    assert len(mail.outbox) == 1


def test_the_job_works_through_a_backlog_in_chunks_and_mails_only_merchants_with_an_address(
    gym, django_capture_on_commit_callbacks
):
    inspector = UserFactory(role="regulator")
    quiet = builders.merchant()  # no e-mail address: nobody to write to
    for _ in range(5):
        hotline_call(gym, regulator=inspector, received_at="2026-03-01T09:00:00+08:00")
    hotline_call(quiet, regulator=inspector, received_at="2026-03-01T09:00:00+08:00")
    hotline_call(gym, regulator=inspector, received_at="2026-03-05T09:00:00+08:00")  # not yet due
    with at("2026-03-04 00:00 +0800"), django_capture_on_commit_callbacks(execute=True):
        assert complaints_mark_overdue(chunk_size=4) == 6
    assert Complaint.objects.filter(state="overdue").count() == 6
    assert Complaint.objects.filter(state="open").count() == 1
    # Five of the gym's six fall in two chunks of four: one or two mails, all to the gym.
    assert 1 <= len(mail.outbox) <= 2
    assert {tuple(m.to) for m in mail.outbox} == {("owner@gym.example",)}


def test_the_task_runs_the_job_and_beat_runs_it_every_five_minutes(gym, alice):
    with at("2026-03-02 10:00 +0800"):
        app_complaint(alice, gym, urgent=True)
    with at("2026-03-02 13:00 +0800"):
        assert complaints_mark_overdue_task.delay().get() == 1
    entry = next(
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].endswith("complaints_mark_overdue_task")
    )
    assert entry["schedule"] == 300.0
    assert entry["task"] == f"{complaints_mark_overdue_task.__module__}.{complaints_mark_overdue_task.__name__}"


def _in_thread(target):
    """Run ``target`` on its own connection, as a second worker would; returns the thread and its result."""
    from django.db import connection

    result = {}

    def run():
        try:
            result["value"] = target()
        finally:
            connection.close()

    return threading.Thread(target=run), result


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_complaint_being_answered_while_the_job_runs_is_left_to_its_answer(gym):
    inspector = UserFactory(role="regulator")
    answering = hotline_call(gym, regulator=inspector, received_at="2026-03-01T09:00:00+08:00")
    forgotten = hotline_call(gym, regulator=inspector, received_at="2026-03-01T09:00:00+08:00")
    locked, release = threading.Event(), threading.Event()

    def merchant_answering():
        with transaction.atomic():  # the row lock complaint_respond holds while it writes
            Complaint.objects.select_for_update().get(pk=answering.pk)
            locked.set()
            release.wait(timeout=30)
        return complaint_respond(complaint_id=answering.pk, merchant=gym, text="Refunded.").state

    thread, result = _in_thread(merchant_answering)
    thread.start()
    assert locked.wait(timeout=30)
    try:
        assert complaints_mark_overdue() == 1  # does not wait for the locked row
    finally:
        release.set()
        thread.join(timeout=30)
    assert result["value"] == "responded"
    got = {c.pk: (c.state, c.overdue_at is None) for c in Complaint.objects.all()}
    assert got == {answering.pk: ("responded", True), forgotten.pk: ("overdue", False)}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_jobs_at_once_mark_each_complaint_once(gym):
    inspector = UserFactory(role="regulator")
    for _ in range(12):
        hotline_call(gym, regulator=inspector, received_at="2026-03-01T09:00:00+08:00")
    threads = [_in_thread(lambda: complaints_mark_overdue(chunk_size=2)) for _ in range(2)]
    for thread, _result in threads:
        thread.start()
    for thread, _result in threads:
        thread.join(timeout=60)
    assert sum(result["value"] for _thread, result in threads) == 12
    assert Complaint.objects.filter(state="overdue").count() == 12
