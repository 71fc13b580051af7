"""The project's URLs plus the Stripe webhook (payments.urls), until config.urls includes it."""

from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("payments.urls")),
    path("", include("config.urls")),
]

handler400 = "core.exceptions.json_bad_request"
handler404 = "core.exceptions.json_not_found"
handler500 = "core.exceptions.json_server_error"
