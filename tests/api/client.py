"""The API tests' hutchd (stdlib only): the shared one of
tests/helpers/hutchd.py (build/hutchd unless $HUTCHD_BIN; `make api` runs the
sanitizer build), with requests to it.  Its stop() must see exit status 0
within 15 s of SIGTERM and no mounts left.
"""
import http.client
import json
import secrets
import socket

from hutchd import Hutchd, hutchd_bin, new_api_key  # noqa: F401 (new_api_key: for the tests)


def unknown_sandbox_id():
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "i" + "".join(secrets.choice(alphabet) for _ in range(20))


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage, case-insensitive
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"status {self.status}: body is not JSON: {self.body[:300]!r}") from None

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


class ApiHutchd(Hutchd):
    """One running hutchd with HTTP helpers. Use start(), then stop()."""

    def __init__(self, extra_args=(), own_key=False):
        super().__init__(hutchd_bin("build/hutchd"), "hutchd-api", extra_args, own_key, stop_timeout=15.0)

    # ---- HTTP ----------------------------------------------------------
    DEFAULT = object()

    def request(self, method, path, body=None, headers=None, key=DEFAULT, timeout=30, chunked=False):
        """One request on a fresh connection. key=None sends no X-API-Key."""
        h = {}
        if key is ApiHutchd.DEFAULT:
            key = self.api_key
        if key is not None:
            h["X-API-Key"] = key
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if chunked:
                chunks = [body[i:i + 4096] for i in range(0, len(body), 4096)] or [b""]
                h["Transfer-Encoding"] = "chunked"
                conn.request(method, path, body=iter(chunks), headers=h, encode_chunked=True)
            else:
                conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.headers, r.read())
        except (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionResetError, BrokenPipeError) as e:
            state = "still running" if self.alive() else f"DEAD (status {self.proc.returncode})"
            raise AssertionError(f"{method} {path[:80]}: hutchd closed the connection without an answer "
                                 f"({e!r}); hutchd is {state}") from None
        finally:
            conn.close()

    def raw(self, data, method="GET", timeout=30):
        """Send raw bytes on a fresh connection; parse one response."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            try:
                s.sendall(data)
                r = http.client.HTTPResponse(s, method=method)
                r.begin()
                return Response(r.status, r.headers, r.read())
            except (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionResetError,
                    BrokenPipeError) as e:
                state = "still running" if self.alive() else f"DEAD (status {self.proc.returncode})"
                raise AssertionError(f"raw {data[:60]!r}: hutchd closed the connection without an answer "
                                     f"({e!r}); hutchd is {state}") from None

    def envd(self, sandbox_id, method, path, body=None, headers=None, token=None, timeout=30, port=49983):
        """A request to a sandbox's envd through the proxy, routed by headers."""
        h = {"E2b-Sandbox-Id": sandbox_id, "E2b-Sandbox-Port": str(port)}
        if token is not None:
            h["X-Access-Token"] = token
        h.update(headers or {})
        return self.request(method, path, body=body, headers=h, key=None, timeout=timeout)


def expect_error(hutchd, resp, statuses, what=""):
    """resp is a 4xx with a JSON body {"code": <status>, "message": <str>}.

    A create that unexpectedly succeeded is cleaned up before failing."""
    if 200 <= resp.status < 300:
        try:
            sid = resp.json().get("sandboxID")
        except Exception:
            sid = None
        if sid:
            hutchd.request("DELETE", f"/sandboxes/{sid}")
    assert resp.status in statuses, f"{what}: expected one of {sorted(statuses)}, got {resp}"
    body = resp.json()
    assert isinstance(body, dict), f"{what}: error body is not an object: {body!r}"
    assert body.get("code") == resp.status and type(body.get("code")) is int, \
        f"{what}: body code {body.get('code')!r} != status {resp.status}"
    assert isinstance(body.get("message"), str) and body["message"], f"{what}: no message: {body!r}"
    return body
