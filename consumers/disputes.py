"""Disputes (API.md, Additions v1.1): a merchant contests a service its consumer rejected, both
parties add their evidence, the market regulator decides.

- ``dispute_open``: the merchant of a ``rejected`` redemption, within the rules profile's
  ``dispute_window_days`` of the rejection (else 409 ``dispute_window_closed``, naming the rule), with
  its reason and any files. One dispute per redemption: opening again returns it. A pass's check-in
  (it releases nothing) and a card that holds nothing any more cannot be contested
  (``redemption_not_disputable``). The consumer is told, with the deadline for their side.
- ``dispute_evidence_add``: either party adds text and files (PDF, JPEG, PNG by their bytes:
  ``core.uploads``) while the dispute is open.
- ``dispute_decide``: the regulator's ``upheld`` releases the redemption's share of the card's escrow
  to the merchant, once, as a confirmation would have (API.md, Redemptions: a stored-value card's
  ``floor(amount * price / face_value)`` with its face value used up, a session pack's
  ``floor(price / sessions)`` with a session used, the last one sweeping what is left); never more
  than the escrow left, nothing on a card used up since. It counts as the service received: a card in
  cooling-off becomes active. A merchant whose releases are frozen gets nothing (``merchant_frozen``:
  unfreeze first, or dismiss). ``dismissed`` ends it, nothing moves. Deciding again with the same
  outcome returns the dispute; with the other, ``dispute_not_open``.
- ``disputes_expire_due`` (beat): one not decided by ``decide_by`` (``dispute_decision_days`` after it
  was opened) is dismissed; every rule reads the clock itself, so from ``decide_by`` on it is refused
  a decision (``dispute_expired``) and no longer holds the card, whenever that job runs.
- ``disputes_end_for_refund``: a refund of every card of a merchant (its closing day, the regulator's
  ``order_refunds``) empties each card's escrow, so it first dismisses the card's open dispute (ended by
  ``refund``): the disputed share goes back to the consumer with the rest. A refund the consumer asks
  for, and the regulator's refund of one card, are refused while a dispute is open (``card_in_dispute``,
  ``consumers.selectors.card_has_open_dispute``); so is a transfer.

Lock order, as for every card service (``consumers.services``): card → redemption → dispute →
ledger accounts. ``card_change`` is the one way the card's totals change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from consumers import rules
from consumers.errors import (
    DisputeExpired,
    DisputeNotOpen,
    DisputeWindowClosed,
    RedemptionNotDisputable,
)
from consumers.models import Card, Consumer, Dispute, DisputeEvidence, Redemption
from consumers.selectors import disputes_visible_to
from consumers.services import _required, card_apply_clock, card_change, card_lock, card_release_post
from core import clock, sql
from core.errors import InvalidInput, NotFound
from core.idempotency import service_atomic
from core.rules import rule
from core.uploads import upload_name, upload_validate
from merchants.errors import MerchantFrozen
from merchants.models import Merchant, Product
from notifications.models import Kind
from notifications.services import Notice, notification_send, notifications_send_many

OUTCOMES = (Dispute.State.UPHELD, Dispute.State.DISMISSED)
REASON_MAX = 2000
TEXT_MAX = 5000
NOTE_MAX = 2000
FILES_PER_SUBMISSION = 5
FILES_PER_PARTY = 20
EXPIRE_CHUNK = 200


# --- evidence ---------------------------------------------------------------------------------


def _files_checked(files: Sequence[Any]) -> list[tuple[Any, str, str]]:
    """``(file, content_type, sha256)`` of each file, every one checked before anything is written."""
    if len(files) > FILES_PER_SUBMISSION:
        raise InvalidInput(
            errors={"files": [_("Attach at most %(count)s files at a time.") % {"count": FILES_PER_SUBMISSION}]}
        )
    return [(file, *upload_validate(file, max_bytes=settings.DISPUTE_EVIDENCE_MAX_BYTES)) for file in files]


def _evidence_write(
    *, dispute: Dispute, party: str, author_id: int, text: str, files: list[tuple[Any, str, str]]
) -> list[DisputeEvidence]:
    """The text (if any) and each file as a piece of evidence, in the caller's transaction."""
    if files:
        held = DisputeEvidence.objects.filter(dispute=dispute, party=party).exclude(file="").count()
        if held + len(files) > FILES_PER_PARTY:
            raise InvalidInput(
                errors={"files": [_("Each side may attach at most %(count)s files.") % {"count": FILES_PER_PARTY}]}
            )
    now = clock.now()
    written = []
    if text:
        written.append(
            DisputeEvidence.objects.create(dispute=dispute, party=party, author_id=author_id, text=text, created_at=now)
        )
    for file, content_type, sha256 in files:
        evidence = DisputeEvidence(
            dispute=dispute,
            party=party,
            author_id=author_id,
            name=upload_name(file),
            size=getattr(file, "size", 0) or 0,
            content_type=content_type,
            sha256=sha256,
            created_at=now,
        )
        evidence.file.save(upload_name(file), file, save=False)  # stored under a generated name
        evidence.save()
        written.append(evidence)
    return written


