"""Errors from each plane, and Connect RPC with the JSON codec (envd).

Connect framing (see the wire spec, section 4.3): unary calls are a JSON
body both ways; server streams are 5-byte envelopes (flags, big-endian
length) of JSON messages, the last one flagged 0x02 (end of stream) and
carrying the error, if any.  Streams always answer HTTP 200.
"""
import base64
import json
import struct
import time
from typing import Any, Dict, Iterator, Optional

from ._http import Aborted, Broken, DeadlineExceeded, Endpoint, Response, StreamResponse, dumps
from .exceptions import (AuthenticationException, FileNotFoundException,
                         InvalidArgumentException, NotEnoughSpaceException, NotFoundException,
                         RateLimitException, SandboxException, SandboxNotFoundException,
                         TimeoutException)

MAX_MESSAGE = 64 << 20
KEY_HINT = ("Set HUTCH_API_KEY (or E2B_API_KEY), or pass api_key=, to the key hutchd printed at "
            "its first start (it keeps it in DATA_DIR/api-key)")


def _message(resp: Response) -> str:
    body = resp.json_or_none()
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return resp.text.strip() or resp.reason


def sandbox_gone(sandbox_id: Optional[str], body: Any, port: Optional[int] = None) -> SandboxException:
    """The routing proxy's 502: the sandbox is gone, or nothing listens on the port."""
    msg = body.get("message", "") if isinstance(body, dict) else str(body or "")
    port = body.get("port", port) if isinstance(body, dict) else port
    if "port is not open" in msg:
        what = ""
        if port == 49999:
            what = " (the code interpreter is not running in this sandbox)"
        elif port == 49983:
            what = " (envd is not running in this sandbox)"
        return SandboxException(
            f"sandbox {sandbox_id} is running but nothing listens on port {port}{what}")
    return SandboxNotFoundException(
        f"sandbox {sandbox_id} was not found: it was killed or its timeout passed. {msg}".strip())


def api_error(resp: Response, sandbox_id: Optional[str] = None) -> SandboxException:
    """The control plane's {"code","message"} errors, as exceptions."""
    msg = _message(resp)
    if resp.status == 401:
        return AuthenticationException(f"401: invalid API key ({msg}). {KEY_HINT}")
    if resp.status == 404:
        if sandbox_id is not None:
            return SandboxNotFoundException(f"Sandbox {sandbox_id} not found: {msg}")
        return NotFoundException(f"404: {msg}")
    if resp.status == 429:
        return RateLimitException(f"429: rate limit exceeded, please try again later - {msg}")
    if resp.status == 400:
        return InvalidArgumentException(f"400: {msg}")
    return SandboxException(f"{resp.status}: {msg}")


def envd_error(resp, sandbox_id: Optional[str], files: bool = False, port: int = 49983) -> SandboxException:
    """envd's plain-HTTP errors (/health, /files) and the proxy's 502."""
    if isinstance(resp, StreamResponse):
        resp = Response(resp.status, resp.reason, resp.headers, resp.read_all())
    msg = _message(resp)
    s = resp.status
    if s == 502:
        return sandbox_gone(sandbox_id, resp.json_or_none() or msg, port)
    if s == 400:
        return InvalidArgumentException(f"400: {msg}")
    if s == 401:
        return AuthenticationException(f"401: {msg}")
    if s == 404:
        return (FileNotFoundException if files else NotFoundException)(f"404: {msg}")
    if s == 429:
        return RateLimitException(f"429: {msg}")
    if s == 507:
        return NotEnoughSpaceException(f"507: {msg}")
    return SandboxException(f"{s}: {msg}")


# ---- Connect ----

_STATUS_TO_CODE = {400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied",
                   404: "not_found", 409: "already_exists", 413: "resource_exhausted",
                   429: "resource_exhausted", 499: "canceled", 500: "internal",
                   501: "unimplemented", 502: "unavailable", 503: "unavailable",
                   504: "deadline_exceeded", 505: "unimplemented"}


def connect_exception(code: str, message: str, files: bool = False) -> SandboxException:
    text = f"{code}: {message}"
    if code == "not_found":
        return (FileNotFoundException if files else NotFoundException)(text)
    if code == "invalid_argument":
        return InvalidArgumentException(text)
    if code == "unauthenticated":
        return AuthenticationException(text)
    if code == "resource_exhausted":
        return RateLimitException(text)
    if code == "deadline_exceeded":
        return TimeoutException(f"{text}: the command or watch ran past its 'timeout'")
    if code == "canceled":
        return TimeoutException(text)
    if code == "unavailable":
        return TimeoutException(f"{text}: the sandbox is probably not running anymore")
    return SandboxException(text)


def _with_code(exc: SandboxException, code: str) -> SandboxException:
    exc.code = code  # type: ignore[attr-defined]
    return exc


def unary_error(resp: Response, sandbox_id: Optional[str], files: bool) -> SandboxException:
    body = resp.json_or_none()
    if resp.status == 502 and isinstance(body, dict) and "sandboxId" in body:
        return sandbox_gone(sandbox_id, body)
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return _with_code(connect_exception(body["code"], body.get("message", ""), files), body["code"])
    code = _STATUS_TO_CODE.get(resp.status, "unknown")
    msg = body.get("message") if isinstance(body, dict) and body.get("message") else (
        resp.text.strip() or f"HTTP {resp.status}")
    return _with_code(connect_exception(code, msg, files), code)


