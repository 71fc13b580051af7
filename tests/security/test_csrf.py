"""CSRF: every form a page posts carries Django's token, and a post without it is refused; the
JSON API needs no token with token authentication, but DRF's session authentication demands it.

The pages are found from the URL resolver (everything outside /api/, /admin/ and the health checks)
and rendered for each role over the city of tests/security/world.py, each object page with every
object of the city that fits its URL parameter.
"""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from urllib.parse import urljoin

from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import sign_in

ROLES = ("anonymous", "consumer", "merchant", "regulator")
NOT_PAGES = ("api/", "admin/", "healthz", "livez", "i18n/")
PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")
# URL parameter -> the objects of the city it is tried with.
OBJECTS = {
    "merchant_id": ["merchant"],
    "product_id": ["product"],
    "card_id": ["card", "card_to_refund", "unpaid_card", "disputed_card", "stored_card"],
    "payment_id": ["unpaid_payment"],
    "redemption_id": ["redemption", "redemption_to_dispute"],
    "complaint_id": ["complaint"],
    "settlement_id": ["settlement"],
    "action_id": ["action"],
    "refund_id": ["refund"],
    "notification_id": ["notification"],
    "filing_id": ["filing", "filing_to_accept"],
    "document_id": ["document"],
    "transfer_id": ["transfer", "transfer_accepted"],
    "top_up_id": ["top_up", "unpaid_top_up"],
    "case_id": ["case", "closed_case"],
    "request_id": ["document_request", "answered_request"],
    "file_id": ["answer_file"],
    "report_id": ["report"],
    "change_id": ["operator_change", "operator_change_to_approve"],
    "dispute_id": ["dispute"],
    "evidence_id": ["evidence"],
    "consumer_id": ["complainant"],
}
PRODUCT = {"name": "5 sessions", "kind": "session_pack", "price": 10_000, "sessions": 5}


class _Forms(HTMLParser):
    """Every ``<form method="post">``: its action and the names of the inputs inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self._open = {"method": (attributes.get("method") or "get").lower(), "action": attributes.get("action")}
            self._open["inputs"] = {}
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None:
            self._open["inputs"][attributes.get("name")] = attributes.get("value")

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def post_forms(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return [form for form in parser.forms if form["method"] == "post"]


def page_routes() -> list[str]:
    routes = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and not route.startswith(NOT_PAGES):
                routes.append("/" + route)

    walk(get_resolver().url_patterns, "")
    return routes


def page_paths(world) -> list[str]:
    paths = []
    for route in page_routes():
        names = PARAMETER.findall(route)
        for choice in itertools.product(*(OBJECTS[name] for name in names)):
            ids = iter(world.ids[key] for key in choice)
            paths.append(PARAMETER.sub(lambda _match, ids=ids: next(ids), route))
    return paths


def browser(world, role: str, **kwargs) -> Client:
    client = Client(**kwargs)
    if world.users[role] is not None:
        sign_in(client, world.users[role])
    return client


def rendered_forms(world) -> dict[tuple[str, str], list[dict]]:
    """(role, page) -> the post forms of every page that renders as HTML for that role."""
    found = {}
    for role in ROLES:
        client = browser(world, role)
        for path in page_paths(world):
            response = client.get(path)
            if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
                found[role, path] = post_forms(response.content.decode())
    return found


def test_every_post_form_of_every_page_carries_the_csrf_token_and_is_refused_without_it(world):
    pages = rendered_forms(world)
    # Enough of the site was reached for the check to mean something: each role's own pages.
    reached = {role: sum(1 for r, _ in pages if r == role) for role in ROLES}
    assert reached["anonymous"] >= 3 and min(reached.values()) >= 3, reached
    assert {"/login/", "/c/cards/", "/m/", "/r/"} <= {path for _, path in pages}

    missing = [
        f"{role} {path}: form to {form['action']!r}"
        for (role, path), forms in pages.items()
        for form in forms
        if not form["inputs"].get("csrfmiddlewaretoken")
    ]
    assert not missing, "post forms without csrfmiddlewaretoken:\n" + "\n".join(missing)

    # Each distinct form target, posted by its role without the token, from a browser that holds
    # the CSRF cookie (it has just seen the page): refused by the CSRF check before the view runs.
    targets = {
        (role, urljoin(path, form["action"] or path)): path for (role, path), forms in pages.items() for form in forms
    }
    assert len(targets) >= 15, sorted(targets)
    accepted = []
    for (role, target), page in sorted(targets.items()):
        client = browser(world, role, enforce_csrf_checks=True)
        client.get(page)
        response = client.post(target, {"username": "x", "password": "y"})
        if response.status_code != 403 or b"CSRF" not in response.content:
            accepted.append(f"{role} POST {target} (form on {page}): {response.status_code}")
    assert not accepted, "posted without a CSRF token and not refused:\n" + "\n".join(accepted)


def test_a_page_form_posted_with_its_token_passes_the_csrf_check(world):
    # The control for the test above: the same browser, the same cookie, the token from the form.
    client = browser(world, "consumer", enforce_csrf_checks=True)
    page = client.get("/c/cards/")
    (language_form,) = [form for form in post_forms(page.content.decode()) if form["action"] == "/i18n/setlang/"]
    data = {**language_form["inputs"], "language": "en"}
    response = client.post("/i18n/setlang/", data)
    assert response.status_code == 302


def test_the_api_with_a_token_needs_no_csrf_token(world):
    token, _ = Token.objects.get_or_create(user=world.users["merchant"])
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = client.post("/api/v1/products", PRODUCT, format="json")

    assert response.status_code == 201, response.content


def test_a_session_authenticated_api_post_needs_the_csrf_token(world):
    client = APIClient(enforce_csrf_checks=True)
    sign_in(client, world.users["merchant"])
    client.get("/m/")  # the merchant's page sets the CSRF cookie, as in a browser

    refused = client.post("/api/v1/products", PRODUCT, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied" and "CSRF" in refused.json()["detail"]

    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/v1/products", PRODUCT, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201, accepted.content
