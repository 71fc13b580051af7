"""Rules as data: a city's rules profile, each value with the provision it comes from.

A profile is one JSON file in ``core/profiles/`` (``beijing.json``, ``shanghai.json``), checked
against ``core/profiles/schema.json`` and the checks below when it is loaded: at start-up (the
settings load the active one, ``RULES_PROFILE``) and by ``manage.py check`` (every shipped one).
It holds:

- ``rules``: the general rules, each ``{key, value, unit, group, basis {zh, en}, effective, verified,
  note?}``;
- ``industries``: parts with their own rules, each naming the merchant categories it covers; a rule
  asked for with a category is looked up in that category's part first, then in the general rules;
- ``districts``, and ``calendar``: holidays and make-up workdays of years the chinesecalendar package
  does not have yet (core/calendar.py).

Some settings predate the profiles (``COOLING_OFF_DAYS``, ``REFUND_DUE_DAYS``, ``CARD_LIMITS``, ...).
Their defaults are now the active profile's values (config/settings.py); a deployment that sets one
to something else overrides the profile, and ``rule()`` says so in ``overridden_by``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
SCHEMA_PATH = PROFILES_DIR / "schema.json"
_ROOT = PROFILES_DIR.parent.parent

# The periods and answer deadlines every profile's general rules hold (GET /api/v1/rules names each).
DEADLINE_RULES = (
    "cooling_off_days",
    "refund_due_days",
    "closure_notice_days",
    "relocation_notice_days",
    "complaint_response_hours",
    "complaint_urgent_response_hours",
    "dispute_window_days",
    "dispute_decision_days",
)
# Every profile's general rules hold these: the platform reads them whatever the city.
REQUIRED_RULES = (
    *DEADLINE_RULES,
    "relocation_refund_days_after",
    "operator_change_notice_days",
    "max_price",
    "filing_balance_threshold",
    "transfers_per_card_per_year",
)

# The settings that held these values before the profiles: (setting, key inside it or None).
LEGACY_SETTINGS: dict[str, tuple[str, str | None]] = {
    "cooling_off_days": ("COOLING_OFF_DAYS", None),
    "refund_due_days": ("REFUND_DUE_DAYS", None),
    "complaint_response_hours": ("COMPLAINT_RESPONSE_HOURS", None),
    "complaint_urgent_response_hours": ("COMPLAINT_URGENT_RESPONSE_HOURS", None),
    "filing_balance_threshold": ("RISK_FILING_THRESHOLD", None),
    "max_price": ("CARD_LIMITS", "max_price"),
    "education_max_sessions": ("CARD_LIMITS", "education_max_sessions"),
    "education_max_days": ("CARD_LIMITS", "education_max_days"),
}


# What each rule is called on the pages. A profile may bring a rule the platform does not name yet:
# its key is shown until a label is added here.
RULE_LABELS = {
    "cooling_off_days": gettext_lazy("Cooling-off period"),
    "refund_due_days": gettext_lazy("Time to pay a refund"),
    "closure_notice_days": gettext_lazy("Notice before closing"),
    "relocation_notice_days": gettext_lazy("Notice before moving"),
    "relocation_refund_days_after": gettext_lazy("Days after a move a holder may still ask for a refund"),
    "operator_change_notice_days": gettext_lazy("Notice before a change of operator"),
    "complaint_response_hours": gettext_lazy("Time to answer a complaint"),
    "complaint_urgent_response_hours": gettext_lazy("Time to answer an urgent complaint"),
    "dispute_window_days": gettext_lazy("Time to contest a rejected service"),
    "dispute_decision_days": gettext_lazy("Time to decide a dispute"),
    "max_price": gettext_lazy("Highest price of one card"),
    "filing_balance_threshold": gettext_lazy("Prepaid balance that requires filing"),
    "education_max_sessions": gettext_lazy("Most class sessions collected at once"),
    "education_max_days": gettext_lazy("Longest period collected at once"),
    "transport_filing_collected_threshold": gettext_lazy("Money collected that requires filing"),
    "transport_filing_unredeemed_cards": gettext_lazy("Unused cards that require filing"),
    "transport_filing_working_days": gettext_lazy("Time to file"),
    "filing_due_working_days": gettext_lazy("Time to file once required"),
    "transfers_per_card_per_year": gettext_lazy("Transfers of one card in a year"),
}


def rule_label(key: str) -> str:
    return str(RULE_LABELS.get(key, key))


class ProfileInvalid(ImproperlyConfigured):
    """A profile file that cannot be used: the message names the file and the field."""


class RuleNotFound(KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "rule not found"


@dataclass(frozen=True)
class Rule:
    key: str
    value: int
    unit: str
    group: str  # period, limit, filing or complaint
    basis_zh: str
    basis_en: str
    effective: date
    verified: bool
    note: str = ""
    industry: str | None = None  # None: a general rule
    overridden_by: str | None = None  # the deployment setting whose value replaced the profile's

    def basis(self, language: str | None = None) -> str:
        """The provision in the given language (Chinese unless the language is English)."""
        return self.basis_en if (language or "").startswith("en") else self.basis_zh


@dataclass(frozen=True)
class District:
    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Industry:
    key: str
    name_zh: str
    name_en: str
    categories: tuple[str, ...]
    rules: Mapping[str, Rule]


@dataclass(frozen=True)
class HolidayYear:
    holidays: frozenset[date]
    workdays: frozenset[date]
    source: str


@dataclass(frozen=True)
class Profile:
    key: str
    name_zh: str
    name_en: str
    version: str
    effective: date
    districts: tuple[District, ...]
    rules: Mapping[str, Rule]
    industries: tuple[Industry, ...]
    calendar: Mapping[int, HolidayYear]
    path: Path

    def industry_for(self, category: str | None) -> Industry | None:
        """The industry part covering a merchant category, if any."""
        if category is None:
            return None
        return next((part for part in self.industries if category in part.categories), None)

    def rule(self, key: str, *, category: str | None = None) -> Rule:
        """The rule as the file states it: the category's part first, then the general rules.
        Without a category, a key no general rule has is looked up in the parts."""
        part = self.industry_for(category)
        if part is not None and key in part.rules:
            return part.rules[key]
        if key in self.rules:
            return self.rules[key]
        if category is None:
            holders = [part for part in self.industries if key in part.rules]
            if len(holders) == 1:
                return holders[0].rules[key]
        where = f" for category {category!r}" if category else ""
        raise RuleNotFound(f"profile {self.key!r} has no rule {key!r}{where}")

    def all_rules(self) -> list[Rule]:
        return [*self.rules.values(), *(rule for part in self.industries for rule in part.rules.values())]


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(_ROOT))
    except ValueError:
        return str(path)


def _field(parts: Any) -> str:
    """A JSON path as ``rules[3].value``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(the whole file)"


