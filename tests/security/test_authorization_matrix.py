"""Who may call what: every API endpoint against every role, in one table, over one city
(tests/security/world.py). The URL patterns are read from Django's resolver, so an endpoint added
without a row here fails ``test_every_api_route_has_a_row``.

Statuses, in the order of ``ROLES`` — anonymous, consumer, other consumer, merchant, other
merchant, regulator — where "consumer" owns A's side of the city (their card was bought from
merchant A) and "other" is the other party:

- 401: no credentials; 403: the wrong role for the operation (the role gate on the view);
- 404: the right role but another party's object (ownership is checked in the selector, which
  answers "not found" alike for "missing" and "not yours", so a 403 never reveals that it exists);
- 200/201/202: the owner, with a valid body: the call really succeeds. Each such POST acts on an
  object of its own (``card_to_refund``, ``redemption_to_confirm``...), so no row changes what a
  later row sees. Where success would change the city for every later row, the body is one that
  passes the gates and then fails validation (400), and the row says so.

Within a row the roles expected to fail are called first, so a success never hides a refusal.
The Stripe webhook authenticates by signature, not by user: it has its own test below.

Jurisdictions: every row is also called by two regulators of one district each (world.py's
``DISTRICT_ROLES``). Their statuses follow from the city-wide regulator's (``scoped_statuses``),
so a row added for any regulator route gets them too: the district regulator of the city's
merchants answers as the city regulator does; the regulator of another district gets 404 wherever
the row names an object (a merchant, card, refund, complaint, filing, action or document of the
city), and the city regulator's answer on the routes that name none (lists: their rows are checked
in test_jurisdiction_lists.py). A row states ``scoped=(own, outside)`` where that rule does not hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.cards.builders import PASSWORD, license_number
from tests.conftest import client_for
from tests.factories import sign_in
from tests.security.world import DISTRICT_ROLES, ROLES, World

pytestmark = pytest.mark.django_db

Body = dict[str, Any] | Callable[[World, str], dict[str, Any]] | None


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # the pattern as Django's resolver spells it
    objects: dict[str, str]  # URL parameter -> World.ids key
    body: Body
    expected: tuple[int, int, int, int, int, int]
    why: str = ""
    scoped: tuple[int, int] | None = None  # (district regulator, outside regulator) where not derived


# The world's periodic report is the whole city's: a regulator of part of the city sees its own
# jurisdiction's reports, not the city's (regulator.selectors.periodic_reports).
CITY_WIDE_ONLY = (404, 404)
CITY_WIDE_OBJECTS = {"report"}


def row(method, route, expected, *, objects=None, body=None, why="", scoped=None):
    return Row(method, route, objects or {}, body, expected, why, scoped)


def scoped_statuses(entry: Row) -> tuple[int, int]:
    """What the two district regulators get: the city regulator's status, but 404 for the regulator
    of another district wherever the row names an object and the city regulator gets past the role
    gate. Public rows (the anonymous column is not 401) answer everyone alike."""
    if entry.scoped is not None:
        return entry.scoped
    city = entry.expected[ROLES.index("regulator")]
    if entry.expected[0] != 401 or city in (401, 403) or not entry.objects:
        return city, city
    return city, 404


def statuses(entry: Row) -> dict[str, int]:
    return dict(zip(ROLES + DISTRICT_ROLES, entry.expected + scoped_statuses(entry), strict=True))


A = 401  # shorthand for the anonymous column, which is always 401 but for public endpoints

#                                                          anon consumer other-c merchant other-m regulator
TABLE = [
    # --- accounts ------------------------------------------------------------------------------------------
    row("POST", "/api/v1/auth/token", (200, 200, 200, 200, 200, 200),
        body=lambda w, role: {"username": w.users["consumer"].username, "password": PASSWORD},
        why="public; credentials in the body, any Authorization header is ignored"),
    row("GET", "/api/v1/rules", (200, 200, 200, 200, 200, 200), why="public: the rules profile in force"),
    row("POST", "/api/v1/consumers", (201, 201, 201, 201, 201, 201),
        body=lambda w, role: {"username": f"new-consumer-{role}", "password": PASSWORD,
                              "display_name": "New", "phone": "13800001234"},
        why="public sign-up; a new username per role"),
    row("POST", "/api/v1/merchants", (201, 201, 201, 201, 201, 201),
        body=lambda w, role: {"username": f"new-merchant-{role}", "password": PASSWORD, "name": "New shop",
                              "license_number": license_number(900_000 + (ROLES + DISTRICT_ROLES).index(role)),
                              "category": "fitness", "district": "朝阳区", "address": "1 Road"},
        why="public sign-up; a new licence per role"),
    # --- products ------------------------------------------------------------------------------------------
    row("GET", "/api/v1/products", (200, 200, 200, 200, 200, 200), why="public catalogue"),
    row("POST", "/api/v1/products", (A, 403, 403, 201, 201, 403),
        body={"name": "5 sessions", "kind": "session_pack", "price": 10_000, "sessions": 5},
        why="any merchant, for itself"),
    # --- cards ---------------------------------------------------------------------------------------------
    row("GET", "/api/v1/cards", (A, 200, 200, 200, 200, 200), why="each sees its own (the list is filtered)"),
    row("POST", "/api/v1/cards", (A, 201, 201, 403, 403, 403),
        body=lambda w, role: {"product": w.ids["product"]}, why="any consumer buys"),
    row("GET", "/api/v1/cards/<uuid:card_id>", (A, 200, 404, 200, 404, 200), objects={"card_id": "card"}),
    row("GET", "/api/v1/cards/<uuid:card_id>/contract.pdf", (A, 200, 404, 200, 404, 200),
        objects={"card_id": "card"}),
    row("POST", "/api/v1/cards/<uuid:card_id>/refunds", (A, 201, 404, 403, 403, 403),
        objects={"card_id": "card_to_refund"}, body={"reason": "cooling_off"},
        why="the owner's cooling-off refund of a card kept for it"),
    row("POST", "/api/v1/cards/<uuid:card_id>/operator-consent", (A, 200, 404, 403, 403, 403),
        objects={"card_id": "card"}, body={"consent": True},
        why="the holder answers merchant A's approved change of operator for their own card"),
    row("GET", "/api/v1/cards/<uuid:card_id>/statement", (A, 200, 404, 403, 403, 403), objects={"card_id": "card"},
        why="the holder's statement: only the holder"),
    row("GET", "/api/v1/cards/<uuid:card_id>/statement.pdf", (A, 200, 404, 403, 403, 403),
        objects={"card_id": "card"}),
    row("POST", "/api/v1/payments/<uuid:payment_id>/simulate", (A, 200, 404, 403, 403, 403),
        objects={"payment_id": "unpaid_payment"}, body={"outcome": "succeeded"}),
    # --- a card's top-ups and transfers --------------------------------------------------------------------
    row("GET", "/api/v1/cards/<uuid:card_id>/top-ups", (A, 200, 404, 200, 404, 200),
        objects={"card_id": "stored_card"}, why="whoever sees the card"),
    row("POST", "/api/v1/cards/<uuid:card_id>/top-ups", (A, 201, 404, 403, 403, 403),
        objects={"card_id": "stored_card"}, body={"amount": 1_000}, why="the holder tops up their stored-value card"),
    row("GET", "/api/v1/card-top-ups/<uuid:top_up_id>", (A, 200, 404, 200, 404, 200),
        objects={"top_up_id": "top_up"}),
    row("GET", "/api/v1/card-top-ups/<uuid:top_up_id>/annex.pdf", (A, 200, 404, 200, 404, 200),
        objects={"top_up_id": "top_up"}),
    row("POST", "/api/v1/card-top-ups/<uuid:top_up_id>/refund", (A, 201, 404, 403, 403, 403),
        objects={"top_up_id": "top_up_to_refund"}, why="the payer returns a top-up in its cooling-off period"),
    row("POST", "/api/v1/cards/<uuid:card_id>/transfers", (A, 201, 404, 403, 403, 403),
        objects={"card_id": "card_to_transfer"}, body={"to_phone": "13900002222"},
        why="the holder offers their card to the other consumer's phone"),
    row("GET", "/api/v1/card-transfers", (A, 200, 200, 200, 200, 200), why="each sees their own"),
    row("GET", "/api/v1/card-transfers/<uuid:transfer_id>", (A, 200, 200, 200, 404, 200),
        objects={"transfer_id": "transfer"}, why="the giver, the recipient (by phone), the card's merchant"),
    row("POST", "/api/v1/card-transfers/<uuid:transfer_id>/accept", (A, 404, 200, 403, 403, 403),
        objects={"transfer_id": "transfer_to_accept"}, why="only the consumer with the offer's phone"),
    row("POST", "/api/v1/card-transfers/<uuid:transfer_id>/decline", (A, 404, 200, 403, 403, 403),
        objects={"transfer_id": "transfer_to_decline"}, why="only the consumer with the offer's phone"),
    row("POST", "/api/v1/card-transfers/<uuid:transfer_id>/cancel", (A, 200, 404, 403, 403, 403),
        objects={"transfer_id": "transfer_to_cancel"}, why="only the holder who offered it"),
    row("GET", "/api/v1/card-transfers/<uuid:transfer_id>/contract.pdf", (A, 200, 404, 403, 403, 403),
        objects={"transfer_id": "transfer_accepted"}, why="the giver's contract until the transfer: the giver's"),
    # --- redemptions ---------------------------------------------------------------------------------------
    row("GET", "/api/v1/redemptions", (A, 200, 200, 200, 200, 200), why="each sees its own"),
    row("POST", "/api/v1/redemptions", (A, 403, 403, 201, 404, 403),
        body=lambda w, role: {"card": w.ids["card"]}, why="only the card's merchant starts a service"),
    row("POST", "/api/v1/redemptions/<uuid:redemption_id>/confirm", (A, 200, 404, 403, 403, 403),
        objects={"redemption_id": "redemption_to_confirm"}),
    row("POST", "/api/v1/redemptions/<uuid:redemption_id>/reject", (A, 200, 404, 403, 403, 403),
        objects={"redemption_id": "redemption_to_reject"}),
    # --- disputes (a merchant contests a rejected service; the regulator's side is below) -------------------
    row("POST", "/api/v1/redemptions/<uuid:redemption_id>/dispute", (A, 403, 403, 201, 404, 403),
        objects={"redemption_id": "redemption_to_dispute"}, body={"reason": "She trained that day."},
        why="only the merchant of the rejected service contests it"),
    row("GET", "/api/v1/disputes", (A, 200, 200, 200, 200, 403),
        why="each side its own; the regulator lists them under /regulator/disputes"),
    row("GET", "/api/v1/disputes/<uuid:dispute_id>", (A, 200, 404, 200, 404, 403), objects={"dispute_id": "dispute"}),
    row("POST", "/api/v1/disputes/<uuid:dispute_id>/evidence", (A, 201, 404, 201, 404, 403),
        objects={"dispute_id": "dispute"}, body={"text": "What I saw."}, why="either side adds evidence"),
    row("GET", "/api/v1/disputes/evidence/<uuid:evidence_id>", (A, 200, 404, 200, 404, 404),
        objects={"evidence_id": "evidence"},
        why="the two sides; anyone else, the regulator too, is told it does not exist (the regulator's own "
            "path is below)"),
    # --- the merchant's own money --------------------------------------------------------------------------
    row("GET", "/api/v1/merchant/balance", (A, 403, 403, 200, 200, 403), why="each merchant its own"),
    row("POST", "/api/v1/merchant/closure", (A, 403, 403, 400, 400, 403),
        body={"closes_on": "2026-03-11", "reason": "moving"},
        why="400 notice_too_short: a real closure would stop merchant A's sales for every later row"),
    row("POST", "/api/v1/merchant/relocation", (A, 403, 403, 400, 400, 403),
        body={"moves_on": "2026-03-20", "address": "新址 1 号", "district": "110105"},
        why="400 notice_too_short: a real notice would put the merchant's holders' refunds in play"),
    row("POST", "/api/v1/merchant/relocation/cancel", (A, 403, 403, 200, 409, 403),
        why="merchant A withdraws its notice of moving; B has none: 409 relocation_not_pending"),
    row("GET", "/api/v1/merchant/operator-change", (A, 403, 403, 200, 200, 403), why="each merchant its own"),
    row("POST", "/api/v1/merchant/operator-change", (A, 403, 403, 400, 400, 403),
        body={"new_operator_name": "新店主", "new_license_number": license_number(910_001), "changes_on": "2026-03-20"},
        why="400 notice_too_short (each merchant has a change open, too)"),
    row("GET", "/api/v1/merchant/settlements", (A, 403, 403, 200, 200, 403), why="each merchant its own"),
    row("GET", "/api/v1/merchant/settlements/<uuid:settlement_id>/statement.pdf", (A, 403, 403, 200, 404, 403),
        objects={"settlement_id": "settlement"}),
    row("GET", "/api/v1/merchant/filing", (A, 403, 403, 200, 200, 403), why="each merchant its own filing"),
    row("POST", "/api/v1/merchant/filing", (A, 403, 403, 409, 409, 403),
        body={"legal_representative": "王芳", "contact_phone": "13800001111", "deposit_bank": "北京银行"},
        why="409 filing_not_required: both merchants' filings are already with the regulator"),
    row("GET", "/api/v1/filings/documents/<uuid:document_id>", (A, 404, 404, 200, 404, 200),
        objects={"document_id": "document"}, why="its merchant and regulators; anyone else: not found"),
    # --- complaints ----------------------------------------------------------------------------------------
    row("GET", "/api/v1/complaints", (A, 200, 200, 200, 200, 200), why="each sees its own"),
    row("POST", "/api/v1/complaints", (A, 201, 201, 403, 403, 400),
        body=lambda w, role: {"merchant": w.ids["merchant"], "category": "refund_refused",
                              "description": "No refund.", "source": "app"},
        why="consumers file from the app; regulator staff may file, but only hotline calls: "
            "400 complaint_source_not_allowed"),
    row("GET", "/api/v1/complaints/<uuid:complaint_id>", (A, 200, 404, 200, 404, 200),
        objects={"complaint_id": "complaint"}),
    row("POST", "/api/v1/complaints/<uuid:complaint_id>/respond", (A, 403, 403, 200, 404, 403),
        objects={"complaint_id": "complaint_to_respond"}, body={"text": "We will refund."}),
    row("POST", "/api/v1/complaints/<uuid:complaint_id>/close", (A, 403, 403, 403, 403, 200),
        objects={"complaint_id": "complaint_to_close"}, body={"resolution": "Refunded."}),
    # --- the regulator (the city regulator sees every merchant; a district regulator, see scoped_statuses) ---
    row("GET", "/api/v1/regulator/me", (A, 403, 403, 403, 403, 200), why="the regulator's jurisdiction"),
    row("GET", "/api/v1/regulator/complaints/stats", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/ledger/verify", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/reconciliations", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/merchants", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/merchants/<str:merchant_id>/risk", (A, 403, 403, 403, 403, 200),
        objects={"merchant_id": "merchant"}),
    row("POST", "/api/v1/regulator/merchants/<str:merchant_id>/risk", (A, 403, 403, 403, 403, 200),
        objects={"merchant_id": "merchant"}, why="recomputes one merchant's score"),
    row("GET", "/api/v1/regulator/merchants/<str:merchant_id>/actions", (A, 403, 403, 403, 403, 200),
        objects={"merchant_id": "merchant"}),
    row("POST", "/api/v1/regulator/merchants/<str:merchant_id>/actions", (A, 403, 403, 403, 403, 202),
        objects={"merchant_id": "merchant_to_flag"}, body={"action": "flag", "reason": "matrix"},
        why="a flag only adds a public warning: merchant A still sells and serves"),
    row("GET", "/api/v1/regulator/actions/<str:action_id>", (A, 403, 403, 403, 403, 200),
        objects={"action_id": "action"}),
    row("GET", "/api/v1/regulator/merchants/<uuid:merchant_id>/report.pdf", (A, 403, 403, 403, 403, 200),
        objects={"merchant_id": "merchant"}),
    row("GET", "/api/v1/regulator/audit-log", (A, 403, 403, 403, 403, 200)),
    row("POST", "/api/v1/regulator/cards/<uuid:card_id>/refund", (A, 403, 403, 403, 403, 201),
        objects={"card_id": "card_in_default"}, body={"reason": "merchant_default", "note": "matrix"},
        why="a card of merchant B, which is flagged (in default), kept for this row"),
    row("GET", "/api/v1/regulator/refunds", (A, 403, 403, 403, 403, 200)),
    row("POST", "/api/v1/regulator/refunds/<uuid:refund_id>/retry", (A, 403, 403, 403, 403, 409),
        objects={"refund_id": "refund"},
        why="409 refund_not_failed: the world's refund is pending or paid, never failed"),
    row("GET", "/api/v1/regulator/filings", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/filings/<uuid:filing_id>", (A, 403, 403, 403, 403, 200),
        objects={"filing_id": "filing"}),
    row("POST", "/api/v1/regulator/filings/<uuid:filing_id>/accept", (A, 403, 403, 403, 403, 200),
        objects={"filing_id": "filing_to_accept"}, body={"note": "complete"}),
    row("POST", "/api/v1/regulator/filings/<uuid:filing_id>/return", (A, 403, 403, 403, 403, 200),
        objects={"filing_id": "filing"}, body={"note": "the bank's letter is missing"}),
    row("POST", "/api/v1/regulator/risk/compute", (A, 403, 403, 403, 403, 202)),
    # --- inspection cases ------------------------------------------------------------------------------------
    row("GET", "/api/v1/regulator/cases", (A, 403, 403, 403, 403, 200)),
    row("POST", "/api/v1/regulator/cases", (A, 403, 403, 403, 403, 201),
        body=lambda w, role: {"merchant": w.ids["merchant"], "reason": "matrix"}, scoped=(201, 404),
        why="the merchant named in the body: outside the jurisdiction, as missing"),
    row("GET", "/api/v1/regulator/cases/<uuid:case_id>", (A, 403, 403, 403, 403, 200), objects={"case_id": "case"}),
    row("POST", "/api/v1/regulator/cases/<uuid:case_id>/assign", (A, 403, 403, 403, 403, 200),
        objects={"case_id": "case"}, body=lambda w, role: {"assignee": w.users["regulator"].username}),
    row("POST", "/api/v1/regulator/cases/<uuid:case_id>/findings", (A, 403, 403, 403, 403, 201),
        objects={"case_id": "case"}, body={"text": "matrix"}, why="a finding without files, as JSON"),
    row("POST", "/api/v1/regulator/cases/<uuid:case_id>/document-requests", (A, 403, 403, 403, 403, 201),
        objects={"case_id": "case"}, body={"text": "matrix"}),
    row("POST", "/api/v1/regulator/cases/<uuid:case_id>/measures", (A, 403, 403, 403, 403, 201),
        objects={"case_id": "other_case"}, body=lambda w, role: {"action": w.ids["action"]},
        why="the world's action is against merchant B, the other case's merchant"),
    row("POST", "/api/v1/regulator/cases/<uuid:case_id>/close", (A, 403, 403, 403, 403, 200),
        objects={"case_id": "case_to_close"}, body={"conclusion": "matrix"}),
    row("GET", "/api/v1/regulator/cases/<uuid:case_id>/report.pdf", (A, 403, 403, 403, 403, 200),
        objects={"case_id": "case"}),
    row("GET", "/api/v1/case-files/<uuid:file_id>", (A, 404, 404, 200, 404, 200),
        objects={"file_id": "answer_file"}, why="the file merchant A sent: A and regulators; anyone else: not found"),
    row("GET", "/api/v1/merchant/document-requests", (A, 403, 403, 200, 200, 403), why="each merchant its own"),
    row("GET", "/api/v1/merchant/document-requests/<uuid:request_id>", (A, 403, 403, 200, 404, 403),
        objects={"request_id": "document_request"}),
    row("POST", "/api/v1/merchant/document-requests/<uuid:request_id>/submit", (A, 403, 403, 200, 404, 403),
        objects={"request_id": "document_request"}, body={"note": "matrix"}, why="a note without files, as JSON"),
    row("GET", "/api/v1/regulator/reports/periodic", (A, 403, 403, 403, 403, 200)),
    row("POST", "/api/v1/regulator/reports/periodic", (A, 403, 403, 403, 403, 202),
        body={"period": "month", "year": 2026, "number": 2},
        why="February's report of the city exists: asking again returns it, nothing changes"),
    row("GET", "/api/v1/regulator/reports/periodic/<uuid:report_id>", (A, 403, 403, 403, 403, 200),
        objects={"report_id": "report"}, scoped=CITY_WIDE_ONLY),
    row("GET", "/api/v1/regulator/reports/periodic/<uuid:report_id>.pdf", (A, 403, 403, 403, 403, 200),
        objects={"report_id": "report"}, scoped=CITY_WIDE_ONLY),
    row("GET", "/api/v1/regulator/reports/periodic/<uuid:report_id>.xlsx", (A, 403, 403, 403, 403, 200),
        objects={"report_id": "report"}, scoped=CITY_WIDE_ONLY),
    row("GET", "/api/v1/regulator/operator-changes", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/operator-changes/<uuid:change_id>", (A, 403, 403, 403, 403, 200),
        objects={"change_id": "operator_change"}),
    row("POST", "/api/v1/regulator/operator-changes/<uuid:change_id>/approve", (A, 403, 403, 403, 403, 200),
        objects={"change_id": "operator_change_to_approve"}, body={"note": "materials complete"},
        why="merchant B's change, requested, kept for this row"),
    row("POST", "/api/v1/regulator/operator-changes/<uuid:change_id>/reject", (A, 403, 403, 403, 403, 409),
        objects={"change_id": "operator_change"}, body={"note": "no"},
        why="409 operator_change_not_requested: merchant A's change is already approved"),
    row("POST", "/api/v1/regulator/merchants/<uuid:merchant_id>/operator-change", (A, 403, 403, 403, 403, 409),
        objects={"merchant_id": "merchant"},
        body={"new_operator_name": "新店主", "new_license_number": license_number(910_002), "changes_on": "2026-04-30"},
        why="409 operator_change_pending: merchant A's change is open"),
    row("GET", "/api/v1/regulator/disputes", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/disputes/<uuid:dispute_id>", (A, 403, 403, 403, 403, 200),
        objects={"dispute_id": "dispute"}),
    row("POST", "/api/v1/regulator/disputes/<uuid:dispute_id>/decide", (A, 403, 403, 403, 403, 200),
        objects={"dispute_id": "dispute_to_decide"}, body={"outcome": "upheld", "note": "matrix"}),
    row("GET", "/api/v1/regulator/disputes/evidence/<uuid:evidence_id>", (A, 403, 403, 403, 403, 200),
        objects={"evidence_id": "evidence"}),
    # --- the public record (no login; credentials are ignored) ---------------------------------------------
    row("GET", "/api/v1/public/merchants", (200, 200, 200, 200, 200, 200), why="public search of merchants"),
    row("GET", "/api/v1/public/merchants/<str:merchant_id>", (200, 200, 200, 200, 200, 200),
        objects={"merchant_id": "merchant"}, why="public record of any merchant"),
    row("GET", "/api/v1/regulator/exports/merchants.csv", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/exports/merchants.xlsx", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/exports/cards.csv", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/exports/cards.xlsx", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/exports/refunds.csv", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/exports/refunds.xlsx", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/exports/complaints.csv", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/exports/complaints.xlsx", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/exports/journal.csv", (A, 403, 403, 403, 403, 200)),
    row("GET", "/api/v1/regulator/exports/journal.xlsx", (A, 403, 403, 403, 403, 200)),
    # --- notifications and preferences (consumers and merchants, each their own) --------------------------
    row("GET", "/api/v1/notifications", (A, 200, 200, 200, 200, 403), why="each sees their own"),
    row("POST", "/api/v1/notifications/<int:notification_id>/read", (A, 200, 404, 404, 404, 403),
        objects={"notification_id": "notification"}, why="the consumer's notice of a service to confirm"),
    row("GET", "/api/v1/me", (A, 200, 200, 200, 200, 403)),
    row("PATCH", "/api/v1/me", (A, 200, 200, 200, 200, 403), body={"notify_email": True},
        why="each changes their own switches"),
]  # fmt: skip

# Not in the table: documentation, and the webhook (its own test below).
UNGATED = {("GET", "/api/v1/schema/"), ("GET", "/api/v1/docs/")}
WEBHOOK = ("POST", "/api/v1/webhooks/stripe")

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


def api_routes() -> set[tuple[str, str]]:
    """(method, route) of every API operation, from the URL resolver and each view's handlers."""
    found: set[tuple[str, str]] = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
                view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
                methods = [m.upper() for m in HTTP_METHODS if view is None or hasattr(view, m)]
                found.update((method, "/" + route) for method in methods)

    walk(get_resolver().url_patterns, "")
    return found


