"""The caller's notices and preferences over the API, the bell on every page, the notices page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from notifications.models import Notification, NotificationSettings
from notifications.services import notification_send
from tests.cards import builders
from tests.conftest import client_for
from tests.factories import PASSWORD, sign_in

pytestmark = pytest.mark.django_db


def tell(user, n: int = 1):
    for i in range(n):
        notification_send(
            user_id=user.pk,
            kind="merchant_flagged",
            event_key=f"merchant_flagged:{user.pk}:{i}",
            params={"merchant": "Gym"},
            merchant_id="6f1f7c1e-3f0a-4e8e-9a43-7f2a1c9e6d10",
            about_money=True,
        )


def test_list_shows_only_the_callers_notices_newest_first():
    amy, bob = builders.consumer(), builders.consumer()
    tell(amy.user, 2)
    tell(bob.user)
    body = client_for(amy.user).get("/api/v1/notifications").json()
    assert body["count"] == 2
    first = body["results"][0]
    assert set(first) == {"id", "kind", "title", "body", "card", "merchant", "channels", "created_at", "read_at"}
    assert first["kind"] == "merchant_flagged" and first["read_at"] is None
    assert first["merchant"] == "6f1f7c1e-3f0a-4e8e-9a43-7f2a1c9e6d10" and first["card"] is None
    assert first["channels"] == ["in_app", "sms"]
    assert [r["id"] for r in body["results"]] == sorted((r["id"] for r in body["results"]), reverse=True)


def test_read_marks_ones_own_notice_and_another_persons_is_404():
    amy, bob = builders.consumer(), builders.consumer()
    tell(amy.user)
    notice = Notification.objects.get(user=amy.user)
    assert client_for(bob.user).post(f"/api/v1/notifications/{notice.pk}/read").status_code == 404
    assert client_for(amy.user).post("/api/v1/notifications/999999999/read").status_code == 404
    response = client_for(amy.user).post(f"/api/v1/notifications/{notice.pk}/read")
    assert response.status_code == 200 and response.json()["read_at"]
    notice.refresh_from_db()
    assert notice.read_at is not None


def test_me_shows_contact_and_switches_from_sign_up():
    response = client_for(builders.merchant().user).get("/api/v1/me")
    assert response.json()["notify_sms"] is True and response.json()["email"] == ""
    api = client_for(builders.consumer().user)
    me = api.get("/api/v1/me").json()
    assert me["phone"] == "13800001234" and me["role"] == "consumer"


def test_me_patch_changes_contact_and_switches():
    consumer = builders.consumer()
    api = client_for(consumer.user)
    response = api.patch(
        "/api/v1/me", {"email": "amy@example.com", "phone": "13900001111", "notify_sms": False}, format="json"
    )
    assert response.status_code == 200
    assert response.json() | {} == {
        "username": consumer.user.username,
        "role": "consumer",
        "email": "amy@example.com",
        "phone": "13900001111",
        "notify_sms": False,
        "notify_email": True,
    }
    prefs = NotificationSettings.objects.get(user=consumer.user)
    assert (prefs.phone, prefs.notify_sms) == ("13900001111", False)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not-an-address"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"notify_sms": "perhaps"}, "notify_sms"),
        ({"phone": "1" * 40}, "phone"),
    ],
)
def test_me_patch_refuses_bad_input_with_400_and_errors(body, field):
    response = client_for(builders.consumer().user).patch("/api/v1/me", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] and field in response.json()["errors"]


def test_consumer_sign_up_takes_an_optional_email():
    response = Client().post(
        "/api/v1/consumers",
        {"username": "amy", "password": PASSWORD, "display_name": "Amy", "phone": "13800001234", "email": "a@b.cn"},
        content_type="application/json",
    )
    assert response.status_code == 201
    me = client_for(Notification._meta.get_field("user").related_model.objects.get(username="amy")).get("/api/v1/me")
    assert (me.json()["email"], me.json()["phone"]) == ("a@b.cn", "13800001234")
    bad = Client().post(
        "/api/v1/consumers",
        {"username": "bob", "password": PASSWORD, "display_name": "Bob", "phone": "13800001234", "email": "nope"},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "email" in bad.json()["errors"]


def login(user) -> Client:
    client = Client()
    sign_in(client, user)
    return client


def test_bell_shows_the_unread_count_on_every_page_with_one_count_query():
    consumer = builders.consumer()
    tell(consumer.user, 3)
    client = login(consumer.user)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/c/cards/")
    assert page.status_code == 200
    assert 'data-testid="bell-count">3<' in page.content.decode()
    counts = [q["sql"] for q in queries if "notifications_notification" in q["sql"] and "COUNT" in q["sql"]]
    assert len(counts) == 1
    merchant = builders.merchant()
    assert 'data-testid="bell"' in login(merchant.user).get("/m/").content.decode()


def test_notices_page_marks_one_and_all_read():
    consumer = builders.consumer()
    tell(consumer.user, 3)
    client = login(consumer.user)
    page = client.get("/n/").content.decode()
    assert page.count('data-testid="notification"') == 3 and 'data-read="0"' in page
    first = Notification.objects.filter(user=consumer.user).first()
    assert client.post(f"/n/{first.pk}/read/").status_code == 302
    assert Notification.objects.filter(user=consumer.user, read_at__isnull=True).count() == 2
    other = builders.consumer()
    assert login(other.user).post(f"/n/{first.pk}/read/").status_code == 404
    client.post("/n/read-all/")
    assert not Notification.objects.filter(user=consumer.user, read_at__isnull=True).exists()
    assert 'data-testid="bell-count"' not in client.get("/n/").content.decode()


def test_notices_page_is_for_consumers_and_merchants():
    from tests.factories import UserFactory

    assert login(UserFactory(role="regulator")).get("/n/").status_code == 403
    assert Client().get("/n/").status_code == 302
