"""bench/report.py: the benchmarks' summary is computed from what each benchmark wrote."""

import json
import os

import pytest

from bench import report

MACHINE = {"nproc": 2, "cpu": "Test CPU", "memory_gb": 4.0, "postgresql": "15.20", "python": "3.11.7"}

LEDGER = {
    "command": ".venv/bin/python bench/ledger.py",
    "date": "2026-11-25T01:31:00+00:00",
    "machine": MACHINE,
    "settings": {"seconds": 10},
    # The ratio and verdict written by the benchmark are ignored: the report computes its own.
    "rows": [
        {"clients": 1, "ours": 600.0, "pgbench": 800.0, "ratio": 9.9, "target": None, "verdict": "-"},
        {"clients": 2, "ours": 1200.0, "pgbench": 1500.0, "ratio": 9.9, "target": 0.5, "verdict": "MISS"},
        {"clients": 8, "ours": 300.0, "pgbench": 1000.0, "ratio": 9.9, "target": 0.35, "verdict": "PASS"},
    ],
}
SETTLEMENT = {
    "command": ".venv/bin/python bench/settlement.py --quick",
    "date_utc": "2026-11-25 02:00 UTC",
    "machine": {**MACHINE, "cpu": "ignored: the ledger's came first"},
    "settings": {"quick": True},
    "targets": {"settlement_s": 30.0, "peak_rss_mb": 300.0, "refund_cards_per_s": 500.0},
    "floor": {"median_s": 0.5},
    "settlement": {"total_s": 20.0, "peak_rss_bytes": 150_000_000, "rss_ready_bytes": 100_000_000},
    "mass_refund": {"done": 10_000, "paid_out_cards_per_s": 400.0},
}
RISK = {
    "command": ".venv/bin/python bench/risk.py",
    "date_utc": "2026-11-25 03:00 UTC",
    "settings": {"quick": False},
    "targets": {"wall_s": 60.0, "peak_rss_mb": 300.0},
    "floor": {"median_s": 2.0},
    "slowest_s": 30.0,
    "median_s": 25.0,
    "runs": [
        {"elapsed_s": 30.0, "peak_rss_bytes": 200_000_000, "rss_ready_bytes": 90_000_000},
        {"elapsed_s": 25.0, "peak_rss_bytes": 310_000_000, "rss_ready_bytes": 91_000_000},
    ],
}
FLOW = {
    "command": ".venv/bin/python bench/flow.py --clients 2,8 --seconds 15",
    "date": "2026-11-25T04:00:00+00:00",
    "rows": [
        {"kind": "flow", "clients": 2, "flows_per_s": 50.0, "request_p99_ms": 20.0},
        {"kind": "bare", "clients": 2, "flows_per_s": 400.0, "request_p99_ms": 5.0},
        {"kind": "flow", "clients": 8, "flows_per_s": 72.0, "request_p99_ms": 45.0},
        {"kind": "bare", "clients": 8, "flows_per_s": 480.0, "request_p99_ms": 9.0},
    ],
}
WORKLOAD = {
    "command": ".venv/bin/python bench/workload.py",
    "date": "2026-11-25T05:00:00+00:00",
    "clients": 6,
    "operations_per_s": 90.0,
    "livez_per_s": 360.0,
    "ratio_to_livez": 9.9,
    "failures": [],
}
HEADLINE = {
    "command": ".venv/bin/python bench/workload.py --seconds 5",
    "headline": [
        {
            "figure": "requests/s",
            "value": 90.0,
            "unit": "req/s",
            "baseline": "bare Django view",
            "baseline_value": 360.0,
            "target": {"on": "ratio", "op": ">=", "limit": 0.3},
        }
    ],
}
NOTIFY = {
    "command": ".venv/bin/python bench/notify.py",
    "settings": {"holders": 100_000, "quick": False},
    "headline": [
        {
            "figure": "fan-out to 100,000 holders: notices recorded (in-app + SMS outbox)",
            "value": 5000.0,
            "unit": "notices/s",
            "target": {"on": "value", "op": ">=", "limit": 2000},
        }
    ],
}


