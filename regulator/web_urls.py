"""The regulator's pages, mounted at ``/r/`` (config.urls)."""

from django.urls import path

from regulator import web, web_cases

urlpatterns = [
    path("", web.dashboard, name="web-regulator-dashboard"),
    path("risk/compute/", web.risk_compute_all, name="web-regulator-risk-compute-all"),
    path("merchants/", web.merchant_list, name="web-regulator-merchants"),
    path("merchants/<uuid:merchant_id>/", web.merchant_detail, name="web-regulator-merchant"),
    path("merchants/<uuid:merchant_id>/actions/", web.merchant_action, name="web-regulator-merchant-action"),
    path("merchants/<uuid:merchant_id>/risk/", web.merchant_risk_compute, name="web-regulator-merchant-risk-compute"),
    path("merchants/<uuid:merchant_id>/report.pdf", web.merchant_report, name="web-regulator-merchant-report"),
    path("actions/<uuid:action_id>/", web.action_detail, name="web-regulator-action"),
    path("actions/<uuid:action_id>/status/", web.action_status, name="web-regulator-action-status"),
    path("complaints/", web.complaints, name="web-regulator-complaints"),
    path("complaints/stats/", web.complaint_statistics, name="web-regulator-complaint-stats"),
    path("complaints/<uuid:complaint_id>/close/", web.complaint_close_view, name="web-regulator-complaint-close"),
    path("cards/<uuid:card_id>/refund/", web.card_refund_view, name="web-regulator-card-refund"),
    path("refunds/", web.refunds_attention, name="web-regulator-refunds"),
    path("refunds/<uuid:refund_id>/retry/", web.refund_retry_view, name="web-regulator-refund-retry"),
    path("filings/", web.filings, name="web-regulator-filings"),
    path("filings/<uuid:filing_id>/", web.filing_detail, name="web-regulator-filing"),
    path("filings/<uuid:filing_id>/decide/", web.filing_decide, name="web-regulator-filing-decide"),
    path("operator-changes/", web.operator_changes, name="web-regulator-operator-changes"),
    path("operator-changes/<uuid:change_id>/", web.operator_change_detail, name="web-regulator-operator-change"),
    path(
        "operator-changes/<uuid:change_id>/decide/",
        web.operator_change_decide,
        name="web-regulator-operator-change-decide",
    ),
    path("audit-log/", web.audit_log, name="web-regulator-audit-log"),
    path("ledger/", web.ledger, name="web-regulator-ledger"),
    path("rules/", web.rules, name="web-regulator-rules"),
    path("cases/", web_cases.cases, name="web-regulator-cases"),
    path("cases/<uuid:case_id>/", web_cases.case_detail, name="web-regulator-case"),
    path("cases/<uuid:case_id>/assign/", web_cases.case_assign, name="web-regulator-case-assign"),
    path("cases/<uuid:case_id>/findings/", web_cases.case_finding, name="web-regulator-case-finding"),
    path(
        "cases/<uuid:case_id>/document-requests/",
        web_cases.case_documents_request,
        name="web-regulator-case-documents-request",
    ),
    path("cases/<uuid:case_id>/measures/", web_cases.case_measure, name="web-regulator-case-measure"),
    path("cases/<uuid:case_id>/close/", web_cases.case_close, name="web-regulator-case-close"),
    path("cases/<uuid:case_id>/report.pdf", web_cases.case_report, name="web-regulator-case-report"),
    path("reports/", web.periodic_reports, name="web-regulator-reports"),
    path("reports/<uuid:report_id>/", web.periodic_report_detail, name="web-regulator-report"),
    path("reports/<uuid:report_id>/status/", web.periodic_report_status, name="web-regulator-report-status"),
    path(
        "reports/<uuid:report_id>.pdf",
        web.periodic_report_file_download,
        {"kind": "pdf"},
        name="web-regulator-report-pdf",
    ),
    path(
        "reports/<uuid:report_id>.xlsx",
        web.periodic_report_file_download,
        {"kind": "xlsx"},
        name="web-regulator-report-xlsx",
    ),
]
