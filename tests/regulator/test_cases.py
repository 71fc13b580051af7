"""Inspection cases (regulator.services.cases): every step, its audit line, the case's state machine
and its refusals, files checked by their content and kept with their SHA-256, the merchant's answer
to a request for documents, and the jurisdiction every read and step is scoped to."""

from __future__ import annotations

import threading

import pytest
from django.core.files.storage import default_storage
from django.db import connection

from core.errors import InvalidInput, NotFound
from notifications.models import Notification
from regulator.errors import (
    AssigneeNotAllowed,
    CaseClosed,
    CaseFileTooLarge,
    CaseFileTypeNotAllowed,
    DocumentRequestNotOpen,
    MeasureNotOfMerchant,
)
from regulator.models import AuditEvent, CaseFile, CaseFinding, CaseMeasure, DocumentRequest, InspectionCase
from regulator.selectors import cases as selectors
from regulator.selectors.jurisdiction import Jurisdiction
from regulator.services import cases as services
from regulator.services.actions import merchant_action_take
from tests.cards import builders
from tests.factories import UserFactory
from tests.regulator.cases_helpers import (
    JPEG,
    NOT_A_PDF,
    PDF,
    PNG,
    sha256,
    upload,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_in_tmp")]

REASON = "三周内投诉激增，疑似停止服务"


@pytest.fixture
def inspector(db):
    return UserFactory(role="regulator", username="inspector")


@pytest.fixture
def gym(db):
    return builders.merchant(name="阳光健身")


def open_case(regulator, merchant, reason: str = REASON) -> InspectionCase:
    return services.case_open(regulator=regulator, merchant_id=merchant.pk, reason=reason)


def verbs(case: InspectionCase) -> list[str]:
    return list(selectors.case_audit_trail(case=case).values_list("verb", flat=True))


# --- opening and assigning -----------------------------------------------------------------------


def test_a_case_opens_on_a_merchant_with_its_reason_and_an_audit_line(inspector, gym):
    case = open_case(inspector, gym)

    assert (case.state, case.merchant_id, case.reason, case.opened_by_id) == ("open", gym.pk, REASON, inspector.pk)
    (line,) = selectors.case_audit_trail(case=case)
    assert (line.verb, line.actor_id, line.merchant_id, line.target) == (
        "case_open",
        inspector.pk,
        gym.pk,
        f"case:{case.pk}",
    )
    assert line.reason == REASON and line.changes == {"state": [None, "open"]}


def test_a_case_needs_a_reason_and_an_existing_merchant(inspector, gym):
    with pytest.raises(InvalidInput) as refused:
        open_case(inspector, gym, reason="   ")
    assert "reason" in refused.value.errors
    with pytest.raises(NotFound):
        services.case_open(regulator=inspector, merchant_id="not-an-id", reason=REASON)
    assert not InspectionCase.objects.exists() and not AuditEvent.objects.exists()


def test_the_same_key_opens_one_case_however_often_it_is_sent(inspector, gym):
    first = services.case_open(regulator=inspector, merchant_id=gym.pk, reason=REASON, idempotency_key="k1")
    again = services.case_open(regulator=inspector, merchant_id=gym.pk, reason=REASON, idempotency_key="k1")
    other = services.case_open(regulator=inspector, merchant_id=gym.pk, reason=REASON, idempotency_key="k2")

    assert first == again != other
    assert InspectionCase.objects.count() == 2 and AuditEvent.objects.filter(verb="case_open").count() == 2


def test_the_case_is_assigned_to_a_regulator_covering_the_merchant_once(inspector, gym):
    colleague = UserFactory(role="regulator", username="colleague")
    case = open_case(inspector, gym)

    services.case_assign(regulator=inspector, case_id=case.pk, assignee="colleague")
    services.case_assign(regulator=inspector, case_id=case.pk, assignee="colleague")  # no change, no line

    case.refresh_from_db()
    assert case.assignee == colleague
    assert verbs(case) == ["case_open", "case_assign"]
    assert selectors.case_audit_trail(case=case).last().changes == {"assignee": [None, "colleague"]}


@pytest.mark.parametrize("who", ["consumer", "merchant", "missing", "inactive"])
def test_a_case_is_not_assigned_to_anyone_but_an_active_regulator(inspector, gym, who):
    names = {"consumer": "c1", "merchant": gym.user.username, "missing": "nobody", "inactive": "retired"}
    UserFactory(role="consumer", username="c1")
    UserFactory(role="regulator", username="retired", is_active=False)
    case = open_case(inspector, gym)

    with pytest.raises(AssigneeNotAllowed) as refused:
        services.case_assign(regulator=inspector, case_id=case.pk, assignee=names[who])

    assert refused.value.code == "assignee_not_allowed" and refused.value.status_code == 400
    assert refused.value.errors == {"assignee": [str(AssigneeNotAllowed.default_detail)]}
    case.refresh_from_db()
    assert case.assignee is None and verbs(case) == ["case_open"]


# --- jurisdiction ----------------------------------------------------------------------------------


def test_a_regulator_sees_and_acts_on_the_cases_of_its_jurisdiction_only(inspector, gym, jurisdictions):
    haidian = builders.merchant(district="海淀区")
    elsewhere = UserFactory(role="regulator", username="haidian-only")
    jurisdictions[elsewhere.pk] = Jurisdiction(districts=(haidian.district,))
    mine, theirs = open_case(inspector, gym), open_case(inspector, haidian)
    file = services.case_finding_add(
        regulator=inspector, case_id=mine.pk, text="账簿缺失", files=[upload("a.pdf", PDF)]
    ).files.get()

    assert list(selectors.cases_for_regulator(user=elsewhere)) == [theirs]
    assert set(selectors.cases_for_regulator(user=inspector)) == {mine, theirs}
    for read in (
        lambda: selectors.case_get(user=elsewhere, case_id=mine.pk),
        lambda: selectors.case_file_get(user=elsewhere, file_id=file.pk),
        lambda: open_case(elsewhere, gym),
        lambda: services.case_finding_add(regulator=elsewhere, case_id=mine.pk, text="x"),
        lambda: services.case_documents_request(regulator=elsewhere, case_id=mine.pk, text="x"),
        lambda: services.case_close(regulator=elsewhere, case_id=mine.pk, conclusion="x"),
    ):
        with pytest.raises(NotFound):
            read()
    assert verbs(mine) == ["case_open", "case_finding_add"]


def test_the_assignee_must_cover_the_merchant(inspector, gym, jurisdictions):
    elsewhere = UserFactory(role="regulator", username="haidian-only")
    jurisdictions[elsewhere.pk] = Jurisdiction(districts=(builders.merchant(district="海淀区").district,))
    case = open_case(inspector, gym)

    assert selectors.case_assignees(merchant=gym) == [inspector]
    with pytest.raises(AssigneeNotAllowed):
        services.case_assign(regulator=inspector, case_id=case.pk, assignee="haidian-only")


def test_opening_offers_the_flagged_merchants_first(inspector, gym):
    calm, risky = builders.merchant(name="安静洗衣"), builders.merchant(name="炫动健身")
    merchant_action_take(merchant_id=risky.pk, actor_id=inspector.pk, action="flag", reason="投诉")

    flagged, others = selectors.case_merchants_offered(user=inspector)

    assert flagged == [risky]
    assert set(others) == {gym, calm}


# --- findings and their files -------------------------------------------------------------------


def test_a_finding_keeps_its_files_with_the_type_found_in_them_their_size_and_sha256(inspector, gym):
    case = open_case(inspector, gym)

    finding = services.case_finding_add(
        regulator=inspector,
        case_id=case.pk,
        text="现场无教练，课程表已停止更新。",
        files=[upload("现场照片.jpg", JPEG, "image/jpeg"), upload("合同.PDF", PDF), upload("scan.pdf", PNG)],
    )

    rows = {row.name: row for row in finding.files.all()}
    assert set(rows) == {"现场照片.jpg", "合同.pdf", "scan.png"}  # a PNG named .pdf is a PNG
    for name, content, kind in (("现场照片.jpg", JPEG, "image/jpeg"), ("合同.pdf", PDF, "application/pdf")):
        row = rows[name]
        assert (row.content_type, row.size, row.sha256) == (kind, len(content), sha256(content))
        with default_storage.open(row.file.name, "rb") as stored:
            assert sha256(stored.read()) == row.sha256
        assert row.file.name.startswith(f"cases/{case.pk}/") and name not in row.file.name
    assert rows["scan.png"].content_type == "image/png"
    line = selectors.case_audit_trail(case=case).last()
    assert line.verb == "case_finding_add" and line.reason == "现场无教练，课程表已停止更新。"
    assert sorted(line.changes["files"][1]) == sorted(f"{name} sha256:{row.sha256}" for name, row in rows.items())


def test_a_file_named_pdf_that_is_not_one_is_refused_and_nothing_is_kept(inspector, gym, media_in_tmp):
    case = open_case(inspector, gym)

    with pytest.raises(CaseFileTypeNotAllowed) as refused:
        services.case_finding_add(
            regulator=inspector,
            case_id=case.pk,
            text="收据",
            files=[upload("receipt.pdf", PDF), upload("invoice.pdf", NOT_A_PDF, "application/pdf")],
        )

    assert refused.value.code == "case_file_type_not_allowed" and refused.value.status_code == 400
    assert "invoice.pdf" in refused.value.errors["files"][0]
    assert not CaseFinding.objects.exists() and not CaseFile.objects.exists()
    assert verbs(case) == ["case_open"]
    assert [path for path in media_in_tmp.rglob("*") if path.is_file()] == []


def test_an_empty_file_is_no_pdf(inspector, gym):
    case = open_case(inspector, gym)
    with pytest.raises(CaseFileTypeNotAllowed):
        services.case_finding_add(regulator=inspector, case_id=case.pk, text="x", files=[upload("empty.pdf", b"")])


def test_a_file_over_the_size_limit_is_refused(inspector, gym, settings):
    settings.CASE_FILE_MAX_BYTES = len(PDF) - 1
    case = open_case(inspector, gym)

    with pytest.raises(CaseFileTooLarge) as refused:
        services.case_finding_add(regulator=inspector, case_id=case.pk, text="x", files=[upload("big.pdf", PDF)])

    assert refused.value.code == "case_file_too_large" and refused.value.status_code == 400
    assert "big.pdf" in refused.value.errors["files"][0]
    settings.CASE_FILE_MAX_BYTES = len(PDF)  # at the limit: accepted
    services.case_finding_add(regulator=inspector, case_id=case.pk, text="x", files=[upload("big.pdf", PDF)])


def test_a_file_whose_size_the_request_understates_is_measured(inspector, gym, settings):
    settings.CASE_FILE_MAX_BYTES = 100
    lying = upload("small.pdf", PDF + bytes(200))
    lying.size = 10
    case = open_case(inspector, gym)

    with pytest.raises(CaseFileTooLarge):
        services.case_finding_add(regulator=inspector, case_id=case.pk, text="x", files=[lying])


def test_at_most_ten_files_go_with_one_step(inspector, gym):
    case = open_case(inspector, gym)
    with pytest.raises(InvalidInput) as refused:
        services.case_finding_add(
            regulator=inspector, case_id=case.pk, text="x", files=[upload(f"{n}.pdf", PDF) for n in range(11)]
        )
    assert "files" in refused.value.errors


def test_files_stored_by_a_step_that_fails_are_deleted(media_in_tmp):
    stored: list[str] = []
    with pytest.raises(RuntimeError), services._files_removed_on_failure(stored):
        stored.append(default_storage.save("cases/x/evidence.pdf", upload("evidence.pdf", PDF)))
        assert default_storage.exists(stored[0])
        raise RuntimeError("the transaction failed")
    assert not default_storage.exists(stored[0])


# --- documents asked of the merchant -----------------------------------------------------------------


def test_asking_for_documents_makes_the_case_wait_and_tells_the_merchant(inspector, gym):
    case = open_case(inspector, gym)

    asked = services.case_documents_request(regulator=inspector, case_id=case.pk, text="近三个月的课程签到表")

    case.refresh_from_db()
    assert case.state == "awaiting_documents" and asked.state == "open"
    notice = Notification.objects.get(user=gym.user)
    assert notice.kind == "documents_requested" and notice.event_key == f"documents_requested:{asked.pk}"
    assert "近三个月的课程签到表" in notice.body and f"/m/document-requests/{asked.pk}/" in notice.body
    assert selectors.case_audit_trail(case=case).last().changes["state"] == ["open", "awaiting_documents"]


def test_the_merchant_answers_and_the_case_opens_again_once_nothing_waits(inspector, gym):
    case = open_case(inspector, gym)
    first = services.case_documents_request(regulator=inspector, case_id=case.pk, text="签到表")
    second = services.case_documents_request(regulator=inspector, case_id=case.pk, text="租赁合同")

    services.case_documents_submit(
        merchant=gym, request_id=first.pk, files=[upload("签到表.png", PNG, "image/png")], note="三月至五月"
    )
    case.refresh_from_db()
    assert case.state == "awaiting_documents"  # the lease is still awaited

    services.case_documents_submit(merchant=gym, request_id=second.pk, note="租赁合同在房东处，下周补交。")
    case.refresh_from_db()
    first.refresh_from_db()
    assert case.state == "open"
    assert (first.state, first.answer, first.answered_by) == ("answered", "三月至五月", gym.user)
    (file,) = first.files.all()
    assert (file.uploaded_by, file.sha256, file.finding) == (gym.user, sha256(PNG), None)
    submitted = selectors.case_audit_trail(case=case).filter(verb="case_documents_submit")
    assert [line.actor_id for line in submitted] == [gym.user_id, gym.user_id]
    assert submitted.last().changes["state"] == ["awaiting_documents", "open"]


def test_a_merchant_answers_only_its_own_requests_and_only_once(inspector, gym):
    other = builders.merchant()
    case = open_case(inspector, gym)
    asked = services.case_documents_request(regulator=inspector, case_id=case.pk, text="签到表")

    with pytest.raises(NotFound):
        services.case_documents_submit(merchant=other, request_id=asked.pk, files=[upload("a.pdf", PDF)])
    with pytest.raises(NotFound):
        selectors.merchant_document_request_get(merchant=other, request_id=asked.pk)
    assert list(selectors.merchant_document_requests(merchant=other)) == []

    services.case_documents_submit(merchant=gym, request_id=asked.pk, files=[upload("a.pdf", PDF)])
    with pytest.raises(DocumentRequestNotOpen) as refused:
        services.case_documents_submit(merchant=gym, request_id=asked.pk, files=[upload("b.pdf", PDF)])
    assert refused.value.status_code == 409
    assert asked.files.count() == 1


def test_an_answer_needs_a_file_or_a_note(inspector, gym):
    case = open_case(inspector, gym)
    asked = services.case_documents_request(regulator=inspector, case_id=case.pk, text="签到表")
    with pytest.raises(InvalidInput) as refused:
        services.case_documents_submit(merchant=gym, request_id=asked.pk, note="  ")
    assert "files" in refused.value.errors
    asked.refresh_from_db()
    assert asked.state == "open"


def test_a_merchant_downloads_the_files_it_sent_and_no_other_file_of_the_case(inspector, gym):
    case = open_case(inspector, gym)
    evidence = services.case_finding_add(
        regulator=inspector, case_id=case.pk, text="x", files=[upload("a.pdf", PDF)]
    ).files.get()
    asked = services.case_documents_request(regulator=inspector, case_id=case.pk, text="签到表")
    services.case_documents_submit(merchant=gym, request_id=asked.pk, files=[upload("b.pdf", PDF)])
    sent = asked.files.get()

    assert selectors.case_file_get(user=gym.user, file_id=sent.pk) == sent
    assert selectors.case_file_get(user=inspector, file_id=evidence.pk) == evidence
    for user, file in ((gym.user, evidence), (builders.merchant().user, sent), (builders.consumer().user, sent)):
        with pytest.raises(NotFound):
            selectors.case_file_get(user=user, file_id=file.pk)


# --- measures ----------------------------------------------------------------------------------------


def test_an_action_against_the_merchant_is_linked_as_a_measure_once(inspector, gym):
    case = open_case(inspector, gym)
    action = merchant_action_take(merchant_id=gym.pk, actor_id=inspector.pk, action="freeze_sales", reason="停课")

    first = services.case_measure_link(regulator=inspector, case_id=case.pk, action_id=action.pk)
    again = services.case_measure_link(regulator=inspector, case_id=case.pk, action_id=action.pk)

    assert first == again and CaseMeasure.objects.count() == 1
    assert list(selectors.case_measures_linkable(case=case)) == []
    assert verbs(case) == ["case_open", "case_measure_link"]
    assert selectors.case_audit_trail(case=case).last().changes["measure"] == [None, "freeze_sales"]


def test_an_action_against_another_merchant_is_no_measure_of_the_case(inspector, gym):
    other = builders.merchant()
    case = open_case(inspector, gym)
    action = merchant_action_take(merchant_id=other.pk, actor_id=inspector.pk, action="flag", reason="x")

    with pytest.raises(MeasureNotOfMerchant) as refused:
        services.case_measure_link(regulator=inspector, case_id=case.pk, action_id=action.pk)
    assert refused.value.status_code == 400
    with pytest.raises(NotFound):
        services.case_measure_link(regulator=inspector, case_id=case.pk, action_id="missing")


# --- closing and the state machine -----------------------------------------------------------------


def test_closing_writes_the_conclusion_and_withdraws_the_requests_still_waiting(inspector, gym):
    case = open_case(inspector, gym)
    asked = services.case_documents_request(regulator=inspector, case_id=case.pk, text="签到表")

    services.case_close(regulator=inspector, case_id=case.pk, conclusion="商户已停业，责令退款。")

    case.refresh_from_db()
    asked.refresh_from_db()
    assert (case.state, case.conclusion, case.closed_by) == ("closed", "商户已停业，责令退款。", inspector)
    assert case.closed_at is not None and asked.state == "withdrawn"
    line = selectors.case_audit_trail(case=case).last()
    assert line.changes == {"state": ["awaiting_documents", "closed"], "requests_withdrawn": [None, 1]}
    with pytest.raises(DocumentRequestNotOpen):
        services.case_documents_submit(merchant=gym, request_id=asked.pk, files=[upload("a.pdf", PDF)])


def test_a_closed_case_takes_no_step_more(inspector, gym):
    case = open_case(inspector, gym)
    action = merchant_action_take(merchant_id=gym.pk, actor_id=inspector.pk, action="flag", reason="x")
    services.case_close(regulator=inspector, case_id=case.pk, conclusion="结案")

    for step in (
        lambda: services.case_close(regulator=inspector, case_id=case.pk, conclusion="again"),
        lambda: services.case_finding_add(regulator=inspector, case_id=case.pk, text="late"),
        lambda: services.case_documents_request(regulator=inspector, case_id=case.pk, text="late"),
        lambda: services.case_assign(regulator=inspector, case_id=case.pk, assignee="inspector"),
        lambda: services.case_measure_link(regulator=inspector, case_id=case.pk, action_id=action.pk),
    ):
        with pytest.raises(CaseClosed) as refused:
            step()
        assert (refused.value.code, refused.value.status_code) == ("case_closed", 409)
    assert verbs(case) == ["case_open", "case_close"]


def test_no_code_sets_a_case_state_directly(inspector, gym):
    case = InspectionCase.objects.get(pk=open_case(inspector, gym).pk)
    with pytest.raises(AttributeError):
        case.state = "closed"
    request = DocumentRequest.objects.get(
        pk=services.case_documents_request(regulator=inspector, case_id=case.pk, text="x").pk
    )
    with pytest.raises(AttributeError):
        request.state = "answered"


def test_every_step_writes_one_audit_line_in_order(inspector, gym):
    UserFactory(role="regulator", username="colleague")
    case = open_case(inspector, gym)
    services.case_assign(regulator=inspector, case_id=case.pk, assignee="colleague")
    services.case_finding_add(regulator=inspector, case_id=case.pk, text="发现", files=[upload("a.pdf", PDF)])
    asked = services.case_documents_request(regulator=inspector, case_id=case.pk, text="签到表")
    services.case_documents_submit(merchant=gym, request_id=asked.pk, files=[upload("b.jpg", JPEG, "image/jpeg")])
    action = merchant_action_take(merchant_id=gym.pk, actor_id=inspector.pk, action="flag", reason="x")
    services.case_measure_link(regulator=inspector, case_id=case.pk, action_id=action.pk)
    services.case_close(regulator=inspector, case_id=case.pk, conclusion="结案")

    assert verbs(case) == [
        "case_open",
        "case_assign",
        "case_finding_add",
        "case_documents_request",
        "case_documents_submit",
        "case_measure_link",
        "case_close",
    ]
    assert AuditEvent.objects.filter(target=f"case:{case.pk}").count() == 7


# --- two closes at once (PostgreSQL) ----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_regulators_closing_at_once_close_the_case_once(inspector, gym):
    case = open_case(inspector, gym)
    colleague = UserFactory(role="regulator", username="colleague")
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def close(regulator, conclusion):
        start.wait()
        try:
            services.case_close(regulator=regulator, case_id=case.pk, conclusion=conclusion)
            outcomes.append("closed")
        except CaseClosed:
            outcomes.append("case_closed")
        finally:
            connection.close()

    threads = [threading.Thread(target=close, args=(user, user.username)) for user in (inspector, colleague)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["case_closed", "closed"]
    assert verbs(case) == ["case_open", "case_close"]
