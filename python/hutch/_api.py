"""The control plane (REST/JSON with X-API-Key): create, connect, list,
get, kill, timeout, pause, metrics.  Shared by Sandbox and AsyncSandbox."""
import threading
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

from ._config import ConnectionConfig
from ._http import Endpoint, Response, dumps
from ._rpc import api_error
from .exceptions import InvalidArgumentException, SandboxException
from .models import SandboxInfo, SandboxMetrics, SandboxQuery

_endpoints: Dict[Tuple[str, str], Endpoint] = {}
_lock = threading.Lock()


def _endpoint(url: str, kind: str) -> Endpoint:
    with _lock:
        ep = _endpoints.get((url, kind))
        if ep is None:
            if kind == "api":
                ep = Endpoint(url, "the hutch API",
                              "Set HUTCH_API_URL (or E2B_API_URL), or pass api_url=, to its address.")
            else:
                ep = Endpoint(url, "the sandbox URL",
                              "Set HUTCH_SANDBOX_URL (or E2B_SANDBOX_URL), or pass sandbox_url=, "
                              "to its address (by default it is the API URL).")
            _endpoints[(url, kind)] = ep
        return ep


def api_endpoint(config: ConnectionConfig) -> Endpoint:
    return _endpoint(config.api_url, "api")


def sandbox_endpoint(config: ConnectionConfig) -> Endpoint:
    return _endpoint(config.sandbox_url, "sandbox")


def call(config: ConnectionConfig, method: str, path: str, body: Any = None,
         request_timeout: Optional[float] = None, sandbox_id: Optional[str] = None,
         ok: Tuple[int, ...] = (200, 201, 204), allow: Tuple[int, ...] = ()) -> Response:
    h = dict(config.headers)
    h["X-API-Key"] = config.require_key()
    data = None
    if body is not None:
        data = dumps(body)
        h["Content-Type"] = "application/json"
    resp = api_endpoint(config).request(method, path, data, h, config.timeout(request_timeout))
    if resp.status in ok or resp.status in allow:
        return resp
    raise api_error(resp, sandbox_id)


def _json(resp: Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise SandboxException(f"{what}: the server's answer is not JSON: {resp.text[:200]!r}") from None


def _check_sandbox(d: Any, what: str) -> Dict[str, Any]:
    if not isinstance(d, dict) or not d.get("sandboxID"):
        raise SandboxException(f"{what}: unexpected answer {d!r}")
    return d


def _quote_id(sandbox_id: str) -> str:
    if not sandbox_id or not isinstance(sandbox_id, str):
        raise InvalidArgumentException(f"invalid sandbox id {sandbox_id!r}")
    return urllib.parse.quote(sandbox_id, safe="")


def create(config: ConnectionConfig, template: str, timeout: Optional[int],
           metadata: Optional[Dict[str, str]], envs: Optional[Dict[str, str]], secure: bool,
           allow_internet_access: Optional[bool], request_timeout: Optional[float] = None) -> Dict[str, Any]:
    body: Dict[str, Any] = {"templateID": template}
    if timeout is not None:
        body["timeout"] = int(timeout)
    if metadata:
        body["metadata"] = dict(metadata)
    if envs:
        body["envVars"] = dict(envs)
    if allow_internet_access is not None and allow_internet_access is not True:
        body["allow_internet_access"] = bool(allow_internet_access)
    if secure:
        path = "/v2/sandboxes"
    else:
        # v2 sandboxes are always secured; the v1 endpoint takes `secure`.
        path = "/sandboxes"
        body["secure"] = False
        body.setdefault("timeout", 300)
    resp = call(config, "POST", path, body, request_timeout, ok=(201, 200))
    return _check_sandbox(_json(resp, "create sandbox"), "create sandbox")


def connect(config: ConnectionConfig, sandbox_id: str, timeout: Optional[int],
            request_timeout: Optional[float] = None) -> Dict[str, Any]:
    body = {"timeout": int(timeout)} if timeout is not None else {}
    resp = call(config, "POST", f"/v2/sandboxes/{_quote_id(sandbox_id)}/connect", body,
                request_timeout, sandbox_id=sandbox_id, ok=(200, 201))
    return _check_sandbox(_json(resp, "connect"), "connect")


def kill(config: ConnectionConfig, sandbox_id: str, request_timeout: Optional[float] = None) -> bool:
    resp = call(config, "DELETE", f"/sandboxes/{_quote_id(sandbox_id)}", None, request_timeout,
                sandbox_id=sandbox_id, allow=(404,))
    return resp.status != 404


def set_timeout(config: ConnectionConfig, sandbox_id: str, timeout: int,
                request_timeout: Optional[float] = None) -> None:
    if timeout is None or int(timeout) < 0:
        raise InvalidArgumentException("timeout must be a number of seconds >= 0")
    call(config, "POST", f"/sandboxes/{_quote_id(sandbox_id)}/timeout", {"timeout": int(timeout)},
         request_timeout, sandbox_id=sandbox_id)


def get_info(config: ConnectionConfig, sandbox_id: str,
             request_timeout: Optional[float] = None) -> SandboxInfo:
    resp = call(config, "GET", f"/sandboxes/{_quote_id(sandbox_id)}", None, request_timeout,
                sandbox_id=sandbox_id)
    return SandboxInfo.from_json(_check_sandbox(_json(resp, "get_info"), "get_info"))


def get_metrics(config: ConnectionConfig, sandbox_id: str, start=None, end=None,
                request_timeout: Optional[float] = None) -> List[SandboxMetrics]:
    q = {}
    if start is not None:
        q["start"] = str(int(start.timestamp() if hasattr(start, "timestamp") else start))
    if end is not None:
        q["end"] = str(int(end.timestamp() if hasattr(end, "timestamp") else end))
    path = f"/sandboxes/{_quote_id(sandbox_id)}/metrics"
    if q:
        path += "?" + urllib.parse.urlencode(q)
    resp = call(config, "GET", path, None, request_timeout, sandbox_id=sandbox_id)
    data = _json(resp, "get_metrics") or []
    return [SandboxMetrics.from_json(m) for m in data]


def pause(config: ConnectionConfig, sandbox_id: str, request_timeout: Optional[float] = None) -> bool:
    resp = call(config, "POST", f"/sandboxes/{_quote_id(sandbox_id)}/pause", {}, request_timeout,
                sandbox_id=sandbox_id, allow=(409,))
    return resp.status != 409


def list_page(config: ConnectionConfig, query: Optional[SandboxQuery], limit: Optional[int],
              next_token: Optional[str], request_timeout: Optional[float] = None
              ) -> Tuple[List[SandboxInfo], Optional[str]]:
    params = []
    if query is not None:
        if query.metadata:
            # Each key and value is encoded, then the pairs, then the parameter:
            # the encoding the E2B SDKs use and hutchd decodes.
            inner = urllib.parse.urlencode({urllib.parse.quote(k): urllib.parse.quote(v)
                                            for k, v in query.metadata.items()})
            params.append(("metadata", inner))
        if query.state:
            params.append(("state", ",".join(str(getattr(s, "value", s)) for s in query.state)))
        if query.template:
            params.append(("template", query.template))
    if limit:
        params.append(("limit", str(int(limit))))
    if next_token:
        params.append(("nextToken", next_token))
    path = "/v2/sandboxes"
    if params:
        path += "?" + urllib.parse.urlencode(params, safe=",")
    resp = call(config, "GET", path, None, request_timeout)
    data = _json(resp, "list sandboxes") or []
    token = resp.headers.get("X-Next-Token") or None
    return [SandboxInfo.from_json(d) for d in data], token
