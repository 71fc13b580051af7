"""Complaints' API (API.md, Complaints), mounted under ``/api/v1/`` (config/urls.py)."""

from django.urls import path

from complaints import api as complaint_views

urlpatterns = [
    path("complaints", complaint_views.ComplaintListCreateApi.as_view(), name="complaints"),
    path("complaints/<uuid:complaint_id>", complaint_views.ComplaintDetailApi.as_view(), name="complaint-detail"),
    path(
        "complaints/<uuid:complaint_id>/respond",
        complaint_views.ComplaintRespondApi.as_view(),
        name="complaint-respond",
    ),
    path("complaints/<uuid:complaint_id>/close", complaint_views.ComplaintCloseApi.as_view(), name="complaint-close"),
    path("regulator/complaints/stats", complaint_views.ComplaintStatsApi.as_view(), name="regulator-complaint-stats"),
]
