"""The regulator's audit log: every regulator action (``AuditEvent``) and every money movement's
journal entry, newest first, in one paginated list.

The two tables are merged in SQL (``UNION ALL`` of ``(kind, id, created_at)`` ordered by time), so a
page costs one query for its keys and one per table to load the rows on it, however long the log.

Of a regulator's jurisdiction: the lines about its merchants, and the journal entries that move
money of their cards or settlement accounts. A regulator of part of the city also sees its own
lines about no merchant (its exports); other such lines, and entries of no merchant's, are the
city-wide regulators' alone.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from django.db.models import CharField, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from complaints.models import Complaint
from consumers.models import Card, Dispute
from core.errors import InvalidInput
from core.formatting import beijing_date, beijing_datetime, mask_account, yuan
from escrow.models import JournalEntry
from merchants.models import Filing, Merchant, OperatorChange
from refunds.models import Refund
from refunds.selectors import DEFAULT_REASONS
from regulator.models import AuditEvent, InspectionCase, RegulatorAction
from regulator.selectors.jurisdiction import Jurisdiction

KINDS = ("action", "journal")


def _keys(queryset, kind: str):
    return queryset.annotate(kind=Value(kind, output_field=CharField()), ref=Cast("pk", CharField())).values(
        "kind", "ref", "created_at"
    )


# The merchant's accounts a posting can be on, named from the account: its settlement account, its
# own custody and refunds-payable accounts (a refund paid out touches only those two), and its
# cards' escrow accounts.
_MERCHANT_OF_ACCOUNT = ("merchant", "custody_of", "refunds_payable_of", "card__merchant")


def journal_entries_within(jurisdiction: Jurisdiction) -> QuerySet[JournalEntry]:
    """The journal entries that move money of the jurisdiction's merchants: with a posting on one of
    their accounts (``_MERCHANT_OF_ACCOUNT``). An entry on the city-wide accounts alone (a merchant
    signed up before its own accounts, until ``ledger_split_custody``) is the city's."""
    entries = JournalEntry.objects.all()
    if jurisdiction.city_wide:
        return entries
    touching = Q(pk__in=[])
    for merchant in _MERCHANT_OF_ACCOUNT:
        touching |= jurisdiction.q(f"postings__account__{merchant}__")
    return entries.filter(pk__in=JournalEntry.objects.filter(touching).values("pk"))


def audit_log_keys(
    *,
    jurisdiction: Jurisdiction,
    reader_id: int | None = None,
    kind: str | None = None,
    merchant: Merchant | None = None,
) -> QuerySet:
    """``{kind, ref, created_at}`` rows of the log within ``jurisdiction``, newest first (paginate
    this); ``reader_id``, the regulator reading, also sees its own lines about no merchant."""
    if kind is not None and kind not in KINDS:
        raise InvalidInput(errors={"kind": [f"one of {', '.join(KINDS)}"]})
    events = AuditEvent.objects.all()
    entries = journal_entries_within(jurisdiction)
    if not jurisdiction.city_wide:
        own = Q(merchant__isnull=True, actor_id=reader_id) if reader_id is not None else Q(pk__in=[])
        events = events.filter(jurisdiction.q("merchant__") | own)
    if merchant is not None:
        events = events.filter(merchant=merchant)
        touching = Q(postings__account__card__merchant_id=merchant.pk)
        for account_id in (
            merchant.settlement_account_id,
            merchant.custody_account_id,
            merchant.refund_payable_account_id,
        ):
            if account_id is not None:
                touching |= Q(postings__account_id=account_id)
        entries = entries.filter(pk__in=JournalEntry.objects.filter(touching).values("pk"))
    parts = []
    if kind in (None, "action"):
        parts.append(_keys(events.order_by(), "action"))
    if kind in (None, "journal"):
        parts.append(_keys(entries.order_by(), "journal"))
    rows = parts[0] if len(parts) == 1 else parts[0].union(parts[1], all=True)
    return rows.order_by("-created_at", "-ref")


def audit_actor_name(user, label: str) -> str:
    """Who: a user's name; a consumer's (the holder behind a purchase or a refund) masked."""
    if user is None:
        return label
    return mask_account(user.username) if user.role == "consumer" else user.username


