"""The regulator's pages, mounted at ``/r/`` (config.urls)."""

from django.urls import path

from regulator import web, web_disputes

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
    path("disputes/", web_disputes.disputes, name="web-regulator-disputes"),
    path("disputes/<uuid:dispute_id>/", web_disputes.dispute_detail, name="web-regulator-dispute"),
    path("disputes/<uuid:dispute_id>/decide/", web_disputes.dispute_decide, name="web-regulator-dispute-decide"),
    path("disputes/evidence/<uuid:evidence_id>/", web_disputes.evidence_file, name="web-regulator-dispute-evidence"),
    path("audit-log/", web.audit_log, name="web-regulator-audit-log"),
    path("ledger/", web.ledger, name="web-regulator-ledger"),
    path("rules/", web.rules, name="web-regulator-rules"),
]
