"""Which custody and refunds-payable accounts a merchant's money moves through.

A merchant has its own (``Merchant.custody_account``, ``Merchant.refund_payable_account``, opened
at sign-up), so a purchase, refund or payout of one merchant never locks an account another
merchant's money moves through. A merchant signed up before they existed has neither until
``manage.py ledger_split_custody`` opens them; until then it uses the city-wide accounts. Either
way, custody is the sum of every custody account (``escrow.selectors.ledger_verify``,
``escrow.services.reconciliation_run``).
"""

from __future__ import annotations

from escrow.models import Account
from escrow.services import city_wide_account_id
from merchants.models import Merchant


def custody_account_id(merchant: Merchant) -> int:
    """The custody account the merchant's purchases are paid into and its payouts and refunds
    paid from."""
    return merchant.custody_account_id or city_wide_account_id(Account.Kind.CUSTODY)


def refund_payable_account_id(merchant: Merchant) -> int:
    """The refunds-payable account the merchant's refunds are booked to and paid from."""
    return merchant.refund_payable_account_id or city_wide_account_id(Account.Kind.REFUND_PAYABLE)
