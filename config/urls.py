from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.api import AuthTokenApi, healthz, livez

api_v1 = [
    path("auth/token", AuthTokenApi.as_view(), name="auth-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("consumers.urls")),
    path("", include("escrow.urls")),
    path("", include("merchants.urls")),
    path("", include("regulator.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("livez", livez, name="livez"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]

handler400 = "core.exceptions.json_bad_request"
handler404 = "core.exceptions.json_not_found"
handler500 = "core.exceptions.json_server_error"