def _text(value: str, *, field: str, limit: int) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise InvalidInput(
            errors={field: [_("At most %(max)s characters.") % {"max": limit}]},
        )
    return value


# --- opening ----------------------------------------------------------------------------------


def _card_id_of_redemption(*, redemption_id: Any, merchant: Merchant) -> Any:
    """The card of one of the merchant's redemptions (unlocked: a redemption never changes card)."""
    try:
        card_id = (
            Redemption.objects.filter(pk=redemption_id, merchant=merchant).values_list("card_id", flat=True).first()
        )
    except (ValueError, DjangoValidationError) as exc:
        raise NotFound() from exc
    if card_id is None:
        raise NotFound()
    return card_id


def dispute_open(*, merchant: Merchant, redemption_id: Any, reason: str, files: Sequence[Any] = ()) -> Dispute:
    """The merchant contests a service its consumer rejected (see the module docstring)."""
    reason = _text(reason, field="reason", limit=REASON_MAX)
    if not reason:
        raise InvalidInput(errors={"reason": [_("Say why you hold that the service was given.")]})
    checked = _files_checked(files)
    card_id = _card_id_of_redemption(redemption_id=redemption_id, merchant=merchant)
    with service_atomic():
        card = card_lock(pk=card_id, merchant=merchant)
        redemption = Redemption.objects.select_for_update().get(pk=redemption_id)
        existing = Dispute.objects.filter(redemption=redemption).first()
        if existing is not None:
            return existing
        card_apply_clock(card)
        if redemption.state != Redemption.State.REJECTED or redemption.decided_at is None:
            raise RedemptionNotDisputable()
        if card.kind == Product.Kind.PERIOD_PASS:
            raise RedemptionNotDisputable(_("A pass's check-in releases nothing: there is nothing to contest."))
        if card.state not in Card.HOLDING or card.escrow_left <= 0:
            raise RedemptionNotDisputable(_("This card holds no money any more: there is nothing to contest."))
        if clock.now() >= rules.dispute_window_ends_at(redemption.decided_at):
            raise DisputeWindowClosed(rule=rule("dispute_window_days"))
        now = clock.now()
        dispute = Dispute(
            redemption=redemption,
            card=card,
            merchant=merchant,
            consumer_id=card.consumer_id,
            reason=reason,
            decide_by=rules.dispute_decide_by(now),
            created_at=now,
        )
        dispute.save(force_insert=True)
        _evidence_write(
            dispute=dispute, party=DisputeEvidence.Party.MERCHANT, author_id=merchant.user_id, text="", files=checked
        )
        notification_send(
            user_id=Consumer.objects.filter(pk=card.consumer_id).values_list("user_id", flat=True).get(),
            kind=Kind.DISPUTE_OPENED,
            event_key=f"dispute_opened:{dispute.pk}",
            params={
                "merchant": merchant.name,
                "decide_by_at": dispute.decide_by.isoformat(),
                "url": reverse("web-consumer-dispute", args=[dispute.pk]),
            },
            card_id=card.pk,
            merchant_id=merchant.pk,
            about_money=True,
        )
        return dispute


