"""The report of one inspection case as a PDF (监督检查案件报告; API.md, Additions v1.1:
``GET /api/v1/regulator/cases/{id}/report.pdf``).

What the report holds, in order: the case (merchant, licence, state, who opened it and when, the
inspector, the reason); every finding with its files (name, type, size and SHA-256, so that a file
handed over later can be checked against the record); the requests for documents, the merchant's
answers and files; the measures linked (the regulator's actions against the merchant); the
conclusion; and the case's audit trail, every step with who took it and when.

The layout is the PDF foundation's (``core.pdf``: the embedded CJK font, A4, ruled tables,
"第 n 页 / 共 N 页"), as the merchant's audit report (``regulator.reports.audit``). Texts people wrote
(reason, findings, requests, answers, conclusion) are paragraphs, which break across pages however
long; table cells hold only short texts. Times are Beijing time.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from django.template.defaultfilters import filesizeformat
from django.utils import translation
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer

from core import clock
from core.formatting import beijing_date, beijing_datetime, beijing_time
from core.pdf import BODY, HEADING, NOTE, SUBTITLE, WIDTH, document, p, page_canvas, pairs_table, ruled_table
from core.pdf import TITLE as TITLE_STYLE
from merchants.registry import district_name
from regulator.models import AuditEvent, CaseFile, CaseFinding, CaseMeasure, DocumentRequest, InspectionCase
from regulator.reports.names import VERB_NAMES
from regulator.selectors.audit import audit_changes_in_words, audit_verb_label
from regulator.selectors.cases import (
    case_audit_trail,
    case_document_requests,
    case_findings,
    case_get,
    case_measures,
)

TITLE = "监督检查案件报告"
CASE_STATE_NAMES = {
    InspectionCase.State.OPEN: "检查中",
    InspectionCase.State.AWAITING_DOCUMENTS: "待商户提交材料",
    InspectionCase.State.CLOSED: "已结案",
}
REQUEST_STATE_NAMES = {
    DocumentRequest.State.OPEN: "待商户提交",
    DocumentRequest.State.ANSWERED: "商户已提交",
    DocumentRequest.State.WITHDRAWN: "已撤回（结案）",
}
ACTION_STATE_NAMES = {"queued": "排队中", "running": "执行中", "done": "已完成", "failed": "失败"}
TYPE_NAMES = {"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG"}
CELL_MAX = 200  # characters of a reason in a table cell; the texts themselves are printed in full above

_CELL = ParagraphStyle("case_cell", parent=BODY, fontSize=8, leading=10.5)
_HASH = ParagraphStyle("case_hash", parent=_CELL, fontSize=7, leading=9)
_ITEM = ParagraphStyle("case_item", parent=BODY, fontSize=10.5, leading=15, spaceBefore=3 * mm, keepWithNext=1)


def _cell(text: str, style: ParagraphStyle = _CELL) -> Paragraph:
    return Paragraph(escape(text), style)


def _short(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= CELL_MAX else text[: CELL_MAX - 1] + "…"


def _moment(moment) -> str:
    return beijing_datetime(moment, language="zh-hans") if moment else "无"


def _who(user) -> str:
    return user.username if user is not None else "无"


def _paragraphs(text: str) -> list[Flowable]:
    """What a person wrote, line by line, escaped."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return [p(escape(line)) for line in lines] or [p("无")]


def _files(rows: list[CaseFile]) -> list[Flowable]:
    if not rows:
        return [p("未附文件。", NOTE)]
    table = ruled_table(
        ["文件名", "类型", "大小", "上传人", "SHA-256"],
        [
            [
                _cell(row.name),
                TYPE_NAMES.get(row.content_type, row.content_type),
                filesizeformat(row.size),
                _cell(row.uploaded_by.username),
                _cell(row.sha256, _HASH),
            ]
            for row in rows
        ],
        [40 * mm, 12 * mm, 18 * mm, 22 * mm, WIDTH - 92 * mm],
        right=9,
    )
    return [Spacer(0, 1.5 * mm), table]


def _case(case: InspectionCase) -> list[Flowable]:
    merchant = case.merchant
    pairs = [
        ("案件编号", str(case.pk)),
        ("案件状态", CASE_STATE_NAMES.get(case.state, case.state)),
        ("被检查商户", merchant.name),
        ("统一社会信用代码", merchant.license_number),
        ("所在区", district_name(merchant.district, "zh-hans")),
        ("经营地址", merchant.address),
        ("立案人", case.opened_by.username),
        ("立案时间", _moment(case.created_at)),
        ("承办检查员", _who(case.assignee)),
        ("结案时间", _moment(case.closed_at)),
    ]
    return [pairs_table(pairs), p("立案理由", HEADING), *_paragraphs(case.reason)]


def _findings(findings: list[CaseFinding]) -> list[Flowable]:
    if not findings:
        return [p("尚无检查发现。")]
    story: list[Flowable] = []
    for number, finding in enumerate(findings, start=1):
        story.append(
            p(f"发现 {number}　{_moment(finding.created_at)}　记录人 {escape(finding.author.username)}", _ITEM)
        )
        story += _paragraphs(finding.text)
        story += _files(list(finding.files.all()))
    return story


