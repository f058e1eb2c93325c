"""Sandbox: one hutch sandbox, with the code interpreter, commands and files."""
import ipaddress
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

from . import _api, _interp
from ._config import JUPYTER_PORT, ConnectionConfig
from ._http import Broken, DeadlineExceeded, dumps
from ._rpc import EnvdClient, envd_error
from .commands import Commands
from .exceptions import (InvalidArgumentException, SandboxException,
                         SandboxNotFoundException, TemplateException, TimeoutException)
from .filesystem import Filesystem
from .models import (Context, Execution, ExecutionError, OutputMessage, Result, SandboxInfo,
                     SandboxMetrics, SandboxQuery, SandboxState, ValidationResult)

DEFAULT_TEMPLATE = "code-interpreter-v1"


class _ClassOrInstance:
    """A method that works on an instance (`sbx.kill()`) and on the class
    with a sandbox id (`Sandbox.kill(sandbox_id)`), as in the E2B SDK."""

    def __init__(self, cls_method: str, fn: Callable):
        self._cls_method = cls_method
        self._fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __get__(self, obj, owner):
        if obj is None:
            return getattr(owner, self._cls_method)
        return self._fn.__get__(obj, owner)


def class_or_instance(cls_method: str):
    return lambda fn: _ClassOrInstance(cls_method, fn)


def _version_tuple(v: str):
    out = []
    for part in (v or "0").split("-")[0].split("."):
        try:
            out.append(int(part))
        except ValueError:
            out.append(0)
    return tuple(out)


def _config(opts: Dict[str, Any]) -> ConnectionConfig:
    known = ("api_key", "api_url", "sandbox_url", "domain", "request_timeout", "headers")
    unknown = set(opts) - set(known)
    if unknown:
        raise TypeError(f"unexpected argument(s): {', '.join(sorted(unknown))}")
    return ConnectionConfig(**{k: opts.get(k) for k in known})


def _query(query: Optional[SandboxQuery], metadata, state) -> Optional[SandboxQuery]:
    if metadata is None and state is None:
        return query
    q = SandboxQuery(**(vars(query) if query else {}))
    if metadata is not None:
        q.metadata = metadata
    if state is not None:
        q.state = [state] if isinstance(state, (str, SandboxState)) else list(state)
    return q


class SandboxPaginator:
    """Pages of Sandbox.list(): call next_items() while has_next, or iterate
    the paginator for every sandbox across pages."""

    def __init__(self, config: ConnectionConfig, query: Optional[SandboxQuery], limit: Optional[int],
                 next_token: Optional[str]):
        self._config = config
        self.query = query
        self.limit = limit
        self._next_token = next_token
        self._has_next = True

    @property
    def has_next(self) -> bool:
        return self._has_next

    @property
    def next_token(self) -> Optional[str]:
        return self._next_token

    def next_items(self, request_timeout: Optional[float] = None) -> List[SandboxInfo]:
        if not self._has_next:
            raise SandboxException("No more items to fetch")
        items, token = _api.list_page(self._config, self.query, self.limit, self._next_token,
                                      request_timeout)
        self._next_token = token
        self._has_next = bool(token)
        return items

    def __iter__(self) -> Iterator[SandboxInfo]:
        while self._has_next:
            yield from self.next_items()