def dispute_evidence_add(*, user, dispute_id: Any, text: str = "", files: Sequence[Any] = ()) -> list[DisputeEvidence]:
    """A party (the dispute's merchant or consumer) adds text and files while the dispute is open;
    anyone else is told it does not exist."""
    text = _text(text, field="text", limit=TEXT_MAX)
    if not text and not files:
        raise InvalidInput(errors={"text": [_("Write what happened or attach a file.")]})
    checked = _files_checked(files)
    with transaction.atomic():
        try:
            dispute = disputes_visible_to(user=user).select_for_update(of=("self",)).get(pk=dispute_id)
        except (Dispute.DoesNotExist, ValueError, DjangoValidationError) as exc:
            raise NotFound() from exc
        if dispute.state != Dispute.State.OPEN:
            raise DisputeNotOpen()
        if not dispute.is_open:
            raise DisputeExpired(rule=rule("dispute_decision_days"))
        party = DisputeEvidence.Party.MERCHANT if user.role == "merchant" else DisputeEvidence.Party.CONSUMER
        return _evidence_write(dispute=dispute, party=party, author_id=user.pk, text=text, files=checked)


# --- the decision -----------------------------------------------------------------------------


def _share(card: Card, redemption: Redemption) -> tuple[int, dict[str, int]]:
    """What upholding releases (API.md, Redemptions, capped by the escrow left) and the use it takes
    off the card, ``column → delta``; the card in memory is brought along."""
    if card.state not in Card.HOLDING or card.escrow_left <= 0:
        return 0, {}  # used up (or ended) since the rejection: nothing left to release
    escrow = card.escrow_left
    if card.kind == Product.Kind.STORED_VALUE:
        balance = _required(card.balance)
        amount = min(_required(redemption.amount), balance)  # what is left of it, if less
        if amount <= 0:
            return 0, {}
        release = rules.stored_value_release(
            amount=amount, balance=balance, price=card.price, face_value=_required(card.face_value), escrow=escrow
        )
        card.balance = balance - amount
        return release, {"balance": -amount}
    if card.kind == Product.Kind.SESSION_PACK:
        if not card.sessions_remaining:
            return 0, {}
        release = rules.session_release(
            price=card.price,
            sessions=_required(card.sessions),
            sessions_remaining=card.sessions_remaining,
            escrow=escrow,
        )
        card.sessions_remaining -= 1
        return release, {"sessions_remaining": -1}
    return 0, {}  # a pass's check-in (never opened: dispute_open refuses them)


def _uphold(*, card: Card, redemption: Redemption, dispute: Dispute, actor_id: int | None) -> None:
    """Release the redemption's share of the locked card once, as its confirmation would have."""
    card_apply_clock(card)
    if card.merchant.releases_frozen:
        raise MerchantFrozen()
    release, add = _share(card, redemption)
    fields: list[str] = []
    posted = card_release_post(
        card=card,
        amount=release,
        idempotency_key=f"dispute:{dispute.pk}",
        actor_id=actor_id,
        memo=f"dispute {dispute.pk}",
    )
    if not posted:
        release, add = 0, {}  # this release was made before: the card already shows it
    if card.state in Card.REDEEMABLE:
        if card.first_service_at is None:
            card.first_service_at = clock.now()
            fields.append("first_service_at")
        if card.state == Card.State.COOLING_OFF:
            card.activate()  # the service was received: the cooling-off period ends, as with a confirmation
            fields.append("state")
    sql.execute_all([card_change(card, released=release, fields=fields, add=add).statement()])
    dispute.uphold()
    dispute.released = release


def _locked(dispute_id: Any) -> tuple[Card, Redemption, Dispute]:
    """Lock a dispute's card, its redemption and the dispute, in that order."""
    try:
        found = Dispute.objects.filter(pk=dispute_id).values_list("card_id", "redemption_id").first()
    except (ValueError, DjangoValidationError) as exc:
        raise NotFound() from exc
    if found is None:
        raise NotFound()
    card_id, redemption_id = found
    card = card_lock(pk=card_id)
    redemption = Redemption.objects.select_for_update().get(pk=redemption_id)
    dispute = Dispute.objects.select_for_update().get(pk=dispute_id)
    return card, redemption, dispute


