"""Building blocks for ledger tests: open accounts and move money through the real services."""

import itertools

from escrow.models import Account
from escrow.services import account_open, city_wide_account, ledger_transfer

_keys = itertools.count()


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


def custody() -> Account:
    return city_wide_account(Account.Kind.CUSTODY)


def refund_payable() -> Account:
    return city_wide_account(Account.Kind.REFUND_PAYABLE)


def funded_card(amount: int, name: str = "card") -> Account:
    """A card escrow account holding ``amount`` fen from a purchase entry."""
    card = account_open(kind=Account.Kind.CARD_ESCROW, name=name)
    ledger_transfer(
        code="purchase",
        debit_account_id=custody().id,
        credit_account_id=card.id,
        amount=amount,
        idempotency_key=key("p"),
    )
    return card


def merchant_account(name: str = "merchant") -> Account:
    return account_open(kind=Account.Kind.MERCHANT_SETTLEMENT, name=name)


def balance(account: Account) -> int:
    return Account.objects.get(pk=account.pk).balance
