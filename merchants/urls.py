from django.urls import path

from merchants import api

urlpatterns = [
    path("merchant/balance", api.MerchantBalanceApi.as_view(), name="merchant-balance"),
    path("merchant/closure", api.MerchantClosureApi.as_view(), name="merchant-closure"),
    path("merchant/filing", api.MerchantFilingApi.as_view(), name="merchant-filing"),
    path("merchant/relocation", api.MerchantRelocationApi.as_view(), name="merchant-relocation"),
    path("merchant/relocation/cancel", api.MerchantRelocationCancelApi.as_view(), name="merchant-relocation-cancel"),
    path("merchant/operator-change", api.MerchantOperatorChangeApi.as_view(), name="merchant-operator-change"),
    path("filings/documents/<uuid:document_id>", api.FilingDocumentApi.as_view(), name="filing-document"),
    path("merchant/settlements", api.MerchantSettlementListApi.as_view(), name="merchant-settlements"),
]
