from django.urls import path

from regulator.api import cases as case_views
from regulator.api import filings as filing_views
from regulator.api import merchants as merchant_views
from regulator.api import operator_changes as operator_change_views
from regulator.api import public as public_views
from regulator.api import refunds as refund_views
from regulator.api import reports as report_views
from regulator.api.exports import export_view
from regulator.api.ledger import LedgerVerifyApi, ReconciliationListApi
from regulator.api.me import RegulatorMeApi
from regulator.api.reports import MerchantAuditReportApi
from regulator.exports import FORMATS, NAMES
from regulator.ratelimit import public_rate_limited

urlpatterns = [
    path("regulator/me", RegulatorMeApi.as_view(), name="regulator-me"),
    path("regulator/ledger/verify", LedgerVerifyApi.as_view(), name="regulator-ledger-verify"),
    path("regulator/reconciliations", ReconciliationListApi.as_view(), name="regulator-reconciliations"),
    path("regulator/merchants", merchant_views.RegulatorMerchantListApi.as_view(), name="regulator-merchants"),
    path(
        "regulator/merchants/<str:merchant_id>/risk",
        merchant_views.MerchantRiskApi.as_view(),
        name="regulator-merchant-risk",
    ),
    path(
        "regulator/merchants/<str:merchant_id>/actions",
        merchant_views.MerchantActionCreateApi.as_view(),
        name="regulator-merchant-actions",
    ),
    path("regulator/actions/<str:action_id>", merchant_views.ActionDetailApi.as_view(), name="regulator-action"),
    path(
        "regulator/merchants/<uuid:merchant_id>/report.pdf",
        MerchantAuditReportApi.as_view(),
        name="regulator-merchant-report",
    ),
    path(
        "regulator/reports/periodic",
        report_views.PeriodicReportListApi.as_view(),
        name="regulator-periodic-reports",
    ),
    path(
        "regulator/reports/periodic/<uuid:report_id>",
        report_views.PeriodicReportDetailApi.as_view(),
        name="regulator-periodic-report",
    ),
    path(
        "regulator/reports/periodic/<uuid:report_id>.pdf",
        report_views.PeriodicReportPdfApi.as_view(),
        name="regulator-periodic-report-pdf",
    ),
    path(
        "regulator/reports/periodic/<uuid:report_id>.xlsx",
        report_views.PeriodicReportXlsxApi.as_view(),
        name="regulator-periodic-report-xlsx",
    ),
    path("regulator/audit-log", merchant_views.AuditLogApi.as_view(), name="regulator-audit-log"),
    path(
        "regulator/cards/<uuid:card_id>/refund",
        refund_views.RegulatorCardRefundApi.as_view(),
        name="regulator-card-refund",
    ),
    path("regulator/refunds", refund_views.RegulatorRefundListApi.as_view(), name="regulator-refunds"),
    path(
        "regulator/refunds/<uuid:refund_id>/retry",
        refund_views.RegulatorRefundRetryApi.as_view(),
        name="regulator-refund-retry",
    ),
    path("regulator/filings", filing_views.RegulatorFilingListApi.as_view(), name="regulator-filings"),
    path(
        "regulator/filings/<uuid:filing_id>", filing_views.RegulatorFilingDetailApi.as_view(), name="regulator-filing"
    ),
    path(
        "regulator/filings/<uuid:filing_id>/accept",
        filing_views.RegulatorFilingAcceptApi.as_view(),
        name="regulator-filing-accept",
    ),
    path(
        "regulator/filings/<uuid:filing_id>/return",
        filing_views.RegulatorFilingReturnApi.as_view(),
        name="regulator-filing-return",
    ),
    path("regulator/risk/compute", merchant_views.RiskComputeAllApi.as_view(), name="regulator-risk-compute"),
    path("regulator/cases", case_views.CaseListCreateApi.as_view(), name="regulator-cases"),
    path("regulator/cases/<uuid:case_id>", case_views.CaseDetailApi.as_view(), name="regulator-case"),
    path("regulator/cases/<uuid:case_id>/assign", case_views.CaseAssignApi.as_view(), name="regulator-case-assign"),
    path(
        "regulator/cases/<uuid:case_id>/findings",
        case_views.CaseFindingCreateApi.as_view(),
        name="regulator-case-findings",
    ),
    path(
        "regulator/cases/<uuid:case_id>/document-requests",
        case_views.CaseDocumentRequestCreateApi.as_view(),
        name="regulator-case-document-requests",
    ),
    path(
        "regulator/cases/<uuid:case_id>/measures",
        case_views.CaseMeasureCreateApi.as_view(),
        name="regulator-case-measures",
    ),
    path("regulator/cases/<uuid:case_id>/close", case_views.CaseCloseApi.as_view(), name="regulator-case-close"),
    path("regulator/cases/<uuid:case_id>/report.pdf", case_views.CaseReportApi.as_view(), name="regulator-case-report"),
    path("case-files/<uuid:file_id>", case_views.CaseFileApi.as_view(), name="case-file"),
    path(
        "merchant/document-requests",
        case_views.MerchantDocumentRequestListApi.as_view(),
        name="merchant-document-requests",
    ),
    path(
        "merchant/document-requests/<uuid:request_id>",
        case_views.MerchantDocumentRequestDetailApi.as_view(),
        name="merchant-document-request",
    ),
    path(
        "merchant/document-requests/<uuid:request_id>/submit",
        case_views.MerchantDocumentRequestSubmitApi.as_view(),
        name="merchant-document-request-submit",
    ),
    path(
        "regulator/operator-changes",
        operator_change_views.RegulatorOperatorChangeListApi.as_view(),
        name="regulator-operator-changes",
    ),
    path(
        "regulator/operator-changes/<uuid:change_id>",
        operator_change_views.RegulatorOperatorChangeDetailApi.as_view(),
        name="regulator-operator-change",
    ),
    path(
        "regulator/operator-changes/<uuid:change_id>/approve",
        operator_change_views.RegulatorOperatorChangeApproveApi.as_view(),
        name="regulator-operator-change-approve",
    ),
    path(
        "regulator/operator-changes/<uuid:change_id>/reject",
        operator_change_views.RegulatorOperatorChangeRejectApi.as_view(),
        name="regulator-operator-change-reject",
    ),
    path(
        "regulator/merchants/<uuid:merchant_id>/operator-change",
        operator_change_views.RegulatorMerchantOperatorChangeApi.as_view(),
        name="regulator-merchant-operator-change",
    ),
    path(
        "public/merchants",
        public_rate_limited(public_views.PublicMerchantListApi.as_view()),
        name="public-merchants",
    ),
    path(
        "public/merchants/<str:merchant_id>",
        public_rate_limited(public_views.PublicMerchantDetailApi.as_view()),
        name="public-merchant",
    ),
    *[
        path(f"regulator/exports/{name}.{fmt}", export_view(name, fmt), name=f"regulator-export-{name}-{fmt}")
        for name in NAMES
        for fmt in FORMATS
    ],
]
