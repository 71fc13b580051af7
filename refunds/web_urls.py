"""The refunds app's pages, mounted at the site's root (config/urls.py) under the consumer's
``/c/`` and the merchant's ``/m/``, with the names they have always had."""

from django.urls import include, path

from refunds import web

consumer_pages = [
    path("cards/", web.card_list, name="web-consumer-cards"),
    path("cards/<uuid:card_id>/", web.card_detail, name="web-consumer-card"),
    path("cards/<uuid:card_id>/refund/", web.card_refund, name="web-consumer-card-refund"),
    path("cards/<uuid:card_id>/statement.pdf", web.card_statement, name="web-consumer-card-statement"),
    path("top-ups/<uuid:top_up_id>/refund/", web.top_up_refund_request, name="web-consumer-top-up-refund"),
]

merchant_pages = [
    path(
        "settlements/<uuid:settlement_id>/statement.pdf",
        web.settlement_statement,
        name="web-merchant-settlement-statement",
    ),
]

urlpatterns = [
    path("c/", include(consumer_pages)),
    path("m/", include(merchant_pages)),
]
