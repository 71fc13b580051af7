"""The admin's page of regulators' jurisdictions: pick a regulator's districts and categories (none
of either: all of them). Saved through ``regulator_scope_set``, as ``createregulator`` saves them."""

from typing import Any

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.models import User
from merchants.models import Merchant
from merchants.registry import DISTRICTS
from regulator.models import RegulatorScope
from regulator.services.jurisdiction import regulator_scope_set


class RegulatorScopeForm(forms.ModelForm):
    user = forms.ModelChoiceField(
        label=_("Regulator"), queryset=User.objects.filter(role=User.Role.REGULATOR).order_by("username")
    )
    districts = forms.MultipleChoiceField(
        label=_("Districts"),
        required=False,
        choices=[(code, f"{zh} ({code})") for code, (zh, _en) in DISTRICTS.items()],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every district."),
    )
    categories = forms.MultipleChoiceField(
        label=_("Categories"),
        required=False,
        choices=Merchant.Category.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every category."),
    )

    class Meta:
        model = RegulatorScope
        fields = ["user", "districts", "categories"]


@admin.register(RegulatorScope)
class RegulatorScopeAdmin(admin.ModelAdmin):
    form = RegulatorScopeForm
    list_display = ["user", "districts", "categories", "updated_at"]
    search_fields = ["user__username"]

    def get_readonly_fields(self, request, obj=None) -> Any:
        return ["user"] if obj is not None else []

    def save_model(self, request, obj, form, change) -> None:
        scope = regulator_scope_set(
            user=obj.user, districts=form.cleaned_data["districts"], categories=form.cleaned_data["categories"]
        )
        obj.pk, obj.updated_at = scope.pk, scope.updated_at
