from django.urls import path

from escrow.api import StripeWebhookApi

urlpatterns = [
    path("webhooks/stripe", StripeWebhookApi.as_view(), name="stripe-webhook"),
]
