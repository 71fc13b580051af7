"""Complaints: the 12345 citizen hotline's work orders and the app's complaints against a merchant.

A complaint is filed by a consumer in the app (source ``app``) or entered by regulator staff for a
hotline call (source ``hotline``, typed in or imported from the hotline's CSV export). The merchant
must answer by ``respond_by``: the rules profile's ``complaint_response_hours`` (48 under Beijing's)
after the complaint was received, ``complaint_urgent_response_hours`` (2) when urgent (the settings
``COMPLAINT_*_RESPONSE_HOURS`` override them); ``rules_version`` records the profile's version.
States (``regulator.models.Complaint``)::

    open ──respond──▶ responded
      │                  ▲
      └─overdue job─▶ overdue ──respond (late)──┘        any of them ──regulator closes──▶ closed

``overdue_at`` stays set once the job marked a complaint, so a late answer is still seen as late.
Decisions (a hotline entry, a response, a close) write an audit event in the same transaction.
"""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from complaints.audit import audit_record
from complaints.errors import (
    ComplaintCardMismatch,
    ComplaintImportFailed,
    ComplaintNotOpen,
    ComplaintSourceNotAllowed,
    DuplicateHotlineReference,
    UnknownMerchant,
)
from complaints.models import Complaint
from consumers.models import Card
from consumers.selectors import consumer_of_user
from core import clock
from core.errors import InvalidInput, NotFound
from core.idempotency import keyed_id
from core.models import User
from core.rules import Rule, profile_version, rule
from merchants.models import Merchant
from merchants.oversight import oversight_of
from refunds.services import refund_entitlement_record

OVERDUE_CHUNK = 500
IMPORT_CHUNK = 500

_reference_limit = Complaint._meta.get_field("hotline_reference").max_length
if _reference_limit is None:  # a CharField may go without one on PostgreSQL; the checks below need it
    raise TypeError("Complaint.hotline_reference needs a max_length")
REFERENCE_MAX: int = _reference_limit
_COMPLAINT_IDS = uuid.UUID("9a3e5b17-6c2d-4f80-b1e4-7d5c3a2f9e68")  # namespace of ids derived from form keys
# A hotline call is typed in or imported within days or weeks of being taken: a moment older than
# this is a typing error. (Found by the schema fuzz: a call "received" in 1269 was accepted, and its
# times came out with Beijing's pre-1901 local mean time offset, +08:05:43, which is no ISO 8601.)
HOTLINE_CALL_MAX_AGE = timedelta(days=366)


def complaint_response_rule(*, urgent: bool) -> Rule:
    """The rule that sets the merchant's time to answer."""
    return rule("complaint_urgent_response_hours" if urgent else "complaint_response_hours")


def complaint_respond_by(*, received_at: datetime, urgent: bool) -> datetime:
    """The merchant's deadline: the rule's number of hours after the complaint was received."""
    return received_at + timedelta(hours=complaint_response_rule(urgent=urgent).value)


def _target(complaint: Complaint) -> str:
    return f"complaint:{complaint.pk}"


def _record_hotline_entry(*, complaint: Complaint, actor_id: int | None, actor_label: str) -> None:
    audit_record(
        verb="complaint_create",
        actor_id=actor_id,
        actor_label=actor_label,
        merchant_id=complaint.merchant_id,
        target=_target(complaint),
        reason=complaint.hotline_reference or "",
        changes={
            "state": [None, complaint.state],
            "source": [None, complaint.source],
            "category": [None, complaint.category],
            "urgent": [None, complaint.urgent],
            "respond_by": [None, complaint.respond_by.isoformat()],
        },
    )


def _merchant_id_of(merchant_id: Any, *, actor: User) -> Any:
    """The merchant's id; one outside a regulator's jurisdiction is unknown to it."""
    merchants = Merchant.objects.all()
    if actor.role == User.Role.REGULATOR:
        merchants = oversight_of(actor).narrow(merchants)
    try:
        return merchants.values_list("pk", flat=True).get(pk=merchant_id)
    except (Merchant.DoesNotExist, ValueError, DjangoValidationError) as exc:
        raise UnknownMerchant(errors={"merchant": [str(UnknownMerchant.default_detail)]}) from exc


