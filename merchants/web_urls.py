"""The merchant's pages under ``/m/`` and the sign-up page, mounted at the site's root (config/urls.py).
The redemption pages under ``/m/redemptions/`` are ``consumers.web_urls``' (they work on the cards
it sold), the settlement statement PDF is ``refunds.web_urls``' (it lists its cards' refunds), and
the complaint pages under ``/m/complaints/`` are ``complaints.web_urls``'."""

from django.urls import include, path

from merchants import web

pages = [
    path("", web.home, name="web-merchant-home"),
    path("products/", web.product_create, name="web-merchant-product-create"),
    path("settlements/", web.settlements, name="web-merchant-settlements"),
    path("closure/", web.closure, name="web-merchant-closure"),
    path("relocation/", web.relocation, name="web-merchant-relocation"),
    path("relocation/cancel/", web.relocation_cancel, name="web-merchant-relocation-cancel"),
    path("operator-change/", web.operator_change, name="web-merchant-operator-change"),
    path("filing/", web.filing, name="web-merchant-filing"),
]

urlpatterns = [
    path("signup/merchant/", web.signup, name="web-signup-merchant"),
    path("m/", include(pages)),
    path("filings/documents/<uuid:document_id>/", web.filing_document, name="web-filing-document"),
]
