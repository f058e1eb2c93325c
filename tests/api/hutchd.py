"""Start and stop hutchd for the API tests, and talk to it (stdlib only).

The contract: ``hutchd --listen 127.0.0.1:PORT --data-dir DIR --api-key KEY``,
run as root; DIR a fresh absolute path; KEY ``e2b_`` + 40 hex characters.
``GET /health`` answers 200 once ready; SIGTERM makes it exit with status 0.
"""
import http.client
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
HEALTH_ATTEMPTS = 100  # each a real GET /health, at most 100 ms apart
STOP_TIMEOUT = 15.0


def binary():
    return pathlib.Path(os.environ.get("HUTCHD_BIN") or REPO / "build" / "hutchd")


def new_api_key():
    return "e2b_" + secrets.token_hex(20)


def unknown_sandbox_id():
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "i" + "".join(secrets.choice(alphabet) for _ in range(20))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def _mounts_under(path):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split(" ")[4]
            mp = mp.encode().decode("unicode_escape") if "\\" in mp else mp
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return out


class Hutchd:
    """One running hutchd. Use start(), then stop() (asserts exit status 0)."""

    def __init__(self):
        self.bin = binary()
        self.port = free_port()
        self.api_key = new_api_key()
        self.data_dir = tempfile.mkdtemp(prefix="hutchd-api-", dir="/tmp")
        self.log_dir = tempfile.mkdtemp(prefix="hutchd-api-log-")
        self.log_path = os.path.join(self.log_dir, "hutchd.log")
        self.proc = None

    # ---- lifecycle -----------------------------------------------------
    def start(self):
        if not (self.bin.is_file() and os.access(self.bin, os.X_OK)):
            self._cleanup_dirs()
            raise RuntimeError(
                f"hutchd binary not found or not executable at {self.bin}. "
                "Build it first (make in the repository root) or set HUTCHD_BIN to its path.")
        if os.geteuid() != 0:
            self._cleanup_dirs()
            raise RuntimeError("these tests start hutchd, which must run as root; run them as root")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bin), "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
                 "--api-key", self.api_key],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        last = ""
        for _ in range(HEALTH_ATTEMPTS):
            if self.proc.poll() is not None:
                break
            try:
                r = self.request("GET", "/health", key=None, timeout=2)
                if r.status == 200:
                    return self
                last = f"GET /health answered {r.status}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        log = self.log_tail()
        self._cleanup_dirs()
        raise RuntimeError(
            f"hutchd ({self.bin}) did not become healthy on 127.0.0.1:{self.port} after "
            f"{HEALTH_ATTEMPTS} attempts (last: {last}; exit status {self.proc.returncode}). "
            f"Its output:\n{log}")

    def stop(self):
        """SIGTERM; assert it exits with status 0 within STOP_TIMEOUT."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            log = self.log_tail()
            self._cleanup_dirs()
            raise AssertionError(f"hutchd did not exit within {STOP_TIMEOUT} s of SIGTERM. Its output:\n{log}")
        log = self.log_tail()
        self._cleanup_dirs()
        assert rc == 0, f"hutchd exited with status {rc} after SIGTERM (expected 0). Its output:\n{log}"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=8192):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def _cleanup_dirs(self):
        mounts = _mounts_under(self.data_dir)
        if mounts:
            # Never rm -rf through a mount: it could reach host files.
            raise AssertionError(f"hutchd left mounts under its data directory {self.data_dir}: {mounts}")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if not os.environ.get("HUTCH_KEEP_LOGS"):
            shutil.rmtree(self.log_dir, ignore_errors=True)

    # ---- HTTP ----------------------------------------------------------
    DEFAULT = object()

    def request(self, method, path, body=None, headers=None, key=DEFAULT, timeout=30, chunked=False):
        """One request on a fresh connection. key=None sends no X-API-Key."""
        h = {}
        if key is Hutchd.DEFAULT:
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
