"""Every API operation, fuzzed from the OpenAPI schema the app serves at ``/api/v1/schema/``.

Schemathesis loads the schema through the WSGI application (in process, no server), generates
requests for each operation (valid ones and, in its negative mode, invalid ones) and sends each of
them as every role: anonymous, consumer, merchant and regulator of ``tests/security/world.py``'s
city (token authentication). Path ids, and the ``card``, ``product`` and ``merchant`` a body or
query names, are either schemathesis' random values or, drawn by hypothesis, ids of the world's
real rows, so requests reach the views' inner paths (owned and not owned cards, pending
redemptions, open complaints...) and not only their 404s.

Each response must:

- not be a server error (``not_a_server_error``);
- have a status code the operation documents (``status_code_conformance``);
- have a documented content type (``content_type_conformance``);
- match the documented schema for its status (``response_schema_conformance``);
- carry the headers the operation documents (``response_headers_conformance``).

Checks not run, and why:

- ``positive_data_acceptance`` (a schema-valid request must not get a 4xx) and
  ``negative_data_rejection`` (a schema-invalid one must): the schema cannot state the domain's
  rules (a licence number's checksum, a password like the username, a card in the wrong state,
  another caller's row), so valid-looking requests are rightly refused with 400/404/409 and the
  check would report the API doing its job.
- ``ignored_auth`` and the stateful checks (``use_after_free``, ``ensure_resource_availability``):
  the authorization matrix (``test_authorization_matrix.py``) covers who may do what, route by
  route, and the API deletes nothing.
- ``missing_required_header``, ``unsupported_method``: the first is about the ``Stripe-Signature``
  header, which the webhook answers with 400 ``invalid_signature`` or 404 under the local gateway,
  both documented; the second is not a contract of the schema.

Examples per operation: ``SCHEMA_FUZZ_EXAMPLES`` (15 by default; each is sent four times, once per
role). Generation is derandomized, so a run is reproducible; set ``SCHEMA_FUZZ_RANDOM=1`` to
explore new inputs.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
import time_machine
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.world import NOW, build_world

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
ROLES = ("anonymous", "consumer", "merchant", "regulator")
EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "15"))

# The world's rows that each path parameter, body field or query parameter may name.
PATH_IDS = {
    "card_id": ("card", "other_card", "card_to_refund", "unpaid_card", "card_in_default"),
    "payment_id": ("unpaid_payment",),
    "redemption_id": ("redemption", "redemption_to_confirm", "redemption_to_reject"),
    "complaint_id": ("complaint", "complaint_to_respond", "complaint_to_close"),
    "settlement_id": ("settlement",),
    "merchant_id": ("merchant", "other_merchant"),
    "action_id": ("action",),
    "refund_id": ("refund",),
    "case_id": ("case", "case_to_close", "other_case", "closed_case"),
    "request_id": ("document_request", "answered_request"),
    "file_id": ("finding_file", "answer_file"),
}
FIELD_IDS = {
    "card": PATH_IDS["card_id"],
    "product": ("product",),
    "merchant": PATH_IDS["merchant_id"],
}

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())


@pytest.fixture
def fuzz_world(db):
    """The security tests' city, frozen at its ``NOW``, with a token for each role. The WSGI
    handler closes the database connection when a request finishes (``close_old_connections``), as
    a server should; inside a test that would close the test's transaction, so the handler is
    unhooked meanwhile, as Django's test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        with time_machine.travel(NOW, tick=False):
            world = build_world()
            tokens = {role: None for role in ROLES}
            for role in ROLES[1:]:
                tokens[role] = Token.objects.get_or_create(user=world.users[role])[0].key
            yield world, tokens
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _use_world_ids(case, world, data) -> None:
    """Replace, as hypothesis draws, generated ids by ids of the world's rows."""
    for name in list(case.path_parameters or {}):
        if name in PATH_IDS:
            choice = data.draw(st.sampled_from((None, *PATH_IDS[name])), label=name)
            if choice is not None:
                case.path_parameters[name] = world.ids[choice]
    for container in (case.body, case.query):
        if not isinstance(container, dict):
            continue
        for name in [n for n in FIELD_IDS if n in container]:
            choice = data.draw(st.sampled_from((None, *FIELD_IDS[name])), label=name)
            if choice is not None:
                container[name] = world.ids[choice]