def audit_log_rows(keys: list[dict]) -> list[dict[str, Any]]:
    """The page's rows, loaded from their tables, in the keys' order."""
    event_ids = [int(k["ref"]) for k in keys if k["kind"] == "action"]
    entry_ids = [int(k["ref"]) for k in keys if k["kind"] == "journal"]
    events = {e.pk: e for e in AuditEvent.objects.select_related("actor").filter(pk__in=event_ids)}
    entries = {
        e.pk: e
        for e in JournalEntry.objects.select_related("actor")
        .filter(pk__in=entry_ids)
        .annotate(amount=Sum("postings__amount", filter=Q(postings__amount__gt=0)))
    }
    rows = []
    for key in keys:
        if key["kind"] == "action":
            e = events[int(key["ref"])]
            rows.append(
                {
                    "kind": "action",
                    "id": str(e.pk),
                    "created_at": e.created_at,
                    "actor": audit_actor_name(e.actor, e.actor_label),
                    "verb": e.verb,
                    "merchant": str(e.merchant_id) if e.merchant_id else None,
                    "target": e.target,
                    "reason": e.reason,
                    "changes": e.changes,
                    "amount": None,
                    "hash": None,
                }
            )
        else:
            j = entries[int(key["ref"])]
            rows.append(
                {
                    "kind": "journal",
                    "id": str(j.pk),
                    "created_at": j.created_at,
                    "actor": audit_actor_name(j.actor, j.actor_label),
                    "verb": j.code,
                    "merchant": None,
                    "target": f"chain:{j.chain}:{j.seq}",
                    "reason": j.memo,
                    "changes": {},
                    "amount": j.amount or 0,
                    "hash": j.hash,
                }
            )
    return rows


# --- in words --------------------------------------------------------------------------------------
# An event keeps machine keys (its verb, the fields it changed and their values, sometimes a reason
# written by a job); the page and the report put them in words in the reader's language.

OTHER_VERBS = {
    "risk_auto_flag": gettext_lazy("flagged automatically (high risk)"),
    "complaint_create": gettext_lazy("hotline complaint entered"),
    "complaint_respond": gettext_lazy("complaint answered"),
    "complaint_close": gettext_lazy("complaint closed"),
    "complaint_overdue": gettext_lazy("complaint went overdue"),
    "refund_merchant_default": gettext_lazy("card refunded (merchant in default)"),
    "refund_retry": gettext_lazy("failed refund sent again"),
    "filing_accept": gettext_lazy("filing accepted"),
    "filing_return": gettext_lazy("filing returned to the merchant"),
    "operator_change_request": gettext_lazy("change of operator asked for"),
    "operator_change_approve": gettext_lazy("change of operator approved"),
    "operator_change_reject": gettext_lazy("change of operator rejected"),
    "dispute_decide": gettext_lazy("dispute decided"),
    "export": gettext_lazy("data exported"),
    "case_open": gettext_lazy("inspection case opened"),
    "case_assign": gettext_lazy("inspection case assigned"),
    "case_finding_add": gettext_lazy("finding recorded"),
    "case_documents_request": gettext_lazy("documents asked of the merchant"),
    "case_documents_submit": gettext_lazy("documents sent by the merchant"),
    "case_measure_link": gettext_lazy("measure linked to the case"),
    "case_close": gettext_lazy("inspection case closed"),
    "login": gettext_lazy("signed in (password and code)"),
    "login_failed": gettext_lazy("sign-in refused"),
    "logout": gettext_lazy("signed out"),
    "contact_reveal": gettext_lazy("a consumer's full name and phone number shown"),
}

# Why a sign-in was refused (``regulator.services.audit.LOGIN_FAILURES``) or a session ended.
_SIGN_IN_REASONS = {
    "password": gettext_lazy("wrong username or password"),
    "locked_out": gettext_lazy("too many failures: the username and address are locked out for a while"),
    "otp_required": gettext_lazy("the authenticator's code was missing"),
    "otp_invalid": gettext_lazy("wrong or already used authenticator code"),
    "otp_throttled": gettext_lazy("codes sent too fast after wrong ones"),
    "idle": gettext_lazy("no activity for too long"),
}

