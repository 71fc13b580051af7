from django.urls import path

from regulator.api import LedgerVerifyApi, ReconciliationListApi

urlpatterns = [
    path("regulator/ledger/verify", LedgerVerifyApi.as_view(), name="regulator-ledger-verify"),
    path("regulator/reconciliations", ReconciliationListApi.as_view(), name="regulator-reconciliations"),
]
