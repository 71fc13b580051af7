"""``{{ fen|yuan }}`` → "¥1,234.56", from integer fen without floats."""

from django import template
from django.utils.translation import gettext

from core.formatting import yuan as _yuan

register = template.Library()


@register.filter
def yuan(fen) -> str:
    if fen is None or fen == "":
        return gettext("none")
    return _yuan(int(fen))
