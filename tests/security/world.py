"""One small city for the security tests, built through the real services: two merchants (A and
B), two consumers each with a card (consumer 1 bought from A, consumer 2 from B), a settlement of
each merchant, and — around consumer 1's card — a card still in cooling-off, an unpaid card,
pending redemptions, complaints, a regulator action, inspection cases with their files and the
city's periodic report of February. Merchant A has given notice of a move and has an approved
change of operator (its holders are asked to consent); merchant B has a change of operator
awaiting the regulator. Consumer 1 also has a card whose rejected services merchant A
contests (two disputes open, one service left to contest). Consumer 1 has a stored-value card
from A with its top-ups (paid, and waiting for payment), and the two consumers, who have
different phone numbers, have offers of cards between them (open, and one accepted).

The parties are named by the role they play towards A's side of the city: ``consumer`` (the
owner), ``other_consumer``, ``merchant`` (A), ``other_merchant`` (B) and ``regulator`` (the whole
city's). Every merchant trades in one district (``DISTRICT``); two more regulators are scoped to a
district (``DISTRICT_ROLES``): ``district_regulator`` to that one, ``outside_regulator`` to another
where no merchant of the city trades. Where a regulator's call changes an object once and for all
(closing a complaint, refunding a card, deciding a filing, flagging), the district regulator has an
object of its own in the same district: ``ids["<key>@district_regulator"]``.

Everything is built at fixed times; the tests then run frozen at ``NOW``, so nothing expires
under them (a redemption waits REDEMPTION_TTL_MINUTES for its confirmation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile

from complaints.models import Complaint
from consumers.disputes import dispute_open
from consumers.models import Card, CardTransfer, Dispute, Redemption, TopUp
from consumers.services import (
    card_purchase,
    payment_simulate,
    redemption_confirm,
    redemption_reject,
    redemption_request,
)
from consumers.services_top_ups import top_up_request
from consumers.services_transfers import card_transfer_accept, card_transfer_offer
from core.models import User
from merchants.models import Filing, Merchant, OperatorChange, Product, Settlement
from merchants.services.filing import filing_submit
from merchants.services.operator_change import operator_change_request
from merchants.services.relocation import merchant_relocation_announce
from merchants.services.settlement import settlement_run
from notifications.models import Notification
from refunds.models import Refund
from refunds.services import refund_request
from regulator.models import CaseFile, DocumentRequest, InspectionCase, PeriodicReport, RegulatorAction
from regulator.reports.periods import MONTH, Period
from regulator.selectors.jurisdiction import CITY
from regulator.services import cases as case_services
from regulator.services.actions import merchant_action_take
from regulator.services.jurisdiction import regulator_scope_set
from regulator.services.operator_changes import regulator_operator_change_approve
from regulator.services.periodic_reports import periodic_report_generate, periodic_report_step
from tests.cards import builders
from tests.complaints.complaints_builders import app_complaint
from tests.factories import UserFactory
from tests.filing.helpers import require

ROLES = ("anonymous", "consumer", "other_consumer", "merchant", "other_merchant", "regulator")
DISTRICT_ROLES = ("district_regulator", "outside_regulator")
DISTRICT, OTHER_DISTRICT = "110105", "110108"  # 朝阳区, where the city's merchants trade; 海淀区, where none do
NOW = "2026-03-10 10:00 +0800"
BOUGHT = "2026-03-01 10:00 +0800"
SERVED = "2026-03-02 11:00 +0800"
SETTLED_DAY = date(2026, 3, 2)
SETTLED = "2026-03-03 02:00 +0800"
OTHER_PHONE = "13900002222"  # the other consumer's (transfers are offered by phone number)


@dataclass
class World:
    users: dict[str, User | None]
    merchant: Merchant
    other_merchant: Merchant
    product: Product
    card: Card  # consumer's, bought from merchant A, served once: active
    other_card: Card  # other consumer's, bought from merchant B
    card_to_refund: Card  # consumer's, bought from A at NOW: in cooling-off
    unpaid_card: Card  # consumer's, bought from A at NOW and not paid
    redemption: Redemption  # pending on ``card``
    redemption_to_confirm: Redemption
    redemption_to_reject: Redemption
    settlement: Settlement  # merchant A's
    complaint: Complaint  # consumer's, against merchant A
    complaint_to_respond: Complaint
    complaint_to_close: Complaint
    action: RegulatorAction  # the regulator's, on merchant B
    card_in_default: Card  # other consumer's, bought from B (flagged: in default), for the regulator to refund
    refund: Refund  # consumer's cooling-off refund of another card from A (pending, or paid once delivered)
    filing: Filing  # merchant A's filing (备案), submitted with one document, for the regulator to return
    filing_to_accept: Filing  # merchant B's, submitted, for the regulator to accept
    # Inspection cases (regulator.services.cases): on merchant A, with a finding's file, a request for
    # documents A answered with a file and one A has still to answer; one to close; one on merchant B
    # (the world's action's merchant), to link the action to as a measure; and a closed one.
    case: InspectionCase
    case_to_close: InspectionCase
    other_case: InspectionCase
    closed_case: InspectionCase
    document_request: DocumentRequest  # A's, waiting for it
    answered_request: DocumentRequest  # A's, answered with ``answer_file``
    finding_file: CaseFile  # the regulator's evidence on ``case``
    answer_file: CaseFile  # what merchant A sent
    report: PeriodicReport  # the city's report of February 2026, done (PDF and XLSX written)
    operator_change: OperatorChange  # merchant A's, approved: A's holders are asked to consent
    operator_change_to_approve: OperatorChange  # merchant B's, requested, for the regulator to approve
    disputed_card: Card  # consumer's, bought from A at NOW: services rejected, two of them contested
    dispute: Dispute  # merchant A's, open, with a PDF of evidence
    dispute_to_decide: Dispute  # merchant A's, open, for the regulator to decide
    redemption_to_dispute: Redemption  # rejected on ``disputed_card``, not contested: for merchant A to contest
    card_to_transfer: Card  # consumer's, from A, active: for the consumer to offer
    transfer: CardTransfer  # consumer's open offer of another card from A to the other consumer
    transfer_to_accept: CardTransfer  # another such offer, for the other consumer to accept
    transfer_to_decline: CardTransfer  # another, for the other consumer to decline
    transfer_to_cancel: CardTransfer  # another, for the consumer to withdraw
    transfer_accepted: CardTransfer  # a card from A the consumer gave the other consumer
    incoming_transfer: CardTransfer  # the other consumer's open offer of their card from B to the consumer
    stored_card: Card  # consumer's stored-value card from A, active
    top_up: TopUp  # of stored_card, paid at NOW: in its cooling-off period
    top_up_to_refund: TopUp  # another such, for the consumer to return
    unpaid_top_up: TopUp  # another, waiting for its payment
    ids: dict[str, str] = field(default_factory=dict)


def _serve(card: Card) -> None:
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)


def _district_regulator(district: str) -> User:
    user = UserFactory(role="regulator")
    regulator_scope_set(user=user, districts=[district])
    return user


def _filing_submitted(shop: Merchant) -> Filing:
    require(shop)  # the balance line met, as the daily check finds it
    document = SimpleUploadedFile("营业执照.pdf", b"%PDF-1.4 matrix", content_type="application/pdf")
    return filing_submit(
        merchant=shop,
        legal_representative="王芳",
        contact_phone="13800001111",
        deposit_bank="北京银行朝阳支行",
        documents=[document],
    )


def build_world() -> World:
    """The city; call it frozen at ``NOW``."""
    merchant, other_merchant = builders.merchant(district="朝阳区"), builders.merchant(district="朝阳区")
    consumer, other_consumer = builders.consumer(), builders.consumer(phone=OTHER_PHONE)
    regulator = UserFactory(role="regulator")
    district_regulator, outside_regulator = _district_regulator(DISTRICT), _district_regulator(OTHER_DISTRICT)
    product = builders.session_pack(merchant, price=100_000, sessions=10)
    other_product = builders.session_pack(other_merchant, price=50_000, sessions=5)

    stored = builders.stored_value(merchant, price=90_000, face_value=100_000, unit_price=5_000)
    with time_machine.travel(BOUGHT, tick=False):
        card = builders.paid_card(product, consumer)
        other_card = builders.paid_card(other_product, other_consumer)
        # Cards past their cooling-off period by NOW, for transfers and top-ups.
        to_transfer = [builders.paid_card(product, consumer) for _ in range(6)]
        stored_card = builders.paid_card(stored, consumer)
    with time_machine.travel(SERVED, tick=False):
        _serve(card)
        _serve(other_card)
    with time_machine.travel(SETTLED, tick=False):
        settlement_run(day=SETTLED_DAY)

    # Now: frozen by the caller.
    card_to_refund = builders.paid_card(product, consumer)
    unpaid_card = card_purchase(consumer=consumer, product_id=product.pk)
    pending = [redemption_request(merchant=merchant, card_id=card.pk) for _ in range(3)]
    complaints = [app_complaint(consumer, merchant) for _ in range(3)]
    action = merchant_action_take(
        merchant_id=other_merchant.pk, actor_id=regulator.pk, action="flag", reason="many complaints"
    )
    card_in_default = builders.paid_card(other_product, other_consumer)
    refund = refund_request(
        consumer=consumer, card_id=builders.paid_card(product, consumer).pk, reason=Refund.Reason.COOLING_OFF
    )

    offers = [card_transfer_offer(consumer=consumer, card_id=c.pk, to_phone=OTHER_PHONE) for c in to_transfer[1:]]
    card_transfer_accept(consumer=other_consumer, transfer_id=offers[4].pk)
    incoming = card_transfer_offer(consumer=other_consumer, card_id=other_card.pk, to_phone=consumer.phone)
    top_ups = [top_up_request(consumer=consumer, card_id=stored_card.pk, amount=9_000) for _ in range(3)]
    for paid in top_ups[:2]:
        payment_simulate(consumer=consumer, payment_id=paid.pk, outcome="succeeded")

    filings = [_filing_submitted(shop) for shop in (merchant, other_merchant)]
    # The district regulator's own objects for the calls that change one for good (see above).
    third, fourth = builders.merchant(district="朝阳区"), builders.merchant(district="朝阳区")
    own = {
        "merchant_to_flag": third,
        "filing_to_accept": _filing_submitted(third),
        "filing": _filing_submitted(fourth),
        "card_in_default": builders.paid_card(other_product, other_consumer),
        "complaint_to_close": app_complaint(consumer, merchant),
    }

    case = case_services.case_open(regulator=regulator, merchant_id=merchant.pk, reason="投诉集中，疑似停课")
    finding = case_services.case_finding_add(
        regulator=regulator,
        case_id=case.pk,
        text="现场检查：门店照常营业，课程表已张贴。",
        files=[SimpleUploadedFile("现场记录.pdf", b"%PDF-1.4 matrix", content_type="application/pdf")],
    )
    answered_request = case_services.case_documents_request(regulator=regulator, case_id=case.pk, text="近三个月签到表")
    case_services.case_documents_submit(
        merchant=merchant,
        request_id=answered_request.pk,
        files=[SimpleUploadedFile("签到表.png", b"\x89PNG\r\n\x1a\n matrix", content_type="image/png")],
        note="见附件",
    )
    document_request = case_services.case_documents_request(regulator=regulator, case_id=case.pk, text="场地租赁合同")
    case_to_close = case_services.case_open(regulator=regulator, merchant_id=merchant.pk, reason="复查")
    own["case_to_close"] = case_services.case_open(regulator=regulator, merchant_id=third.pk, reason="复查")
    other_case = case_services.case_open(regulator=regulator, merchant_id=other_merchant.pk, reason="投诉集中")
    closed_case = case_services.case_open(regulator=regulator, merchant_id=merchant.pk, reason="例行检查")
    case_services.case_close(regulator=regulator, case_id=closed_case.pk, conclusion="未发现问题，结案。")

    report = periodic_report_generate(jurisdiction=CITY, period=Period(MONTH, 2026, 2))
    while periodic_report_step(report_id=report.pk):  # the worker's steps, here and now
        pass
    report.refresh_from_db()

    # Merchant A moves on 15 April and changes hands on 20 April; B asks to change hands too.
    merchant_relocation_announce(
        merchant=merchant, moves_on=date(2026, 4, 15), address="望京街 9 号", district="朝阳区"
    )
    changes = [
        operator_change_request(
            merchant_id=shop.pk,
            new_operator_name=f"{shop.name}（新）",
            new_license_number=builders.license_number(800_000 + n),
            changes_on=date(2026, 4, 20),
            requested_by=shop.user,
            reason="店铺转让",
        )
        for n, shop in enumerate((merchant, other_merchant))
    ]
    regulator_operator_change_approve(regulator=regulator, change_id=changes[0].pk, note="材料齐全")
    changes[0].refresh_from_db()
    own["operator_change_to_approve"] = operator_change_request(
        merchant_id=third.pk,
        new_operator_name=f"{third.name}（新）",
        new_license_number=builders.license_number(800_010),
        changes_on=date(2026, 4, 20),
        requested_by=third.user,
        reason="店铺转让",
    )

    disputed_card = builders.paid_card(product, consumer)
    rejected = []
    for _ in range(3):
        started = redemption_request(merchant=merchant, card_id=disputed_card.pk)
        rejected.append(redemption_reject(consumer=consumer, redemption_id=started.pk))
    evidence = SimpleUploadedFile("签到表.pdf", b"%PDF-1.4 matrix evidence", content_type="application/pdf")
    dispute = dispute_open(
        merchant=merchant, redemption_id=rejected[0].pk, reason="持卡人当天已签到。", files=[evidence]
    )
    dispute_to_decide = dispute_open(merchant=merchant, redemption_id=rejected[1].pk, reason="门店监控可以证明。")

    world = World(
        users={
            "anonymous": None,
            "consumer": consumer.user,
            "other_consumer": other_consumer.user,
            "merchant": merchant.user,
            "other_merchant": other_merchant.user,
            "regulator": regulator,
            "district_regulator": district_regulator,
            "outside_regulator": outside_regulator,
        },
        merchant=merchant,
        other_merchant=other_merchant,
        product=product,
        card=builders.fresh(card),
        other_card=builders.fresh(other_card),
        card_to_refund=card_to_refund,
        unpaid_card=unpaid_card,
        redemption=pending[0],
        redemption_to_confirm=pending[1],
        redemption_to_reject=pending[2],
        settlement=Settlement.objects.get(merchant=merchant),
        complaint=complaints[0],
        complaint_to_respond=complaints[1],
        complaint_to_close=complaints[2],
        action=action,
        card_in_default=card_in_default,
        refund=refund,
        filing=filings[0],
        filing_to_accept=filings[1],
        case=case,
        case_to_close=case_to_close,
        other_case=other_case,
        closed_case=closed_case,
        document_request=document_request,
        answered_request=answered_request,
        finding_file=finding.files.get(),
        answer_file=answered_request.files.get(),
        report=report,
        operator_change=changes[0],
        operator_change_to_approve=changes[1],
        disputed_card=disputed_card,
        dispute=dispute,
        dispute_to_decide=dispute_to_decide,
        redemption_to_dispute=rejected[2],
        card_to_transfer=to_transfer[0],
        transfer=offers[0],
        transfer_to_accept=offers[1],
        transfer_to_decline=offers[2],
        transfer_to_cancel=offers[3],
        transfer_accepted=offers[4],
        incoming_transfer=incoming,
        stored_card=builders.fresh(stored_card),
        top_up=top_ups[0],
        top_up_to_refund=top_ups[1],
        unpaid_top_up=top_ups[2],
    )
    world.ids = {
        name: str(getattr(world, name).pk)
        for name in (
            "merchant", "other_merchant", "product", "card", "other_card", "card_to_refund", "unpaid_card",
            "redemption", "redemption_to_confirm", "redemption_to_reject", "settlement", "complaint",
            "complaint_to_respond", "complaint_to_close", "action", "card_in_default", "refund",
            "filing", "filing_to_accept", "case", "case_to_close", "other_case", "closed_case",
            "document_request", "answered_request", "finding_file", "answer_file", "report",
            "operator_change", "operator_change_to_approve", "disputed_card", "dispute", "dispute_to_decide",
            "redemption_to_dispute",
            "card_to_transfer", "transfer", "transfer_to_accept",
            "transfer_to_decline", "transfer_to_cancel", "transfer_accepted", "incoming_transfer", "stored_card",
            "top_up", "top_up_to_refund", "unpaid_top_up",
        )
    }  # fmt: skip
    world.ids["merchant_to_flag"] = world.ids["merchant"]
    world.ids.update({f"{key}@district_regulator": str(thing.pk) for key, thing in own.items()})
    world.ids["unpaid_payment"] = str(unpaid_card.payment.pk)
    world.ids["complainant"] = str(consumer.pk)  # the consumer (a Consumer) who complained about merchant A
    world.ids["document"] = str(filings[0].documents.get().pk)
    world.ids["evidence"] = str(dispute.evidence.get().pk)
    # the consumer's notice of the service waiting for them (notifications.Notification)
    world.ids["notification"] = str(
        Notification.objects.filter(user=consumer.user, event_key=f"service_requested:{pending[0].pk}").get().pk
    )
    return world
