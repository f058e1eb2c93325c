"""The values the SDK returns: executions and their results, contexts,
sandbox info and metrics, command results and processes, file entries and
filesystem events.  Field names follow the E2B SDKs."""
import datetime as _dt
import enum
import json as _json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, TypeVar, Union

from .charts import ChartTypes, deserialize_chart

T = TypeVar("T")
OutputHandler = Callable[[T], Any]
"""A callback: a plain function, or (with AsyncSandbox) a coroutine function."""

RunCodeLanguage = str
"""'python' (the default), 'javascript', 'typescript', 'r', 'java', 'bash'... as installed."""


def parse_time(value: Any) -> Optional[_dt.datetime]:
    """RFC 3339 / ISO 8601 to an aware datetime (Python 3.9 has no 'Z' or
    nanosecond support in fromisoformat, so normalise first)."""
    if not isinstance(value, str) or not value:
        return None
    s = value.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", s)
    if m:
        frac = m.group(2) or ""
        if frac:
            frac = "." + (frac[1:] + "000000")[:6]
        s = m.group(1) + frac + m.group(3)
    try:
        t = _dt.datetime.fromisoformat(s)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def _timestamp_ns(value: Any) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    t = parse_time(value)
    if t is None:
        import time
        return time.time_ns()
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


# ---------------------------------------------------------------- code interpreter

@dataclass
class OutputMessage:
    """One chunk of stdout or stderr from run_code (chunks, not lines)."""

    line: str
    timestamp: int
    """Unix epoch in nanoseconds (when the kernel produced it)."""
    error: bool = False
    """True for stderr."""

    def __str__(self) -> str:
        return self.line


@dataclass
class ExecutionError:
    """An exception raised by the executed code."""

    name: str
    value: str
    traceback: str

    def __init__(self, name: str, value: str, traceback: str = "", **kwargs):
        self.name = name
        self.value = value
        self.traceback = traceback

    def to_dict(self) -> Dict[str, str]:
        return {"name": self.name, "value": self.value, "traceback": self.traceback}

    def to_json(self) -> str:
        return _json.dumps(self.to_dict())


_RESULT_FIELDS = ("text", "html", "markdown", "svg", "png", "jpeg", "pdf", "latex", "json",
                  "javascript", "data", "chart")
_MIME = {"text": "text/plain", "html": "text/html", "markdown": "text/markdown",
         "svg": "image/svg+xml", "png": "image/png", "jpeg": "image/jpeg",
         "pdf": "application/pdf", "latex": "text/latex", "json": "application/json",
         "javascript": "application/javascript", "data": "e2b/data", "chart": "e2b/chart"}