FIELD_LABELS = {
    "flagged": pgettext_lazy("audit log field", "risk flag"),
    "sales_frozen": pgettext_lazy("audit log field", "card sales frozen"),
    "releases_frozen": pgettext_lazy("audit log field", "releases frozen"),
    "risk_warning": pgettext_lazy("audit log field", "public risk warning"),
    "payouts_released": pgettext_lazy("audit log field", "held payouts released"),
    "cards_to_refund": pgettext_lazy("audit log field", "cards to refund"),
    "state": pgettext_lazy("audit log field", "state"),
    "card_state": pgettext_lazy("audit log field", "card state"),
    "card": pgettext_lazy("audit log field", "card"),
    "source": pgettext_lazy("audit log field", "source"),
    "category": pgettext_lazy("audit log field", "category"),
    "urgent": pgettext_lazy("audit log field", "urgent"),
    "respond_by": pgettext_lazy("audit log field", "answer due by"),
    "late": pgettext_lazy("audit log field", "answered late"),
    "resolution": pgettext_lazy("audit log field", "resolution"),
    "refund": pgettext_lazy("audit log field", "refund"),
    "amount": pgettext_lazy("audit log field", "amount"),
    "default_reasons": pgettext_lazy("audit log field", "why the merchant is in default"),
    "submission": pgettext_lazy("audit log field", "submission"),
    "assignee": pgettext_lazy("audit log field", "inspector"),
    "finding": pgettext_lazy("audit log field", "finding"),
    "files": pgettext_lazy("audit log field", "files (with their SHA-256)"),
    "document_request": pgettext_lazy("audit log field", "request for documents"),
    "measure": pgettext_lazy("audit log field", "measure"),
    "action": pgettext_lazy("audit log field", "action"),
    "requests_withdrawn": pgettext_lazy("audit log field", "requests for documents withdrawn"),
    "address": pgettext_lazy("audit log field", "from address"),
    "filters": pgettext_lazy("audit log field", "filters"),
    "rows": pgettext_lazy("audit log field", "rows"),
    "consumer": pgettext_lazy("audit log field", "consumer"),
    "case": pgettext_lazy("audit log field", "case"),
    "operator": pgettext_lazy("audit log field", "operator"),
    "license_number": pgettext_lazy("audit log field", "licence number"),
    "changes_on": pgettext_lazy("audit log field", "day of the change"),
}

_STATES_BY_VERB = {
    "complaint_create": Complaint.State,
    "complaint_respond": Complaint.State,
    "complaint_close": Complaint.State,
    "complaint_overdue": Complaint.State,
    "filing_accept": Filing.State,
    "filing_return": Filing.State,
    "operator_change_request": OperatorChange.State,
    "operator_change_approve": OperatorChange.State,
    "operator_change_reject": OperatorChange.State,
    "refund_retry": Refund.State,
    "refund_merchant_default": Refund.State,
    "case_open": InspectionCase.State,
    "case_documents_request": InspectionCase.State,
    "case_documents_submit": InspectionCase.State,
    "case_close": InspectionCase.State,
    "dispute_decide": Dispute.State,
}
_CHOICES_BY_FIELD = {
    "source": Complaint.Source,
    "category": Complaint.Category,
    "card_state": Card.State,
    "measure": RegulatorAction.Action,
}
_RISK_REASON = re.compile(r"^risk score (?P<score>\d+) ≥ (?P<threshold>\d+)$")
_MEMO_FEE = re.compile(r"^(?P<reason>[a-z_]+) refund fee$")
_MEMO_REFUND = re.compile(r"^(?P<reason>[a-z_]+) refund(?:: (?P<note>.*))?$", re.DOTALL)
_MEMO_SETTLEMENT = re.compile(r"^settlement (?P<day>\d{4}-\d{2}-\d{2})(?: (?P<reference>.*))?$")
_MEMO_WORDS = {
    "payment": gettext_lazy("card payment %(reference)s"),
    "redemption": gettext_lazy("service %(reference)s"),
    "refund": gettext_lazy("refund paid out, reference %(reference)s"),
    "dispute": gettext_lazy("dispute %(reference)s upheld"),
}


def audit_verb_label(kind: str, verb: str) -> str:
    """What happened, in words: a journal entry's code or an event's verb."""
    if kind == "journal":
        return str(JournalEntry.Code(verb).label) if verb in JournalEntry.Code.values else verb
    if verb in RegulatorAction.Action.values:
        return str(RegulatorAction.Action(verb).label)
    return str(OTHER_VERBS.get(verb, verb.replace("_", " ")))


def _choice_label(choices: Any, value: str) -> str:
    return str(choices(value).label) if value in choices.values else value


def audit_value_text(*, verb: str, field: str, value: Any) -> str:
    """One value of a change in words: none, yes/no, yuan, Beijing time, a state's name."""
    if value is None or value == "" or value == []:
        return _("none")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if field == "amount" and isinstance(value, int):
        return yuan(value)
    if field == "default_reasons" and isinstance(value, list):
        return "；".join(str(DEFAULT_REASONS.get(key, key)) for key in value)
    if field == "files" and isinstance(value, list):
        return "；".join(str(item) for item in value)
    if field == "changes_on" and isinstance(value, str):
        try:
            return beijing_date(date.fromisoformat(value))
        except ValueError:
            return value
    if field == "respond_by" and isinstance(value, str):
        try:
            return beijing_datetime(datetime.fromisoformat(value))
        except ValueError:
            return value
    if field == "state" and verb in _STATES_BY_VERB and isinstance(value, str):
        return _choice_label(_STATES_BY_VERB[verb], value)
    if field in _CHOICES_BY_FIELD and isinstance(value, str):
        return _choice_label(_CHOICES_BY_FIELD[field], value)
    return str(value)


