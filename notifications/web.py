"""The notices page of consumers and merchants (the bell in every page's header leads here):
newest first, unread ones marked, read one or all."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import NotFound
from notifications import selectors, services

PAGE_SIZE = 30


def _consumer_or_merchant(request) -> None:
    if request.user.role not in ("consumer", "merchant"):
        raise PermissionDenied


@login_required
def notification_list(request):
    _consumer_or_merchant(request)
    page = Paginator(selectors.notifications_of_user(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "notifications/list.html", {"page": page})


@login_required
@require_POST
def notification_read(request, notification_id: int):
    _consumer_or_merchant(request)
    try:
        services.notification_mark_read(user=request.user, notification_id=notification_id)
    except NotFound as exc:
        raise Http404 from exc
    return redirect("web-notifications")


@login_required
@require_POST
def notifications_read_all(request):
    _consumer_or_merchant(request)
    services.notifications_mark_all_read(user=request.user)
    return redirect("web-notifications")
