"""Result.chart (a matplotlib figure as hutch.charts classes) and
Result.data (a pandas DataFrame's columns), from a real Python kernel."""
import asyncio

from hutch import (AsyncSandbox, BarChart, BoxAndWhiskerChart, ChartType, LineChart, PieChart,
                   Result, ScaleType, ScatterChart, SuperChart)


def only_result(sandbox, code):
    e = sandbox.run_code(code)
    assert e.error is None, e.error
    assert len(e.results) == 1, [r.formats() for r in e.results]
    return e.results[0]


def test_line_chart(sandbox):
    r = only_result(sandbox, "import matplotlib.pyplot as plt\n"
                             "plt.plot([1, 2, 3], [2, 4, 8], label='doubling')\n"
                             "plt.title('Powers'); plt.xlabel('Step'); plt.ylabel('Size (kB)')\n"
                             "plt.show()")
    chart = r.chart
    assert isinstance(chart, LineChart) and chart.type == ChartType.LINE
    assert (chart.title, chart.x_label, chart.y_label, chart.y_unit) == \
        ("Powers", "Step", "Size (kB)", "kB")
    assert chart.x_scale == ScaleType.LINEAR
    assert [(e.label, e.points) for e in chart.elements] == \
        [("doubling", [(1, 2), (2, 4), (3, 8)])]
    assert r.png and "png" in r.formats() and "chart" in r.formats()
    assert r.to_dict()["chart"]["type"] == "line"


def test_categorical_and_datetime_axes(sandbox):
    chart = only_result(sandbox, "import matplotlib.pyplot as plt, datetime\n"
                                 "d = [datetime.date(2024, 1, i) for i in (1, 2)]\n"
                                 "fig, (a, b) = plt.subplots(2)\n"
                                 "a.plot(['mon', 'tue'], [1, 2]); b.plot(d, [3, 4])\n"
                                 "plt.show()").chart
    assert isinstance(chart, SuperChart) and chart.title is None
    cats, dates = chart.elements
    assert cats.x_scale == ScaleType.CATEGORICAL
    assert cats.elements[0].points == [("mon", 1), ("tue", 2)]
    assert dates.x_scale == ScaleType.DATETIME
    assert dates.elements[0].points == [("2024-01-01", 3), ("2024-01-02", 4)]
    assert all(isinstance(t, str) for t in dates.x_ticks)


def test_bar_scatter_pie_box(sandbox):
    def chart(code):
        return only_result(sandbox, "import matplotlib.pyplot as plt\n" + code + "\nplt.show()").chart

    bar = chart("plt.barh(['a', 'b'], [4, 2]); plt.xlabel('Votes')")
    assert isinstance(bar, BarChart)
    assert bar.y_label == "Votes"  # the values' axis, whichever way the bars lie
    assert [(b.label, b.group, b.value) for b in bar.elements] == [("a", "Group 0", 4), ("b", "Group 0", 2)]
    scatter = chart("plt.scatter([0.5], [1.5])")
    assert isinstance(scatter, ScatterChart)
    assert [(e.label, e.points) for e in scatter.elements] == [("Series 0", [(0.5, 1.5)])]
    pie = chart("plt.pie([3, 1], labels=['yes', 'no'])")
    assert isinstance(pie, PieChart)
    assert [(w.label, w.angle, w.radius) for w in pie.elements] == [("yes", 270, 1), ("no", 90, 1)]
    box = chart("plt.boxplot([[1, 2, 3, 4, 5]], vert=False, patch_artist=True)")
    assert isinstance(box, BoxAndWhiskerChart)
    (b,) = box.elements
    assert (b.label, b.min, b.first_quartile, b.median, b.third_quartile, b.max, b.outliers) == \
        ("1", 1, 2, 3, 4, 5, [])


def test_unknown_chart_keeps_title(sandbox):
    chart = only_result(sandbox, "import matplotlib.pyplot as plt\n"
                                 "plt.imshow([[1, 2], [3, 4]]); plt.title('Heat'); plt.show()").chart
    assert chart.type == ChartType.UNKNOWN and chart.title == "Heat" and chart.elements == []


def test_dataframe_data(sandbox):
    r = only_result(sandbox, "import pandas as pd\n"
                             "pd.DataFrame({'n': [1, 2], 'when': pd.to_datetime(['2024-05-01', None])})")
    assert r.is_main_result
    assert r.data == {"n": [1, 2], "when": ["2024-05-01T00:00:00.000", None]}
    assert r.chart is None
    assert "<table" in r.html


def test_plain_values_have_neither(sandbox):
    r = only_result(sandbox, "x = 41\nx + 1")
    assert (r.text, r.data, r.chart) == ("42", None, None)
    assert r.formats() == ["text"]


def test_result_from_a_chart_dict():
    r = Result(chart={"type": "pie", "title": "T", "elements": [{"label": "a", "angle": 360, "radius": 1}]})
    assert isinstance(r.chart, PieChart)
    assert r.chart.elements[0].angle == 360
    assert r.to_dict()["chart"] == {"type": "pie", "title": "T",
                                    "elements": [{"label": "a", "angle": 360, "radius": 1}]}
    assert Result(chart={"type": "new-kind", "title": None, "elements": []}).chart.type == \
        ChartType.UNKNOWN


def test_async_chart(server, tag):
    async def main():
        async with await AsyncSandbox.create(metadata={"test": tag}) as sbx:
            return await sbx.run_code("import matplotlib.pyplot as plt; plt.plot([1, 2]); plt.show()")

    e = asyncio.run(asyncio.wait_for(main(), 120))
    assert isinstance(e.results[0].chart, LineChart)
