"""The regulator app's pages for merchants and the download of a case's file, mounted at the site's
root (config/urls.py): the merchant's requests for documents under ``/m/document-requests/``."""

from django.urls import include, path

from regulator import merchant_web, web_cases

merchant_pages = [
    path("document-requests/", merchant_web.document_requests, name="web-merchant-document-requests"),
    path(
        "document-requests/<uuid:request_id>/",
        merchant_web.document_request,
        name="web-merchant-document-request",
    ),
]

urlpatterns = [
    path("m/", include(merchant_pages)),
    path("case-files/<uuid:file_id>/", web_cases.case_file, name="web-case-file"),
]
