from django.urls import path

from consumers import api, disputes_api
from merchants.api import MerchantCreateApi, ProductListCreateApi

urlpatterns = [
    path("consumers", api.ConsumerCreateApi.as_view(), name="consumer-create"),
    path("merchants", MerchantCreateApi.as_view(), name="merchant-create"),
    path("products", ProductListCreateApi.as_view(), name="products"),
    path("cards", api.CardListCreateApi.as_view(), name="cards"),
    path("cards/<uuid:card_id>", api.CardDetailApi.as_view(), name="card-detail"),
    path("cards/<uuid:card_id>/contract.pdf", api.CardContractApi.as_view(), name="card-contract"),
    path("cards/<uuid:card_id>/operator-consent", api.CardOperatorConsentApi.as_view(), name="card-operator-consent"),
    path("payments/<uuid:payment_id>/simulate", api.PaymentSimulateApi.as_view(), name="payment-simulate"),
    path("redemptions", api.RedemptionListCreateApi.as_view(), name="redemptions"),
    path("redemptions/<uuid:redemption_id>/confirm", api.RedemptionConfirmApi.as_view(), name="redemption-confirm"),
    path("redemptions/<uuid:redemption_id>/reject", api.RedemptionRejectApi.as_view(), name="redemption-reject"),
    path(
        "redemptions/<uuid:redemption_id>/dispute",
        disputes_api.RedemptionDisputeCreateApi.as_view(),
        name="redemption-dispute",
    ),
    path("disputes", disputes_api.DisputeListApi.as_view(), name="disputes"),
    path("disputes/<uuid:dispute_id>", disputes_api.DisputeDetailApi.as_view(), name="dispute-detail"),
    path(
        "disputes/<uuid:dispute_id>/evidence",
        disputes_api.DisputeEvidenceCreateApi.as_view(),
        name="dispute-evidence",
    ),
    path(
        "disputes/evidence/<uuid:evidence_id>",
        disputes_api.DisputeEvidenceFileApi.as_view(),
        name="dispute-evidence-file",
    ),
]