class EnvdClient:
    """Requests to one sandbox's envd (port 49983) through the sandbox URL."""

    def __init__(self, endpoint: Endpoint, sandbox_id: str, token: Optional[str], timeout_fn):
        self.endpoint = endpoint
        self.sandbox_id = sandbox_id
        self.token = token
        self.timeout = timeout_fn  # request_timeout -> seconds or None

    def headers(self, port: int = 49983, user: Optional[str] = None, token: bool = True) -> Dict[str, str]:
        h = {"E2b-Sandbox-Id": self.sandbox_id, "E2b-Sandbox-Port": str(port)}
        if token and self.token:
            h["X-Access-Token"] = self.token
        if user:
            h["Authorization"] = "Basic " + base64.b64encode(f"{user}:".encode()).decode()
        return h

    def unary(self, path: str, msg: Dict[str, Any], user: Optional[str] = None,
              request_timeout: Optional[float] = None, files: bool = False) -> Dict[str, Any]:
        t = self.timeout(request_timeout)
        h = self.headers(user=user)
        h.update({"Content-Type": "application/json", "Connect-Protocol-Version": "1"})
        if t:
            h["Connect-Timeout-Ms"] = str(int(t * 1000))
        resp = self.endpoint.request("POST", path, dumps(msg), h, t)
        if resp.status != 200:
            raise unary_error(resp, self.sandbox_id, files)
        try:
            return resp.json() or {}
        except ValueError:
            raise SandboxException(f"{path}: the response is not JSON: {resp.text[:200]!r}") from None

    def stream(self, path: str, msg: Dict[str, Any], user: Optional[str] = None,
               timeout: Optional[float] = None, request_timeout: Optional[float] = None,
               files: bool = False, abort=None) -> "ConnectStream":
        """Open a server stream.  TIMEOUT (seconds, 0/None = none) is sent as
        Connect-Timeout-Ms and, with a few seconds of grace, bounds the
        whole stream client-side too."""
        h = self.headers(user=user)
        h.update({"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1",
                  "Keepalive-Ping-Interval": "50"})
        if timeout:
            h["Connect-Timeout-Ms"] = str(int(timeout * 1000))
        payload = dumps(msg)
        body = struct.pack(">BI", 0, len(payload)) + payload
        header_timeout = self.timeout(request_timeout)
        if timeout and (header_timeout is None or header_timeout > timeout + 5):
            header_timeout = timeout + 5
        resp = self.endpoint.open("POST", path, body, h, header_timeout, abort)
        if resp.status != 200:
            try:
                data = resp.read_all()
            finally:
                resp.close()
            raise unary_error(Response(resp.status, resp.reason, resp.headers, data),
                              self.sandbox_id, files)
        resp.set_deadline(time.monotonic() + timeout + 5 if timeout else None)
        return ConnectStream(resp, path, files)


class ConnectStream:
    """Iterate the messages of a Connect server stream (dicts); raises the
    stream's error when the end-of-stream envelope carries one."""

    def __init__(self, resp: StreamResponse, path: str, files: bool):
        self.resp = resp
        self.path = path
        self.files = files
        self.done = False

    def _exact(self, n: int) -> bytes:
        data = self.resp.read(n)
        if len(data) != n:
            raise EOFError
        return data

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return self

    def __next__(self) -> Dict[str, Any]:
        if self.done:
            raise StopIteration
        try:
            head = self.resp.read(5)
            if not head:
                raise EOFError
            if len(head) != 5:
                raise EOFError
            flags, length = struct.unpack(">BI", head)
            if length > MAX_MESSAGE:
                raise SandboxException(f"{self.path}: a {length}-byte message is too large")
            payload = self._exact(length) if length else b""
        except EOFError:
            self.close()
            raise Broken(
                f"{self.path}: the stream ended without an end-of-stream message "
                "(the sandbox may have been killed)") from None
        except DeadlineExceeded:
            self.close()
            raise TimeoutException(f"{self.path}: the stream ran past its 'timeout'") from None
        except Aborted:
            self.close()
            raise
        except SandboxException:
            self.close()
            raise
        if flags & 0x01:
            self.close()
            raise SandboxException(f"{self.path}: compressed message, which this SDK never asks for")
        try:
            msg = json.loads(payload) if payload else {}
        except ValueError:
            self.close()
            raise SandboxException(f"{self.path}: a message is not JSON: {payload[:200]!r}") from None
        if flags & 0x02:
            self.close()
            err = msg.get("error") if isinstance(msg, dict) else None
            if err:
                code = err.get("code", "unknown")
                raise _with_code(connect_exception(code, err.get("message", ""), self.files), code)
            raise StopIteration
        return msg

    def close(self) -> None:
        self.done = True
        self.resp.close()

    def abort(self) -> None:
        self.resp.abort()


def b64decode(s: Optional[str]) -> bytes:
    """protojson bytes: standard base64, also URL-safe and unpadded."""
    if not s:
        return b""
    s = s.replace("-", "+").replace("_", "/")
    return base64.b64decode(s + "=" * (-len(s) % 4))


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode()
