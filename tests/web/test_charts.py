"""The server-drawn SVG charts: well-formed, escaped, integer geometry scaled in integers, and
money labelled in yuan from fen."""

import itertools
import re
import xml.etree.ElementTree as ET

import pytest

from regulator.charts import Series, bar_chart, histogram, line_chart, nice_step, yuan_axis

SVG = "{http://www.w3.org/2000/svg}"
GEOMETRY = ("x", "y", "x1", "y1", "x2", "y2", "width", "height", "cx", "cy", "r")


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def geometry_is_integers(root: ET.Element) -> bool:
    for element in root.iter():
        for name in GEOMETRY:
            if name in element.attrib and not re.fullmatch(r"-?\d+", element.attrib[name]):
                return False
        if "points" in element.attrib and not re.fullmatch(r"(-?\d+,-?\d+ ?)+", element.attrib["points"]):
            return False
    return True


@pytest.mark.parametrize(
    ("top", "step"),
    [(0, 1), (1, 1), (4, 1), (5, 2), (8, 2), (9, 5), (20, 5), (21, 10), (399, 100), (123_456_789, 50_000_000)],
)
def test_nice_step_is_the_smallest_1_2_5_step_that_covers_the_top_in_four_ticks(top, step):
    assert nice_step(top) == step
    assert nice_step(top) * 4 >= top


def test_axis_labels_of_fen_show_whole_yuan_or_cents():
    assert yuan_axis(2_000_000) == "¥20,000"
    assert yuan_axis(0) == "¥0"
    assert yuan_axis(5) == "¥0.05"


def test_bar_chart_escapes_labels_and_scales_bars_in_integers():
    svg = bar_chart(
        [("<script>alert(1)</script>", 300), ("朝阳区", 150), ("Tom & Jerry", 0)],
        chart_id="c1",
        title='Escrow "by" district',
        value_format=str,
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    root = parse(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img" and root.get("data-testid") == "c1"
    assert root.find(f"{SVG}title").text == 'Escrow "by" district'
    assert geometry_is_integers(root)
    widths = [int(rect.get("width")) for rect in root.iter(f"{SVG}rect")]
    assert widths[0] > 0 and widths[1] == widths[0] // 2 and widths[2] == 0


def test_money_bars_are_labelled_in_yuan_without_floats():
    from core.formatting import yuan

    fen = 123_456_789_01  # beyond a float's exact cents if anyone divided by 100.0
    svg = bar_chart([("A", fen), ("B", 1)], chart_id="money", title="t", value_format=yuan)
    assert "¥123,456,789.01" in svg
    assert geometry_is_integers(parse(svg))


def test_histogram_bars_touch_and_the_tallest_reaches_its_axis_top():
    buckets = [(f"{n * 10}–{n * 10 + 9}", count) for n, count in enumerate([0, 3, 8, 1, 0, 0, 0, 0, 0, 2])]
    root = parse(histogram(buckets, chart_id="h", title="Risk"))
    assert geometry_is_integers(root)
    bars = [rect for rect in root.iter(f"{SVG}rect")]
    assert len(bars) == 10
    xs = [int(rect.get("x")) for rect in bars]
    width = int(bars[0].get("width"))
    assert all(b - a == width for a, b in itertools.pairwise(xs))  # adjoining
    heights = [int(rect.get("height")) for rect in bars]
    # 8 merchants on an axis of 0..8 (nice step 2, four ticks): the tallest bar fills the plot
    assert heights[0] == 0 and heights[2] == max(heights) == 180
    assert heights[1] == 180 * 3 // 8
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "8" in labels and "90–99" in labels


def test_line_chart_draws_each_series_with_integer_points_and_a_legend():
    svg = line_chart(
        ["2026-01", "2026-02", "2026-03"],
        [Series("Sales <b>", [100_000_00, 250_000_00, 0]), Series("Releases", [50_000_00, 60_000_00, 70_000_00])],
        chart_id="trend",
        title="Sales & releases",
        axis_format=yuan_axis,
    )
    root = parse(svg)
    assert geometry_is_integers(root)
    polylines = list(root.iter(f"{SVG}polyline"))
    assert len(polylines) == 2
    first = [tuple(map(int, p.split(","))) for p in polylines[0].get("points").split()]
    assert first[0][0] < first[1][0] < first[2][0]
    assert first[1][1] < first[0][1] < first[2][1]  # a higher value is drawn higher up
    assert "Sales &lt;b&gt;" in svg and root.find(f"{SVG}title").text == "Sales & releases"
    assert "¥300,000" in svg  # axis top: nice step ¥75,000 x 4 above ¥250,000


def test_line_chart_with_a_fixed_top_keeps_scores_on_a_0_to_100_axis():
    root = parse(line_chart(["a"], [Series("score", [50])], chart_id="s", title="Score", y_max=100))
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert {"0", "25", "50", "75", "100"} <= set(labels)
    circle = next(root.iter(f"{SVG}circle"))
    assert circle.find(f"{SVG}title").text.endswith("50")


@pytest.mark.parametrize(
    "draw",
    [
        lambda: bar_chart([], chart_id="e", title="Empty"),
        lambda: histogram([], chart_id="e", title="Empty"),
        lambda: line_chart([], [], chart_id="e", title="Empty"),
    ],
)
def test_a_chart_without_data_says_so(draw):
    root = parse(draw())
    assert root.get("id") == "e" and root.find(f"{SVG}text").get("class") == "empty"


def test_line_chart_places_points_by_position_and_never_overlaps_axis_labels():
    day = 86_400
    positions = [0, 1 * day, 2 * day, 90 * day, 90 * day + 60]  # a recompute a minute after the last run
    labels = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-04-01", "2026-04-01"]
    root = parse(
        line_chart(labels, [Series("score", [10, 20, 30, 40, 50])], chart_id="p", title="t", positions=positions)
    )
    xs = [int(c.get("cx")) for c in root.iter(f"{SVG}circle")]
    assert abs((xs[1] - xs[0]) - (xs[2] - xs[1])) <= 1 and xs[3] - xs[2] > 20 * (xs[2] - xs[1])
    axis = [t for t in root.iter(f"{SVG}text") if t.text in labels]
    assert axis[0].text == "2026-04-01"  # the newest point is always labelled
    placed = sorted(int(t.get("x")) for t in axis)
    assert all(b - a >= 10 * 7 for a, b in itertools.pairwise(placed))  # ten characters apart


def test_histogram_with_edges_labels_the_bucket_boundaries():
    buckets = [(f"{n}–{n + 9}", 1) for n in range(0, 100, 10)]
    root = parse(histogram(buckets, chart_id="h", title="t", edges=[str(n) for n in range(0, 101, 10)]))
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "100" in labels and "0–9" not in labels
    assert "0–9: 1" in [t.text for t in root.iter(f"{SVG}title")]


def test_bar_labels_too_long_for_their_column_are_shortened_but_kept_whole_in_the_tooltip():
    long = "unfair contract terms and conditions of sale"
    root = parse(bar_chart([(long, 3), ("other", 1)], chart_id="b", title="t"))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    shortened = next(t for t in texts if t.startswith("unfair"))
    assert shortened.endswith("…") and len(shortened) < len(long)
    assert f"{long}: 3" in [t.text for t in root.iter(f"{SVG}title")]
