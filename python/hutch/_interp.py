"""The code interpreter's wire format (port 49999): the /execute NDJSON
lines and the error answers.  Shared by Sandbox and AsyncSandbox."""
import json
from typing import Any, Optional, Tuple

from ._http import Response, StreamResponse
from ._rpc import sandbox_gone
from .exceptions import InvalidArgumentException, NotFoundException, SandboxException, TimeoutException
from .models import (Context, Execution, ExecutionError, OutputMessage, Result, ValidationError,
                     ValidationResult, _timestamp_ns)

DEFAULT_TIMEOUT = 300  # seconds for one run_code
EXECUTION_TIMEOUT = "Execution timed out — the 'timeout' option can be used to increase this timeout"
KILLED = ("The sandbox was killed while the request was in progress. This can happen when the "
          "sandbox times out or is killed manually. You can modify the sandbox timeout by passing "
          "'timeout' when starting the sandbox or calling '.set_timeout' on the sandbox with the "
          "desired timeout")


def execute_body(code: str, language: Optional[str], context: Any, envs) -> dict:
    if not isinstance(code, str):
        raise InvalidArgumentException("code must be a string")
    if language and context:
        raise InvalidArgumentException(
            "You can provide context or language, but not both at the same time.")
    context_id = context.id if isinstance(context, Context) else context
    return {"code": code, "context_id": context_id, "language": language,
            "env_vars": dict(envs) if envs else None}


def error(resp, sandbox_id: str) -> SandboxException:
    """The code interpreter's errors: 404 text (unknown context), the
    proxy's 502, anything else as status and body."""
    if isinstance(resp, StreamResponse):
        resp = Response(resp.status, resp.reason, resp.headers, resp.read_all())
    text = resp.text.strip()
    if resp.status == 502:
        return sandbox_gone(sandbox_id, resp.json_or_none() or text, 49999)
    if resp.status == 404:
        return NotFoundException(text or "404: not found")
    if resp.status in (400, 422):
        return InvalidArgumentException(f"{resp.status}: {text}")
    if resp.status == 504:
        return TimeoutException(f"{resp.status}: {text}")
    return SandboxException(f"{resp.status}: {text}")


def apply_line(execution: Execution, line: bytes) -> Optional[Tuple[str, Any]]:
    """Fold one NDJSON line into EXECUTION.  Returns the callback to fire:
    ('stdout'|'stderr', OutputMessage), ('result', Result), ('error',
    ExecutionError), or None."""
    line = line.strip()
    if not line:
        return None
    try:
        data = json.loads(line)
    except ValueError:
        raise SandboxException(f"/execute sent a line that is not JSON: {line[:200]!r}") from None
    if not isinstance(data, dict):
        return None
    kind = data.pop("type", None)
    if kind == "result":
        r = Result(**data)
        execution.results.append(r)
        return ("result", r)
    if kind in ("stdout", "stderr"):
        text = data.get("text", "")
        (execution.logs.stdout if kind == "stdout" else execution.logs.stderr).append(text)
        return (kind, OutputMessage(text, _timestamp_ns(data.get("timestamp")), kind == "stderr"))
    if kind == "error":
        execution.error = ExecutionError(data.get("name", ""), data.get("value", ""),
                                         data.get("traceback", ""))
        return ("error", execution.error)
    if kind == "number_of_executions":
        execution.execution_count = data.get("execution_count")
    return None


def context_body(cwd: Optional[str], language: Optional[str]) -> dict:
    data = {}
    if language:
        data["language"] = language
    if cwd:
        data["cwd"] = cwd
    return data


def validation(data: Any, code: str) -> ValidationResult:
    if not isinstance(data, dict) or "valid" not in data:
        raise SandboxException(f"/validate: unexpected answer {data!r}")
    if data["valid"]:
        return ValidationResult(True, None, code)
    e = data.get("error") or {}
    line = e.get("line")
    return ValidationResult(False, ValidationError(e.get("name", "SyntaxError"), e.get("value", ""),
                                                   int(line) if isinstance(line, (int, float)) else None),
                            code)