class Result:
    """Something the code displayed: the value of its last expression
    (`is_main_result`) or a display() call, such as a plot.

    Each representation is a field: text, html, markdown, svg, png, jpeg
    (base64), pdf (base64), latex, json, javascript, data (a pandas
    DataFrame's columns: {name: [values]}), chart (a matplotlib figure as a
    hutch.charts Chart: LineChart, BarChart...); other MIME types are in
    `extra`.  The `_repr_*_` methods make a Result display
    itself in Jupyter/IPython.
    """

    def __init__(self, text: Optional[str] = None, html: Optional[str] = None,
                 markdown: Optional[str] = None, svg: Optional[str] = None,
                 png: Optional[str] = None, jpeg: Optional[str] = None, pdf: Optional[str] = None,
                 latex: Optional[str] = None, json: Optional[dict] = None,
                 javascript: Optional[str] = None, data: Optional[dict] = None,
                 chart: Union[dict, ChartTypes, None] = None, is_main_result: bool = False,
                 extra: Optional[dict] = None, **kwargs):
        self.text = text
        self.html = html
        self.markdown = markdown
        self.svg = svg
        self.png = png
        self.jpeg = jpeg
        self.pdf = pdf
        self.latex = latex
        self.json = json
        self.javascript = javascript
        self.data = data
        self.chart: Optional[ChartTypes] = deserialize_chart(chart) if isinstance(chart, dict) \
            else chart
        self.is_main_result = is_main_result
        self.extra = extra or {}

    def __getitem__(self, item: str):
        return getattr(self, item)

    def __eq__(self, other) -> bool:
        return isinstance(other, Result) and self.to_dict() == other.to_dict() \
            and self.is_main_result == other.is_main_result

    def formats(self) -> List[str]:
        """The names of the representations present (extra MIME types by name)."""
        out = [f for f in _RESULT_FIELDS if getattr(self, f) is not None]
        out.extend(self.extra.keys())
        return out

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {f: getattr(self, f) for f in _RESULT_FIELDS if getattr(self, f) is not None}
        if self.chart is not None:
            d["chart"] = self.chart.to_dict()
        if self.extra:
            d["extra"] = self.extra
        d["is_main_result"] = self.is_main_result
        return d

    def __repr__(self) -> str:
        if self.text is not None:
            return f"Result({self.text})"
        return "Result(Formats: " + ", ".join(self.formats()) + ")"

    def __str__(self) -> str:
        return self.__repr__()

    def _repr_mimebundle_(self, include=None, exclude=None) -> Dict[str, Any]:
        bundle = {}
        for f in _RESULT_FIELDS:
            v = getattr(self, f)
            if v is not None and f not in ("data", "chart"):
                bundle[_MIME[f]] = v
        for k, v in self.extra.items():
            bundle[k] = v
        return bundle

    def _repr_html_(self) -> Optional[str]:
        return self.html

    def _repr_markdown_(self) -> Optional[str]:
        return self.markdown

    def _repr_svg_(self) -> Optional[str]:
        return self.svg

    def _repr_png_(self) -> Optional[str]:
        return self.png

    def _repr_jpeg_(self) -> Optional[str]:
        return self.jpeg

    def _repr_pdf_(self) -> Optional[str]:
        return self.pdf

    def _repr_latex_(self) -> Optional[str]:
        return self.latex

    def _repr_json_(self) -> Optional[dict]:
        return self.json

    def _repr_javascript_(self) -> Optional[str]:
        return self.javascript