def write(directory, **results):
    directory.mkdir(exist_ok=True)
    for name, data in results.items():
        (directory / f"{name}.json").write_text(json.dumps(data))
    return directory


def figures(results, name):
    bench = next(b for b in results["benchmarks"] if b["name"] == name)
    return {item["figure"]: item for item in bench["figures"]}


@pytest.fixture
def out(tmp_path):
    return write(
        tmp_path / "out", ledger=LEDGER, settlement=SETTLEMENT, risk=RISK, flow=FLOW, workload=WORKLOAD, notify=NOTIFY
    )


def test_ratios_and_verdicts_are_computed_from_each_figure_and_its_baseline(out):
    results = report.build(out)
    ledger = figures(results, "ledger")
    assert ledger["releases/s, 1 client"]["ratio"] == pytest.approx(0.75)
    assert ledger["releases/s, 1 client"]["verdict"] == "-"
    assert ledger["releases/s, 2 clients"]["ratio"] == pytest.approx(0.8)
    assert ledger["releases/s, 2 clients"]["verdict"] == "PASS"
    assert ledger["releases/s, 8 clients"]["ratio"] == pytest.approx(0.3)
    assert ledger["releases/s, 8 clients"]["verdict"] == "MISS"

    settlement = figures(results, "settlement")
    day = settlement["one day settled, end to end"]
    assert (day["value"], day["baseline_value"], day["ratio"], day["verdict"]) == (20.0, 0.5, 40.0, "PASS")
    memory = settlement["peak RSS of the settling process"]
    assert (memory["value"], memory["ratio"], memory["verdict"]) == (150.0, 1.5, "PASS")
    refund = settlement["mass refund of 10,000 cards, paid out"]
    assert (refund["baseline"], refund["ratio"], refund["verdict"]) == (None, None, "MISS")

    risk = figures(results, "risk")
    wall = risk["compute_risk(), slowest of 2 runs"]
    assert (wall["value"], wall["ratio"], wall["verdict"]) == (30.0, 15.0, "PASS")
    memory = risk["peak RSS of the computing process"]
    assert (memory["value"], memory["baseline_value"], memory["verdict"]) == (310.0, 90.0, "MISS")

    flow = figures(results, "flow")
    assert flow["card flows/s, 2 clients"]["ratio"] == pytest.approx(0.125)
    assert flow["card flows/s, 2 clients"]["verdict"] == "-"
    assert flow["card flows/s, 8 clients"]["ratio"] == pytest.approx(0.15)
    assert flow["card flows/s, 8 clients"]["verdict"] == "MISS"  # 72 < 80
    assert flow["request p99, 8 clients"]["verdict"] == "PASS"  # 45 ms <= 150

    notify = figures(results, "notify")
    assert notify["fan-out to 100,000 holders: notices recorded (in-app + SMS outbox)"]["verdict"] == "PASS"

    workload = figures(results, "workload")
    rate = workload["chaos workload operations/s, 6 clients"]
    assert (rate["ratio"], rate["verdict"]) == (0.25, "-")
    assert workload["failures (5xx, unexpected status, broken invariant)"]["verdict"] == "PASS"


def test_a_benchmark_may_state_its_own_headline_figures(tmp_path):
    results = report.build(write(tmp_path / "out", workload=HEADLINE))
    item = figures(results, "workload")["requests/s"]
    assert (item["ratio"], item["verdict"]) == (0.25, "MISS")


def test_the_summary_names_the_machine_and_each_command(out):
    results = report.build(out)
    assert results["machine"] == MACHINE
    commands = {b["name"]: b["command"] for b in results["benchmarks"]}
    assert commands["settlement"] == ".venv/bin/python bench/settlement.py --quick"
    quick = {b["name"]: b["quick"] for b in results["benchmarks"]}
    assert quick == {
        "ledger": False, "settlement": True, "risk": False, "flow": False, "workload": False, "notify": False,
    }  # fmt: skip
    assert all(b["quick"] for b in report.build(out, quick=True)["benchmarks"])


