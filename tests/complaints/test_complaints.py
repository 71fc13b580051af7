"""A complaint's life: filed with a deadline, answered by its merchant (late answers too), closed by
the regulator with an audit event; and the rules on what may be filed."""

import pytest

from complaints.models import Complaint
from complaints.services import complaints_mark_overdue
from regulator.models import AuditEvent
from tests.cards import builders
from tests.complaints.complaints_builders import app_complaint, at
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def gym():
    return builders.merchant(name="阳光健身")


@pytest.fixture
def alice():
    return builders.consumer()


@pytest.fixture
def inspector():
    return UserFactory(role="regulator")


def file(client, gym, **body):
    payload = {"merchant": str(gym.pk), "category": "refund_refused", "description": "No refund.", "source": "app"}
    return client.post("/api/v1/complaints", {**payload, **body}, format="json")


# --- Deadlines ---------------------------------------------------------------------------------------------


def test_a_complaint_must_be_answered_within_48_hours(gym, alice):
    with at("2026-03-02 10:00 +0800"):
        response = file(client_for(alice.user), gym)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "open" and body["urgent"] is False and body["overdue"] is False
    assert body["respond_by"] == "2026-03-04T10:00:00+08:00"
    assert body["created_at"] == "2026-03-02T10:00:00+08:00"
    assert (body["merchant"], body["merchant_name"], body["source"]) == (str(gym.pk), "阳光健身", "app")
    assert body["response"] == "" and body["responded_at"] is None and body["closed_at"] is None


def test_an_urgent_complaint_must_be_answered_within_2_hours(gym, alice):
    with at("2026-03-02 23:30 +0800"):
        response = file(client_for(alice.user), gym, urgent=True)
    assert response.status_code == 201
    assert response.json()["respond_by"] == "2026-03-03T01:30:00+08:00"


def test_the_response_windows_are_settings(gym, alice, settings):
    settings.COMPLAINT_RESPONSE_HOURS = 24
    settings.COMPLAINT_URGENT_RESPONSE_HOURS = 1
    with at("2026-03-02 10:00 +0800"):
        normal = file(client_for(alice.user), gym).json()
        urgent = file(client_for(alice.user), gym, urgent=True).json()
    assert normal["respond_by"] == "2026-03-03T10:00:00+08:00"
    assert urgent["respond_by"] == "2026-03-02T11:00:00+08:00"


