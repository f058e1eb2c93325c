"""hutch: the Python SDK for hutch sandboxes (hutchd).

Standard library only.  The same shape as `e2b_code_interpreter`, so code
moves over by changing one import:

    from hutch import Sandbox

    with Sandbox() as sandbox:
        sandbox.run_code("x = 1")
        print(sandbox.run_code("x += 1; x").text)  # 2

The server and key come from the arguments, else HUTCH_API_URL /
HUTCH_API_KEY, else E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY; the URL
defaults to http://127.0.0.1:3000.
"""
from ._version import __version__
from ._config import ConnectionConfig
from .exceptions import (AuthenticationException, CodeExecutionError, CommandExitException,
                         FileNotFoundException, InvalidArgumentException, NotEnoughSpaceException,
                         NotFoundException, RateLimitException, SandboxException,
                         SandboxNotFoundException, TemplateException, TimeoutException)
from .models import (CommandResult, Context, EntryInfo, Execution, ExecutionError, FilesystemEvent,
                     FilesystemEventType, FileType, Logs, OutputHandler, OutputMessage, ProcessInfo,
                     PtySize, Result, RunCodeLanguage, SandboxInfo, SandboxMetrics, SandboxQuery,
                     SandboxState, Stderr, Stdout, ValidationError, ValidationResult, WriteInfo)
from .charts import (BarChart, BarData, BoxAndWhiskerChart, BoxAndWhiskerData, Chart, Chart2D,
                     ChartType, ChartTypes, LineChart, PieChart, PieData, PointChart, PointData,
                     ScaleType, ScatterChart, SuperChart)
from .commands import CommandHandle, Commands
from .filesystem import FileStreamReader, Filesystem, WatchHandle
from .sandbox import Sandbox, SandboxPaginator
from .aio import (AsyncCommandHandle, AsyncCommands, AsyncFilesystem, AsyncSandbox,
                  AsyncSandboxPaginator, AsyncWatchHandle)

MIMEType = str


_REMOVED = {
    "CodeInterpreter": "hutch.CodeInterpreter was removed (it was the v0 name, as in "
                       "e2b_code_interpreter): use Sandbox instead, e.g. `from hutch import Sandbox` "
                       "and `with Sandbox() as sandbox: sandbox.run_code(...)`",
    "AsyncCodeInterpreter": "hutch.AsyncCodeInterpreter was removed (the v0 name): use AsyncSandbox "
                            "instead, e.g. `from hutch import AsyncSandbox`",
}


def __getattr__(name: str):
    if name in _REMOVED:
        raise ImportError(_REMOVED[name], name=name, path=__file__)
    raise AttributeError(f"module 'hutch' has no attribute {name!r}")


__all__ = [
    "__version__", "ConnectionConfig",
    "Sandbox", "AsyncSandbox", "SandboxPaginator", "AsyncSandboxPaginator",
    "Commands", "AsyncCommands", "CommandHandle", "AsyncCommandHandle",
    "Filesystem", "AsyncFilesystem", "FileStreamReader", "WatchHandle", "AsyncWatchHandle",
    "CommandResult", "Context", "EntryInfo", "Execution", "ExecutionError", "FilesystemEvent",
    "FilesystemEventType", "FileType", "Logs", "MIMEType", "OutputHandler", "OutputMessage",
    "ProcessInfo", "PtySize", "Result", "RunCodeLanguage", "SandboxInfo", "SandboxMetrics",
    "SandboxQuery", "SandboxState", "Stderr", "Stdout", "ValidationError", "ValidationResult",
    "WriteInfo",
    "Chart", "Chart2D", "ChartType", "ChartTypes", "ScaleType", "PointChart", "PointData",
    "LineChart", "ScatterChart", "BarChart", "BarData", "PieChart", "PieData",
    "BoxAndWhiskerChart", "BoxAndWhiskerData", "SuperChart",
    "SandboxException", "TimeoutException", "InvalidArgumentException", "NotEnoughSpaceException",
    "NotFoundException", "SandboxNotFoundException", "FileNotFoundException",
    "AuthenticationException", "RateLimitException", "TemplateException", "CommandExitException",
    "CodeExecutionError",
]
