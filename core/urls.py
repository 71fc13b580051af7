"""Core's API, mounted under ``/api/v1/`` (config/urls.py): the token, the schema and its docs."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.api import AuthTokenApi

urlpatterns = [
    path("auth/token", AuthTokenApi.as_view(), name="auth-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