def dispute_decide(*, dispute_id: Any, outcome: str, note: str = "", actor_id: int | None) -> tuple[Dispute, bool]:
    """The regulator decides an open dispute (see the module docstring): ``(dispute, whether it was
    decided now)``. In the caller's transaction if there is one (the regulator's audit line commits
    with it)."""
    if outcome not in OUTCOMES:
        raise InvalidInput(errors={"outcome": [_('Must be "upheld" or "dismissed".')]})
    note = _text(note, field="note", limit=NOTE_MAX)
    with transaction.atomic():
        card, redemption, dispute = _locked(dispute_id)
        if dispute.state != Dispute.State.OPEN:
            if dispute.state == outcome and dispute.ended_by == Dispute.EndedBy.DECISION:
                return dispute, False  # decided so already (a repeat, or the loser of a race): nothing moves twice
            raise DisputeNotOpen()
        if clock.now() >= dispute.decide_by:
            raise DisputeExpired(rule=rule("dispute_decision_days"))
        if outcome == Dispute.State.UPHELD:
            _uphold(card=card, redemption=redemption, dispute=dispute, actor_id=actor_id)
        else:
            dispute.dismiss()
        dispute.note = note
        dispute.ended_by = Dispute.EndedBy.DECISION
        dispute.decided_by_id = actor_id
        dispute.decided_at = clock.now()
        dispute.save(update_fields=["state", "released", "note", "ended_by", "decided_by", "decided_at"])
        _decided_notify([dispute])
        return dispute, True


def _decided_notify(disputes: Iterable[Dispute]) -> None:
    """Tell each dispute's consumer and merchant how it ended, once each (in the caller's transaction)."""
    disputes = list(disputes)
    if not disputes:
        return
    users = dict(Dispute.objects.filter(pk__in=[d.pk for d in disputes]).values_list("pk", "consumer__user_id"))
    merchants = {
        merchant.pk: merchant
        for merchant in Merchant.objects.filter(pk__in={d.merchant_id for d in disputes}).only("pk", "name", "user_id")
    }
    notices = []
    for dispute in disputes:
        merchant = merchants[dispute.merchant_id]
        params = {
            "outcome": dispute.state,
            "ended_by": dispute.ended_by,
            "merchant": merchant.name,
            "amount_fen": dispute.released,
        }
        for party, user_id, url in (
            ("consumer", users[dispute.pk], reverse("web-consumer-dispute", args=[dispute.pk])),
            ("merchant", merchant.user_id, reverse("web-merchant-dispute", args=[dispute.pk])),
        ):
            notices.append(
                Notice(
                    user_id=user_id,
                    event_key=f"dispute_decided:{dispute.pk}",
                    params={**params, "party": party, "url": url},
                    card_id=dispute.card_id,
                    merchant_id=dispute.merchant_id,
                )
            )
    notifications_send_many(kind=Kind.DISPUTE_DECIDED, notices=notices, about_money=True)


# --- the clock's job, and the platform's refunds ------------------------------------------------


def disputes_expire_due(*, chunk_size: int = EXPIRE_CHUNK) -> int:
    """Dismiss every open dispute past its ``decide_by`` (beat). A chunk per transaction, through the
    ``(state, decide_by)`` index; a dispute being decided right now (locked) is skipped and, if still
    open, taken next run. Safe to run any number of times. Returns how many were dismissed."""
    dismissed = 0
    while True:
        with transaction.atomic(durable=True):
            now = clock.now()
            due = list(
                Dispute.objects.select_for_update(skip_locked=True)
                .filter(state=Dispute.State.OPEN, decide_by__lte=now)
                .order_by("decide_by", "pk")[:chunk_size]
            )
            if not due:
                return dismissed
            for dispute in due:
                dispute.expire()
                dispute.ended_by = Dispute.EndedBy.TIMEOUT
                dispute.decided_at = now
            Dispute.objects.bulk_update(due, ["state", "ended_by", "decided_at"])  # these are dismissed
            _decided_notify(due)
            dismissed += len(due)


def disputes_end_for_refund(*, card_ids: Sequence[Any]) -> int:
    """Dismiss the open disputes of cards the platform is refunding in full (a closing merchant's
    day, the regulator's ``order_refunds``), in the caller's transaction, the cards locked by it:
    the refund empties each card's escrow, the disputed share with the rest. Returns how many."""
    if not card_ids:
        return 0
    now = clock.now()
    open_disputes = list(
        Dispute.objects.select_for_update()
        .filter(card_id__in=list(card_ids), state=Dispute.State.OPEN, decide_by__gt=now)
        .order_by("pk")
    )
    for dispute in open_disputes:
        dispute.dismiss()
        dispute.ended_by = Dispute.EndedBy.REFUND
        dispute.decided_at = now
    if open_disputes:
        Dispute.objects.bulk_update(open_disputes, ["state", "ended_by", "decided_at"])
        _decided_notify(open_disputes)
    return len(open_disputes)
