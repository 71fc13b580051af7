"""``GET /api/v1/rules``: the active rules profile, every rule with its basis (anyone, no login)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import calendar
from core.rules import DEADLINE_RULES, Rule, rule, rules_active, rules_in_force


def _rule_data(found: Rule) -> dict[str, Any]:
    return {
        "key": found.key,
        "value": found.value,
        "unit": found.unit,
        "group": found.group,
        "industry": found.industry,
        "basis_zh": found.basis_zh,
        "basis_en": found.basis_en,
        "effective": found.effective,
        "verified": found.verified,
        "note": found.note,
        "overridden_by": found.overridden_by,
    }


def rules_summary() -> dict[str, Any]:
    """The active profile as the API shows it: the headline numbers, then every rule."""
    profile = rules_active()
    in_force = rules_in_force()
    first, last = calendar.package_years()
    return {
        "profile": profile.key,
        "name_zh": profile.name_zh,
        "name_en": profile.name_en,
        "version": profile.version,
        "effective": profile.effective,
        **{key: rule(key).value for key in DEADLINE_RULES},
        "limits": [_rule_data(found) for found in in_force if found.group == "limit"],
        "filing": {
            "balance_threshold": rule("filing_balance_threshold").value,
            "rules": [_rule_data(found) for found in in_force if found.group == "filing"],
        },
        "rules": [_rule_data(found) for found in in_force],
        "industries": [
            {
                "key": part.key,
                "name_zh": part.name_zh,
                "name_en": part.name_en,
                "categories": list(part.categories),
                "rules": list(part.rules),
            }
            for part in profile.industries
        ],
        "districts": [
            {"code": district.code, "name_zh": district.name_zh, "name_en": district.name_en}
            for district in profile.districts
        ],
        "holiday_calendar": {
            "package": f"chinesecalendar {version('chinesecalendar')}",
            "package_years": [first, last],
            "profile_years": sorted(profile.calendar),
            "gaps": calendar.calendar_gaps(profile=profile),
        },
    }


class RulesProfileRuleSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The rule's key in the profile (an error's `rule`).")
    value = serializers.IntegerField()
    unit = serializers.ChoiceField(choices=["days", "working_days", "hours", "fen", "sessions", "cards", "transfers"])
    group = serializers.ChoiceField(choices=["period", "limit", "filing", "complaint"])
    industry = serializers.CharField(allow_null=True, help_text="The industry part it belongs to; null: general.")
    basis_zh = serializers.CharField(help_text="The provision it comes from, in Chinese.")
    basis_en = serializers.CharField(help_text="The provision it comes from, in English.")
    effective = serializers.DateField(help_text="The day it took effect.")
    verified = serializers.BooleanField(
        help_text="false: the value or date stands in until checked against the instrument; `note` says why."
    )
    note = serializers.CharField(allow_blank=True)
    overridden_by = serializers.CharField(
        allow_null=True, help_text="The deployment setting whose value replaces the profile's, if any."
    )


class RulesProfileFilingSerializer(serializers.Serializer):
    balance_threshold = serializers.IntegerField(help_text="Prepaid balance (fen) from which a merchant must file.")
    rules = RulesProfileRuleSerializer(many=True)


class RulesProfileIndustrySerializer(serializers.Serializer):
    key = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    categories = serializers.ListField(child=serializers.CharField(), help_text="Merchant categories it covers.")
    rules = serializers.ListField(child=serializers.CharField(), help_text="Keys of its own rules.")


class RulesProfileDistrictSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="GB/T 2260 code.")
    name_zh = serializers.CharField()
    name_en = serializers.CharField()


class RulesProfileCalendarSerializer(serializers.Serializer):
    package = serializers.CharField()
    package_years = serializers.ListField(child=serializers.IntegerField(), help_text="First and last year.")
    profile_years = serializers.ListField(child=serializers.IntegerField())
    gaps = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="This year and next, if their holidays are unknown: deadlines there are not extended for holidays.",
    )


class RulesApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class OutputSerializer(serializers.Serializer):
        profile = serializers.CharField(help_text="The rules profile in force (RULES_PROFILE).")
        name_zh = serializers.CharField()
        name_en = serializers.CharField()
        version = serializers.CharField()
        effective = serializers.DateField()
        cooling_off_days = serializers.IntegerField()
        refund_due_days = serializers.IntegerField()
        closure_notice_days = serializers.IntegerField()
        relocation_notice_days = serializers.IntegerField()
        complaint_response_hours = serializers.IntegerField()
        complaint_urgent_response_hours = serializers.IntegerField()
        dispute_window_days = serializers.IntegerField(
            help_text="Days a merchant has, from the consumer's rejection, to contest a service."
        )
        dispute_decision_days = serializers.IntegerField(
            help_text="Days the regulator has to decide a dispute; one not decided by then is dismissed."
        )
        limits = RulesProfileRuleSerializer(many=True)
        filing = RulesProfileFilingSerializer()
        rules = RulesProfileRuleSerializer(many=True)
        industries = RulesProfileIndustrySerializer(many=True)
        districts = RulesProfileDistrictSerializer(many=True)
        holiday_calendar = RulesProfileCalendarSerializer()

    @extend_schema(
        operation_id="rules_get",
        description=(
            "The rules profile in force (RULES_PROFILE): its headline numbers, its limits and filing triggers, "
            "and every rule with the provision it comes from. A refusal under one of these rules names it in the "
            "error body's `rule` and quotes its `basis`."
        ),
        responses={200: OutputSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(rules_summary()).data)
