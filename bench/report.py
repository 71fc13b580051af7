"""The benchmarks' summary: reads what each benchmark wrote to ``bench/out/<name>.json`` and writes
``bench/results.json`` and the results table of ``bench/README.md`` (between the lines
``<!-- results:begin -->`` and ``<!-- results:end -->``).

``make bench`` runs every benchmark, then this script. Run alone it summarises whatever
``bench/out/`` holds: ``.venv/bin/python bench/report.py [--since EPOCH]``. With ``--since`` (what
``make bench`` passes: when it started), a result written before that moment is marked stale: it
comes from an earlier run, not this one (a benchmark that failed leaves the previous file).

Each headline figure is set beside its baseline measured in the same run, and the ratio is
computed here, from the two:

========== ============================================ ==========================================
benchmark  figure (from its JSON)                       baseline (same run)
========== ============================================ ==========================================
ledger     ``rows[].ours``: releases/s per client count ``rows[].pgbench``: pgbench tps, the same
                                                        transaction in plain SQL
settlement ``settlement.total_s``: one day settled      ``floor.median_s``: plain SQL ``SUM ...
                                                        GROUP BY merchant`` over the same releases
           ``settlement.peak_rss_bytes``                ``settlement.rss_ready_bytes``: Django
                                                        loaded and connected
           ``mass_refund.paid_out_cards_per_s``         none
risk       ``slowest_s``: ``compute_risk()``, slowest   ``floor.median_s``: plain SQL sum of the
           run                                          90 days of releases per merchant
           ``runs[].peak_rss_bytes`` (largest)          ``runs[0].rss_ready_bytes``
flow       ``rows[kind=flow].flows_per_s`` per client   ``rows[kind=bare].flows_per_s``: the bare
           count, and request p99 at 8 clients          Django view ``/livez``, 4 requests a flow
workload   ``operations_per_s``: the chaos workload's   ``livez_per_s``: ``/livez`` with the same
           requests, valid and invalid                  clients
           ``failures`` (count)                         none
notify     ``headline``: notices recorded per second,   none
           a fan-out to 100,000 holders
export     ``headline``: peak RSS of the journal        RSS with Django loaded and connected;
           export (CSV, XLSX) and its rows/s            rows/s: none
verify     ``headline``: a full ledger check's          the same check on one connection;
           postings/s, an incremental day's seconds     none
hotrow     ``headline``: share of samples waiting on a  the same load on the city-wide custody
           row lock, payments at 8 clients across       account, in the same run
           1,000 merchants, and payments/s
========== ============================================ ==========================================

Targets come from the JSON where the benchmark records them (``rows[].target`` of the ledger,
``targets`` of settlement and risk), else from the targets the script prints (flow: 80 flows/s and
request p99 150 ms at 8 clients; workload: no failure, and no target for its rate). The verdict is
recomputed here from the figure and its target. ``--quick`` (``make bench BENCH_ARGS=--quick``)
marks every result as a smoke run; a benchmark run with ``--quick`` is marked so anyway.

Any benchmark may instead state its figures itself, as a top-level ``headline`` list of
``{"figure", "value", "unit", "baseline", "baseline_value", "target": {"on": "value"|"ratio",
"op": ">="|"<=", "limit"}}`` (``baseline*`` and ``target`` optional). That list is used when
present, for any benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = ("ledger", "settlement", "risk", "flow", "workload", "notify")
# Summarised when their JSON is there (``make bench`` runs them and reports their failure itself).
LATER_BENCHMARKS = ("export", "verify", "hotrow")
SCALED_BENCHMARKS = ("settlement", "risk", "verify")  # --scale N writes bench/out/<name>-<N>x.json
COMMANDS = {name: f".venv/bin/python bench/{name}.py" for name in (*BENCHMARKS, *LATER_BENCHMARKS)}
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
FLOW_TARGET_FLOWS_PER_S = 80.0  # as bench/flow.py prints them, at 8 clients
FLOW_TARGET_P99_MS = 150.0
MB = 1e6
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432"


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: str | None = None,
    baseline_value: float | None = None,
    target: dict | None = None,
) -> dict:
    """One headline figure, its ratio to its baseline and its verdict against its target."""
    ratio = value / baseline_value if baseline_value else None
    verdict = "-"
    if target is not None:
        measured = ratio if target["on"] == "ratio" else value
        if measured is not None:
            ok = measured >= target["limit"] if target["op"] == ">=" else measured <= target["limit"]
            verdict = "PASS" if ok else "MISS"
    return {
        "figure": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "target": target,
        "verdict": verdict,
    }


def at_least(limit: float, on: str = "value") -> dict:
    return {"on": on, "op": ">=", "limit": limit}


def at_most(limit: float, on: str = "value") -> dict:
    return {"on": on, "op": "<=", "limit": limit}


def ledger_figures(data: dict) -> list[dict]:
    return [
        figure(
            f"releases/s, {row['clients']} client{'s' if row['clients'] > 1 else ''}",
            row["ours"],
            "ops/s",
            baseline="pgbench, the same transaction in plain SQL (tps)",
            baseline_value=row["pgbench"],
            target=None if row.get("target") is None else at_least(row["target"], on="ratio"),
        )
        for row in data["rows"]
    ]


def settlement_figures(data: dict) -> list[dict]:
    settle, targets, refund = data["settlement"], data["targets"], data["mass_refund"]
    return [
        figure(
            "one day settled, end to end",
            settle["total_s"],
            "s",
            baseline="plain SQL SUM ... GROUP BY merchant over the same releases (summing them at night, at best)",
            baseline_value=data["floor"]["median_s"],
            target=at_most(targets["settlement_s"]),
        ),
        figure(
            "peak RSS of the settling process",
            settle["peak_rss_bytes"] / MB,
            "MB",
            baseline="Django loaded and connected",
            baseline_value=settle["rss_ready_bytes"] / MB,
            target=at_most(targets["peak_rss_mb"]),
        ),
        figure(
            f"mass refund of {refund['done']:,} cards, paid out",
            refund["paid_out_cards_per_s"],
            "cards/s",
            target=at_least(targets["refund_cards_per_s"]),
        ),
    ]


def risk_figures(data: dict) -> list[dict]:
    runs, targets = data["runs"], data["targets"]
    floor = data.get("floor")  # absent from results written before the floor was measured
    return [
        figure(
            f"compute_risk(), slowest of {len(runs)} run{'s' if len(runs) > 1 else ''}",
            data["slowest_s"],
            "s",
            baseline="plain SQL sum of the 90 days of releases per merchant" if floor else None,
            baseline_value=floor["median_s"] if floor else None,
            target=at_most(targets["wall_s"]),
        ),
        figure(
            "peak RSS of the computing process",
            max(run["peak_rss_bytes"] for run in runs) / MB,
            "MB",
            baseline="Django loaded and connected",
            baseline_value=runs[0]["rss_ready_bytes"] / MB,
            target=at_most(targets["peak_rss_mb"]),
        ),
    ]


def flow_figures(data: dict) -> list[dict]:
    rows = data["rows"]
    out = []
    for ours in (row for row in rows if row["kind"] == "flow"):
        clients = ours["clients"]
        bare = next(row for row in rows if row["kind"] == "bare" and row["clients"] == clients)
        out.append(
            figure(
                f"card flows/s, {clients} clients",
                ours["flows_per_s"],
                "flows/s",
                baseline="bare Django view /livez, 4 requests a flow",
                baseline_value=bare["flows_per_s"],
                target=at_least(FLOW_TARGET_FLOWS_PER_S) if clients == 8 else None,
            )
        )
        if clients == 8:
            out.append(
                figure(
                    "request p99, 8 clients",
                    ours["request_p99_ms"],
                    "ms",
                    baseline="bare Django view /livez",
                    baseline_value=bare["request_p99_ms"],
                    target=at_most(FLOW_TARGET_P99_MS),
                )
            )
    return out


def workload_figures(data: dict) -> list[dict]:
    return [
        figure(
            f"chaos workload operations/s, {data['clients']} clients",
            data["operations_per_s"],
            "ops/s",
            baseline="bare Django view /livez, the same clients (requests/s)",
            baseline_value=data["livez_per_s"],
        ),
        figure(
            "failures (5xx, unexpected status, broken invariant)",
            len(data["failures"]),
            "",
            target=at_most(0),
        ),
    ]


def headline_figures(data: dict) -> list[dict]:
    return [
        figure(
            item["figure"],
            item["value"],
            item.get("unit", ""),
            baseline=item.get("baseline"),
            baseline_value=item.get("baseline_value"),
            target=item.get("target"),
        )
        for item in data["headline"]
    ]


EXTRACTORS = {
    "ledger": ledger_figures,
    "settlement": settlement_figures,
    "risk": risk_figures,
    "flow": flow_figures,
    "workload": workload_figures,
}


def is_quick(data: dict) -> bool:
    settings = data.get("settings") or {}
    return bool(settings.get("quick")) or "--quick" in str(data.get("command", ""))


def benchmark_result(
    name: str, path: Path, since: float | None, quick: bool = False, *, kind: str | None = None
) -> dict:
    """What one benchmark's JSON says, or why there is nothing to say. ``kind`` is the benchmark
    whose JSON it is when ``name`` differs (``settlement 10x`` is a ``settlement``)."""
    kind = kind or name
    if not path.exists():
        return {"name": name, "status": "not run", "command": COMMANDS[kind], "figures": []}
    data = json.loads(path.read_text())
    extract = headline_figures if "headline" in data else EXTRACTORS.get(kind)
    if extract is None:
        return {
            "name": name,
            "status": "no headline figures in its JSON",
            "command": data.get("command", COMMANDS[kind]),
            "figures": [],
        }
    stale = since is not None and path.stat().st_mtime < since
    return {
        "name": name,
        "status": "stale: from an earlier run" if stale else "ok",
        "command": data.get("command", COMMANDS[kind]),
        "date": data.get("date") or data.get("date_utc") or data.get("started_at"),
        "quick": quick or is_quick(data),
        "figures": extract(data),
    }


def local_machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "python": sys.version.split()[0],
    }


def postgresql_version(server: str | None) -> str:
    if not server:
        return "unknown"
    try:
        import psycopg2

        conn = psycopg2.connect(f"{server.rstrip('/')}/postgres", connect_timeout=3)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SHOW server_version")
                return cursor.fetchone()[0]
        finally:
            conn.close()
    except Exception:  # noqa: BLE001 (the summary is written without it)
        return "unknown"


def machine_of(raw: dict[str, dict], server: str | None = None) -> dict:
    """The machine as the benchmarks saw it (the first JSON that says), completed from this one."""
    found: dict = {}
    for name in BENCHMARKS:
        for key, value in ((raw.get(name) or {}).get("machine") or {}).items():
            if key in ("nproc", "cpu", "memory_gb", "postgresql", "python") and value is not None:
                found.setdefault(key, value)
    machine = {**local_machine(), **found}
    if "postgresql" not in machine:
        machine["postgresql"] = postgresql_version(server)
    return machine


def build(
    out_dir: Path,
    since: float | None = None,
    now: datetime | None = None,
    server: str | None = None,
    quick: bool = False,
) -> dict:
    raw = {}
    benchmarks = []
    later = tuple(name for name in LATER_BENCHMARKS if (out_dir / f"{name}.json").exists())
    for name in (*BENCHMARKS, *later):
        path = out_dir / f"{name}.json"
        raw[name] = json.loads(path.read_text()) if path.exists() else None
        benchmarks.append(benchmark_result(name, path, since, quick))
    # Runs at a scale (``--scale 10``: ``settlement-10x.json``), each on rows of its own. ``make
    # bench`` does not run them (``make bench-10x`` does), so they are never marked stale by it.
    for kind in SCALED_BENCHMARKS:
        for path in sorted(out_dir.glob(f"{kind}-*x.json"), key=lambda p: int(p.stem.rsplit("-", 1)[1][:-1])):
            scale = path.stem.rsplit("-", 1)[1]
            benchmarks.append(benchmark_result(f"{kind} {scale}", path, None, kind=kind))
    return {
        "date": (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        "command": 'make bench BENCH_ARGS="--quick"' if quick else "make bench",
        "machine": machine_of(raw, server),
        "benchmarks": benchmarks,
    }


def merged(previous: dict, results: dict) -> dict:
    """``results`` with each benchmark it did not run (and each it does not name) taken from
    ``previous``, in ``previous``'s order, the new ones after; the machine and date stay the new
    run's, and ``command`` says what was merged."""
    fresh = {bench["name"]: bench for bench in results["benchmarks"] if bench["status"] != "not run"}
    benchmarks = [fresh.pop(bench["name"], bench) for bench in previous.get("benchmarks", [])]
    benchmarks += [bench for bench in results["benchmarks"] if bench["name"] in fresh]
    command = previous.get("command", "make bench")
    if not command.endswith(" + make bench-10x"):
        command += " + make bench-10x"
    return {**results, "command": command, "benchmarks": benchmarks}


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def fmt_target(item: dict) -> str:
    target = item["target"]
    if not target:
        return "-"
    op = "≥" if target["op"] == ">=" else "≤"
    if target["on"] == "ratio":
        return f"ratio {op} {fmt(target['limit'])}"
    return f"{op} {fmt(target['limit'])} {item['unit']}".rstrip()


