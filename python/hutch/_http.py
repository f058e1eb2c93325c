"""HTTP/1.1 over http.client: a keep-alive pool per base URL for plain
requests, a fresh connection per stream (so that closing a stream closes its
TCP connection, which is how the server learns a client went away).

No HTTP parsing here: http.client does it.  What this adds is deadlines
across a whole streamed body, aborting a blocked read from another thread,
and turning socket errors into SandboxException / TimeoutException with the
URL in the message.
"""
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any, Dict, Iterable, Optional, Union

from ._version import __version__
from .exceptions import SandboxException, TimeoutException

USER_AGENT = f"hutch-python-sdk/{__version__}"
MAX_IDLE = 8
Body = Union[None, bytes, Iterable[bytes]]

_RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
              ConnectionAbortedError)


class DeadlineExceeded(TimeoutException):
    """A stream's deadline passed (the caller re-raises it with its own words)."""


class Aborted(SandboxException):
    """The stream was aborted from another thread (cancellation)."""


class Broken(SandboxException):
    """The connection broke in the middle of a response."""


class Response:
    """A complete response: status, headers (case-insensitive), body bytes."""

    def __init__(self, status: int, reason: str, headers, data: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.data = data

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.data) if self.data else None

    def json_or_none(self) -> Any:
        try:
            return self.json()
        except ValueError:
            return None


class StreamResponse:
    """A response whose body is read as it arrives.

    set_deadline() bounds every later read by an absolute time.monotonic()
    value; abort() (thread-safe) makes a blocked read fail at once.
    """

    def __init__(self, endpoint: "Endpoint", conn, sock, resp: http.client.HTTPResponse, what: str):
        self._endpoint = endpoint
        self._conn = conn
        self._sock = sock
        self._resp = resp
        self._what = what
        self._deadline: Optional[float] = None
        self._idle: Optional[float] = None
        self._aborted = False
        self._closed = False
        self.status = resp.status
        self.reason = resp.reason
        self.headers = resp.headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def set_deadline(self, deadline: Optional[float], idle: Optional[float] = None) -> None:
        """Bound later reads: all of them by DEADLINE (a time.monotonic()
        value), each one by IDLE seconds.  None: no bound."""
        self._deadline = deadline
        self._idle = idle

    def _arm(self) -> None:
        if self._aborted:
            raise Aborted(f"{self._what}: aborted")
        t = self._idle
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(f"{self._what}: deadline exceeded")
            t = left if t is None else min(t, left)
        self._settimeout(t)

    def _settimeout(self, t: Optional[float]) -> None:
        try:
            self._sock.settimeout(t)
        except OSError:
            pass

    def _call(self, fn, *args):
        self._arm()
        try:
            return fn(*args)
        except socket.timeout:
            if self._aborted:
                raise Aborted(f"{self._what}: aborted") from None
            if self._deadline is not None and time.monotonic() >= self._deadline - 0.05:
                raise DeadlineExceeded(f"{self._what}: deadline exceeded") from None
            raise TimeoutException(
                f"{self._what}: no data for {self._idle} s; the 'request_timeout' option can be "
                "used to increase this timeout") from None
        except (http.client.IncompleteRead, OSError, ValueError, http.client.HTTPException) as e:
            if self._aborted:
                raise Aborted(f"{self._what}: aborted") from None
            raise Broken(
                f"{self._what}: the connection to {self._endpoint.base_url} broke while reading "
                f"the response ({type(e).__name__}: {e})") from None

    def read(self, n: int = -1) -> bytes:
        """Up to N bytes (fewer only at the end of the body); all if N < 0."""
        if n < 0:
            return self._call(self._resp.read)
        return self._call(self._resp.read, n)

    def read1(self, n: int = 65536) -> bytes:
        """Whatever is available, at most N bytes, b'' at the end."""
        return self._call(self._resp.read1, n)

    def readline(self, limit: int = -1) -> bytes:
        return self._call(self._resp.readline, limit)

    def read_all(self) -> bytes:
        return self.read(-1)

    @property
    def text(self) -> str:
        return self.read_all().decode("utf-8", "replace")

    def abort(self) -> None:
        """Make a read blocked in another thread fail now."""
        self._aborted = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._resp.close()
        finally:
            self._conn.close()
            try:
                self._sock.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AbortToken:
    """Lets another thread abort whatever stream is attached now or later."""

    def __init__(self):
        self._lock = threading.Lock()
        self._stream: Optional[StreamResponse] = None
        self.aborted = False

    def attach(self, stream: StreamResponse) -> None:
        with self._lock:
            self._stream = stream
            if self.aborted:
                stream.abort()

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            if self._stream is not None:
                self._stream.abort()


