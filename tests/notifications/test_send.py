"""One service tells one person of one event once, on each channel they have, in their language."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.db import connection, transaction

from core.models import OutboxMessage
from core.outbox import outbox_deliver
from notifications.models import Notification
from notifications.services import notification_send, notification_settings_set
from tests.factories import UserFactory
from tests.sms_fake import dysms  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

REFUND = {"merchant": "阳光健身", "amount_fen": 123_456}


def person(*, email="amy@example.com", phone="13800001234", **switches):
    user = UserFactory(role="consumer", email="")
    notification_settings_set(user=user, email=email, phone=phone, **switches)
    return user


def send(user, *, key="refund_paid:1", kind="refund_paid", params=REFUND, about_money=True):
    return notification_send(user_id=user.pk, kind=kind, event_key=key, params=params, about_money=about_money)


def messages_of(notification):
    return sorted(
        OutboxMessage.objects.filter(idempotency_key__startswith=f"notify:{notification.pk}:").values_list(
            "idempotency_key", flat=True
        )
    )


def test_an_event_sent_twice_reaches_the_person_once_on_each_channel():
    user = person()
    first = send(user)
    assert send(user) is None  # the same event again: nothing new
    assert Notification.objects.filter(user=user).count() == 1
    assert first.channels == ["in_app", "sms", "email"]
    assert messages_of(first) == [f"notify:{first.pk}:email", f"notify:{first.pk}:sms"]


def test_another_event_of_the_same_kind_is_another_notice():
    user = person()
    send(user, key="refund_paid:1")
    send(user, key="refund_paid:2")
    assert Notification.objects.filter(user=user).count() == 2


def test_text_is_in_the_persons_language_with_money_in_yuan_and_no_internal_keys():
    zh, en = person(), person(language="en")
    zh_notice, en_notice = send(zh), send(en)
    assert "¥1,234.56" in zh_notice.body and "阳光健身" in zh_notice.body
    assert "退款" in zh_notice.title
    assert en_notice.title == "Your refund has been paid"
    assert "¥1,234.56" in en_notice.body
    for notice in (zh_notice, en_notice):
        assert "refund_paid" not in notice.body + notice.title and "_fen" not in notice.body


def test_dates_are_written_in_beijing_time():
    user = person(language="en")
    notice = send(
        user,
        kind="refund_late",
        key="refund_late:1",
        params={"merchant": "Gym", "amount_fen": 5000, "due_by_at": "2026-03-09T16:00:00+00:00"},
    )
    assert "March 10, 2026, 00:00 (Beijing time)" in notice.body


def test_switches_silence_sms_and_email_of_notices_not_about_money():
    user = person(notify_sms=False, notify_email=False)
    notice = send(
        user,
        kind="complaint_due",
        key="complaint_due:1",
        params={"respond_by_at": "2026-03-09T16:00:00+00:00"},
        about_money=False,
    )
    assert notice.channels == ["in_app"] and messages_of(notice) == []


def test_a_notice_about_money_goes_in_the_app_and_on_every_channel_whatever_the_switches():
    user = person(notify_sms=False, notify_email=False)
    notice = send(user)
    assert notice.channels == ["in_app", "sms", "email"]
    assert len(messages_of(notice)) == 2


def test_without_phone_or_address_only_the_app():
    user = person(email="", phone="")
    assert send(user).channels == ["in_app"]


def test_email_goes_through_djangos_email_backend(django_capture_on_commit_callbacks):
    user = person(phone="")
    with django_capture_on_commit_callbacks(execute=True):
        notice = send(user)
    assert [(m.to, m.subject) for m in mail.outbox] == [(["amy@example.com"], notice.title)]
    assert "¥1,234.56" in mail.outbox[0].body
    assert OutboxMessage.objects.get(idempotency_key=f"notify:{notice.pk}:email").state == "sent"


def test_sms_through_aliyun_sdk_reaches_the_provider(dysms, django_capture_on_commit_callbacks):  # noqa: F811
    user = person(email="")
    with django_capture_on_commit_callbacks(execute=True):
        notice = send(user)
    (sent,) = dysms.sent
    assert sent["PhoneNumbers"] == "13800001234" and sent["TemplateCode"] == "SMS_000000001"
    assert sent["SignName"] == "预付卡监管平台" and sent["OutId"] == f"notify:{notice.pk}:sms"
    assert OutboxMessage.objects.get(idempotency_key=f"notify:{notice.pk}:sms").state == "sent"


def test_provider_refusal_is_retried_then_recorded_dead_and_the_event_stands(dysms, settings):  # noqa: F811
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.OUTBOX_RETRY_SECONDS = 0
    user = person(email="")
    dysms.fail_next("isv.BUSINESS_LIMIT_CONTROL", times=3)
    with transaction.atomic():
        notice = send(user)
    message = OutboxMessage.objects.get(idempotency_key=f"notify:{notice.pk}:sms")
    assert [outbox_deliver(message_id=message.pk) for _ in range(3)] == ["retry", "retry", "dead"]
    message.refresh_from_db()
    assert message.state == "dead" and "isv.BUSINESS_LIMIT_CONTROL" in message.last_error
    notice.refresh_from_db()
    assert notice.undelivered == ["sms"]  # recorded on the notice...
    assert Notification.objects.filter(pk=notice.pk).exists()  # ...which stands, in the app
    assert dysms.requests == 3 and dysms.sent == []


def test_provider_refusal_then_success_sends_once(dysms, settings):  # noqa: F811
    settings.OUTBOX_RETRY_SECONDS = 0
    user = person(email="")
    dysms.fail_next("isv.BUSINESS_LIMIT_CONTROL")
    notice = send(user)
    message = OutboxMessage.objects.get(idempotency_key=f"notify:{notice.pk}:sms")
    assert outbox_deliver(message_id=message.pk) == "retry"
    assert outbox_deliver(message_id=message.pk) == "sent"
    assert outbox_deliver(message_id=message.pk) == "skipped"
    assert len(dysms.sent) == 1


def test_a_bad_number_dies_at_once(dysms):  # noqa: F811
    user = person(email="")
    dysms.fail_next("isv.MOBILE_NUMBER_ILLEGAL")
    notice = send(user)
    message = OutboxMessage.objects.get(idempotency_key=f"notify:{notice.pk}:sms")
    assert outbox_deliver(message_id=message.pk) == "dead"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_of_one_event_make_one_notice_and_one_message_per_channel():
    user = person()
    barrier = threading.Barrier(6)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            with transaction.atomic():
                results.append(send(user))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    made = [r for r in results if r is not None]
    assert len(made) == 1
    assert Notification.objects.filter(user=user).count() == 1
    assert messages_of(made[0]) == [f"notify:{made[0].pk}:email", f"notify:{made[0].pk}:sms"]
    assert OutboxMessage.objects.filter(topic__startswith="notify.").count() == 2


def test_a_notice_rolls_back_with_the_event_that_caused_it():
    user = person()
    with pytest.raises(RuntimeError), transaction.atomic():
        send(user)
        raise RuntimeError("the caller's event failed")
    assert not Notification.objects.filter(user=user).exists()
    assert not OutboxMessage.objects.filter(topic__startswith="notify.").exists()
