"""Payments' API, mounted under ``/api/v1/`` (config/urls.py): Stripe's webhook."""

from django.urls import path

from payments.api import StripeWebhookApi

urlpatterns = [
    path("webhooks/stripe", StripeWebhookApi.as_view(), name="stripe-webhook"),
]