class Endpoint:
    """One base URL (scheme://host:port[/prefix]) and its idle connections."""

    def __init__(self, base_url: str, label: str, hint: str):
        self.base_url = base_url
        self.label = label  # "the hutch API" / "the sandbox URL"
        self.hint = hint  # which variable to set
        u = urllib.parse.urlsplit(base_url)
        self.https = u.scheme == "https"
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        self.netloc = u.netloc
        self._idle = []
        self._lock = threading.Lock()

    # ---- connections ----
    def _new_conn(self, timeout: Optional[float]):
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _take(self, timeout: Optional[float]):
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            return self._new_conn(timeout), False
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True

    def _give_back(self, conn) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    # ---- requests ----
    def _headers(self, headers: Optional[Dict[str, str]], body: Body) -> Dict[str, str]:
        h = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        h.update(headers or {})
        return h

    def _unreachable(self, e: BaseException) -> SandboxException:
        return SandboxException(
            f"cannot reach {self.label} at {self.base_url}: {e.__class__.__name__}: {e}. "
            f"Is hutchd running and listening there? {self.hint}")

    def _send(self, conn, method: str, path: str, body: Body, headers: Dict[str, str]):
        url = self.prefix + path
        if body is None or isinstance(body, (bytes, bytearray, memoryview)):
            conn.request(method, url, body=body, headers=headers)
        else:
            headers = dict(headers)
            headers.setdefault("Transfer-Encoding", "chunked")
            conn.request(method, url, body=body, headers=headers, encode_chunked=True)
        sock = conn.sock
        return sock, conn.getresponse()

    def _exchange(self, method: str, path: str, body: Body, headers, timeout):
        what = f"{method} {self.base_url}{path.split('?')[0]}"
        h = self._headers(headers, body)
        retry = body is None or isinstance(body, (bytes, bytearray, memoryview))
        for attempt in (0, 1):
            conn, reused = self._take(timeout)
            try:
                sock, resp = self._send(conn, method, path, body, h)
                return conn, sock, resp
            except socket.timeout:
                conn.close()
                raise TimeoutException(
                    f"{what} timed out after {timeout} s; the 'request_timeout' option can be used "
                    "to increase this timeout") from None
            except _RETRYABLE as e:
                conn.close()
                if reused and retry and attempt == 0:
                    continue  # the server closed an idle keep-alive connection
                raise SandboxException(
                    f"{what}: {self.label} closed the connection without answering "
                    f"({type(e).__name__}: {e})") from None
            except (ConnectionRefusedError, socket.gaierror, ssl.SSLError) as e:
                conn.close()
                raise self._unreachable(e) from None
            except OSError as e:
                conn.close()
                if not reused or attempt == 1:
                    raise self._unreachable(e) from None
            except http.client.HTTPException as e:
                conn.close()
                raise SandboxException(f"{what}: bad HTTP response ({type(e).__name__}: {e})") from None
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: Body = None,
                headers: Optional[Dict[str, str]] = None, timeout: Optional[float] = None) -> Response:
        """Send one request, read the whole response, keep the connection."""
        conn, sock, resp = self._exchange(method, path, body, headers, timeout)
        try:
            data = resp.read()
        except socket.timeout:
            conn.close()
            raise TimeoutException(
                f"{method} {self.base_url}{path.split('?')[0]} timed out after {timeout} s while "
                "reading the response; the 'request_timeout' option can be used to increase this "
                "timeout") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise SandboxException(
                f"{method} {self.base_url}{path.split('?')[0]}: the connection broke while "
                f"reading the response ({type(e).__name__}: {e})") from None
        if resp.will_close or conn.sock is None:
            conn.close()
        else:
            self._give_back(conn)
        return Response(resp.status, resp.reason, resp.headers, data)

    def open(self, method: str, path: str, body: Body = None,
             headers: Optional[Dict[str, str]] = None, timeout: Optional[float] = None,
             abort: Optional[AbortToken] = None) -> StreamResponse:
        """Send one request on a fresh connection; the caller reads the body
        and must close() the stream.  TIMEOUT bounds the wait for the headers."""
        what = f"{method} {self.base_url}{path.split('?')[0]}"
        h = self._headers(headers, body)
        h["Connection"] = "close"  # one request per connection: closing it ends the exchange
        conn = self._new_conn(timeout)
        try:
            sock, resp = self._send(conn, method, path, body, h)
        except socket.timeout:
            conn.close()
            raise TimeoutException(
                f"{what} timed out after {timeout} s waiting for the response headers; the "
                "'request_timeout' option can be used to increase this timeout") from None
        except (ConnectionRefusedError, socket.gaierror, ssl.SSLError) as e:
            conn.close()
            raise self._unreachable(e) from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            if abort is not None and abort.aborted:
                raise Aborted(f"{what}: aborted") from None
            if isinstance(e, ConnectionRefusedError):
                raise self._unreachable(e) from None
            raise SandboxException(
                f"{what}: {self.label} closed the connection without answering "
                f"({type(e).__name__}: {e})") from None
        stream = StreamResponse(self, conn, sock, resp, what)
        if abort is not None:
            abort.attach(stream)
        return stream


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
