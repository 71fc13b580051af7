"""Filings for tests: a profile whose transport part covers a category, and a filing required now."""

import copy
import json
from datetime import datetime

from core.rules import Profile, profile_parse
from merchants.models import Filing, Merchant
from merchants.selectors import FilingMeasures
from merchants.services.filing import filing_require, filing_trigger
from tests.conftest import ROOT

BEIJING = ROOT / "core" / "profiles" / "beijing.json"
BALANCE_LINE = 50_000_000  # Beijing: ¥500,000


def transport_profile(*, category: str = "other", **values: int) -> Profile:
    """Beijing's profile with ``category`` moved into the transport part (no category is there in the
    shipped file), and any transport rule's value replaced by ``values``."""
    data = copy.deepcopy(json.loads(BEIJING.read_text(encoding="utf-8")))
    for part in data["industries"]:
        if category in part["categories"]:
            part["categories"].remove(category)
        if part["key"] == "transport":
            part["categories"].append(category)
            for found in part["rules"]:
                found["value"] = values.get(found["key"], found["value"])
    return profile_parse(data, path=BEIJING)


def require(merchant: Merchant, *, at: datetime | None = None) -> Filing:
    """A filing required of the merchant by Beijing's balance line (as the daily check would)."""
    trigger = filing_trigger(
        category=merchant.category, measures=FilingMeasures(balance=BALANCE_LINE, collected=0, unredeemed=0)
    )
    assert trigger is not None
    return filing_require(merchant=merchant, trigger=trigger, at=at)[0]