@schema.parametrize()
@schema.given(data=st.data())
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("SCHEMA_FUZZ_RANDOM") != "1",
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_schema_says_for_every_role(case, data, fuzz_world):
    world, tokens = fuzz_world
    _use_world_ids(case, world, data)
    for role in ROLES:
        headers = {"Authorization": f"Token {tokens[role]}"} if tokens[role] else {}
        case.call_and_validate(headers=headers, checks=CHECKS)


# What the fuzz found, kept as fixed cases: (operation, role, request), each checked like the fuzz's.
FOUND = {
    # Lists answered a page but were documented as a bare array.
    "list_is_a_page": ("GET /api/v1/cards", "consumer", {}, 200),
    "regulator_list_is_a_page": ("GET /api/v1/regulator/merchants", "regulator", {}, 200),
    "page_past_the_end": ("GET /api/v1/redemptions", "merchant", {"query": {"page": "99"}}, 404),
    # 401 and 403 were documented nowhere.
    "anonymous_gets_401": ("GET /api/v1/cards", "anonymous", {}, 401),
    "other_role_gets_403": ("GET /api/v1/regulator/ledger/verify", "consumer", {}, 403),
    "unknown_token_gets_401_on_open_operation": ("GET /api/v1/products", "unknown token", {}, 401),
    # Idempotency-Key was undocumented, and so were the 400 a bad key gets and the 415 a body that
    # is not JSON gets.
    "bad_idempotency_key_gets_400": (
        "POST /api/v1/redemptions/{redemption_id}/confirm",
        "consumer",
        {"path_parameters": {"redemption_id": "redemption"}, "headers": {"Idempotency-Key": "\u00e9"}},
        400,
    ),
    "text_body_gets_415": ("POST /api/v1/cards", "consumer", {"body": "product", "media_type": "text/plain"}, 415),
    # A product list filtered by a merchant id that is no UUID answered an undocumented 400.
    "product_filter_not_a_uuid": ("GET /api/v1/products", "anonymous", {"query": {"merchant": "regulator"}}, 400),
}


@pytest.mark.parametrize("found", FOUND.values(), ids=FOUND.keys())
def test_what_the_fuzz_found_stays_fixed(found, fuzz_world):
    world, tokens = fuzz_world
    label, role, request, expected = found
    method, path = label.split(" ")
    path_parameters = {name: world.ids[row] for name, row in request.get("path_parameters", {}).items()}
    case = schema[path][method].Case(
        path_parameters=path_parameters,
        query=request.get("query"),
        headers=request.get("headers"),
        **{name: request[name] for name in ("body", "media_type") if name in request},
    )
    token = tokens.get(role, "0" * 40)  # a role without a token: an unknown one
    headers = {"Authorization": f"Token {token}"} if token else {}
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    assert response.status_code == expected


def test_a_hotline_call_received_more_than_a_year_ago_is_refused(fuzz_world):
    """The fuzz sent a hotline call received in 1269: it was filed, and its times were written with
    Beijing's pre-1901 offset (+08:05:43), which is no ISO 8601 date-time."""
    world, tokens = fuzz_world
    case = schema["/api/v1/complaints"]["POST"].Case(
        body={
            "merchant": world.ids["merchant"],
            "category": "misleading_sales",
            "description": "called in",
            "source": "hotline",
            "received_at": "1269-04-06T16:56:08Z",
        },
        media_type="application/json",
    )
    response = case.call_and_validate(headers={"Authorization": f"Token {tokens['regulator']}"}, checks=CHECKS)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["received_at"]


def test_a_name_that_differs_only_in_unicode_form_is_taken_not_a_server_error(fuzz_world):
    """The fuzz registered a consumer whose name holds "µ" (micro sign) after one with "μ" (Greek
    mu): Django stores names NFKC-normalized, so the second was checked as new and then broke the
    unique constraint: a 500."""
    operation = schema["/api/v1/consumers"]["POST"]
    body = {"password": "a long enough password 7", "display_name": "Wang", "phone": "13800000000"}
    first = operation.Case(body={**body, "username": "\u03bc-consumer"}, media_type="application/json")
    assert first.call_and_validate(checks=CHECKS).status_code == 201
    second = operation.Case(body={**body, "username": "\u00b5-consumer"}, media_type="application/json")
    response = second.call_and_validate(checks=CHECKS)
    assert response.status_code == 400 and list(response.json()["errors"]) == ["username"]

    login = schema["/api/v1/auth/token"]["POST"].Case(
        body={"username": "\u00b5-consumer", "password": body["password"]}, media_type="application/json"
    )
    assert login.call_and_validate(checks=CHECKS).status_code == 200
