"""The refunds app's API routes, under ``/api/v1/`` (config/urls.py): a card's refund, the holder's
statement of a card, and the merchant's settlement statement, which lists its cards' refunds."""

from django.urls import path

from refunds import api

urlpatterns = [
    path("cards/<uuid:card_id>/refunds", api.CardRefundCreateApi.as_view(), name="card-refunds"),
    path("cards/<uuid:card_id>/statement", api.CardStatementApi.as_view(), name="card-statement"),
    path("cards/<uuid:card_id>/statement.pdf", api.CardStatementPdfApi.as_view(), name="card-statement-pdf"),
    path("card-top-ups/<uuid:top_up_id>/refund", api.TopUpRefundCreateApi.as_view(), name="card-top-up-refund"),
    path(
        "merchant/settlements/<uuid:settlement_id>/statement.pdf",
        api.MerchantSettlementStatementApi.as_view(),
        name="merchant-settlement-statement",
    ),
]