class Sandbox:
    """A hutch sandbox.

    `Sandbox()` or `Sandbox.create()` creates one (template
    'code-interpreter-v1' by default); `Sandbox.connect(id)` attaches to an
    existing one.  As a context manager it is killed on exit.
    """

    default_template = DEFAULT_TEMPLATE

    def __init__(self, template: Optional[str] = None, timeout: Optional[int] = None,
                 metadata: Optional[Dict[str, str]] = None, envs: Optional[Dict[str, str]] = None,
                 secure: bool = True, allow_internet_access: Optional[bool] = None, **opts):
        """Create a sandbox.  timeout: seconds it lives (300 by default; see
        set_timeout); metadata: strings to find it by in list(); envs:
        environment variables of every process and kernel in it.
        Connection options: api_key, api_url, sandbox_url, domain,
        request_timeout (seconds, default 60), headers."""
        config = _config(opts)
        data = _api.create(config, template or self.default_template, timeout, metadata, envs,
                           secure, allow_internet_access, opts.get("request_timeout"))
        self._setup(config, data)

    @classmethod
    def _from_data(cls, config: ConnectionConfig, data: Dict[str, Any]):
        sbx = cls.__new__(cls)
        sbx._setup(config, data)
        return sbx

    def _setup(self, config: ConnectionConfig, data: Dict[str, Any]) -> None:
        self._config = config
        self._sandbox_id: str = data["sandboxID"]
        self._template_id: Optional[str] = data.get("templateID")
        self._envd_version: str = data.get("envdVersion") or "0.0.0"
        self._envd_access_token: Optional[str] = data.get("envdAccessToken")
        self._traffic_access_token: Optional[str] = data.get("trafficAccessToken")
        self._sandbox_domain: Optional[str] = data.get("domain")
        if _version_tuple(self._envd_version) < (0, 1, 0):
            try:
                _api.kill(config, self._sandbox_id)
            except SandboxException:
                pass
            raise TemplateException(
                f"the sandbox's envd is version {self._envd_version}, older than 0.1.0, which this "
                "SDK does not support")
        self._envd = EnvdClient(_api.sandbox_endpoint(config), self._sandbox_id,
                                self._envd_access_token, config.timeout)
        self._files = Filesystem(self._envd)
        self._commands = Commands(self._envd, self.is_running)

    # ---- properties ----
    @property
    def sandbox_id(self) -> str:
        return self._sandbox_id

    @property
    def sandbox_domain(self) -> Optional[str]:
        return self._sandbox_domain or self._config.domain

    @property
    def envd_api_url(self) -> str:
        return self._config.sandbox_url

    @property
    def connection_config(self) -> ConnectionConfig:
        return self._config

    @property
    def traffic_access_token(self) -> Optional[str]:
        return self._traffic_access_token

    @property
    def files(self) -> Filesystem:
        return self._files

    @property
    def commands(self) -> Commands:
        return self._commands

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sandbox_id={self._sandbox_id!r}, api_url={self._config.api_url!r})"

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.kill()
        except SandboxException:
            if exc_type is None:
                raise

    # ---- lifecycle ----
    @classmethod
    def create(cls, template: Optional[str] = None, timeout: Optional[int] = None,
               metadata: Optional[Dict[str, str]] = None, envs: Optional[Dict[str, str]] = None,
               secure: bool = True, allow_internet_access: Optional[bool] = None, **opts):
        """Create a sandbox (the same as calling the class)."""
        return cls(template=template, timeout=timeout, metadata=metadata, envs=envs, secure=secure,
                   allow_internet_access=allow_internet_access, **opts)

    @classmethod
    def _cls_connect(cls, sandbox_id: str, timeout: Optional[int] = None, **opts):
        config = _config(opts)
        return cls._from_data(config, _api.connect(config, sandbox_id, timeout, opts.get("request_timeout")))

    @class_or_instance("_cls_connect")
    def connect(self, timeout: Optional[int] = None, **opts):
        """`Sandbox.connect(sandbox_id)`: attach to a running sandbox (a paused
        one is resumed); `sbx.connect()` reconnects.  timeout, when given,
        extends its life to at least that many seconds from now."""
        config = _config({**self._config.params(), **opts})
        self._setup(config, _api.connect(config, self._sandbox_id, timeout, opts.get("request_timeout")))
        return self

    @classmethod
    def list(cls, query: Optional[SandboxQuery] = None, limit: Optional[int] = None,
             next_token: Optional[str] = None, metadata: Optional[Dict[str, str]] = None,
             state=None, **opts) -> SandboxPaginator:
        """Sandboxes, running and paused, newest first, in pages of LIMIT
        (at most 100).  Filter with query=SandboxQuery(metadata=..., state=[...])
        or the metadata= and state= shorthands."""
        return SandboxPaginator(_config(opts), _query(query, metadata, state), limit, next_token)

    @classmethod
    def _cls_kill(cls, sandbox_id: str, **opts) -> bool:
        return _api.kill(_config(opts), sandbox_id, opts.get("request_timeout"))

    @class_or_instance("_cls_kill")
    def kill(self, request_timeout: Optional[float] = None) -> bool:
        """Kill the sandbox.  False if it did not exist anymore."""
        return _api.kill(self._config, self._sandbox_id, request_timeout)

    def close(self, request_timeout: Optional[float] = None) -> bool:
        """Kill the sandbox (an alias of kill())."""
        return self.kill(request_timeout)

    @classmethod
    def _cls_set_timeout(cls, sandbox_id: str, timeout: int, **opts) -> None:
        _api.set_timeout(_config(opts), sandbox_id, timeout, opts.get("request_timeout"))

    @class_or_instance("_cls_set_timeout")
    def set_timeout(self, timeout: int, request_timeout: Optional[float] = None) -> None:
        """The sandbox now ends TIMEOUT seconds from now (this can shorten it)."""
        _api.set_timeout(self._config, self._sandbox_id, timeout, request_timeout)

    @classmethod
    def _cls_get_info(cls, sandbox_id: str, **opts) -> SandboxInfo:
        return _api.get_info(_config(opts), sandbox_id, opts.get("request_timeout"))

    @class_or_instance("_cls_get_info")
    def get_info(self, request_timeout: Optional[float] = None) -> SandboxInfo:
        return _api.get_info(self._config, self._sandbox_id, request_timeout)

    @classmethod
    def _cls_get_metrics(cls, sandbox_id: str, start=None, end=None, **opts) -> List[SandboxMetrics]:
        return _api.get_metrics(_config(opts), sandbox_id, start, end, opts.get("request_timeout"))

    @class_or_instance("_cls_get_metrics")
    def get_metrics(self, start=None, end=None, request_timeout: Optional[float] = None) -> List[SandboxMetrics]:
        """CPU, memory and disk use samples (start/end: datetimes or unix seconds)."""
        return _api.get_metrics(self._config, self._sandbox_id, start, end, request_timeout)

    @classmethod
    def _cls_pause(cls, sandbox_id: str, **opts) -> bool:
        return _api.pause(_config(opts), sandbox_id, opts.get("request_timeout"))

    @class_or_instance("_cls_pause")
    def pause(self, request_timeout: Optional[float] = None) -> bool:
        """Freeze every process of the sandbox; connect() resumes it.  False
        if it was already paused."""
        return _api.pause(self._config, self._sandbox_id, request_timeout)

    beta_pause = pause

    def is_running(self, request_timeout: Optional[float] = None) -> bool:
        """Whether the sandbox is up: asks its envd (GET /health)."""
        h = self._envd.headers(token=False)
        resp = self._envd.endpoint.request("GET", "/health", None, h, self._config.timeout(request_timeout))
        if resp.status == 502:
            return False
        if 200 <= resp.status < 300:
            return True
        raise envd_error(resp, self._sandbox_id)

    def get_host(self, port: int) -> str:
        """The host name that reaches PORT in this sandbox through hutchd
        ({port}-{sandbox_id}.{domain}).  The domain is the server's, else
        HUTCH_DOMAIN / E2B_DOMAIN, else the sandbox URL's host (with its port;
        'localhost' for a loopback address)."""
        domain = self.sandbox_domain
        if domain:
            return f"{port}-{self._sandbox_id}.{domain}"
        u = urllib.parse.urlsplit(self._config.sandbox_url)
        host = u.hostname or "localhost"
        try:
            if ipaddress.ip_address(host).is_loopback:
                host = "localhost"
        except ValueError:
            pass
        return f"{port}-{self._sandbox_id}.{host}" + (f":{u.port}" if u.port else "")

    # ---- code interpreter ----
    def _jupyter_headers(self, token: bool = True) -> Dict[str, str]:
        h = {"E2b-Sandbox-Id": self._sandbox_id, "E2b-Sandbox-Port": str(JUPYTER_PORT),
             "Content-Type": "application/json"}
        if token and self._envd_access_token:
            h["X-Access-Token"] = self._envd_access_token
        if self._traffic_access_token:
            h["E2B-Traffic-Access-Token"] = self._traffic_access_token
        return h

    def _jupyter(self, method: str, path: str, body: Any = None,
                 request_timeout: Optional[float] = None):
        resp = self._envd.endpoint.request(method, path, None if body is None else dumps(body),
                                           self._jupyter_headers(), self._config.timeout(request_timeout))
        if not 200 <= resp.status < 300:
            raise _interp.error(resp, self._sandbox_id)
        return resp

    def _killed_or(self, e: SandboxException) -> SandboxException:
        try:
            running = self.is_running()
        except Exception:
            return e
        return e if running else SandboxNotFoundException(_interp.KILLED)

    def _execute(self, code: str, language, context, envs, timeout, request_timeout,
                 emit: Callable[[str, Any], None], abort=None) -> Execution:
        body = _interp.execute_body(code, language, context, envs)
        timeout = None if timeout == 0 else (timeout or _interp.DEFAULT_TIMEOUT)
        deadline = time.monotonic() + timeout if timeout else None
        header_timeout = self._config.timeout(request_timeout)
        if timeout and (header_timeout is None or header_timeout > timeout):
            header_timeout = timeout
        try:
            resp = self._envd.endpoint.open("POST", "/execute", dumps(body), self._jupyter_headers(),
                                            header_timeout, abort)
        except TimeoutException:
            if timeout and header_timeout == timeout:
                raise TimeoutException(_interp.EXECUTION_TIMEOUT) from None
            raise
        try:
            if resp.status != 200:
                raise _interp.error(resp, self._sandbox_id)
            resp.set_deadline(deadline)
            execution = Execution(code=code)
            while True:
                line = resp.readline()
                if not line:
                    break
                event = _interp.apply_line(execution, line)
                if event is not None:
                    emit(*event)
            return execution
        except DeadlineExceeded:
            raise TimeoutException(_interp.EXECUTION_TIMEOUT) from None
        except Broken as e:
            raise self._killed_or(e) from None
        finally:
            resp.close()

    def run_code(self, code: str, language: Optional[str] = None, context: Optional[Context] = None,
                 on_stdout: Optional[Callable[[OutputMessage], Any]] = None,
                 on_stderr: Optional[Callable[[OutputMessage], Any]] = None,
                 on_result: Optional[Callable[[Result], Any]] = None,
                 on_error: Optional[Callable[[ExecutionError], Any]] = None,
                 envs: Optional[Dict[str, str]] = None, timeout: Optional[float] = None,
                 request_timeout: Optional[float] = None, raise_on_error: bool = False) -> Execution:
        """Run CODE in the sandbox's stateful kernel and return its Execution.

        language ('python' by default, or 'javascript', 'bash'... as
        installed) picks that language's default context; context= a Context
        from create_code_context (not both).  envs: environment variables for
        this run only.  timeout: seconds for the whole run (300 by default, 0
        for none); TimeoutException after it.  The callbacks get output as it
        arrives.  A failure in the code sets execution.error and does not
        raise, unless raise_on_error=True (CodeExecutionError).
        """
        callbacks = {"stdout": on_stdout, "stderr": on_stderr, "result": on_result, "error": on_error}

        def emit(kind: str, payload: Any) -> None:
            cb = callbacks.get(kind)
            if cb is not None:
                cb(payload)

        execution = self._execute(code, language, context, envs, timeout, request_timeout, emit)
        if raise_on_error:
            execution.raise_for_error()
        return execution

    def validate_code(self, code: str, language: Optional[str] = None,
                      context: Optional[Context] = None, request_timeout: Optional[float] = None,
                      raise_on_error: bool = False) -> ValidationResult:
        """Check that CODE parses, without running anything, with the parser
        of LANGUAGE's default context or of CONTEXT (not both).  Returns a
        ValidationResult (truthy when valid; else .error has name, value and
        line); raise_on_error=True raises CodeExecutionError instead."""
        if not isinstance(code, str):
            raise InvalidArgumentException("code must be a string")
        if language and context:
            raise InvalidArgumentException(
                "You can provide context or language, but not both at the same time.")
        body: Dict[str, Any] = {"code": code}
        if language:
            body["language"] = language
        if context:
            body["context_id"] = context.id if isinstance(context, Context) else context
        resp = self._jupyter("POST", "/validate", body, request_timeout)
        result = _interp.validation(resp.json_or_none(), code)
        if raise_on_error:
            result.raise_for_error()
        return result

    def create_code_context(self, cwd: Optional[str] = None, language: Optional[str] = None,
                            request_timeout: Optional[float] = None) -> Context:
        """A new context (kernel) with its own state: LANGUAGE (python by
        default), working directory CWD (/home/user by default)."""
        resp = self._jupyter("POST", "/contexts", _interp.context_body(cwd, language), request_timeout)
        return Context.from_json(resp.json())

    def list_code_contexts(self, request_timeout: Optional[float] = None) -> List[Context]:
        resp = self._jupyter("GET", "/contexts", None, request_timeout)
        return [Context.from_json(c) for c in resp.json() or []]

    def restart_code_context(self, context: Union[Context, str],
                             request_timeout: Optional[float] = None) -> None:
        """Restart the context's kernel: its state is lost."""
        cid = context.id if isinstance(context, Context) else context
        self._jupyter("POST", f"/contexts/{urllib.parse.quote(cid, safe='')}/restart", None, request_timeout)

    def remove_code_context(self, context: Union[Context, str],
                            request_timeout: Optional[float] = None) -> None:
        cid = context.id if isinstance(context, Context) else context
        self._jupyter("DELETE", f"/contexts/{urllib.parse.quote(cid, safe='')}", None, request_timeout)