def path_of(route: str, objects: dict[str, str], world: World, role: str = "") -> str:
    """The route with the world's objects in it (the role's own object where it has one)."""

    def fill(match: re.Match) -> str:
        key = objects[match[1]]
        return world.ids.get(f"{key}@{role}", world.ids[key])

    return PARAMETER.sub(fill, route)


def client_of(world: World, role: str) -> APIClient:
    user = world.users[role]
    return APIClient() if user is None else client_for(user)


def call(world: World, role: str, entry: Row):
    path = path_of(entry.route, entry.objects, world, role)
    body = entry.body(world, role) if callable(entry.body) else entry.body
    client = client_of(world, role)
    if entry.method == "GET":
        return client.get(path)
    return getattr(client, entry.method.lower())(path, body, format="json")


def mismatch(entry: Row, role: str, expected: int, response) -> str | None:
    shown = f"{entry.method} {entry.route} as {role}"
    if response.status_code != expected:
        return f"{shown}: expected {expected}, got {response.status_code} {response.content[:200]!r}"
    if expected >= 400 and not response.json().get("code"):
        return f"{shown}: error without a code: {response.content[:200]!r}"
    return None


def test_every_api_route_has_a_row():
    in_table = {(entry.method, entry.route) for entry in TABLE}
    routes = api_routes()
    assert WEBHOOK in routes and routes >= UNGATED
    missing = routes - in_table - UNGATED - {WEBHOOK}
    assert not missing, f"API routes without a row in the authorization matrix: {sorted(missing)}"
    stale = in_table - routes
    assert not stale, f"rows for routes that no longer exist: {sorted(stale)}"
    assert len(in_table) == len(TABLE), "a route has two rows"
    for entry in TABLE:
        assert set(PARAMETER.findall(entry.route)) == set(entry.objects), entry.route


