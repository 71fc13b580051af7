"""Reads of inspection cases (regulator.services.cases): the regulator's list and one case with its
findings, requests, measures and audit trail; the merchants offered when opening one; the inspectors
a case may be assigned to; a case file for download; and the merchant's side, its requests.

Every regulator read starts from ``jurisdiction_of(user)``: a case of a merchant outside it is not
found, as a missing one. A merchant sees only the requests made of it and the files it sent.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Prefetch, QuerySet, Value, When

from core.errors import InvalidInput, NotFound
from core.models import User
from merchants.models import Merchant
from regulator.models import (
    AuditEvent,
    CaseFile,
    CaseFinding,
    CaseMeasure,
    DocumentRequest,
    InspectionCase,
    RegulatorAction,
)
from regulator.selectors.jurisdiction import jurisdiction_of

OFFERED_OTHERS = 50  # merchants offered, after the flagged ones, when opening a case


def _uuid_or_404(value: Any) -> Any:
    try:
        InspectionCase._meta.pk.to_python(value)
    except ValidationError as exc:
        raise NotFound() from exc
    return value


def cases_for_regulator(*, user: User, state: str | None = None, merchant_id: Any = None) -> QuerySet[InspectionCase]:
    """The cases of the merchants the regulator covers, the newest first; by state, by merchant."""
    if state is not None and state not in InspectionCase.State.values:
        raise InvalidInput(errors={"state": [f"one of {', '.join(InspectionCase.State.values)}"]})
    cases = InspectionCase.objects.select_related("merchant", "opened_by", "assignee", "closed_by").filter(
        merchant__in=jurisdiction_of(user).merchants()
    )
    if state is not None:
        cases = cases.filter(state=state)
    if merchant_id not in (None, ""):
        try:
            cases = cases.filter(merchant_id=Merchant._meta.pk.to_python(merchant_id))
        except ValidationError as exc:
            raise InvalidInput(errors={"merchant": ["a merchant id"]}) from exc
    return cases.order_by("-created_at", "-pk")


def case_get(*, user: User, case_id: Any) -> InspectionCase:
    """One case of a merchant the regulator covers (else not found)."""
    try:
        case = InspectionCase.objects.select_related("merchant", "opened_by", "assignee", "closed_by").get(
            pk=_uuid_or_404(case_id)
        )
    except InspectionCase.DoesNotExist as exc:
        raise NotFound() from exc
    if not jurisdiction_of(user).covers(case.merchant):
        raise NotFound()
    return case


def _files() -> Prefetch:
    return Prefetch("files", queryset=CaseFile.objects.select_related("uploaded_by").order_by("uploaded_at", "pk"))


def case_findings(*, case: InspectionCase) -> QuerySet[CaseFinding]:
    return case.findings.select_related("author").prefetch_related(_files()).order_by("created_at", "pk")


def case_document_requests(*, case: InspectionCase) -> QuerySet[DocumentRequest]:
    return (
        case.document_requests.select_related("requested_by", "answered_by")
        .prefetch_related(_files())
        .order_by("created_at", "pk")
    )


def case_measures(*, case: InspectionCase) -> QuerySet[CaseMeasure]:
    return case.measures.select_related("action", "action__actor", "linked_by").order_by("linked_at", "pk")


def case_audit_trail(*, case: InspectionCase) -> QuerySet[AuditEvent]:
    """The audit lines of the case's steps, oldest first (the merchant's index, then the target)."""
    return (
        AuditEvent.objects.select_related("actor")
        .filter(merchant_id=case.merchant_id, target=f"case:{case.pk}")
        .order_by("created_at", "pk")
    )


def case_measures_linkable(*, case: InspectionCase) -> QuerySet[RegulatorAction]:
    """The actions taken against the case's merchant that are not yet measures of the case."""
    return (
        RegulatorAction.objects.filter(merchant_id=case.merchant_id)
        .exclude(case_links__case=case)
        .order_by("-created_at", "-pk")
    )


def case_merchants_offered(*, user: User) -> tuple[list[Merchant], list[Merchant]]:
    """The merchants offered when opening a case: every flagged one the regulator covers (highest
    risk first), then the ``OFFERED_OTHERS`` riskiest of the rest (any other by its licence number)."""
    covered = jurisdiction_of(user).merchants()
    flagged = list(covered.filter(flagged=True).order_by("-risk_score", "name", "pk"))
    others = list(covered.filter(flagged=False).order_by("-risk_score", "name", "pk")[:OFFERED_OTHERS])
    return flagged, others


def case_merchant_by_reference(*, user: User, reference: str) -> Merchant | None:
    """The merchant the regulator covers with this licence number or id, else None."""
    reference = (reference or "").strip().upper()
    covered = jurisdiction_of(user).merchants()
    found = covered.filter(license_number=reference).first()
    if found is None:
        try:
            found = covered.filter(pk=Merchant._meta.pk.to_python(reference.lower())).first()
        except ValidationError:
            return None
    return found


def case_assignee_allowed(*, user: User | None, merchant: Merchant) -> bool:
    """A case is assigned to an active regulator whose jurisdiction covers its merchant."""
    return (
        user is not None
        and user.is_active
        and user.role == User.Role.REGULATOR
        and jurisdiction_of(user).covers(merchant)
    )


def case_assignees(*, merchant: Merchant) -> list[User]:
    """The regulators a case on ``merchant`` may be assigned to: active, covering the merchant."""
    regulators = User.objects.filter(role=User.Role.REGULATOR, is_active=True).order_by("username")
    return [user for user in regulators if case_assignee_allowed(user=user, merchant=merchant)]


def case_file_get(*, user: User, file_id: Any) -> CaseFile:
    """A case file for download: to a regulator covering the merchant, and to the merchant the file
    it sent in answer to a request; anyone else is told it does not exist."""
    try:
        row = CaseFile.objects.select_related("case__merchant", "document_request").get(pk=_uuid_or_404(file_id))
    except CaseFile.DoesNotExist as exc:
        raise NotFound() from exc
    merchant = row.case.merchant
    if user.role == User.Role.REGULATOR and jurisdiction_of(user).covers(merchant):
        return row
    if user.role == User.Role.MERCHANT and row.document_request_id is not None and merchant.user_id == user.pk:
        return row
    raise NotFound()


# --- the merchant's side -----------------------------------------------------------------------------


def merchant_document_requests(*, merchant: Merchant, state: str | None = None) -> QuerySet[DocumentRequest]:
    """The requests made of the merchant: those waiting for it first, then the newest."""
    if state is not None and state not in DocumentRequest.State.values:
        raise InvalidInput(errors={"state": [f"one of {', '.join(DocumentRequest.State.values)}"]})
    requests = DocumentRequest.objects.filter(case__merchant=merchant).prefetch_related(_files())
    if state is not None:
        requests = requests.filter(state=state)
    waiting_first = Case(
        When(state=DocumentRequest.State.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    return requests.order_by(waiting_first, "-created_at", "-pk")


def merchant_document_request_get(*, merchant: Merchant, request_id: Any) -> DocumentRequest:
    """One request made of the merchant (another merchant's is not found)."""
    try:
        return DocumentRequest.objects.prefetch_related(_files()).get(
            pk=_uuid_or_404(request_id), case__merchant=merchant
        )
    except DocumentRequest.DoesNotExist as exc:
        raise NotFound() from exc


def merchant_document_requests_waiting(*, merchant: Merchant) -> int:
    return DocumentRequest.objects.filter(case__merchant=merchant, state=DocumentRequest.State.OPEN).count()
