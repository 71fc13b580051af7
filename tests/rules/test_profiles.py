"""Rules profiles: every shipped one is valid, a broken one is refused naming its file and field,
and Beijing's values are the ones the platform used before the profiles (nothing changes under it)."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from core import rules
from core.checks import rules_profiles_check
from core.rules import ProfileInvalid, RuleNotFound, profile_load, profile_parse, rule, rules_active, shipped_profiles
from merchants.models import Merchant
from merchants.registry import DISTRICTS
from tests.conftest import ROOT

BEIJING = ROOT / "core" / "profiles" / "beijing.json"


def beijing_data() -> dict:
    return json.loads(BEIJING.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict, name: str = "beijing") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_beijing_and_shanghai_are_shipped():
    assert [path.stem for path in shipped_profiles()] == ["beijing", "shanghai"]


@pytest.mark.parametrize("path", shipped_profiles(), ids=lambda path: path.stem)
def test_every_shipped_profile_is_valid(path):
    profile = profile_load(path)
    assert profile.key == path.stem
    assert len(profile.districts) == 16
    for found in profile.all_rules():
        assert found.basis_zh and found.basis_en
        assert found.verified or found.note, f"{found.key}: an unverified rule says why in its note"


@pytest.mark.parametrize("path", shipped_profiles(), ids=lambda path: path.stem)
def test_every_merchant_category_falls_in_exactly_one_industry_part(path):
    profile = profile_load(path)
    for category in Merchant.Category.values:
        holders = [part.key for part in profile.industries if category in part.categories]
        assert len(holders) == 1, f"{path.name}: category {category!r} is in {holders}"


def test_the_districts_come_from_the_active_profile():
    beijing = {d.code: (d.name_zh, d.name_en) for d in profile_load(BEIJING).districts}
    assert len(beijing) == 16 and beijing["110105"] == ("朝阳区", "Chaoyang") and beijing["110119"][1] == "Yanqing"
    assert beijing == DISTRICTS  # the registry merchants are checked against is the profile's


def test_beijing_profile_keeps_the_values_the_settings_had():
    beijing = profile_load(BEIJING)
    assert beijing.rule("cooling_off_days").value == 7
    assert beijing.rule("refund_due_days").value == 5
    assert beijing.rule("closure_notice_days").value == 30  # merchants/services/closure.py NOTICE_DAYS
    assert beijing.rule("relocation_notice_days").value == 30
    assert beijing.rule("complaint_response_hours").value == 48
    assert beijing.rule("complaint_urgent_response_hours").value == 2
    assert beijing.rule("max_price").value == 500_000
    assert beijing.rule("education_max_sessions", category="education").value == 60
    assert beijing.rule("education_max_days", category="education").value == 92
    assert beijing.rule("filing_balance_threshold").value == 50_000_000
    part = beijing.industry_for("education")
    assert part is not None and part.key == "education"


def test_the_settings_default_to_the_active_profile():
    assert django_settings.RULES_PROFILE == "beijing"
    values = {found.key: found.value for found in rules.rules_in_force()}
    assert values["cooling_off_days"] == django_settings.COOLING_OFF_DAYS
    assert values["refund_due_days"] == django_settings.REFUND_DUE_DAYS
    assert values["max_price"] == django_settings.CARD_LIMITS["max_price"]
    assert values["filing_balance_threshold"] == django_settings.RISK_FILING_THRESHOLD
    assert values["complaint_urgent_response_hours"] == django_settings.COMPLAINT_URGENT_RESPONSE_HOURS
    assert all(found.overridden_by is None for found in rules.rules_in_force())


def test_beijing_transport_filing_triggers_cite_the_2023_measures():
    beijing = profile_load(BEIJING)
    assert beijing.rule("transport_filing_collected_threshold").value == 10_000_000
    assert beijing.rule("transport_filing_unredeemed_cards").value == 100
    working_days = beijing.rule("transport_filing_working_days")
    assert (working_days.value, working_days.unit) == (5, "working_days")
    assert "《北京市交通运输行业单用途预付卡备案管理办法》第三条" in working_days.basis_zh


def test_shanghai_cites_its_own_provisions():
    shanghai = profile_load(ROOT / "core" / "profiles" / "shanghai.json")
    relocation = shanghai.rule("relocation_notice_days")
    assert relocation.value == 30
    assert relocation.basis_zh.startswith("《上海市单用途预付消费卡管理规定》第十三条")
    assert "Shanghai" in relocation.basis(language="en")
    assert shanghai.rule("max_price").value == 500_000
    assert {d.name_zh for d in shanghai.districts} >= {"浦东新区", "黄浦区", "崇明区"}


def test_a_category_picks_its_industry_part_and_falls_back_to_the_general_rules():
    assert rule("education_max_sessions", category="education").industry == "education"
    assert rule("max_price", category="education").industry is None
    with pytest.raises(RuleNotFound, match="education_max_sessions"):
        rule("education_max_sessions", category="fitness")


def test_a_setting_set_by_the_deployment_overrides_the_profile_and_says_so(settings):
    settings.COOLING_OFF_DAYS = 3
    found = rule("cooling_off_days")
    assert (found.value, found.overridden_by) == (3, "COOLING_OFF_DAYS")
    assert found.basis_zh == profile_load(BEIJING).rule("cooling_off_days").basis_zh


def test_the_deployment_picks_its_profile(settings):
    settings.RULES_PROFILE = "shanghai"
    assert rules_active().key == "shanghai"
    assert rule("closure_notice_days").basis_en.startswith("Shanghai Provisions")


# --- Broken profiles --------------------------------------------------------------------------


def test_a_wrong_value_type_names_the_file_and_the_field(tmp_path):
    data = beijing_data()
    data["rules"][1]["value"] = "five"
    with pytest.raises(ProfileInvalid, match=r"beijing\.json: rules\[1\]\.value: 'five' is not of type 'integer'"):
        profile_load(write(tmp_path, data))


def test_a_rule_without_its_basis_is_refused(tmp_path):
    data = beijing_data()
    del data["industries"][0]["rules"][0]["basis"]["en"]
    with pytest.raises(ProfileInvalid, match=r"industries\[0\]\.rules\[0\]\.basis: 'en' is a required property"):
        profile_load(write(tmp_path, data))


def test_a_missing_required_rule_is_refused(tmp_path):
    data = beijing_data()
    data["rules"] = [item for item in data["rules"] if item["key"] != "refund_due_days"]
    with pytest.raises(ProfileInvalid, match=r"rules: missing required rule\(s\) refund_due_days"):
        profile_load(write(tmp_path, data))


def test_a_rule_twice_is_refused(tmp_path):
    data = beijing_data()
    data["rules"].append(copy.deepcopy(data["rules"][0]))
    last = len(data["rules"]) - 1
    with pytest.raises(ProfileInvalid, match=rf"rules\[{last}\]\.key: rule 'cooling_off_days' appears twice"):
        profile_load(write(tmp_path, data))


def test_a_category_in_two_parts_is_refused(tmp_path):
    data = beijing_data()
    data["industries"][2]["categories"] = ["education"]
    with pytest.raises(ProfileInvalid, match=r"industries\[2\]\.categories: 'education' is already in industry"):
        profile_load(write(tmp_path, data))


def test_an_impossible_date_is_refused(tmp_path):
    data = beijing_data()
    data["rules"][0]["effective"] = "2022-02-30"
    with pytest.raises(ProfileInvalid, match=r"rules\[0\]\.effective: '2022-02-30' is not a date"):
        profile_load(write(tmp_path, data))


def test_a_holiday_outside_its_year_is_refused(tmp_path):
    data = beijing_data()
    data["calendar"] = {"2027": {"holidays": ["2028-01-01"], "workdays": [], "source": "test"}}
    with pytest.raises(ProfileInvalid, match=r"calendar\.2027\.holidays: 2028-01-01 is not in 2027"):
        profile_load(write(tmp_path, data))


def test_a_key_that_is_not_the_file_name_is_refused(tmp_path):
    with pytest.raises(ProfileInvalid, match="key: 'beijing' differs from the file's name 'peking'"):
        profile_load(write(tmp_path, beijing_data(), name="peking"))


def test_a_file_that_is_not_json_names_the_line(tmp_path):
    path = tmp_path / "beijing.json"
    path.write_text('{\n  "key": "beijing",\n  "name": \n}', encoding="utf-8")
    with pytest.raises(ProfileInvalid, match=r"beijing\.json: not valid JSON: line 4 column 1"):
        profile_load(path)


def test_an_unknown_profile_is_refused_listing_the_shipped_ones():
    with pytest.raises(ProfileInvalid, match=r"RULES_PROFILE='atlantis': .* \(shipped: beijing, shanghai\)"):
        rules.profile_path("atlantis")


def test_manage_py_check_reports_a_broken_shipped_profile(tmp_path, monkeypatch):
    data = beijing_data()
    data["version"] = "one"
    write(tmp_path, data)
    monkeypatch.setattr(rules, "PROFILES_DIR", tmp_path)
    [error] = rules_profiles_check()
    assert error.id == "core.E101"
    assert "beijing.json: version: 'one' does not match" in error.msg


def test_the_shipped_profiles_pass_the_system_check():
    assert rules_profiles_check() == []


def test_profile_parse_takes_data_already_read():
    profile = profile_parse(beijing_data(), path=BEIJING)
    assert profile.version == profile_load(BEIJING).version


def test_a_broken_active_profile_stops_the_start_up_with_its_message():
    env = {**os.environ, "DJANGO_DEBUG": "1", "RULES_PROFILE": "atlantis"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "RULES_PROFILE='atlantis': there is no core/profiles/atlantis.json" in done.stderr