def test_a_benchmark_without_results_or_from_an_earlier_run_is_marked(tmp_path):
    out = write(tmp_path / "out", ledger=LEDGER, flow=FLOW)
    old = out / "flow.json"
    os.utime(old, (1_000_000, 1_000_000))
    results = report.build(out, since=2_000_000)
    status = {b["name"]: b["status"] for b in results["benchmarks"]}
    assert status == {
        "ledger": "ok",
        "settlement": "not run",
        "risk": "not run",
        "flow": "stale: from an earlier run",
        "workload": "not run",
        "notify": "not run",
    }


def test_a_run_at_a_scale_gets_rows_of_its_own_beside_the_default_run(out):
    scaled = {
        **RISK,
        "command": ".venv/bin/python bench/risk.py --scale 10",
        "slowest_s": 90.0,
        "settings": {"quick": False, "scale": 10},
    }
    write(out, **{"risk-10x": scaled, "risk-2x": {**scaled, "slowest_s": 40.0}})
    results = report.build(out, since=os.path.getmtime(out / "risk.json") + 1)
    names = [b["name"] for b in results["benchmarks"]]
    assert names[-2:] == ["risk 2x", "risk 10x"]
    wall = "compute_risk(), slowest of 2 runs"
    assert figures(results, "risk 10x")[wall]["verdict"] == "MISS"  # 90 s > 60
    assert figures(results, "risk 2x")[wall]["verdict"] == "PASS"
    assert figures(results, "risk")[wall]["value"] == 30.0  # the default run's own figures
    status = {b["name"]: b["status"] for b in results["benchmarks"]}
    assert status["risk 10x"] == "ok"  # make bench does not run it: never stale by its start
    assert status["risk"] == "stale: from an earlier run"


def test_merging_keeps_the_rows_of_benchmarks_not_run_and_adds_the_new_ones(out, tmp_path):
    previous = report.build(out)
    scaled = write(tmp_path / "scaled", **{"risk-10x": {**RISK, "slowest_s": 90.0}})
    results = report.merged(previous, report.build(scaled))
    names = [b["name"] for b in results["benchmarks"]]
    assert names == [b["name"] for b in previous["benchmarks"]] + ["risk 10x"]
    assert figures(results, "ledger") == figures(previous, "ledger")  # not run now: kept as it was
    assert figures(results, "risk 10x")["compute_risk(), slowest of 2 runs"]["value"] == 90.0
    assert results["command"] == "make bench + make bench-10x"
    assert report.merged(results, report.build(scaled))["command"] == "make bench + make bench-10x"


def test_the_readme_table_is_replaced_between_its_markers_only(out, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Benchmarks\n\nintro\n\n{report.BEGIN}\nold table\n{report.END}\n\n## After\n")
    results_path = tmp_path / "results.json"

    assert report.main(["--out-dir", str(out), "--results", str(results_path), "--readme", str(readme)]) == 0

    text = readme.read_text()
    assert text.startswith("# Benchmarks\n\nintro\n\n") and text.endswith(f"{report.END}\n\n## After\n")
    assert "old table" not in text and text.count(report.BEGIN) == 1
    assert "Machine: 2 CPUs (Test CPU), 4.0 GB of memory, PostgreSQL 15.20, Python 3.11.7." in text
    assert (
        "| ledger | releases/s, 8 clients | 300 ops/s | pgbench, the same transaction in plain SQL (tps): "
        "1,000 ops/s | 0.30 | ratio ≥ 0.35 | MISS |"
    ) in text
    assert "| settlement (quick run) | one day settled, end to end | 20.0 s |" in text
    assert "- flow: `.venv/bin/python bench/flow.py --clients 2,8 --seconds 15`" in text
    written = json.loads(results_path.read_text())
    assert written["benchmarks"][0]["figures"][1]["ratio"] == pytest.approx(0.8)


def test_a_readme_without_markers_gets_the_table_appended():
    text = report.with_table("# Benchmarks\n", "the table")
    assert text == f"# Benchmarks\n\n## Results\n\n{report.BEGIN}\nthe table\n{report.END}\n"
