"""ops/prometheus/alerts.yml and ops/grafana/dashboard.json checked against what /metrics exports.

promtool is not here: the rules are loaded with PyYAML and checked for the shape Prometheus
requires, and every metric name in an expression (alert or panel) must be one a scrape of a
populated platform returns, so a renamed gauge cannot leave an alert that never fires."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
import time_machine
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent.parent
ALERTS = ROOT / "ops/prometheus/alerts.yml"
DASHBOARD = ROOT / "ops/grafana/dashboard.json"
PROMETHEUS = ROOT / "ops/prometheus/prometheus.yml"
TOKEN = "scrape-token-for-tests-0123456789"
# Series Prometheus writes itself, not the target.
PROMETHEUS_OWN = {"up"}

_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "inf", "nan", "le",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions, keywords,
    label names (inside {...} or by/without/on/ignoring (...)), strings or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS:
            continue
        names.add(name)
    return names


def test_the_expression_reader_finds_metrics_and_skips_functions_labels_and_keywords():
    expr = (
        'sum by (le, view) (rate(django_http_requests_latency_seconds_by_view_method_bucket{view!="metrics"}[5m]))'
        " / clamp_min(sum(rate(django_http_responses_total_by_status_total[5m])), 1e-9) > 0.01"
        ' or absent(prepaid_ledger_check_age_seconds) and on (name) up{job="x"} > 26 * 3600'
    )
    assert metric_names(expr) == {
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "django_http_responses_total_by_status_total",
        "prepaid_ledger_check_age_seconds",
        "up",
    }


@pytest.fixture
def exported(settings, django_capture_on_commit_callbacks) -> set[str]:
    """The sample names a scrape returns once the platform has served requests, verified its
    ledger and settled a day: every gauge and request metric there is."""
    from core.services import heartbeat_record
    from escrow.services import ledger_check_run
    from merchants.services.settlement import settlement_run
    from tests.cards import builders

    settings.METRICS_TOKEN = TOKEN
    builders.paid_card(builders.session_pack(builders.merchant()))
    with time_machine.travel("2026-03-03 02:00 +0800", tick=False), django_capture_on_commit_callbacks(execute=True):
        settlement_run(day=date(2026, 3, 2))
    ledger_check_run()
    heartbeat_record(name="worker")
    client = Client()
    client.get("/livez")
    client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    body = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    return {sample.name for family in text_string_to_metric_families(body) for sample in family.samples}


def alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_alert_rules_have_the_shape_prometheus_loads():
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    names = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"} and group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"]), rule["alert"]
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert re.fullmatch(r"\d+[smhd]", str(rule.get("for", "0m"))), rule
            assert rule["labels"]["severity"] in ("critical", "warning", "info")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
            names.append(rule["alert"])
    assert len(names) == len(set(names)), "two alerts share a name"
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["rule_files"] == [ALERTS.name]
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"
    assert config["scrape_configs"][0]["job_name"] == "prepaid"  # the job PrepaidTargetDown watches


def test_the_alerts_cover_what_operations_must_hear_of():
    watched = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    for name in (
        "prepaid_outbox_oldest_pending_age_seconds",
        "prepaid_refunds_overdue",
        "prepaid_refunds_failed",
        "prepaid_ledger_check_ok",
        "prepaid_ledger_check_age_seconds",
        "prepaid_worker_heartbeat_age_seconds",
        "prepaid_settlement_last_done_age_seconds",
        "django_http_responses_total_by_status_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
    ):
        assert name in watched, f"no alert reads {name}"


@pytest.mark.django_db
def test_every_metric_an_alert_reads_is_exported(exported):
    for rule in alert_rules():
        unknown = metric_names(rule["expr"]) - exported - PROMETHEUS_OWN
        assert not unknown, f"{rule['alert']} reads {sorted(unknown)}, which /metrics does not export"


def dashboard_panels() -> list[dict]:
    document = json.loads(DASHBOARD.read_text())
    panels = []
    for panel in document["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep theirs inside
    return panels


@pytest.mark.django_db
def test_every_dashboard_panel_reads_exported_metrics(exported):
    document = json.loads(DASHBOARD.read_text())
    assert document["title"] and document["uid"] and document["schemaVersion"] >= 30
    graphs = [panel for panel in dashboard_panels() if panel["type"] != "row"]
    assert len(graphs) >= 10
    ids = [panel["id"] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids)), "two panels share an id"
    read = set()
    for panel in graphs:
        assert panel["title"] and panel["targets"], panel
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, f"{panel['title']}: {target['expr']} reads no metric"
            unknown = names - exported
            assert not unknown, f"panel {panel['title']!r} reads {sorted(unknown)}, which /metrics does not export"
            read |= names
    gauges = {name for name in exported if name.startswith("prepaid_")}
    assert gauges <= read, f"the dashboard shows none of {sorted(gauges - read)}"