def test_a_hotline_call_runs_from_when_it_was_received_and_is_audited(gym, inspector):
    with at("2026-03-02 10:00 +0800"):
        response = client_for(inspector).post(
            "/api/v1/complaints",
            {
                "merchant": str(gym.pk),
                "category": "closure",
                "description": "Caller: the gym has been shut for a week.",
                "source": "hotline",
                "hotline_reference": "BJ12345-0001",
                "received_at": "2026-03-02T08:15:00+08:00",
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["respond_by"] == "2026-03-04T08:15:00+08:00"
    assert body["created_at"] == "2026-03-02T08:15:00+08:00"
    assert body["hotline_reference"] == "BJ12345-0001" and body["source"] == "hotline"
    complaint = Complaint.objects.get(pk=body["id"])
    assert complaint.consumer_id is None and complaint.created_by_id == inspector.pk
    event = AuditEvent.objects.get(verb="complaint_create")
    assert (event.actor_id, event.merchant_id, event.target) == (inspector.pk, gym.pk, f"complaint:{complaint.pk}")
    assert event.changes["state"] == [None, "open"] and event.changes["source"] == [None, "hotline"]


def test_the_same_hotline_work_order_cannot_be_entered_twice(gym, inspector):
    body = {"category": "other", "source": "hotline", "hotline_reference": "BJ12345-0002"}
    assert file(client_for(inspector), gym, **body).status_code == 201
    again = file(client_for(inspector), gym, **body)
    assert again.status_code == 400 and again.json()["code"] == "duplicate_hotline_reference"
    assert Complaint.objects.count() == 1


def test_a_call_cannot_have_been_received_in_the_future(gym, inspector):
    with at("2026-03-02 10:00 +0800"):
        response = file(client_for(inspector), gym, source="hotline", received_at="2026-03-02T11:00:00+08:00")
    assert response.status_code == 400 and "received_at" in response.json()["errors"]


# --- What may be filed ----------------------------------------------------------------------------------------


def test_a_consumer_may_name_their_own_card_of_that_merchant(gym, alice):
    card = builders.paid_card(builders.session_pack(gym), alice)
    response = file(client_for(alice.user), gym, card=str(card.pk))
    assert response.status_code == 201 and response.json()["card"] == str(card.pk)


def test_a_card_of_another_merchant_or_another_consumer_is_refused_alike(gym, alice):
    elsewhere = builders.paid_card(builders.session_pack(builders.merchant()), alice)
    someone_elses = builders.paid_card(builders.session_pack(gym))
    for card in (elsewhere, someone_elses):
        response = file(client_for(alice.user), gym, card=str(card.pk))
        assert response.status_code == 400
        assert response.json()["code"] == "complaint_card_mismatch" and "card" in response.json()["errors"]
    assert not Complaint.objects.exists()


def test_an_unknown_merchant_is_a_400(alice):
    response = client_for(alice.user).post(
        "/api/v1/complaints",
        {"merchant": "7a0c7c4e-64f5-4b11-9f43-1f1ff8a0a2b0", "category": "other", "description": "x", "source": "app"},
        format="json",
    )
    assert response.status_code == 400 and response.json()["code"] == "unknown_merchant"
    assert "merchant" in response.json()["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": "   "}, "description"),
        ({"category": "rude_staff"}, "category"),
        ({"source": "email"}, "source"),
        ({"merchant": "not-a-uuid"}, "merchant"),
        ({"urgent": "perhaps"}, "urgent"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(gym, alice, body, field):
    response = file(client_for(alice.user), gym, **body)
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert field in response.json()["errors"]


def test_filing_accepts_an_idempotency_key_and_files_once(gym, alice):
    client = client_for(alice.user)
    first = client.post(
        "/api/v1/complaints",
        {"merchant": str(gym.pk), "category": "other", "description": "x", "source": "app"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="complaint-1",
    )
    again = client.post(
        "/api/v1/complaints",
        {"merchant": str(gym.pk), "category": "other", "description": "x", "source": "app"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="complaint-1",
    )
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert Complaint.objects.count() == 1


# --- Respond and close -------------------------------------------------------------------------------------


def test_the_merchant_responds_and_the_complaint_is_responded(gym, alice):
    with at("2026-03-02 10:00 +0800"):
        complaint = app_complaint(alice, gym)
    with at("2026-03-03 09:00 +0800"):
        response = client_for(gym.user).post(
            f"/api/v1/complaints/{complaint.pk}/respond", {"text": "  Refunded in full today. "}, format="json"
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "responded" and body["response"] == "Refunded in full today."
    assert body["responded_at"] == "2026-03-03T09:00:00+08:00" and body["overdue"] is False
    event = AuditEvent.objects.get(verb="complaint_respond")
    assert event.actor_id == gym.user_id and event.changes == {"state": ["open", "responded"], "late": [None, False]}


def test_a_second_response_is_a_conflict(gym, alice):
    complaint = app_complaint(alice, gym)
    client = client_for(gym.user)
    assert client.post(f"/api/v1/complaints/{complaint.pk}/respond", {"text": "a"}, format="json").status_code == 200
    again = client.post(f"/api/v1/complaints/{complaint.pk}/respond", {"text": "b"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "complaint_not_open"
    assert Complaint.objects.get(pk=complaint.pk).response == "a"


def test_an_empty_response_is_refused(gym, alice):
    complaint = app_complaint(alice, gym)
    response = client_for(gym.user).post(f"/api/v1/complaints/{complaint.pk}/respond", {"text": " "}, format="json")
    assert response.status_code == 400 and "text" in response.json()["errors"]
    assert Complaint.objects.get(pk=complaint.pk).state == "open"


def test_a_late_response_after_overdue_is_accepted_and_stays_marked_overdue(gym, alice):
    with at("2026-03-02 10:00 +0800"):
        complaint = app_complaint(alice, gym)
    with at("2026-03-04 10:05 +0800"):
        assert complaints_mark_overdue() == 1
    with at("2026-03-05 09:00 +0800"):
        response = client_for(gym.user).post(
            f"/api/v1/complaints/{complaint.pk}/respond", {"text": "Sorry, refunded."}, format="json"
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "responded" and body["overdue"] is True
    assert body["overdue_at"] == "2026-03-04T10:05:00+08:00"
    assert AuditEvent.objects.get(verb="complaint_respond").changes == {
        "state": ["overdue", "responded"],
        "late": [None, True],
    }


def test_the_regulator_closes_with_a_resolution_and_an_audit_event(gym, alice, inspector):
    complaint = app_complaint(alice, gym)
    client_for(gym.user).post(f"/api/v1/complaints/{complaint.pk}/respond", {"text": "Refunded."}, format="json")
    with at("2026-03-06 15:00 +0800"):
        response = client_for(inspector).post(
            f"/api/v1/complaints/{complaint.pk}/close", {"resolution": "Consumer confirmed the refund."}, format="json"
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "closed" and body["resolution"] == "Consumer confirmed the refund."
    assert body["closed_at"] == "2026-03-06T15:00:00+08:00"
    assert Complaint.objects.get(pk=complaint.pk).closed_by_id == inspector.pk
    event = AuditEvent.objects.get(verb="complaint_close")
    assert event.actor_id == inspector.pk and event.merchant_id == gym.pk
    assert event.target == f"complaint:{complaint.pk}"
    assert event.reason == "Consumer confirmed the refund."
    assert event.changes == {"state": ["responded", "closed"], "resolution": ["", "Consumer confirmed the refund."]}


def test_an_unanswered_complaint_can_be_closed_but_a_closed_one_takes_nothing_more(gym, alice, inspector):
    complaint = app_complaint(alice, gym)
    regulator = client_for(inspector)
    closed = regulator.post(f"/api/v1/complaints/{complaint.pk}/close", {"resolution": "Withdrawn."}, format="json")
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    again = regulator.post(f"/api/v1/complaints/{complaint.pk}/close", {"resolution": "Again."}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "complaint_not_open"
    late = client_for(gym.user).post(f"/api/v1/complaints/{complaint.pk}/respond", {"text": "x"}, format="json")
    assert late.status_code == 409 and late.json()["code"] == "complaint_not_open"
    assert AuditEvent.objects.filter(verb="complaint_close").count() == 1


def test_closing_needs_a_resolution(gym, alice, inspector):
    complaint = app_complaint(alice, gym)
    response = client_for(inspector).post(f"/api/v1/complaints/{complaint.pk}/close", {"resolution": ""}, format="json")
    assert response.status_code == 400 and "resolution" in response.json()["errors"]


# --- Lists -------------------------------------------------------------------------------------------------


def test_the_regulator_filters_the_list(gym, alice, inspector):
    haidian = builders.merchant(district="海淀区")
    app_complaint(alice, gym, category="refund_refused")
    app_complaint(alice, gym, category="closure", urgent=True)
    app_complaint(alice, haidian, category="closure")
    file(client_for(inspector), haidian, source="hotline", category="other")
    client = client_for(inspector)

    def ids(**params):
        body = client.get("/api/v1/complaints", params).json()
        return body["count"]

    assert ids() == 4
    assert ids(category="closure") == 2
    assert ids(district="海淀区") == 2 and ids(district="110108") == 2 and ids(district="haidian") == 2
    assert ids(merchant=str(gym.pk)) == 2
    assert ids(source="hotline") == 1
    assert ids(urgent="true") == 1 and ids(urgent="false") == 3
    assert ids(state="open") == 4 and ids(state="closed") == 0
    assert ids(category="closure", district="朝阳区") == 1


@pytest.mark.parametrize("params", [{"state": "lost"}, {"district": "Gotham"}, {"merchant": "x"}, {"urgent": "maybe"}])
def test_an_unknown_filter_value_is_a_400(inspector, params):
    response = client_for(inspector).get("/api/v1/complaints", params)
    assert response.status_code == 400 and response.json()["code"] == "invalid"