def audit_changes_in_words(*, verb: str, changes: dict | None) -> list[dict[str, str]]:
    """``{field: [before, after]}`` as ``[{"label", "before", "after"}]`` in words."""
    rows = []
    for field, pair in (changes or {}).items():
        before, after = pair if isinstance(pair, list | tuple) and len(pair) == 2 else (None, pair)
        rows.append(
            {
                "field": field,
                "label": str(FIELD_LABELS.get(field, field.replace("_", " "))),
                "before": audit_value_text(verb=verb, field=field, value=before),
                "after": audit_value_text(verb=verb, field=field, value=after),
            }
        )
    return rows


def audit_reason_in_words(*, kind: str, verb: str, reason: str) -> str:
    """The reason (an event) or memo (a journal entry) in words; what a person typed stays as typed."""
    if not reason:
        return ""
    if kind == "action" and (match := _RISK_REASON.match(reason)):
        return _("The risk score reached %(score)s, at or above the high-risk threshold of %(threshold)s.") % {
            "score": match["score"],
            "threshold": match["threshold"],
        }
    if kind == "action" and verb in ("login_failed", "logout") and reason in _SIGN_IN_REASONS:
        return str(_SIGN_IN_REASONS[reason])
    if kind != "journal":
        return reason
    if match := _MEMO_FEE.match(reason):
        return _("refund fee (%(reason)s)") % {"reason": _choice_label(Refund.Reason, match["reason"])}
    if match := _MEMO_REFUND.match(reason):
        refund = _("refund (%(reason)s)") % {"reason": _choice_label(Refund.Reason, match["reason"])}
        return f"{refund}：{match['note']}" if match["note"] else refund
    if match := _MEMO_SETTLEMENT.match(reason):
        day = beijing_date(datetime.strptime(match["day"], "%Y-%m-%d").date())  # noqa: DTZ007 - a calendar day
        if match["reference"]:
            return _("settlement of %(day)s, reference %(reference)s") % {"day": day, "reference": match["reference"]}
        return _("settlement of %(day)s") % {"day": day}
    word, _space, reference = reason.partition(" ")
    if word in _MEMO_WORDS and reference:
        return str(_MEMO_WORDS[word]) % {"reference": reference}
    return reason


_TARGETS = {
    "action": gettext_lazy("measure %(ref)s"),
    "card": gettext_lazy("card %(ref)s"),
    "case": gettext_lazy("inspection case %(ref)s"),
    "complaint": gettext_lazy("complaint %(ref)s"),
    "dispute": gettext_lazy("dispute %(ref)s"),
    "filing": gettext_lazy("filing %(ref)s"),
    "merchant": gettext_lazy("merchant %(ref)s"),
    "operator_change": gettext_lazy("change of operator %(ref)s"),
    "refund": gettext_lazy("refund %(ref)s"),
    "report": gettext_lazy("audit report of merchant %(ref)s"),
}


_WHOLE_TARGETS = {
    "session": gettext_lazy("the pages"),
    "token": gettext_lazy("an API token"),
}


def audit_target_in_words(target: str) -> str:
    """What the line is about: ``card:<id>`` → "card 1a2b3c4d…", ``chain:3:12`` → "chain 3, entry 12"."""
    if target in _WHOLE_TARGETS:
        return str(_WHOLE_TARGETS[target])
    kind, _colon, ref = (target or "").partition(":")
    if kind == "chain" and ref.count(":") == 1:
        chain, seq = ref.split(":")
        return _("chain %(chain)s, entry %(seq)s") % {"chain": chain, "seq": seq}
    if kind in _TARGETS and ref:
        return str(_TARGETS[kind]) % {"ref": ref[:8] + ("…" if len(ref) > 8 else "")}
    return target or ""


def audit_actor_in_words(actor: str | None) -> str:
    """Who did it: a user's name, or the platform for a job (recorded as "system" or no one)."""
    return _("the platform (automatic)") if not actor or actor == "system" else actor


def audit_rows_in_words(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put ``actor``, and add ``verb_label``, ``reason_text`` and ``change_list``, in words to the rows."""
    for row in rows:
        row["actor"] = audit_actor_in_words(row["actor"])
        row["target_text"] = audit_target_in_words(row["target"])
        row["verb_label"] = audit_verb_label(row["kind"], row["verb"])
        row["reason_text"] = audit_reason_in_words(kind=row["kind"], verb=row["verb"], reason=row["reason"] or "")
        row["change_list"] = audit_changes_in_words(verb=row["verb"], changes=row["changes"])
    return rows
