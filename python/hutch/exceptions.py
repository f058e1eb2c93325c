"""Exceptions, named like the E2B SDK's so that `except` clauses carry over.

Every exception the SDK raises on purpose is a `SandboxException`.  (In the
E2B SDK `AuthenticationException` derives from `Exception` directly; here it
is a `SandboxException` too, so one `except SandboxException` catches all.)
"""
from typing import Optional

from .models import CommandResult


class SandboxException(Exception):
    """Base class of every error the SDK raises."""


class TimeoutException(SandboxException):
    """A request, an execution, a command or the sandbox itself timed out."""


class InvalidArgumentException(SandboxException):
    """An argument was refused, by the SDK or by the server (HTTP 400)."""


class NotEnoughSpaceException(SandboxException):
    """The sandbox's disk is full (HTTP 507)."""


class NotFoundException(SandboxException):
    """A sandbox, file, process or code context does not exist (HTTP 404)."""


class SandboxNotFoundException(NotFoundException):
    """The sandbox does not exist: it was killed or its timeout passed."""


class FileNotFoundException(NotFoundException):
    """A file or directory inside the sandbox does not exist."""


class AuthenticationException(SandboxException):
    """The server refused the API key or the sandbox's access token (HTTP 401)."""


class RateLimitException(SandboxException):
    """The server refused the request for now: too many sandboxes or requests (HTTP 429)."""


class TemplateException(SandboxException):
    """The template's envd is too old for this SDK."""


class CommandExitException(SandboxException, CommandResult):
    """A command exited with a non-zero exit code.

    It is also a `CommandResult`: `stdout`, `stderr`, `exit_code`, `error`.
    """

    __hash__ = Exception.__hash__

    def __init__(self, stdout: str = "", stderr: str = "", exit_code: int = 0,
                 error: Optional[str] = None):
        SandboxException.__init__(self, stdout, stderr, exit_code, error)
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.error = error

    def __str__(self) -> str:
        return f"Command exited with code {self.exit_code} and error:\n{self.stderr}"

    def __repr__(self) -> str:
        return (f"CommandExitException(exit_code={self.exit_code!r}, error={self.error!r}, "
                f"stdout={self.stdout[-200:]!r}, stderr={self.stderr[-200:]!r})")


class CodeExecutionError(SandboxException):
    """User code failed: raised by `Execution.raise_for_error()` and by
    `run_code(..., raise_on_error=True)` (and by `validate_code` with
    `raise_on_error=True` for code that does not parse).

    `str(e)` reads ``Execution failed: NameError: name 'x' is not defined``.
    Attributes: `name`, `value`, `traceback` (as the kernel gave it), `code`
    (the code that ran) and `execution` (the `Execution`, or None).
    """

    def __init__(self, name: str, value: str, traceback: str = "", code: Optional[str] = None,
                 execution=None, prefix: str = "Execution failed"):
        self.name = name
        self.value = value
        self.traceback = traceback
        self.code = code
        self.execution = execution
        super().__init__(f"{prefix}: {name}: {value}")


__all__ = [
    "SandboxException",
    "TimeoutException",
    "InvalidArgumentException",
    "NotEnoughSpaceException",
    "NotFoundException",
    "SandboxNotFoundException",
    "FileNotFoundException",
    "AuthenticationException",
    "RateLimitException",
    "TemplateException",
    "CommandExitException",
    "CodeExecutionError",
]