def table(results: dict) -> str:
    """The Markdown that goes between the markers of bench/README.md."""
    host = results["machine"]
    lines = [
        f"Machine: {host['nproc']} CPUs ({host['cpu']}), {host.get('memory_gb', '?')} GB of memory, "
        f"PostgreSQL {host['postgresql']}, Python {host['python']}. Summarised {results['date']} by "
        f"`bench/report.py` after `{results['command']}`; the figures are in `bench/results.json`.",
        "",
        "| benchmark | figure | measured | baseline (same run) | ratio | target | result |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for bench in results["benchmarks"]:
        if not bench["figures"]:
            lines.append(f"| {bench['name']} | {bench['status']} | | | | | |")
            continue
        note = " (quick run)" if bench["quick"] else ""
        note += "" if bench["status"] == "ok" else f" ({bench['status']})"
        for item in bench["figures"]:
            baseline = "-"
            if item["baseline"]:
                baseline = f"{item['baseline']}: {fmt(item['baseline_value'])} {item['unit']}"
            measured = f"{fmt(item['value'])} {item['unit']}".rstrip()
            lines.append(
                f"| {bench['name']}{note} | {item['figure']} | {measured} | {baseline} "
                f"| {fmt(item['ratio'])} | {fmt_target(item)} | {item['verdict']} |"
            )
    if any(bench.get("quick") for bench in results["benchmarks"]):
        lines += [
            "",
            "A quick run is a smoke run on reduced data or short runs: its verdicts hold it against targets "
            "set for full runs, and say nothing.",
        ]
    lines += ["", "Commands (each reproduces its rows):", ""]
    for bench in results["benchmarks"]:
        when = f" ({bench['date']})" if bench.get("date") else ""
        lines.append(f"- {bench['name']}: `{bench['command']}`{when}")
    return "\n".join(lines)


def with_table(readme: str, rendered: str) -> str:
    """``readme`` with the text between the markers replaced; the markers are added at the end if
    missing."""
    block = f"{BEGIN}\n{rendered}\n{END}"
    if BEGIN in readme and END in readme:
        head, rest = readme.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1]
    return readme.rstrip("\n") + "\n\n## Results\n\n" + block + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--readme", type=Path, default=REPO / "bench" / "README.md")
    parser.add_argument("--since", type=float, help="results written before this epoch time are marked stale")
    parser.add_argument(
        "--server", default=DEFAULT_SERVER, help="PostgreSQL asked for its version if no result states it"
    )
    parser.add_argument("--quick", action="store_true", help="the benchmarks ran as a smoke run")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="a benchmark with no JSON in --out-dir keeps its rows from the existing --results "
        "(make bench-10x: the 10x rows are added beside the default run's)",
    )
    args = parser.parse_args(argv)
    results = build(args.out_dir, since=args.since, server=args.server, quick=args.quick)
    if args.merge and args.results.exists():
        results = merged(json.loads(args.results.read_text()), results)
    args.results.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    rendered = table(results)
    args.readme.write_text(with_table(args.readme.read_text(), rendered))
    print(rendered)
    missing = [bench["name"] for bench in results["benchmarks"] if bench["status"] != "ok"]
    if missing:
        print(f"\nnot from this run: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