@cache
def _schema_validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _date(value: str, where: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ProfileInvalid(f"{where}: {field}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _rules(items: list[dict[str, Any]], where: str, field: str, industry: str | None) -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for index, item in enumerate(items):
        if item["key"] in out:
            raise ProfileInvalid(f"{where}: {field}[{index}].key: rule {item['key']!r} appears twice")
        out[item["key"]] = Rule(
            key=item["key"],
            value=item["value"],
            unit=item["unit"],
            group=item["group"],
            basis_zh=item["basis"]["zh"],
            basis_en=item["basis"]["en"],
            effective=_date(item["effective"], where, f"{field}[{index}].effective"),
            verified=item["verified"],
            note=item.get("note", ""),
            industry=industry,
        )
    return out


def profile_parse(data: Any, *, path: Path) -> Profile:
    """A profile from its parsed JSON, or ProfileInvalid naming the file and the first bad field."""
    where = _display(path)
    errors = list(_schema_validator().iter_errors(data))
    if errors:
        from jsonschema.exceptions import best_match

        error = best_match(errors)
        raise ProfileInvalid(f"{where}: {_field(error.absolute_path)}: {error.message}")
    if data["key"] != path.stem:
        raise ProfileInvalid(f"{where}: key: {data['key']!r} differs from the file's name {path.stem!r}")

    general = _rules(data["rules"], where, "rules", None)
    missing = [key for key in REQUIRED_RULES if key not in general]
    if missing:
        raise ProfileInvalid(f"{where}: rules: missing required rule(s) {', '.join(missing)}")

    industries: list[Industry] = []
    seen_categories: dict[str, str] = {}
    for index, item in enumerate(data["industries"]):
        field = f"industries[{index}]"
        if any(part.key == item["key"] for part in industries):
            raise ProfileInvalid(f"{where}: {field}.key: industry {item['key']!r} appears twice")
        for category in item["categories"]:
            if category in seen_categories:
                raise ProfileInvalid(
                    f"{where}: {field}.categories: {category!r} is already in industry {seen_categories[category]!r}"
                )
            seen_categories[category] = item["key"]
        industries.append(
            Industry(
                key=item["key"],
                name_zh=item["name"]["zh"],
                name_en=item["name"]["en"],
                categories=tuple(item["categories"]),
                rules=_rules(item["rules"], where, f"{field}.rules", item["key"]),
            )
        )

    codes = [district["code"] for district in data["districts"]]
    duplicate = next((code for code in codes if codes.count(code) > 1), None)
    if duplicate is not None:
        raise ProfileInvalid(f"{where}: districts: code {duplicate} appears twice")

    calendar: dict[int, HolidayYear] = {}
    for year_text, entry in data["calendar"].items():
        year = int(year_text)
        days: dict[str, frozenset[date]] = {}
        for name in ("holidays", "workdays"):
            parsed = [_date(text, where, f"calendar.{year_text}.{name}") for text in entry[name]]
            stray = next((day for day in parsed if day.year != year), None)
            if stray is not None:
                raise ProfileInvalid(f"{where}: calendar.{year_text}.{name}: {stray.isoformat()} is not in {year}")
            days[name] = frozenset(parsed)
        both = days["holidays"] & days["workdays"]
        if both:
            first = min(both).isoformat()
            raise ProfileInvalid(f"{where}: calendar.{year_text}: {first} is both a holiday and a workday")
        calendar[year] = HolidayYear(holidays=days["holidays"], workdays=days["workdays"], source=entry["source"])

    return Profile(
        key=data["key"],
        name_zh=data["name"]["zh"],
        name_en=data["name"]["en"],
        version=data["version"],
        effective=_date(data["effective"], where, "effective"),
        districts=tuple(District(code=d["code"], name_zh=d["zh"], name_en=d["en"]) for d in data["districts"]),
        rules=general,
        industries=tuple(industries),
        calendar=calendar,
        path=path,
    )


def profile_load(path: Path) -> Profile:
    """Read and check one profile file."""
    where = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProfileInvalid(f"{where}: no such profile file") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileInvalid(f"{where}: not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return profile_parse(data, path=path)


def shipped_profiles() -> list[Path]:
    """The profile files in the repository."""
    return sorted(path for path in PROFILES_DIR.glob("*.json") if path != SCHEMA_PATH)


def profile_path(key: str) -> Path:
    path = PROFILES_DIR / f"{key}.json"
    if not key.isidentifier() or not path.is_file():
        shipped = ", ".join(p.stem for p in shipped_profiles())
        raise ProfileInvalid(f"RULES_PROFILE={key!r}: there is no core/profiles/{key}.json (shipped: {shipped})")
    return path


@cache
def _profile_cached(key: str) -> Profile:
    return profile_load(profile_path(key))


def profile_defaults(key: str) -> dict[str, int]:
    """Every rule's value by key (the general rule where a part has the same key): the settings'
    defaults. Called while the settings load, so it reads no setting."""
    profile = _profile_cached(key)
    values = {rule.key: rule.value for part in profile.industries for rule in part.rules.values()}
    values.update({rule.key: rule.value for rule in profile.rules.values()})
    return values


def rules_active() -> Profile:
    """The deployment's profile (``RULES_PROFILE``), as its file states it."""
    return _profile_cached(settings.RULES_PROFILE)


def profile_version() -> str:
    return rules_active().version


def _legacy_override(found: Rule) -> Rule:
    legacy = LEGACY_SETTINGS.get(found.key)
    if legacy is None:
        return found
    name, inner = legacy
    value = getattr(settings, name, None)
    label = name
    if inner is not None:
        value = value.get(inner) if isinstance(value, Mapping) else None
        label = f"{name}[{inner!r}]"
    if isinstance(value, int) and not isinstance(value, bool) and value != found.value:
        return replace(found, value=value, overridden_by=label)
    return found


def rule(key: str, *, category: str | None = None) -> Rule:
    """The rule in force: the active profile's, for a merchant ``category``'s industry part when it
    has one, with a deployment setting's value where one overrides it."""
    return _legacy_override(rules_active().rule(key, category=category))


def rules_in_force() -> list[Rule]:
    """Every rule of the active profile, general ones first, with the deployment's overrides."""
    return [_legacy_override(found) for found in rules_active().all_rules()]
