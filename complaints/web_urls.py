"""The complaint pages, beside the pages of those who use them (mounted at the root by config/urls.py):
the consumer's at ``/c/complaints/``, the merchant's at ``/m/complaints/``."""

from django.urls import include, path

from complaints import web

consumer_urlpatterns = [
    path("complaints/", web.consumer_complaints, name="web-consumer-complaints"),
    path("complaints/new/", web.consumer_complaint_new, name="web-consumer-complaint-new"),
]

merchant_urlpatterns = [
    path("complaints/", web.merchant_complaints, name="web-merchant-complaints"),
    path(
        "complaints/<uuid:complaint_id>/respond/",
        web.merchant_complaint_answer,
        name="web-merchant-complaint-respond",
    ),
]

urlpatterns = [
    path("c/", include(consumer_urlpatterns)),
    path("m/", include(merchant_urlpatterns)),
]
