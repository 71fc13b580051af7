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
    path("cards/<uuid:card_id>/top-ups", api.CardTopUpListCreateApi.as_view(), name="card-top-ups"),
    path("card-top-ups/<uuid:top_up_id>", api.TopUpDetailApi.as_view(), name="card-top-up-detail"),
    path("card-top-ups/<uuid:top_up_id>/annex.pdf", api.TopUpAnnexApi.as_view(), name="card-top-up-annex"),
    path("cards/<uuid:card_id>/transfers", api.CardTransferCreateApi.as_view(), name="card-transfer-create"),
    path("card-transfers", api.CardTransferListApi.as_view(), name="card-transfers"),
    path("card-transfers/<uuid:transfer_id>", api.CardTransferDetailApi.as_view(), name="card-transfer-detail"),
    path("card-transfers/<uuid:transfer_id>/accept", api.CardTransferAcceptApi.as_view(), name="card-transfer-accept"),
    path(
        "card-transfers/<uuid:transfer_id>/decline", api.CardTransferDeclineApi.as_view(), name="card-transfer-decline"
    ),
    path("card-transfers/<uuid:transfer_id>/cancel", api.CardTransferCancelApi.as_view(), name="card-transfer-cancel"),
    path(
        "card-transfers/<uuid:transfer_id>/contract.pdf",
        api.CardTransferContractApi.as_view(),
        name="card-transfer-contract",
    ),
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
