"""Inspection cases (监督检查案件): the regulator audits one merchant, step by step, on the record.

A regulator whose jurisdiction covers the merchant opens a case for a reason (``case_open``), assigns
it to an inspector covering the merchant too (``case_assign``), records findings with files
(``case_finding_add``), asks the merchant for documents (``case_documents_request``; the merchant is
told and answers with files, ``case_documents_submit``), links the actions taken against the merchant
as the case's measures (``case_measure_link``) and closes it with a conclusion (``case_close``). Any
regulator covering the merchant may take a step; a case outside the caller's jurisdiction is not
found, as a missing one.

The case's state (models.InspectionCase): ``open → awaiting_documents`` while a request waits for
the merchant, back to ``open`` when the last one is answered, ``closed`` from either (requests still
waiting are withdrawn). A closed case takes nothing more (409 ``case_closed``).

Each step is one transaction: the case row is locked first (then a request's), the step's rule
checked, the rows written, and one ``AuditEvent`` (target ``case:<id>``) written with them.

Files (PDF, JPEG, PNG) are checked before the transaction: their type is read from their first bytes
(``%PDF-``, ``FF D8 FF``, ``89 50 4E 47 0D 0A 1A 0A``), never from the name or the browser's word
(400 ``case_file_type_not_allowed``), their size against ``CASE_FILE_MAX_BYTES`` (400
``case_file_too_large``), and their SHA-256 is computed over the bytes stored. The name kept gets the
suffix of the type found; the stored path is ours. A step that fails after storing a file deletes it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from core import clock
from core.errors import InvalidInput, NotFound
from core.idempotency import keyed_id
from core.models import User
from merchants.models import Merchant
from notifications.models import Kind
from notifications.services import notification_send
from regulator.errors import (
    AssigneeNotAllowed,
    CaseClosed,
    CaseFileTooLarge,
    CaseFileTypeNotAllowed,
    DocumentRequestNotOpen,
    MeasureNotOfMerchant,
)
from regulator.models import (
    CASE_FILE_TYPES,
    CaseFile,
    CaseFinding,
    CaseMeasure,
    DocumentRequest,
    InspectionCase,
    RegulatorAction,
)
from regulator.selectors.cases import case_assignee_allowed
from regulator.selectors.jurisdiction import jurisdiction_of
from regulator.services.audit import audit_record

_CASE_IDS = uuid.UUID("6b0e3a52-1f9d-4c7e-9a84-2d5f3c71e0b9")  # namespace of case ids derived from keys
REASON_MAX = 2000
TEXT_MAX = 5000  # a finding, a conclusion
REQUEST_MAX = 2000  # what the merchant is asked for, and its note in answer
MAX_FILES = 10
# The first bytes of each accepted type (a JPEG's SOI marker and the start of its next marker).
MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
_HEAD = max(len(magic) for magic, _type in MAGIC)
_CHUNK = 64 * 1024


# --- files -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedFile:
    upload: UploadedFile
    name: str
    content_type: str
    size: int
    sha256: str


def case_file_type(head: bytes) -> str | None:
    """The content type the first bytes of a file show, or None when it is none we accept."""
    for magic, content_type in MAGIC:
        if head.startswith(magic):
            return content_type
    return None


def _name(upload: UploadedFile, content_type: str) -> str:
    stem = PurePath(upload.name or "").stem.strip() or "file"
    suffix = CASE_FILE_TYPES[content_type]
    return stem[: 200 - len(suffix)] + suffix


def _check_one(upload: UploadedFile) -> CheckedFile:
    """Type from the content, size within the limit (counted, not taken from the request), SHA-256."""
    limit = settings.CASE_FILE_MAX_BYTES
    shown = PurePath(upload.name or "").name or _("(a file without a name)")
    if (upload.size or 0) > limit:
        raise CaseFileTooLarge(_too_large(shown, limit), errors={"files": [_too_large(shown, limit)]})
    upload.seek(0)
    head = upload.read(_HEAD)
    content_type = case_file_type(head)
    if content_type is None:
        message = _("%(name)s is not a PDF, JPEG or PNG file (its content was checked, not its name).") % {
            "name": shown
        }
        raise CaseFileTypeNotAllowed(message, errors={"files": [message]})
    upload.seek(0)
    digest = hashlib.sha256()
    size = 0
    for chunk in upload.chunks(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise CaseFileTooLarge(_too_large(shown, limit), errors={"files": [_too_large(shown, limit)]})
        digest.update(chunk)
    upload.seek(0)
    return CheckedFile(upload, _name(upload, content_type), content_type, size, digest.hexdigest())


def _too_large(name: str, limit: int) -> str:
    return _("%(name)s is larger than %(size)s.") % {"name": name, "size": _megabytes(limit)}


def _megabytes(size: int) -> str:
    megabytes = size / (1024 * 1024)
    return f"{megabytes:g} MB" if megabytes >= 1 else f"{max(size // 1024, 1)} KB"


def case_files_check(files: Sequence[UploadedFile]) -> list[CheckedFile]:
    """Every file checked (the first refusal is raised, naming the file), at most ``MAX_FILES``."""
    if len(files) > MAX_FILES:
        message = _("Attach at most %(count)s files.") % {"count": MAX_FILES}
        raise InvalidInput(message, errors={"files": [message]})
    return [_check_one(upload) for upload in files]


@contextmanager
def _files_removed_on_failure(stored: list[str]) -> Iterator[None]:
    """Files stored during a step that then fails (its rows rolled back) are deleted, not orphaned."""
    try:
        yield
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise


def _store(
    checked: list[CheckedFile],
    *,
    case: InspectionCase,
    uploaded_by: User,
    stored: list[str],
    finding: CaseFinding | None = None,
    document_request: DocumentRequest | None = None,
) -> list[CaseFile]:
    now = clock.now()
    rows = []
    for item in checked:
        row = CaseFile(
            case=case,
            finding=finding,
            document_request=document_request,
            name=item.name,
            size=item.size,
            content_type=item.content_type,
            sha256=item.sha256,
            uploaded_by=uploaded_by,
            uploaded_at=now,
        )
        row.file.save(item.name, item.upload, save=False)
        stored.append(str(row.file.name))
        row.save()
        rows.append(row)
    return rows


def _files_changes(rows: list[CaseFile]) -> list[str]:
    """The audit line's record of the files: each name with its SHA-256."""
    return [f"{row.name} sha256:{row.sha256}" for row in rows]


