"""The rules profile's API route, mounted under ``/api/v1/`` (config/urls.py)."""

from django.urls import path

from core.rules_api import RulesApi

urlpatterns = [
    path("rules", RulesApi.as_view(), name="rules"),
]
