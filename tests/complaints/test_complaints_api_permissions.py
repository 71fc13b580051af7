"""Who may call which complaint endpoint: anonymous, the complainant, another consumer, the merchant
complained about, another merchant and a regulator. Another's complaint is "not found", never 403."""

import pytest

from tests.cards import builders
from tests.complaints.complaints_builders import app_complaint
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "complainant", "other_consumer", "merchant", "other_merchant", "regulator"]


@pytest.fixture
def world(api):
    merchant = builders.merchant()
    complainant = builders.consumer()
    complaint = app_complaint(complainant, merchant)
    clients = {
        "anonymous": api,
        "complainant": client_for(complainant.user),
        "other_consumer": client_for(builders.consumer().user),
        "merchant": client_for(merchant.user),
        "other_merchant": client_for(builders.merchant().user),
        "regulator": client_for(UserFactory(role="regulator")),
    }
    return {"merchant": merchant, "complaint": complaint, "clients": clients}


def call(world, role, method, path, body=None):
    client = world["clients"][role]
    path = path.format(complaint=world["complaint"].pk)
    return client.post(path, body, format="json") if method == "post" else client.get(path)


MATRIX = [
    ("get", "/api/v1/complaints/{complaint}", None, [401, 200, 404, 200, 404, 200]),
    ("post", "/api/v1/complaints/{complaint}/respond", {"text": "Refunded today."}, [401, 403, 403, 200, 404, 403]),
    ("post", "/api/v1/complaints/{complaint}/close", {"resolution": "Mediated."}, [401, 403, 403, 403, 403, 200]),
    ("get", "/api/v1/complaints", None, [401, 200, 200, 200, 200, 200]),
    ("get", "/api/v1/regulator/complaints/stats", None, [401, 403, 403, 403, 403, 200]),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "role", "status"),
    [(m, p, b, role, s) for m, p, b, statuses in MATRIX for role, s in zip(ROLES, statuses, strict=True)],
)
def test_complaint_endpoint_answers_each_role_as_the_matrix_says(world, method, path, body, role, status):
    response = call(world, role, method, path, body)
    assert response.status_code == status, response.content[:300]
    if status >= 400:
        assert response.json()["code"]


@pytest.mark.parametrize(("role", "status"), list(zip(ROLES, [401, 201, 201, 403, 403, 201], strict=True)))
def test_consumers_file_from_the_app_and_regulators_enter_hotline_calls_merchants_may_not(world, role, status):
    body = {"merchant": str(world["merchant"].pk), "category": "service_quality", "description": "Closed early."}
    body["source"] = "hotline" if role == "regulator" else "app"
    response = call(world, role, "post", "/api/v1/complaints", body)
    assert response.status_code == status, response.content[:300]
    if status == 201:
        assert response.json()["state"] == "open"


@pytest.mark.parametrize(("role", "source"), [("complainant", "hotline"), ("regulator", "app")])
def test_the_source_must_match_who_files(world, role, source):
    body = {"merchant": str(world["merchant"].pk), "category": "other", "description": "x", "source": source}
    response = call(world, role, "post", "/api/v1/complaints", body)
    assert response.status_code == 400
    assert response.json()["code"] == "complaint_source_not_allowed"
    assert "source" in response.json()["errors"]


@pytest.mark.parametrize(("role", "count"), list(zip(ROLES[1:], [1, 0, 1, 0, 1], strict=True)))
def test_complaint_list_shows_each_role_only_its_complaints(world, role, count):
    body = call(world, role, "get", "/api/v1/complaints").json()
    assert body["count"] == count
    assert {"count", "next", "previous", "results"} <= set(body)


@pytest.mark.parametrize("role", ["complainant", "merchant", "regulator"])
def test_an_unknown_complaint_id_is_not_found(world, role):
    response = world["clients"][role].get("/api/v1/complaints/7a0c7c4e-64f5-4b11-9f43-1f1ff8a0a2b0")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert world["clients"][role].get("/api/v1/complaints/not-a-uuid").status_code == 404