def _card_checked(*, card_id: Any, merchant_id: Any, consumer_id: Any | None) -> Card:
    """The card, if it is the merchant's (and, for an app complaint, the complainant's)."""
    cards = Card.objects.filter(pk=card_id, merchant_id=merchant_id)
    if consumer_id is not None:
        cards = cards.filter(consumer_id=consumer_id)
    try:
        return cards.get()
    except (Card.DoesNotExist, ValueError, DjangoValidationError) as exc:  # another's card looks absent
        raise ComplaintCardMismatch(errors={"card": [str(ComplaintCardMismatch.default_detail)]}) from exc


def complaint_file(
    *,
    actor: User,
    merchant_id: Any,
    category: str,
    description: str,
    source: str,
    card_id: Any | None = None,
    urgent: bool = False,
    hotline_reference: str | None = None,
    received_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Complaint:
    """File a complaint: a consumer's from the app, or a hotline call entered by regulator staff.

    ``received_at`` (hotline only) is when the hotline took the call; the deadline runs from then.
    A hotline caller is not linked to a consumer account: the call does not prove who they are.
    Under an ``idempotency_key`` (a page's form sent twice) a repeat returns the complaint the first
    one filed: its id derives from the key.
    """
    errors: dict[str, list[str]] = {}
    description = (description or "").strip()
    hotline_reference = (hotline_reference or "").strip() or None
    if category not in Complaint.Category.values:
        errors["category"] = [_("Unknown category.")]
    if not description:
        errors["description"] = [_("Describe the problem.")]
    if source not in Complaint.Source.values:
        errors["source"] = [_("Unknown source.")]
    if source == Complaint.Source.APP and (hotline_reference or received_at):
        field_name = "hotline_reference" if hotline_reference else "received_at"
        errors[field_name] = [_("Only hotline work orders carry this.")]
    if hotline_reference and len(hotline_reference) > REFERENCE_MAX:
        errors["hotline_reference"] = [_("At most %(max)s characters.") % {"max": REFERENCE_MAX}]
    now = clock.now()
    if received_at is not None and received_at > now:
        errors["received_at"] = [_("The call cannot have been received in the future.")]
    elif received_at is not None and received_at < now - HOTLINE_CALL_MAX_AGE:
        errors["received_at"] = [_("The call cannot have been received more than a year ago.")]
    if errors:
        raise InvalidInput(errors=errors)

    allowed: dict[str, str] = {User.Role.CONSUMER: Complaint.Source.APP, User.Role.REGULATOR: Complaint.Source.HOTLINE}
    if allowed.get(actor.role) != source:
        raise ComplaintSourceNotAllowed(errors={"source": [str(ComplaintSourceNotAllowed.default_detail)]})
    consumer_id = consumer_of_user(user=actor).pk if source == Complaint.Source.APP else None

    merchant_id = _merchant_id_of(merchant_id, actor=actor)
    if card_id is not None:
        card_id = _card_checked(card_id=card_id, merchant_id=merchant_id, consumer_id=consumer_id).pk
    complaint_id = keyed_id(_COMPLAINT_IDS, idempotency_key)
    if idempotency_key and (filed := _filed(complaint_id=complaint_id, actor=actor)) is not None:
        return filed
    received = received_at or now
    complaint = Complaint(
        id=complaint_id,
        merchant_id=merchant_id,
        card_id=card_id,
        consumer_id=consumer_id,
        created_by=actor,
        source=source,
        hotline_reference=hotline_reference,
        category=category,
        description=description,
        urgent=urgent,
        respond_by=complaint_respond_by(received_at=received, urgent=urgent),
        rules_version=profile_version(),
        created_at=received,
    )
    if _reference_taken(hotline_reference):
        raise DuplicateHotlineReference(errors={"hotline_reference": [str(DuplicateHotlineReference.default_detail)]})
    try:
        with transaction.atomic():
            complaint.save(force_insert=True)
            if source == Complaint.Source.HOTLINE:
                _record_hotline_entry(complaint=complaint, actor_id=actor.pk, actor_label="")
    except IntegrityError as exc:  # the same work order entered at the same moment by someone else
        if idempotency_key and (filed := _filed(complaint_id=complaint_id, actor=actor)) is not None:
            return filed  # ... or the same form sent twice at once
        if _reference_taken(hotline_reference):
            raise DuplicateHotlineReference(
                errors={"hotline_reference": [str(DuplicateHotlineReference.default_detail)]}
            ) from exc
        raise
    return complaint


def _filed(*, complaint_id: uuid.UUID, actor: User) -> Complaint | None:
    return Complaint.objects.filter(pk=complaint_id, created_by=actor).first()


def _reference_taken(reference: str | None) -> bool:
    return bool(reference) and Complaint.objects.filter(hotline_reference=reference).exists()


def _locked(complaint_id: Any, *, regulator: User | None = None, **ownership: Any) -> Complaint:
    """The complaint, locked; one against a merchant outside ``regulator``'s jurisdiction is not found."""
    complaints = Complaint.objects.select_for_update(of=("self",))
    if regulator is not None:
        complaints = oversight_of(regulator).narrow(complaints, path="merchant__")
    try:
        return complaints.get(pk=complaint_id, **ownership)
    except (Complaint.DoesNotExist, ValueError, DjangoValidationError) as exc:
        raise NotFound() from exc


def complaint_respond(*, complaint_id: Any, merchant: Merchant, text: str) -> Complaint:
    """The merchant's answer. Late answers (after ``overdue``) are accepted; ``overdue_at`` stays."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput(errors={"text": [_("The response may not be empty.")]})
    with transaction.atomic():
        complaint = _locked(complaint_id, merchant=merchant)
        if not can_proceed(complaint.respond):
            raise ComplaintNotOpen(_("The complaint was already answered or closed."))
        before = complaint.state
        complaint.respond()
        complaint.response = text
        complaint.responded_at = clock.now()
        complaint.save(update_fields=["state", "response", "responded_at"])
        audit_record(
            verb="complaint_respond",
            actor_id=merchant.user_id,
            merchant_id=complaint.merchant_id,
            target=_target(complaint),
            reason=text,
            changes={"state": [before, complaint.state], "late": [None, complaint.overdue_at is not None]},
        )
    return complaint


def complaint_close(*, complaint_id: Any, regulator: User, resolution: str, upheld: bool = False) -> Complaint:
    """The regulator closes a complaint with its resolution, answered or not. ``upheld``: the
    regulator finds for the complainant; a complaint about a card then entitles its holder to a
    fee-free ``merchant_default`` refund (recorded below, by the refunds app)."""
    resolution = (resolution or "").strip()
    if not resolution:
        raise InvalidInput(errors={"resolution": [_("The resolution may not be empty.")]})
    with transaction.atomic():
        complaint = _locked(complaint_id, regulator=regulator)
        if not can_proceed(complaint.close):
            raise ComplaintNotOpen(_("The complaint is already closed."))
        before = complaint.state
        complaint.close()
        complaint.resolution = resolution
        complaint.closed_at = clock.now()
        complaint.closed_by = regulator
        complaint.save(update_fields=["state", "resolution", "closed_at", "closed_by"])
        if upheld and complaint.card_id is not None:
            refund_entitlement_record(card_id=complaint.card_id, source=_target(complaint), actor_id=regulator.pk)
        audit_record(
            verb="complaint_close",
            actor_id=regulator.pk,
            merchant_id=complaint.merchant_id,
            target=_target(complaint),
            reason=resolution,
            changes={"state": [before, complaint.state], "resolution": ["", resolution]}
            | ({"upheld": [None, True]} if upheld else {}),
        )
    return complaint


# --- The overdue job --------------------------------------------------------------------------------


def complaints_mark_overdue(*, chunk_size: int = OVERDUE_CHUNK) -> int:
    """Mark every open complaint past ``respond_by`` overdue and tell each merchant concerned.

    Works through the ``(state, respond_by)`` index a chunk per transaction; a complaint its merchant
    is answering right now (row locked) is skipped and, if still open, taken on the next run. Safe to
    run any number of times: only ``open`` rows are touched. Returns how many were marked.
    """
    now = clock.now()
    marked = 0
    while True:
        with transaction.atomic():
            due = list(
                Complaint.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(state=Complaint.State.OPEN, respond_by__lt=now)
                .order_by("respond_by", "pk")
                .values_list("pk", "merchant_id")[:chunk_size]
            )
            if not due:
                return marked
            # A bulk transition open → overdue on rows locked above: the FSM's one allowed move.
            Complaint.objects.filter(pk__in=[pk for pk, _m in due], state=Complaint.State.OPEN).update(
                state=Complaint.State.OVERDUE, overdue_at=now
            )
            marked += len(due)
            counts: dict[Any, int] = {}
            for _pk, merchant_id in due:
                counts[merchant_id] = counts.get(merchant_id, 0) + 1
            _notify_merchants_on_commit(counts)


def _notify_merchants_on_commit(counts: dict[Any, int]) -> None:
    merchants = Merchant.objects.filter(pk__in=list(counts)).exclude(user__email="")
    emails = []
    for merchant_id, name, email in merchants.values_list("pk", "name", "user__email"):
        title = _("%(merchant)s: complaints past their deadline") % {"merchant": name}
        body = _(
            "%(count)s complaint(s) against %(merchant)s passed their response deadline without an answer "
            "and are now overdue. The market regulator sees overdue complaints; answer them in the app."
        ) % {"count": counts[merchant_id], "merchant": name}
        emails.append((title, body, settings.DEFAULT_FROM_EMAIL, [email]))
    if emails:
        transaction.on_commit(lambda: send_mass_mail(emails, fail_silently=True))


# --- The hotline's CSV export --------------------------------------------------------------------------

REQUIRED_COLUMNS = ("hotline_reference", "received_at", "merchant_license", "category", "description")
OPTIONAL_COLUMNS = ("urgent", "card")
_URGENT = {"1": True, "true": True, "是": True, "0": False, "false": False, "否": False, "": False}
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


@dataclass(frozen=True)
class RefusedRow:
    line: int  # the file line the row starts on (the header is line 1)
    reference: str
    problems: tuple[tuple[str, str], ...]  # (code, message)

    @property
    def codes(self) -> list[str]:
        return [code for code, _message in self.problems]

    def __str__(self) -> str:
        what = "; ".join(f"{code}: {message}" for code, message in self.problems)
        return f"line {self.line} [{self.reference or '-'}]: {what}"


@dataclass
class ComplaintImportReport:
    imported: int = 0
    refused: list[RefusedRow] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return sum("duplicate_reference" in row.codes for row in self.refused)

    def summary(self) -> str:
        return f"imported {self.imported}, refused {len(self.refused)}"


@dataclass(frozen=True)
class _Draft:
    line: int
    reference: str
    received_at: datetime
    merchant_id: Any
    category: str
    description: str
    urgent: bool
    card_id: Any | None


def _read_text(source: str | os.PathLike | IO) -> str:
    try:
        raw = Path(source).read_bytes() if isinstance(source, (str, os.PathLike)) else source.read()
    except OSError as exc:
        raise ComplaintImportFailed(_("Cannot read the file: %(reason)s") % {"reason": exc.strerror or exc}) from exc
    if isinstance(raw, str):
        return raw.removeprefix("\ufeff")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ComplaintImportFailed(
            _("The file is not UTF-8 text (byte %(position)s); export it as UTF-8.") % {"position": exc.start}
        ) from exc


def _header(cells: list[str] | None) -> list[str]:
    names = [cell.strip().lower() for cell in cells or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    unknown = [name for name in names if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if missing or unknown or repeated:
        problems = []
        if missing:
            problems.append(_("missing %(names)s") % {"names": ", ".join(missing)})
        if unknown:
            problems.append(_("unknown %(names)s") % {"names": ", ".join(unknown)})
        if repeated:
            problems.append(_("repeated %(names)s") % {"names": ", ".join(repeated)})
        raise ComplaintImportFailed(
            _("Wrong header on line 1 (%(problems)s); expected the columns %(columns)s.")
            % {"problems": "; ".join(problems), "columns": ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}
        )
    return names


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(first line, cells)`` of every record; a quoted field may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""))
    end = 0
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num
            yield start, cells
    except csv.Error as exc:
        raise ComplaintImportFailed(
            _("The file is not valid CSV at line %(line)s: %(reason)s") % {"line": reader.line_num, "reason": exc}
        ) from exc


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _lookup(queryset, column: str, keys: Iterable, *values: str) -> dict:
    """``{key: values}`` for the rows whose ``column`` is one of ``keys``, a bounded IN list at a time."""
    found: dict = {}
    for chunk in _chunks(sorted(set(keys), key=str), IMPORT_CHUNK):
        for key, *rest in queryset.filter(**{f"{column}__in": chunk}).values_list(column, *values):
            found[key] = rest[0] if len(rest) == 1 else tuple(rest)
    return found


def _parse_received_at(value: str, now: datetime) -> tuple[datetime | None, str | None]:
    moment = None
    if _ISO_DATETIME.match(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if moment is None:
        return None, _("Not an ISO 8601 date and time (e.g. 2026-03-02T14:30:00+08:00).")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.BEIJING)  # the hotline's clock is Beijing's
    if moment > now:
        return None, _("The call cannot have been received in the future.")
    if moment < now - HOTLINE_CALL_MAX_AGE:
        return None, _("The call cannot have been received more than a year ago.")
    return moment, None


def _card_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _validate_rows(records: list[tuple[int, dict[str, str]]], report: ComplaintImportReport) -> list[_Draft]:
    now = clock.now()
    merchants = _lookup(
        Merchant.objects.all(), "license_number", (values["merchant_license"].upper() for _l, values in records), "pk"
    )
    card_ids = {_card_uuid(values.get("card", "")) for _l, values in records} - {None}
    card_merchants = _lookup(Card.objects.all(), "pk", card_ids, "merchant_id")
    existing = set(
        _lookup(
            Complaint.objects.all(),
            "hotline_reference",
            (values["hotline_reference"] for _l, values in records),
            "pk",
        )
    )
    accepted: set[str] = set()
    drafts = []
    for line, values in records:
        problems: list[tuple[str, str]] = []
        reference = values["hotline_reference"]
        if not reference or len(reference) > REFERENCE_MAX:
            problems.append(
                (
                    "invalid_hotline_reference",
                    _("A work order number of 1 to %(max)s characters.") % {"max": REFERENCE_MAX},
                )
            )
        elif reference in existing or reference in accepted:
            problems.append(("duplicate_reference", _("This work order number was already imported.")))
        received_at, problem = _parse_received_at(values["received_at"], now)
        if problem:
            problems.append(("invalid_received_at", problem))
        merchant_id = merchants.get(values["merchant_license"].upper())
        if merchant_id is None:
            problems.append(("unknown_merchant", _("No merchant has this licence number.")))
        category = values["category"]
        if category not in Complaint.Category.values:
            problems.append(
                (
                    "unknown_category",
                    _("Unknown category; one of %(codes)s.") % {"codes": ", ".join(Complaint.Category.values)},
                )
            )
        if not values["description"]:
            problems.append(("empty_description", _("The description is empty.")))
        urgent_flag = values.get("urgent", "").lower()
        if urgent_flag not in _URGENT:
            problems.append(("invalid_urgent", _("The urgent flag is one of 0, 1, true, false, 是, 否.")))
        card_id = None
        if values.get("card"):
            card_id = _card_uuid(values["card"])
            # Judged against a known merchant only; an unknown merchant is reported already.
            if merchant_id is not None and (card_id is None or card_merchants.get(card_id) != merchant_id):
                problems.append(("complaint_card_mismatch", _("The card is not a card of this merchant.")))
        if problems:
            report.refused.append(RefusedRow(line=line, reference=reference, problems=tuple(problems)))
            continue
        assert received_at is not None  # else its problem was recorded above
        accepted.add(reference)
        drafts.append(
            _Draft(
                line=line,
                reference=reference,
                received_at=received_at,
                merchant_id=merchant_id,
                category=category,
                description=values["description"],
                urgent=_URGENT[urgent_flag],
                card_id=card_id,
            )
        )
    return drafts


def _create_hotline_complaints(drafts: list[_Draft], *, actor_id: int | None, actor_label: str) -> None:
    version = profile_version()
    complaints = [
        Complaint(
            merchant_id=draft.merchant_id,
            card_id=draft.card_id,
            created_by_id=actor_id,
            source=Complaint.Source.HOTLINE,
            hotline_reference=draft.reference,
            category=draft.category,
            description=draft.description,
            urgent=draft.urgent,
            respond_by=complaint_respond_by(received_at=draft.received_at, urgent=draft.urgent),
            rules_version=version,
            created_at=draft.received_at,
        )
        for draft in drafts
    ]
    Complaint.objects.bulk_create(complaints)
    for complaint in complaints:
        _record_hotline_entry(complaint=complaint, actor_id=actor_id, actor_label=actor_label)


def _create_chunk(drafts: list[_Draft], *, actor_id: int | None, actor_label: str) -> bool:
    """Create a chunk's complaints in one transaction; False (nothing created) if one of its work
    orders is already on file."""
    try:
        with transaction.atomic():
            _create_hotline_complaints(drafts, actor_id=actor_id, actor_label=actor_label)
    except IntegrityError:
        return False
    return True


def complaints_import_csv(
    *, source: str | os.PathLike | IO, actor: User | None = None, chunk_size: int = IMPORT_CHUNK
) -> ComplaintImportReport:
    """Import the hotline's CSV export: every good row becomes a hotline complaint, every bad one is
    reported with its line number and reasons. A work order already imported is refused as a
    duplicate, so importing a file again imports nothing twice.

    Raises ``ComplaintImportFailed`` (nothing imported) when the file cannot be read, is not UTF-8
    (with or without BOM) or CSV, or its header is wrong. Rows are written a chunk per transaction.
    """
    text = _read_text(source)
    records = _records(text)
    first = next(records, None)
    columns = _header(first[1] if first else None)
    report = ComplaintImportReport()
    rows: list[tuple[int, dict[str, str]]] = []
    for line, cells in records:
        if not any(cell.strip() for cell in cells):
            continue  # blank lines (and rows of empty cells) carry nothing
        if len(cells) != len(columns):
            message = _("Expected %(expected)s fields, found %(found)s.") % {
                "expected": len(columns),
                "found": len(cells),
            }
            report.refused.append(RefusedRow(line=line, reference="", problems=(("wrong_field_count", message),)))
            continue
        rows.append((line, {name: cell.strip() for name, cell in zip(columns, cells, strict=True)}))

    actor_id = actor.pk if actor else None
    actor_label = "" if actor else "import_complaints"
    for chunk in _chunks(_validate_rows(rows, report), chunk_size):
        if _create_chunk(chunk, actor_id=actor_id, actor_label=actor_label):
            report.imported += len(chunk)
            continue
        # Another import took some of these work orders meanwhile: row by row.
        for draft in chunk:
            try:
                with transaction.atomic():
                    _create_hotline_complaints([draft], actor_id=actor_id, actor_label=actor_label)
                report.imported += 1
            except IntegrityError:
                if not Complaint.objects.filter(hotline_reference=draft.reference).exists():
                    raise
                report.refused.append(
                    RefusedRow(
                        line=draft.line,
                        reference=draft.reference,
                        problems=(("duplicate_reference", _("This work order number was already imported.")),),
                    )
                )
    report.refused.sort(key=lambda row: row.line)
    return report
