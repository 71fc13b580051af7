from django.urls import path

from core import web

urlpatterns = [
    path("", web.home, name="web-home"),
    path("login/", web.LoginView.as_view(), name="web-login"),
    path("logout/", web.LogoutView.as_view(), name="web-logout"),
]
