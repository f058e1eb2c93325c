"""Start and stop one hutchd for a Python test suite (standard library only).

`hutchd --listen 127.0.0.1:PORT --data-dir DIR --api-key KEY [ARGS...]`, as
root, DIR a fresh directory under /tmp, KEY `e2b_` + 40 hex digits (with
own_key=True no --api-key: hutchd makes its own and keeps it in DIR/api-key);
ready when GET /health answers 200; stopped with SIGTERM, SIGKILL after
stop_timeout seconds.  Its output goes to /tmp/PREFIX-log-*/hutchd.log, kept
when $HUTCH_KEEP_LOGS is set.  Each suite's pytest.ini puts this directory on
sys.path (`pythonpath = ../helpers`).
"""
import http.client
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


def hutchd_bin(default: str) -> pathlib.Path:
    """$HUTCHD_BIN, else DEFAULT (relative to the repository)."""
    return pathlib.Path(os.environ.get("HUTCHD_BIN") or REPO / default)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_api_key() -> str:
    return "e2b_" + secrets.token_hex(20)


def mounts_under(path: str) -> list:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split(" ")[4]
            mp = mp.encode().decode("unicode_escape") if "\\" in mp else mp
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return out


def health(port: int) -> str:
    """'' when GET /health answers 200, else what happened."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        status = conn.getresponse().status
        return "" if status == 200 else f"GET /health answered {status}"
    except OSError as e:
        return repr(e)
    finally:
        conn.close()


class Hutchd:
    """One hutchd: start() (raises RuntimeError, with its output, when it
    does not come up), then stop()."""

    def __init__(self, binary, prefix, extra_args=(), own_key=False, stop_timeout=20.0):
        self.bin = pathlib.Path(binary)
        self.extra_args = list(extra_args)
        self.stop_timeout = stop_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = None if own_key else new_api_key()
        self.data_dir = tempfile.mkdtemp(prefix=f"{prefix}-", dir="/tmp")
        self.log_dir = tempfile.mkdtemp(prefix=f"{prefix}-log-", dir="/tmp")
        self.log_path = os.path.join(self.log_dir, "hutchd.log")
        self.proc = None

    def start(self) -> "Hutchd":
        if not (self.bin.is_file() and os.access(self.bin, os.X_OK)):
            self._cleanup()
            raise RuntimeError(f"hutchd binary not found or not executable at {self.bin}: build it "
                               "(make in the repository root) or set HUTCHD_BIN to its path")
        if os.geteuid() != 0:
            self._cleanup()
            raise RuntimeError("these tests start hutchd, which must run as root; run them as root")
        argv = [str(self.bin), "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir]
        if self.api_key:
            argv += ["--api-key", self.api_key]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv + self.extra_args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        last = ""
        for _ in range(HEALTH_ATTEMPTS):
            if self.proc.poll() is not None:
                break
            last = health(self.port)
            if not last:
                if self.api_key is None:
                    self.api_key = pathlib.Path(self.data_dir, "api-key").read_text().strip()
                return self
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        log = self.log_tail()
        self._cleanup()
        raise RuntimeError(f"hutchd ({self.bin}) did not become healthy on {self.url} after "
                           f"{HEALTH_ATTEMPTS} attempts (last: {last}; exit status "
                           f"{self.proc.returncode}). Its output:\n{log}")

    def stop(self):
        """SIGTERM, SIGKILL after stop_timeout seconds; removes the data
        directory (never through a mount) and the log.  Returns what went
        wrong (no exit within the time, a status other than 0, mounts left
        under the data directory) with hutchd's output, or None."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        problem = None
        try:
            rc = self.proc.wait(timeout=self.stop_timeout)
            if rc != 0:
                problem = f"hutchd exited with status {rc} after SIGTERM (expected 0)"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            problem = f"hutchd did not exit within {self.stop_timeout} s of SIGTERM"
        mounts = mounts_under(self.data_dir)
        if mounts:
            problem = f"hutchd left mounts under its data directory {self.data_dir}: {mounts}"
        log = self.log_tail()
        self._cleanup()
        return f"{problem}. Its output:\n{log}" if problem else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 8192) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def _cleanup(self) -> None:
        if not mounts_under(self.data_dir):  # never rm -rf through a mount
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if not os.environ.get("HUTCH_KEEP_LOGS"):
            shutil.rmtree(self.log_dir, ignore_errors=True)


def session_hutchd(make):
    """For a conftest: `hutchd, pytest_sessionfinish = session_hutchd(MAKE)`,
    MAKE () -> an unstarted Hutchd.  The session fixture `hutchd` starts it
    on first use; a start that failed fails every test that asks for it,
    with the same message; the hook stops it at the end of the session."""
    import pytest

    state = {}

    @pytest.fixture(scope="session")
    def hutchd():
        if not state:
            try:
                state["server"] = make().start()
            except RuntimeError as e:
                state["error"] = str(e)
        if "error" in state:
            pytest.fail(state["error"], pytrace=False)
        return state["server"]

    def pytest_sessionfinish(session, exitstatus):
        server = state.pop("server", None)
        if server is not None:
            server.stop()

    return hutchd, pytest_sessionfinish