# --- the case ----------------------------------------------------------------------------------------


def _text(value: str, *, field: str, limit: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(errors={field: [_("This field may not be blank.")]})
    if len(value) > limit:
        raise InvalidInput(errors={field: [_("At most %(count)s characters.") % {"count": limit}]})
    return value


def _lock_case(*, regulator: User, case_id: Any) -> InspectionCase:
    """The case, locked, if it exists and the regulator's jurisdiction covers its merchant."""
    try:
        case = InspectionCase.objects.select_for_update(of=("self",)).select_related("merchant").get(pk=case_id)
    except (InspectionCase.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound() from exc
    if not jurisdiction_of(regulator).covers(case.merchant):
        raise NotFound()
    return case


def _lock_live_case(*, regulator: User, case_id: Any) -> InspectionCase:
    case = _lock_case(regulator=regulator, case_id=case_id)
    if case.state == InspectionCase.State.CLOSED:
        raise CaseClosed()
    return case


def _audit(case: InspectionCase, *, verb: str, actor: User, reason: str = "", changes: dict | None = None) -> None:
    audit_record(
        verb=verb,
        actor_id=actor.pk,
        merchant_id=case.merchant_id,
        target=f"case:{case.pk}",
        reason=reason,
        changes=changes,
    )


def case_open(*, regulator: User, merchant_id: Any, reason: str, idempotency_key: str | None = None) -> InspectionCase:
    """Open a case on a merchant the regulator's jurisdiction covers (else not found), for ``reason``.
    With ``idempotency_key`` (a request's or a form's), the same key opens one case, however often sent."""
    reason = _text(reason, field="reason", limit=REASON_MAX)
    try:
        merchant = Merchant.objects.get(pk=merchant_id)
    except (Merchant.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound() from exc
    if not jurisdiction_of(regulator).covers(merchant):
        raise NotFound()
    case_id = keyed_id(_CASE_IDS, idempotency_key)
    try:
        with transaction.atomic():
            case = InspectionCase.objects.create(
                id=case_id, merchant=merchant, reason=reason, opened_by=regulator, created_at=clock.now()
            )
            _audit(case, verb="case_open", actor=regulator, reason=reason, changes={"state": [None, case.state]})
    except IntegrityError:
        # The same form or request sent again (or twice at once): the first one opened it.
        if idempotency_key and (made := InspectionCase.objects.filter(pk=case_id, opened_by=regulator).first()):
            return made
        raise
    return case


def case_assign(*, regulator: User, case_id: Any, assignee: str) -> InspectionCase:
    """Assign the case to the regulator named ``assignee`` (a username); assigning the inspector it
    already has changes nothing and writes nothing."""
    with transaction.atomic():
        case = _lock_live_case(regulator=regulator, case_id=case_id)
        user = User.objects.filter(username=assignee).first() if assignee else None
        if user is None or not case_assignee_allowed(user=user, merchant=case.merchant):
            raise AssigneeNotAllowed(errors={"assignee": [str(AssigneeNotAllowed.default_detail)]})
        if case.assignee_id == user.pk:
            return case
        before = case.assignee.username if case.assignee is not None else None
        case.assignee = user
        case.save(update_fields=["assignee"])
        _audit(case, verb="case_assign", actor=regulator, changes={"assignee": [before, user.username]})
    return case


def case_finding_add(*, regulator: User, case_id: Any, text: str, files: Sequence[UploadedFile] = ()) -> CaseFinding:
    """Record what was found, with its files (checked first: any refused file refuses the finding)."""
    text = _text(text, field="text", limit=TEXT_MAX)
    checked = case_files_check(files)
    stored: list[str] = []
    with _files_removed_on_failure(stored), transaction.atomic():
        case = _lock_live_case(regulator=regulator, case_id=case_id)
        finding = CaseFinding.objects.create(case=case, text=text, author=regulator, created_at=clock.now())
        rows = _store(checked, case=case, uploaded_by=regulator, stored=stored, finding=finding)
        changes: dict[str, list] = {"finding": [None, str(finding.pk)]}
        if rows:
            changes["files"] = [None, _files_changes(rows)]
        _audit(case, verb="case_finding_add", actor=regulator, reason=text, changes=changes)
    return finding


def case_documents_request(*, regulator: User, case_id: Any, text: str) -> DocumentRequest:
    """Ask the merchant for documents (``text`` says which). The case awaits them; the merchant is
    told at once, with a link to the page where it sends them."""
    text = _text(text, field="text", limit=REQUEST_MAX)
    with transaction.atomic():
        case = _lock_live_case(regulator=regulator, case_id=case_id)
        before = case.state
        case.await_documents()
        case.save(update_fields=["state"])
        request = DocumentRequest.objects.create(case=case, text=text, requested_by=regulator, created_at=clock.now())
        changes: dict[str, list] = {"document_request": [None, str(request.pk)]}
        if before != case.state:
            changes["state"] = [before, case.state]
        _audit(case, verb="case_documents_request", actor=regulator, reason=text, changes=changes)
        notification_send(
            user_id=case.merchant.user_id,
            kind=Kind.DOCUMENTS_REQUESTED,
            event_key=f"documents_requested:{request.pk}",
            params={"request": text[:300], "url": reverse("web-merchant-document-request", args=[request.pk])},
            merchant_id=case.merchant_id,
            about_money=False,
        )
    return request


def case_documents_submit(
    *, merchant: Merchant, request_id: Any, files: Sequence[UploadedFile] = (), note: str = ""
) -> DocumentRequest:
    """The merchant answers a request made of it (another merchant's is not found) with files and a
    note (at least one of the two). The case is open again once no request waits."""
    note = _text(note, field="note", limit=REQUEST_MAX, required=False)
    checked = case_files_check(files)
    if not checked and not note:
        raise InvalidInput(errors={"files": [_("Attach at least one file, or write a note.")]})
    try:
        case_id = DocumentRequest.objects.filter(pk=request_id, case__merchant=merchant).values_list(
            "case_id", flat=True
        )[0]
    except (IndexError, ValueError, TypeError, ValidationError) as exc:
        raise NotFound() from exc
    actor = merchant.user
    stored: list[str] = []
    with _files_removed_on_failure(stored), transaction.atomic():
        # The case first, then the request: the order every step locks them in.
        case = InspectionCase.objects.select_for_update().get(pk=case_id)
        request = DocumentRequest.objects.select_for_update().get(pk=request_id)
        if request.state != DocumentRequest.State.OPEN:
            raise DocumentRequestNotOpen()
        request.receive_answer()
        request.answer = note
        request.answered_by = actor
        request.answered_at = clock.now()
        request.save(update_fields=["state", "answer", "answered_by", "answered_at"])
        rows = _store(checked, case=case, uploaded_by=actor, stored=stored, document_request=request)
        before = case.state
        waiting = case.document_requests.filter(state=DocumentRequest.State.OPEN).exists()
        if not waiting and case.state == InspectionCase.State.AWAITING_DOCUMENTS:
            case.documents_received()
            case.save(update_fields=["state"])
        changes: dict[str, list] = {"document_request": [None, str(request.pk)]}
        if rows:
            changes["files"] = [None, _files_changes(rows)]
        if before != case.state:
            changes["state"] = [before, case.state]
        _audit(case, verb="case_documents_submit", actor=actor, reason=note, changes=changes)
    return request


def case_measure_link(*, regulator: User, case_id: Any, action_id: Any) -> CaseMeasure:
    """Link an action taken against the case's merchant as one of its measures; linking it again
    returns the same link and writes nothing more."""
    with transaction.atomic():
        case = _lock_live_case(regulator=regulator, case_id=case_id)
        try:
            action = RegulatorAction.objects.select_related("merchant").get(pk=action_id)
        except (RegulatorAction.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
            raise NotFound() from exc
        if not jurisdiction_of(regulator).covers(action.merchant):
            raise NotFound()
        if action.merchant_id != case.merchant_id:
            raise MeasureNotOfMerchant(errors={"action": [str(MeasureNotOfMerchant.default_detail)]})
        existing = CaseMeasure.objects.filter(case=case, action=action).first()
        if existing is not None:
            return existing
        measure = CaseMeasure.objects.create(case=case, action=action, linked_by=regulator, linked_at=clock.now())
        _audit(
            case,
            verb="case_measure_link",
            actor=regulator,
            reason=action.reason,
            changes={"measure": [None, action.action], "action": [None, str(action.pk)]},
        )
    return measure


def case_close(*, regulator: User, case_id: Any, conclusion: str) -> InspectionCase:
    """Close the case with its conclusion (409 ``case_closed`` if it is closed already); requests
    still waiting for the merchant are withdrawn."""
    conclusion = _text(conclusion, field="conclusion", limit=TEXT_MAX)
    with transaction.atomic():
        case = _lock_live_case(regulator=regulator, case_id=case_id)
        before = case.state
        waiting = list(
            DocumentRequest.objects.select_for_update()
            .filter(case=case, state=DocumentRequest.State.OPEN)
            .order_by("pk")
        )
        for request in waiting:
            request.withdraw()
            request.save(update_fields=["state"])
        case.close()
        case.conclusion = conclusion
        case.closed_by = regulator
        case.closed_at = clock.now()
        case.save(update_fields=["state", "conclusion", "closed_by", "closed_at"])
        changes: dict[str, list] = {"state": [before, case.state]}
        if waiting:
            changes["requests_withdrawn"] = [None, len(waiting)]
        _audit(case, verb="case_close", actor=regulator, reason=conclusion, changes=changes)
    return case
