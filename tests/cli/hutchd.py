"""Start and stop one hutchd for the CLI tests (standard library only).

`hutchd --listen 127.0.0.1:PORT --data-dir DIR --api-key KEY`, as root, DIR
a fresh directory under /tmp, KEY `e2b_` + 40 hex digits; ready when GET
/health answers 200; stopped with SIGTERM (SIGKILL after 20 s).
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
STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mounted_under(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split(" ")[4].startswith(path + "/") or line.split(" ")[4] == path
                   for line in f)


class Hutchd:
    def __init__(self, binary: pathlib.Path):
        self.bin = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = "e2b_" + secrets.token_hex(20)
        self.data_dir = tempfile.mkdtemp(prefix="hutchd-cli-", dir="/tmp")
        self.log_path = os.path.join(self.data_dir + "-log")
        self.proc = None

    def start(self) -> "Hutchd":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bin), "--listen", f"127.0.0.1:{self.port}", "--data-dir",
                 self.data_dir, "--api-key", self.api_key],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        last = ""
        for _ in range(100):
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
        self.stop()
        raise RuntimeError(f"hutchd did not become healthy on {self.url} ({last}):\n"
                           f"{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not _mounted_under(self.data_dir):  # never rm -rf through a mount
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if not os.environ.get("HUTCH_KEEP_LOGS"):
            try:
                os.unlink(self.log_path)
            except OSError:
                pass

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