def _requests(requests: list[DocumentRequest]) -> list[Flowable]:
    if not requests:
        return [p("未向商户调取材料。")]
    story: list[Flowable] = []
    for number, request in enumerate(requests, start=1):
        state = REQUEST_STATE_NAMES.get(request.state, request.state)
        story.append(
            p(
                f"调取 {number}　{_moment(request.created_at)}　{escape(request.requested_by.username)}　{state}",
                _ITEM,
            )
        )
        story += [p("要求提交：", NOTE), *_paragraphs(request.text)]
        if request.state == DocumentRequest.State.ANSWERED:
            story.append(p(f"商户于 {_moment(request.answered_at)} 提交：", NOTE))
            if request.answer:
                story += _paragraphs(request.answer)
            story += _files(list(request.files.all()))
    return story


def _measures(measures: list[CaseMeasure]) -> list[Flowable]:
    if not measures:
        return [p("未关联监管措施。")]
    rows = [
        [
            _moment(measure.action.created_at),
            _cell(VERB_NAMES.get(measure.action.action, measure.action.action)),
            _cell(_short(measure.action.reason)),
            ACTION_STATE_NAMES.get(measure.action.state, measure.action.state),
            _cell(f"{measure.linked_by.username} {_moment(measure.linked_at)}"),
        ]
        for measure in measures
    ]
    widths = [26 * mm, 24 * mm, WIDTH - 118 * mm, 18 * mm, 50 * mm]
    return [ruled_table(["采取时间", "措施", "理由", "状态", "关联人及时间"], rows, widths, right=9)]


def _conclusion(case: InspectionCase) -> list[Flowable]:
    if case.state != InspectionCase.State.CLOSED:
        return [p("案件尚未结案。")]
    return [
        p(f"{escape(_who(case.closed_by))} 于 {_moment(case.closed_at)} 结案。", NOTE),
        *_paragraphs(case.conclusion),
    ]


def _change_text(verb: str, changes: dict[str, Any]) -> str:
    parts = []
    for field, pair in changes.items():
        if field in ("finding", "document_request", "action"):
            continue  # ids: the sections above show the things themselves
        if field == "files":
            files = pair[1] if isinstance(pair, list | tuple) and len(pair) == 2 else pair
            parts.append(f"附文件 {len(files or [])} 个")
            continue
        for change in audit_changes_in_words(verb=verb, changes={field: pair}):
            parts.append(f"{change['label']}：{change['before']} → {change['after']}")
    return "；".join(parts) or "—"


def _trail(events: list[AuditEvent]) -> list[Flowable]:
    with translation.override("zh-hans"):
        rows = [
            [
                _moment(event.created_at),
                _cell(VERB_NAMES.get(event.verb) or audit_verb_label("action", event.verb)),
                _cell(event.actor.username if event.actor else event.actor_label),
                _cell(_short(event.reason) or "—"),
                _cell(_change_text(event.verb, event.changes)),
            ]
            for event in events
        ]
    widths = [26 * mm, 24 * mm, 22 * mm, (WIDTH - 72 * mm) / 2, (WIDTH - 72 * mm) / 2]
    return [ruled_table(["时间", "步骤", "操作人", "说明", "变更"], rows, widths, right=9)]


def case_report_pdf(*, user, case_id) -> bytes:
    """The report of case ``case_id`` (``NotFound`` if it is missing or outside the jurisdiction of
    ``user``, who is named on the report as the one who made it): an A4 PDF."""
    case = case_get(user=user, case_id=case_id)
    findings = list(case_findings(case=case))
    requests = list(case_document_requests(case=case))
    measures = list(case_measures(case=case))
    events = list(case_audit_trail(case=case))
    generated_at = clock.now()
    who = user.get_username() or "系统"
    merchant = case.merchant

    buffer = io.BytesIO()
    doc = document(buffer, title=f"{TITLE} {merchant.name}", subject=f"{merchant.name} {case.pk}")
    story: list[Flowable] = [
        p(TITLE, TITLE_STYLE),
        p(f"{escape(merchant.name)}　统一社会信用代码 {merchant.license_number}", SUBTITLE),
        p(f"由 {escape(who)} 于 {beijing_time(generated_at)} 生成", SUBTITLE),
        Spacer(0, 4 * mm),
        p("一、案件概况", HEADING),
        *_case(case),
        p(f"二、检查发现（{len(findings)} 项）", HEADING),
        *_findings(findings),
        p(f"三、向商户调取材料（{len(requests)} 次）", HEADING),
        *_requests(requests),
        p(f"四、监管措施（{len(measures)} 项）", HEADING),
        *_measures(measures),
        p("五、结论", HEADING),
        *_conclusion(case),
        p(f"六、案件记录（{len(events)} 条）", HEADING),
        *_trail(events),
        Spacer(0, 4 * mm),
        p(
            f"本报告由 {escape(who)} 于 {beijing_time(generated_at)} 生成，数据截至生成时刻；时间均为北京时间。"
            "文件的 SHA-256 为上传时对文件内容计算的摘要，可用于核对文件未被改动。",
            NOTE,
        ),
    ]
    footer = f"{TITLE}　{merchant.name}　{beijing_date(clock.local_date(generated_at), language='zh-hans')}"
    doc.build(story, canvasmaker=page_canvas(footer))
    return buffer.getvalue()
