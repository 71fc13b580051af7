"""Core's pages at the site's root (config/urls.py): health probes, metrics, language, log in and out, 长辈版."""

from django.urls import include, path

from core import web
from core.api import healthz, livez
from core.metrics import metrics

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("livez", livez, name="livez"),
    path("metrics", metrics, name="metrics"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", web.home, name="web-home"),
    path("login/", web.LoginView.as_view(), name="web-login"),
    path("login/code/", web.login_code, name="web-login-code"),
    path("logout/", web.LogoutView.as_view(), name="web-logout"),
    path("elder-mode/", web.elder_mode, name="web-elder-mode"),
]
