"""The consumer's pages under ``/c/``, the merchant's redemption pages under ``/m/redemptions/`` and
the consumer's sign-up page, mounted at the site's root (config/urls.py). The consumer's cards and
refund form (``/c/cards/``, ``/c/cards/<id>/``, ``/c/cards/<id>/refund/``) are ``refunds.web_urls``';
the complaint pages under ``/c/complaints/`` are ``complaints.web_urls``'."""

from django.urls import include, path
from django.views.generic import RedirectView

from consumers import disputes_web, web

pages = [
    path("", RedirectView.as_view(pattern_name="web-consumer-cards"), name="web-consumer-home"),
    path("merchants/", web.merchant_list, name="web-consumer-merchants"),
    path("merchants/<uuid:merchant_id>/", web.merchant_detail, name="web-consumer-merchant"),
    path("products/<uuid:product_id>/buy/", web.product_buy, name="web-consumer-buy"),
    path("cards/<uuid:card_id>/pay/", web.card_pay, name="web-consumer-card-pay"),
    path("cards/<uuid:card_id>/contract.pdf", web.card_contract, name="web-consumer-card-contract"),
    path(
        "cards/<uuid:card_id>/operator-consent/", web.card_operator_consent, name="web-consumer-card-operator-consent"
    ),
    path("payments/<uuid:payment_id>/simulate/", web.payment_simulate, name="web-consumer-payment-simulate"),
    path("cards/<uuid:card_id>/transfer/", web.card_transfer_offer, name="web-consumer-card-transfer"),
    path("card-transfers/<uuid:transfer_id>/accept/", web.card_transfer_accept, name="web-consumer-transfer-accept"),
    path("card-transfers/<uuid:transfer_id>/decline/", web.card_transfer_decline, name="web-consumer-transfer-decline"),
    path("card-transfers/<uuid:transfer_id>/cancel/", web.card_transfer_cancel, name="web-consumer-transfer-cancel"),
    path(
        "card-transfers/<uuid:transfer_id>/contract.pdf",
        web.card_transfer_contract,
        name="web-consumer-transfer-contract",
    ),
    path("cards/<uuid:card_id>/top-up/", web.card_top_up, name="web-consumer-card-top-up"),
    path("top-ups/<uuid:top_up_id>/pay/", web.top_up_pay, name="web-consumer-top-up-pay"),
    path("top-ups/<uuid:top_up_id>/simulate/", web.top_up_simulate, name="web-consumer-top-up-simulate"),
    path("top-ups/<uuid:top_up_id>/annex.pdf", web.top_up_annex, name="web-consumer-top-up-annex"),
    path("redemptions/", web.redemptions, name="web-consumer-redemptions"),
    path("redemptions/pending/", web.redemptions_pending, name="web-consumer-redemptions-pending"),
    path("redemptions/<uuid:redemption_id>/confirm/", web.redemption_confirm, name="web-consumer-redemption-confirm"),
    path("redemptions/<uuid:redemption_id>/reject/", web.redemption_reject, name="web-consumer-redemption-reject"),
    path("disputes/<uuid:dispute_id>/", disputes_web.consumer_dispute, name="web-consumer-dispute"),
]

merchant_pages = [
    path("redemptions/", web.merchant_redemptions, name="web-merchant-redemptions"),
    path("redemptions/start/", web.merchant_redemption_start, name="web-merchant-redemption-start"),
    path("redemptions/live/", web.merchant_redemptions_live, name="web-merchant-redemptions-live"),
    path("redemptions/counter/", web.merchant_counter, name="web-merchant-counter"),
    path(
        "redemptions/<uuid:redemption_id>/dispute/",
        disputes_web.merchant_dispute_open,
        name="web-merchant-redemption-dispute",
    ),
    path("disputes/", disputes_web.merchant_disputes, name="web-merchant-disputes"),
    path("disputes/<uuid:dispute_id>/", disputes_web.merchant_dispute, name="web-merchant-dispute"),
]

urlpatterns = [
    path("signup/consumer/", web.signup, name="web-signup-consumer"),
    path("c/", include(pages)),
    path("m/", include(merchant_pages)),
    path("disputes/evidence/<uuid:evidence_id>/", disputes_web.evidence_file, name="web-dispute-evidence"),
]
