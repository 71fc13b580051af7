"""The merchant's side of inspection cases, under ``/m/document-requests/``: the requests for
documents the regulator made of it (those waiting first) and, for each, the form that sends the
files and a note (``case_documents_submit``). The requests are the regulator's (this app's), so
their pages live here, beside the merchant's own pages; the merchant is told of each request by a
notification linking to its page. The merchant sees what it is asked and what it sent, nothing else
of the case.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from core.errors import NotFound
from core.web import attempt, role_required
from merchants.web import MultipleFileField, merchant_of_request
from regulator.models import DocumentRequest
from regulator.selectors import cases as selectors
from regulator.services import cases as services

merchant_only = role_required("merchant")

PAGE_SIZE = 25


class DocumentsForm(forms.Form):
    files = MultipleFileField(
        label=gettext_lazy("Files"),
        required=False,
        help_text=gettext_lazy("PDF, JPEG or PNG, up to %(count)s files.") % {"count": services.MAX_FILES},
    )
    note = forms.CharField(
        label=gettext_lazy("Note to the regulator"),
        required=False,
        max_length=services.REQUEST_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Optional with files; without a file, say why."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="documents-%s", **kwargs)


@merchant_only
@require_GET
def document_requests(request):
    merchant = merchant_of_request(request)
    rows = selectors.merchant_document_requests(merchant=merchant)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "regulator/merchant_document_requests.html", {"merchant": merchant, "page": page})


@merchant_only
@require_http_methods(["GET", "POST"])
def document_request(request, request_id):
    """One request: what is asked, and the form that answers it while it waits for the merchant."""
    merchant = merchant_of_request(request)
    try:
        row = selectors.merchant_document_request_get(merchant=merchant, request_id=request_id)
    except NotFound as exc:
        raise Http404 from exc
    form = DocumentsForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            sent = attempt(
                request,
                lambda: services.case_documents_submit(
                    merchant=merchant,
                    request_id=row.pk,
                    files=form.cleaned_data["files"],
                    note=form.cleaned_data["note"],
                ),
                success=_("Your documents are sent to the regulator."),
                form=form,
            )
            if sent is not None or not form.errors:
                return redirect("web-merchant-document-request", request_id=row.pk)
        status = 400
    context = {
        "merchant": merchant,
        "request_row": row,
        "form": form,
        "waiting": row.state == DocumentRequest.State.OPEN,
    }
    return render(request, "regulator/merchant_document_request.html", context, status=status)
