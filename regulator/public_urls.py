"""The public record's pages, mounted at ``/p/`` (config.urls): no login."""

from django.urls import path

from regulator import web_public

urlpatterns = [
    path("merchants/", web_public.public_merchant_list, name="web-public-merchants"),
    path("merchants/<uuid:merchant_id>/", web_public.public_merchant_detail, name="web-public-merchant"),
]
