"""Django's own messages whose zh_Hans translation (in Django's catalogue) ends a Chinese sentence
with an English full stop ("确认小数不超过 2 位."). Our catalogue (``LOCALE_PATHS``) is read before
Django's, so locale/zh_Hans/LC_MESSAGES/django.po translates them again, properly; they are named
here, exactly as Django spells them, so that ``makemessages`` keeps those translations."""

from django.utils.translation import gettext_lazy, ngettext_lazy

OVERRIDDEN = (
    ngettext_lazy(
        "Ensure that there are no more than %(max)s digit in total.",
        "Ensure that there are no more than %(max)s digits in total.",
        "max",
    ),
    ngettext_lazy(
        "Ensure that there are no more than %(max)s decimal place.",
        "Ensure that there are no more than %(max)s decimal places.",
        "max",
    ),
    gettext_lazy("Please correct the duplicate values below."),
    gettext_lazy("CSRF verification failed. Request aborted."),
)