@dataclass(repr=False)
class Logs:
    """What the code printed, as the chunks the kernel sent."""

    stdout: List[str] = field(default_factory=list)
    stderr: List[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Logs(stdout: {self.stdout}, stderr: {self.stderr})"

    def to_dict(self) -> Dict[str, List[str]]:
        return {"stdout": list(self.stdout), "stderr": list(self.stderr)}

    def to_json(self) -> str:
        return _json.dumps(self.to_dict())


class Execution:
    """The outcome of run_code.

    `results` (main result and display outputs), `logs.stdout` /
    `logs.stderr`, `error` (an ExecutionError, or None), `execution_count`,
    and `text`: the main result's text, or None when the code's last line
    returns nothing.  A failure in the code does not raise; call
    `raise_for_error()` (or pass raise_on_error=True) for that.
    """

    def __init__(self, results: Optional[List[Result]] = None, logs: Optional[Logs] = None,
                 error: Optional[ExecutionError] = None, execution_count: Optional[int] = None,
                 **kwargs):
        self.results = results or []
        self.logs = logs or Logs()
        self.error = error
        self.execution_count = execution_count
        self.code: Optional[str] = kwargs.get("code")

    def __repr__(self) -> str:
        return f"Execution(Results: {self.results}, Logs: {self.logs}, Error: {self.error})"

    @property
    def text(self) -> Optional[str]:
        for r in self.results:
            if r.is_main_result:
                return r.text
        return None

    def raise_for_error(self) -> "Execution":
        """Raise CodeExecutionError if the code failed; else return self."""
        if self.error is not None:
            from .exceptions import CodeExecutionError
            raise CodeExecutionError(self.error.name, self.error.value, self.error.traceback,
                                     code=self.code, execution=self)
        return self

    def to_dict(self) -> Dict[str, Any]:
        return {"results": [r.to_dict() for r in self.results], "logs": self.logs.to_dict(),
                "error": self.error.to_dict() if self.error else None,
                "execution_count": self.execution_count}

    def to_json(self) -> str:
        """JSON of results, logs, error and execution_count (nested objects,
        not the doubly encoded strings of the E2B SDK)."""
        return _json.dumps(self.to_dict())


@dataclass
class Context:
    """A code context: one kernel with its own state, language and cwd."""

    id: str
    language: str
    cwd: str

    def __init__(self, context_id: str, language: str, cwd: str, **kwargs):
        self.id = context_id
        self.language = language
        self.cwd = cwd

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Context":
        return cls(context_id=data.get("id"), language=data.get("language"), cwd=data.get("cwd"))


@dataclass
class ValidationError:
    """Why code does not parse: the exception name (SyntaxError...), its
    message and the 1-based line, when known."""

    name: str
    value: str
    line: Optional[int] = None


@dataclass
class ValidationResult:
    """validate_code's answer; truthy when the code is valid."""

    valid: bool
    error: Optional[ValidationError] = None
    code: Optional[str] = None

    def __bool__(self) -> bool:
        return self.valid

    def raise_for_error(self) -> "ValidationResult":
        if not self.valid:
            from .exceptions import CodeExecutionError
            e = self.error or ValidationError("SyntaxError", "invalid code")
            where = f" (line {e.line})" if e.line else ""
            raise CodeExecutionError(e.name, f"{e.value}{where}", "", code=self.code,
                                     prefix="Validation failed")
        return self


# ---------------------------------------------------------------- sandboxes

class SandboxState(str, enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"

    def __str__(self) -> str:
        return self.value


@dataclass
class SandboxInfo:
    """What the control plane knows about a sandbox."""

    sandbox_id: str
    template_id: str
    name: Optional[str]
    metadata: Dict[str, str]
    started_at: Optional[_dt.datetime]
    end_at: Optional[_dt.datetime]
    state: SandboxState
    cpu_count: int
    memory_mb: int
    envd_version: str
    disk_size_mb: Optional[int] = None
    sandbox_domain: Optional[str] = None

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "SandboxInfo":
        try:
            state = SandboxState(d.get("state", "running"))
        except ValueError:
            state = d.get("state")  # type: ignore[assignment]
        return cls(sandbox_id=d["sandboxID"], template_id=d.get("templateID", ""),
                   name=d.get("alias"), metadata=dict(d.get("metadata") or {}),
                   started_at=parse_time(d.get("startedAt")), end_at=parse_time(d.get("endAt")),
                   state=state, cpu_count=d.get("cpuCount", 0), memory_mb=d.get("memoryMB", 0),
                   envd_version=d.get("envdVersion", ""), disk_size_mb=d.get("diskSizeMB"),
                   sandbox_domain=d.get("domain"))


@dataclass
class SandboxQuery:
    """Filters for Sandbox.list()."""

    metadata: Optional[Dict[str, str]] = None
    state: Optional[List[Union[SandboxState, str]]] = None
    template: Optional[str] = None


@dataclass
class SandboxMetrics:
    cpu_count: int
    cpu_used_pct: float
    disk_total: int
    disk_used: int
    mem_total: int
    mem_used: int
    mem_cache: int
    timestamp: Optional[_dt.datetime]

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "SandboxMetrics":
        ts = parse_time(d.get("timestamp"))
        if ts is None and d.get("timestampUnix") is not None:
            ts = _dt.datetime.fromtimestamp(d["timestampUnix"], _dt.timezone.utc)
        return cls(cpu_count=d.get("cpuCount", 0), cpu_used_pct=d.get("cpuUsedPct", 0.0),
                   disk_total=d.get("diskTotal", 0), disk_used=d.get("diskUsed", 0),
                   mem_total=d.get("memTotal", 0), mem_used=d.get("memUsed", 0),
                   mem_cache=d.get("memCache", 0), timestamp=ts)


# ---------------------------------------------------------------- commands

Stdout = str
Stderr = str


@dataclass
class CommandResult:
    """A finished command: its output and exit code (0 = success)."""

    stderr: str
    stdout: str
    exit_code: int
    error: Optional[str] = None


@dataclass
class ProcessInfo:
    """A process started through envd and still running."""

    pid: int
    tag: Optional[str]
    cmd: str
    args: List[str]
    envs: Dict[str, str]
    cwd: Optional[str]


@dataclass
class PtySize:
    rows: int
    cols: int


# ---------------------------------------------------------------- files

class FileType(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"


_FILE_TYPES = {"FILE_TYPE_FILE": FileType.FILE, "FILE_TYPE_DIRECTORY": FileType.DIR,
               "FILE_TYPE_SYMLINK": FileType.SYMLINK, 1: FileType.FILE, 2: FileType.DIR,
               3: FileType.SYMLINK, "file": FileType.FILE, "dir": FileType.DIR}


@dataclass
class WriteInfo:
    """A file that was written."""

    name: str
    type: Optional[FileType]
    path: str
    metadata: Optional[Dict[str, str]] = None

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "WriteInfo":
        return cls(name=d.get("name", ""), type=_FILE_TYPES.get(d.get("type")), path=d.get("path", ""),
                   metadata=dict(d["metadata"]) if d.get("metadata") else None)


@dataclass
class EntryInfo:
    """A file, directory or symlink in the sandbox (for a symlink, `type` is
    its target's type and `symlink_target` the resolved path)."""

    name: str
    type: Optional[FileType]
    path: str
    size: int
    mode: int
    permissions: str
    owner: str
    group: str
    modified_time: Optional[_dt.datetime]
    symlink_target: Optional[str] = None
    metadata: Optional[Dict[str, str]] = None

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "EntryInfo":
        def get(camel, snake, default=None):
            return d.get(camel, d.get(snake, default))

        return cls(name=d.get("name", ""), type=_FILE_TYPES.get(d.get("type")), path=d.get("path", ""),
                   size=int(d.get("size", 0) or 0), mode=int(d.get("mode", 0) or 0),
                   permissions=d.get("permissions", ""), owner=d.get("owner", ""),
                   group=d.get("group", ""),
                   modified_time=parse_time(get("modifiedTime", "modified_time")),
                   symlink_target=get("symlinkTarget", "symlink_target"),
                   metadata=dict(d["metadata"]) if d.get("metadata") else None)


class FilesystemEventType(enum.Enum):
    CHMOD = "chmod"
    CREATE = "create"
    REMOVE = "remove"
    RENAME = "rename"
    WRITE = "write"


_EVENT_TYPES = {"EVENT_TYPE_CREATE": FilesystemEventType.CREATE,
                "EVENT_TYPE_WRITE": FilesystemEventType.WRITE,
                "EVENT_TYPE_REMOVE": FilesystemEventType.REMOVE,
                "EVENT_TYPE_RENAME": FilesystemEventType.RENAME,
                "EVENT_TYPE_CHMOD": FilesystemEventType.CHMOD,
                1: FilesystemEventType.CREATE, 2: FilesystemEventType.WRITE,
                3: FilesystemEventType.REMOVE, 4: FilesystemEventType.RENAME,
                5: FilesystemEventType.CHMOD}


@dataclass
class FilesystemEvent:
    """A change under a watched directory; `name` is relative to it."""

    name: str
    type: Optional[FilesystemEventType]
    entry: Optional[EntryInfo] = None

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "FilesystemEvent":
        entry = d.get("entry")
        return cls(name=d.get("name", ""), type=_EVENT_TYPES.get(d.get("type")),
                   entry=EntryInfo.from_json(entry) if entry else None)


def _iter_nonempty(items: Iterable[Any]) -> List[Any]:
    return [i for i in items if i]
