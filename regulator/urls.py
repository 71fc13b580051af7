from django.urls import path

from regulator.api import LedgerVerifyApi

urlpatterns = [
    path("regulator/ledger/verify", LedgerVerifyApi.as_view(), name="regulator-ledger-verify"),
]
