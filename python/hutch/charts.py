"""The structured description of a matplotlib figure that a Python kernel
adds to its result (`Result.chart`), as e2b_code_interpreter's classes.

`Result.chart` is one of LineChart, ScatterChart, BarChart, PieChart,
BoxAndWhiskerChart, SuperChart (a figure with several axes: its
`elements` are charts) or, for anything else, a plain Chart of type
UNKNOWN.  `to_dict()` gives back the dict the kernel sent.
"""
import enum
from typing import Any, Dict, List, Optional, Tuple, Union


class ChartType(str, enum.Enum):
    LINE = "line"
    SCATTER = "scatter"
    BAR = "bar"
    PIE = "pie"
    BOX_AND_WHISKER = "box_and_whisker"
    SUPERCHART = "superchart"
    UNKNOWN = "unknown"


class ScaleType(str, enum.Enum):
    """How an axis maps values: matplotlib's scale names, plus datetime
    and categorical (string) axes."""

    LINEAR = "linear"
    DATETIME = "datetime"
    CATEGORICAL = "categorical"
    LOG = "log"
    SYMLOG = "symlog"
    LOGIT = "logit"
    FUNCTION = "function"
    FUNCTIONLOG = "functionlog"
    ASINH = "asinh"
    UNKNOWN = "unknown"


def _enum(cls, value, default):
    try:
        return cls(value)
    except ValueError:
        return default


class Chart:
    """A chart: its type, title (None without one) and elements."""

    def __init__(self, **kwargs: Any):
        self._raw = kwargs
        self.type = _enum(ChartType, kwargs.get("type"), ChartType.UNKNOWN)
        self.title: Optional[str] = kwargs.get("title")
        self.elements: List[Any] = list(kwargs.get("elements") or [])

    def to_dict(self) -> Dict[str, Any]:
        return self._raw

    def __repr__(self) -> str:
        return f"{type(self).__name__}(title={self.title!r}, elements={len(self.elements)})"


class Chart2D(Chart):
    """A chart with axes: their labels and the units found in them
    ("Time (s)" or "Time [s]" has the unit "s")."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.x_label: Optional[str] = kwargs.get("x_label")
        self.y_label: Optional[str] = kwargs.get("y_label")
        self.x_unit: Optional[str] = kwargs.get("x_unit")
        self.y_unit: Optional[str] = kwargs.get("y_unit")


class PointData:
    """One line or one series of markers: its label and (x, y) points
    (numbers, strings on categorical axes, ISO dates on datetime ones)."""

    def __init__(self, **kwargs: Any):
        self.label: str = kwargs.get("label", "")
        self.points: List[Tuple[Union[str, float], Union[str, float]]] = [
            (x, y) for x, y in kwargs.get("points") or []]

    def __repr__(self) -> str:
        return f"PointData(label={self.label!r}, points={self.points!r})"


class PointChart(Chart2D):
    """Lines or markers on two axes, with each axis's ticks and scale."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        for axis in ("x", "y"):
            setattr(self, axis + "_ticks", list(kwargs.get(axis + "_ticks") or []))
            setattr(self, axis + "_tick_labels", list(kwargs.get(axis + "_tick_labels") or []))
            setattr(self, axis + "_scale",
                    _enum(ScaleType, kwargs.get(axis + "_scale"), ScaleType.UNKNOWN))
        self.elements: List[PointData] = [PointData(**e) for e in self.elements]


class LineChart(PointChart):
    pass


class ScatterChart(PointChart):
    pass


class BarData:
    """One bar: the label under it, its group (one per bar() call) and value."""

    def __init__(self, **kwargs: Any):
        self.label: str = kwargs.get("label", "")
        self.group: str = kwargs.get("group", "")
        self.value = kwargs.get("value")

    def __repr__(self) -> str:
        return f"BarData(label={self.label!r}, group={self.group!r}, value={self.value!r})"


class BarChart(Chart2D):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.elements: List[BarData] = [BarData(**e) for e in self.elements]


class PieData:
    """One wedge: its label, angle in degrees and radius."""

    def __init__(self, **kwargs: Any):
        self.label: str = kwargs.get("label", "")
        self.angle: float = kwargs.get("angle", 0.0)
        self.radius: float = kwargs.get("radius", 0.0)

    def __repr__(self) -> str:
        return f"PieData(label={self.label!r}, angle={self.angle!r}, radius={self.radius!r})"


class PieChart(Chart):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.elements: List[PieData] = [PieData(**e) for e in self.elements]


class BoxAndWhiskerData:
    """One box: the ends of its whiskers, its quartiles and its outliers."""

    def __init__(self, **kwargs: Any):
        self.label: str = kwargs.get("label", "")
        self.min: float = kwargs.get("min")
        self.first_quartile: float = kwargs.get("first_quartile")
        self.median: float = kwargs.get("median")
        self.third_quartile: float = kwargs.get("third_quartile")
        self.max: float = kwargs.get("max")
        self.outliers: List[float] = list(kwargs.get("outliers") or [])

    def __repr__(self) -> str:
        return (f"BoxAndWhiskerData(label={self.label!r}, min={self.min!r}, "
                f"median={self.median!r}, max={self.max!r})")


class BoxAndWhiskerChart(Chart2D):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.elements: List[BoxAndWhiskerData] = [BoxAndWhiskerData(**e) for e in self.elements]


class SuperChart(Chart):
    """A figure with several axes: a chart for each."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.elements: List[Chart] = [c for c in map(deserialize_chart, self.elements) if c]


ChartTypes = Union[LineChart, ScatterChart, BarChart, PieChart, BoxAndWhiskerChart, SuperChart,
                   Chart]

_CLASSES = {
    ChartType.LINE: LineChart,
    ChartType.SCATTER: ScatterChart,
    ChartType.BAR: BarChart,
    ChartType.PIE: PieChart,
    ChartType.BOX_AND_WHISKER: BoxAndWhiskerChart,
    ChartType.SUPERCHART: SuperChart,
}


def deserialize_chart(data: Optional[Dict[str, Any]]) -> Optional[ChartTypes]:
    """The Chart object for a chart dict (None for None or {})."""
    if not data:
        return None
    cls = _CLASSES.get(_enum(ChartType, data.get("type"), ChartType.UNKNOWN), Chart)
    return cls(**data)