def test_every_api_endpoint_answers_every_role_as_the_matrix_says(world):
    failures = []
    for entry in TABLE:
        expected = statuses(entry)
        # Refusals first: a success (the only state change of a row) then cannot mask one.
        for role in sorted(expected, key=lambda r: expected[r] < 300):
            failure = mismatch(entry, role, expected[role], call(world, role, entry))
            if failure:
                failures.append(failure)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("gateway", ["stripe", "local"])
def test_an_unsigned_stripe_webhook_is_refused_whoever_sends_it(world, settings, gateway):
    """Under Stripe the signature is checked before anything is read (400 invalid_signature);
    under the local gateway the endpoint does not exist (404). A user's token changes nothing."""
    settings.PAYMENT_GATEWAY = gateway
    settings.STRIPE_WEBHOOK_SECRET = "whsec_matrix_only"
    event = {"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {}}}
    expected = {"stripe": (400, "invalid_signature"), "local": (404, "not_found")}[gateway]
    for role in ROLES + DISTRICT_ROLES:
        response = client_of(world, role).post(WEBHOOK[1], event, format="json")
        assert (response.status_code, response.json()["code"]) == expected, role


# --- the pages ---------------------------------------------------------------------------------------------
LOGIN = "login"  # sent to the login page

#                                                      anon    consumer other-c merchant other-m regulator
PAGES = [
    ("/c/", {}, (LOGIN, 200, 200, 403, 403, 403)),
    ("/c/cards/{card}/", {"card": "card"}, (LOGIN, 200, 404, 403, 403, 403)),
    ("/c/cards/{card}/statement.pdf", {"card": "card"}, (LOGIN, 200, 404, 403, 403, 403)),
    ("/c/disputes/{dispute}/", {"dispute": "dispute"}, (LOGIN, 200, 404, 403, 403, 403)),
    ("/m/", {}, (LOGIN, 403, 403, 200, 200, 403)),
    ("/m/disputes/{dispute}/", {"dispute": "dispute"}, (LOGIN, 403, 403, 200, 404, 403)),
    ("/disputes/evidence/{evidence}/", {"evidence": "evidence"}, (LOGIN, 200, 404, 200, 404, 404)),
    ("/m/settlements/{settlement}/statement.pdf", {"settlement": "settlement"}, (LOGIN, 403, 403, 200, 404, 403)),
    ("/r/", {}, (LOGIN, 403, 403, 403, 403, 200)),
    # The city regulator sees every merchant; a district regulator those of its district
    # (page_statuses: the regulator of another district gets 404 for each of the city's objects).
    ("/r/merchants/{merchant}/", {"merchant": "merchant"}, (LOGIN, 403, 403, 403, 403, 200)),
    ("/r/cases/", {}, (LOGIN, 403, 403, 403, 403, 200)),
    ("/r/cases/{case}/", {"case": "case"}, (LOGIN, 403, 403, 403, 403, 200)),
    ("/m/document-requests/", {}, (LOGIN, 403, 403, 200, 200, 403)),
    ("/m/document-requests/{request}/", {"request": "document_request"}, (LOGIN, 403, 403, 200, 404, 403)),
    # A case's file: the merchant that sent it and regulators; anyone else is told it does not exist.
    ("/case-files/{file}/", {"file": "answer_file"}, (LOGIN, 404, 404, 200, 404, 200)),
    ("/case-files/{file}/", {"file": "finding_file"}, (LOGIN, 404, 404, 404, 404, 200)),
    ("/r/merchants/{merchant}/report.pdf", {"merchant": "merchant"}, (LOGIN, 403, 403, 403, 403, 200)),
    ("/r/complaints/?merchant={merchant}", {"merchant": "merchant"}, (LOGIN, 403, 403, 403, 403, 200)),
    ("/r/actions/{action}/", {"action": "action"}, (LOGIN, 403, 403, 403, 403, 200)),
    ("/r/actions/{action}/status/", {"action": "action"}, (LOGIN, 403, 403, 403, 403, 200)),
    ("/r/filings/{filing}/", {"filing": "filing_to_accept"}, (LOGIN, 403, 403, 403, 403, 200)),
    *[(f"/r/{page}", {}, (LOGIN, 403, 403, 403, 403, 200)) for page in (
        "merchants/", "complaints/", "complaints/stats/", "refunds/", "filings/", "audit-log/", "ledger/", "rules/",
    )],
    ("/r/reports/", {}, (LOGIN, 403, 403, 403, 403, 200)),
    ("/r/reports/{report}/", {"report": "report"}, (LOGIN, 403, 403, 403, 403, 200)),
    ("/r/disputes/{dispute}/", {"dispute": "dispute"}, (LOGIN, 403, 403, 403, 403, 200)),
    # The public record: anyone, logged in or not.
    ("/p/merchants/", {}, (200, 200, 200, 200, 200, 200)),
    ("/p/merchants/{merchant}/", {"merchant": "merchant"}, (200, 200, 200, 200, 200, 200)),
]  # fmt: skip


def page_statuses(objects: dict[str, str], expected: tuple) -> tuple:
    """The two district regulators' answers, as ``scoped_statuses`` derives them for the API."""
    city = expected[ROLES.index("regulator")]
    if expected[0] != LOGIN or city != 200 or not objects:
        return city, city
    if set(objects.values()) & CITY_WIDE_OBJECTS:
        return CITY_WIDE_ONLY
    return city, 404


def test_every_area_of_the_site_answers_every_role_as_the_matrix_says(world):
    failures = []
    for template, objects, expected_statuses in PAGES:
        path = template.format(**{name: world.ids[key] for name, key in objects.items()})
        statuses = expected_statuses + page_statuses(objects, expected_statuses)
        for role, expected in zip(ROLES + DISTRICT_ROLES, statuses, strict=True):
            client = Client()
            if world.users[role] is not None:
                sign_in(client, world.users[role])
            response = client.get(path, follow=True)  # /c/ itself redirects to the card list
            if expected == LOGIN:
                landed = response.redirect_chain[-1][0] if response.redirect_chain else path
                got = LOGIN if landed.startswith("/login/?next=") else f"{response.status_code} at {landed}"
            else:
                got = response.status_code
            if got != expected:
                failures.append(f"GET {template} as {role}: expected {expected}, got {got}")
    assert not failures, "\n".join(failures)


# --- the pages' forms that act on one object ---------------------------------------------------------------
# Posted by the regulator of another district: 404, and nothing of the city changes. Posted by the
# district regulator of the city's merchants (on its own object): the page acts and sends it on (302).
PAGE_ACTIONS = [
    ("/r/merchants/{id}/actions/", "merchant_to_flag", {"action": "flag", "reason": "matrix"}),
    ("/r/merchants/{id}/risk/", "merchant", {}),
    ("/r/complaints/{id}/close/", "complaint_to_close", {"resolution": "Refunded."}),
    ("/r/cards/{id}/refund/", "card_in_default", {"note": "matrix"}),
    ("/r/refunds/{id}/retry/", "refund", {}),
    ("/r/filings/{id}/decide/", "filing_to_accept", {"decision": "accept", "note": ""}),
    ("/r/filings/{id}/decide/", "filing", {"decision": "return", "note": "the bank's letter is missing"}),
]


def city_state() -> tuple:
    """What any of those forms would change: the audit log, risk scores, refunds, flags, states."""
    from complaints.models import Complaint
    from merchants.models import Filing, Merchant
    from refunds.models import Refund
    from regulator.models import AuditEvent, RegulatorAction, RiskAssessment

    return (
        AuditEvent.objects.count(),
        RegulatorAction.objects.count(),
        RiskAssessment.objects.count(),
        sorted(Refund.objects.values_list("pk", "state")),
        sorted(Merchant.objects.values_list("pk", "flagged")),
        sorted(Complaint.objects.values_list("pk", "state")),
        sorted(Filing.objects.values_list("pk", "state")),
    )


def test_a_page_form_on_an_object_outside_the_jurisdiction_is_404_and_changes_nothing(world):
    outside, own = Client(), Client()
    sign_in(outside, world.users["outside_regulator"])
    sign_in(own, world.users["district_regulator"])
    before = city_state()
    refused = {}
    for template, key, data in PAGE_ACTIONS:
        path = template.format(id=world.ids[key])
        refused[path] = outside.post(path, data).status_code
    assert set(refused.values()) == {404}, refused
    assert city_state() == before

    acted = {}
    for template, key, data in PAGE_ACTIONS:
        path = template.format(id=world.ids.get(f"{key}@district_regulator", world.ids[key]))
        acted[path] = own.post(path, data).status_code
    assert set(acted.values()) == {302}, acted
    assert city_state() != before


def test_a_complainant_s_full_contact_is_shown_only_to_a_regulator_covering_the_case(world):
    """The case page's reveal form (POST only): regulators covering merchant A see the contact (and
    the audit log gains a line each); the regulator of another district is told the case does not
    exist; anyone else is refused, and nothing is written for them."""
    from regulator.models import AuditEvent

    path = f"/r/cases/{world.ids['case']}/contacts/{world.ids['complainant']}/"
    expected = dict(zip(ROLES + DISTRICT_ROLES, (LOGIN, 403, 403, 403, 403, 200, 200, 404), strict=True))
    got, written = {}, {}
    for role in expected:
        client = Client()
        if world.users[role] is not None:
            sign_in(client, world.users[role])
        before = AuditEvent.objects.filter(verb="contact_reveal").count()
        response = client.post(path, {"reason": "matrix"})
        landed = response.get("Location", "")
        got[role] = (
            LOGIN if response.status_code == 302 and landed.startswith("/login/?next=") else response.status_code
        )
        written[role] = AuditEvent.objects.filter(verb="contact_reveal").count() - before
    assert got == expected
    assert written == {role: int(status == 200) for role, status in expected.items()}
