"""The site: every app's API under ``/api/v1/`` and its pages; each app owns its URL modules."""

from django.contrib import admin
from django.urls import include, path

api_v1 = [
    path("", include("core.urls")),
    path("", include("core.rules_urls")),
    path("", include("consumers.urls")),
    path("", include("payments.urls")),
    path("", include("merchants.urls")),
    path("", include("refunds.urls")),
    path("", include("regulator.urls")),
    path("", include("complaints.urls")),
    path("", include("notifications.urls")),
]

# The API first: its requests are most of the traffic, and a path is matched against the patterns
# in order (every page's pattern, before, was tried on each API request first).
urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("", include("core.web_urls")),
    path("", include("consumers.web_urls")),
    path("", include("merchants.web_urls")),
    path("", include("refunds.web_urls")),
    path("", include("complaints.web_urls")),
    path("r/", include("regulator.web_urls")),
    path("", include("regulator.merchant_urls")),
    path("p/", include("regulator.public_urls")),
    path("n/", include("notifications.web_urls")),
    path("admin/", admin.site.urls),
]

handler400 = "core.exceptions.json_bad_request"
handler403 = "core.exceptions.page_forbidden"
handler404 = "core.exceptions.json_not_found"
handler500 = "core.exceptions.json_server_error"
