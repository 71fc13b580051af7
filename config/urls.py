from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from complaints.web_urls import consumer_urlpatterns as consumer_complaint_pages
from complaints.web_urls import merchant_urlpatterns as merchant_complaint_pages
from consumers.web_urls import signup_urlpatterns as consumer_signup
from core.api import AuthTokenApi, healthz, livez
from merchants.web_urls import signup_urlpatterns as merchant_signup

api_v1 = [
    path("auth/token", AuthTokenApi.as_view(), name="auth-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("consumers.urls")),
    path("", include("escrow.urls")),
    path("", include("merchants.urls")),
    path("", include("regulator.urls")),
    path("", include("complaints.urls")),
    path("", include("notifications.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("core.web_urls")),
    path("", include(consumer_signup)),
    path("", include(merchant_signup)),
    path("c/", include("consumers.web_urls")),
    path("c/", include(consumer_complaint_pages)),
    path("m/", include("merchants.web_urls")),
    path("m/", include(merchant_complaint_pages)),
    path("r/", include("regulator.web_urls")),
    path("n/", include("notifications.web_urls")),
    path("livez", livez, name="livez"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]

handler400 = "core.exceptions.json_bad_request"
handler403 = "core.exceptions.page_forbidden"
handler404 = "core.exceptions.json_not_found"
handler500 = "core.exceptions.json_server_error"
