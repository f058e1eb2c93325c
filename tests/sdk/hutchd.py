"""Start and stop one hutchd for the SDK tests (standard library only).

`hutchd --listen 127.0.0.1:PORT --data-dir DIR --api-key KEY`, as root, DIR
a fresh absolute directory under /tmp, KEY `e2b_` + 40 hex digits; ready
when GET /health answers 200; stopped with SIGTERM.
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
HEALTH_ATTEMPTS = 100  # real GET /health requests, 100 ms apart at most
STOP_TIMEOUT = 20.0


def binary() -> pathlib.Path:
    return pathlib.Path(os.environ.get("HUTCHD_BIN") or REPO / "build" / "hutchd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_api_key() -> str:
    return "e2b_" + secrets.token_hex(20)


def _mounts_under(path: str):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split(" ")[4]
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return out


class Hutchd:
    def __init__(self, extra_args=()):
        self.extra_args = list(extra_args)
        self.bin = binary()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = new_api_key()
        self.data_dir = tempfile.mkdtemp(prefix="hutchd-sdk-", dir="/tmp")
        self.log_path = os.path.join(tempfile.mkdtemp(prefix="hutchd-sdk-log-", dir="/tmp"), "hutchd.log")
        self.proc = None

    def start(self) -> "Hutchd":
        if not (self.bin.is_file() and os.access(self.bin, os.X_OK)):
            self._cleanup()
            raise RuntimeError(f"hutchd not found or not executable at {self.bin}: build it "
                               "(`make build/hutchd`) or set HUTCHD_BIN")
        if os.geteuid() != 0:
            self._cleanup()
            raise RuntimeError("hutchd must run as root: run these tests as root")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bin), "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
                 "--api-key", self.api_key] + self.extra_args,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        last = ""
        for _ in range(HEALTH_ATTEMPTS):
            if self.proc.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", "/health")
                    status = conn.getresponse().status
                finally:
                    conn.close()
                if status == 200:
                    return self
                last = f"GET /health answered {status}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        log = self.log_tail()
        self._cleanup()
        raise RuntimeError(f"hutchd did not become healthy on {self.url} (last: {last}; exit status "
                           f"{self.proc.returncode}). Its output:\n{log}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._cleanup()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 6000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def _cleanup(self) -> None:
        if _mounts_under(self.data_dir):
            return  # never rm -rf through a mount
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if not os.environ.get("HUTCH_KEEP_LOGS"):
            shutil.rmtree(os.path.dirname(self.log_path), ignore_errors=True)
