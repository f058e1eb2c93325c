"""pyzygote: kernels forked from the preloaded interpreter behave like
`python3 -m ipykernel_launcher` kernels.

Drives build/pyzygote-driver (tests/interp/pyzygote-driver.c) with Debian's
jupyter_client.  See tests/interp/README for building and running.
"""
import json
import os
import re
import queue
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import zmq
from jupyter_client import BlockingKernelClient

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(os.environ.get("PYZYGOTE_DRIVER") or REPO / "build" / "pyzygote-driver")
USER = 1000  # the sandbox user; tests needing root use it
TIMEOUT = 30

pytestmark = pytest.mark.skipif(not DRIVER.exists(), reason=f"{DRIVER} is not built")


class Driver:
    """The driver process: asks for kernels, collects their exits."""

    def __init__(self, args=(), env=None):
        self.proc = subprocess.Popen(
            [str(DRIVER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.replies = queue.Queue()
        self.exits = {}
        self.cv = threading.Condition()
        self.first = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            words = line.split()
            if words[0] in ("pid", "error"):
                self.replies.put(words)
            elif words[0] == "exit":
                with self.cv:
                    self.exits[int(words[1])] = int(words[2])
                    self.cv.notify_all()
            else:
                self.first.put(words)

    def fork(self, conn, uid, gid, home, cwd, log=""):
        self.proc.stdin.write(f"{conn} {uid} {gid} {home} {cwd} {log}\n")
        self.proc.stdin.flush()
        words = self.replies.get(timeout=TIMEOUT)
        if words[0] == "error":
            raise OSError(int(words[1]), os.strerror(int(words[1])))
        return int(words[1]), int(words[2])

    def wait_exit(self, pid):
        with self.cv:
            self.cv.wait_for(lambda: pid in self.exits, TIMEOUT)
            return self.exits.get(pid)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(TIMEOUT)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_connection_file(path, uid=None):
    info = dict(
        ip="127.0.0.1",
        transport="tcp",
        signature_scheme="hmac-sha256",
        key=secrets.token_hex(16),
        kernel_name="python3",
    )
    for name in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"):
        info[name] = free_port()
    Path(path).write_text(json.dumps(info))
    os.chmod(path, 0o600)
    if uid is not None:
        os.chown(path, uid, uid)
    return info


def client(conn):
    kc = BlockingKernelClient(connection_file=str(conn))
    kc.load_connection_file()
    # Connect before the kernel binds, retrying every millisecond.
    kc.context.setsockopt(zmq.RECONNECT_IVL, 1)
    kc.start_channels()
    return kc


def wait_ready(kc):
    """kernel_info until iopub speaks (the SUB socket joins late)."""
    while True:
        msg_id = kc.kernel_info()
        while kc.get_shell_msg(timeout=TIMEOUT)["parent_header"].get("msg_id") != msg_id:
            pass
        try:
            while True:
                m = kc.get_iopub_msg(timeout=0.05)
                if m["parent_header"].get("msg_id") == msg_id:
                    return
        except queue.Empty:
            continue


def run(kc, code):
    """Execute CODE; returns ([(msg_type, content)...], reply content)."""
    msg_id = kc.execute(code, stop_on_error=False)
    out = []
    while True:
        m = kc.get_iopub_msg(timeout=TIMEOUT)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
        if m["msg_type"] not in ("status", "execute_input"):
            out.append((m["msg_type"], m["content"]))
    while True:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            return out, reply["content"]


def result(kc, code):
    out, reply = run(kc, code)
    assert reply["status"] == "ok", (out, reply)
    return [c["data"]["text/plain"] for m, c in out if m == "execute_result"][-1]


def stdout(kc, code):
    out, reply = run(kc, code)
    assert reply["status"] == "ok", (out, reply)
    return "".join(c["text"] for m, c in out if m == "stream" and c["name"] == "stdout")


@pytest.fixture(scope="module")
def driver():
    env = dict(os.environ, PYTHONHOME="/nonexistent", PYTHONPATH="/nonexistent")
    d = Driver(env=env)  # neither may reach the interpreter
    yield d
    d.close()


@pytest.fixture
def tmp(tmp_path_factory):
    """A directory the kernel's user may enter (pytest's are root-only)."""
    d = Path(tempfile.mkdtemp(prefix="pyzygote-test-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def home(tmp):
    h = tmp / "home"
    h.mkdir()
    if os.getuid() == 0:
        os.chown(h, USER, USER)
    return h


class Kernel:
    def __init__(self, driver, home, uid=None, name=None):
        uid = (USER if os.getuid() == 0 else os.getuid()) if uid is None else uid
        self.driver = driver
        self.conn = Path(home) / (name or f"kernel-{secrets.token_hex(4)}.json")
        write_connection_file(self.conn, uid if os.getuid() == 0 else None)
        self.kc = client(self.conn)
        self.pid, self.t0 = driver.fork(self.conn, uid, uid, home, home)
        wait_ready(self.kc)
        self.ready_ms = (time.clock_gettime_ns(time.CLOCK_MONOTONIC) - self.t0) / 1e6

    def shutdown(self):
        self.kc.shutdown()
        status = self.driver.wait_exit(self.pid)
        self.kc.stop_channels()
        return status


@pytest.fixture
def kernel(driver, home):
    k = Kernel(driver, home)
    yield k
    assert k.shutdown() == 0


def test_execute_result(kernel):
    assert result(kernel.kc, "1+1") == "2"


def test_stream_and_fd_output(kernel):
    out, _ = run(kernel.kc, "import os, sys\nprint('hi')\nsys.stderr.write('e\\n')\nos.system('echo fd')")
    text = {name: "".join(c["text"] for m, c in out if m == "stream" and c["name"] == name)
            for name in ("stdout", "stderr")}
    # print(), sys.stderr, and output written to the descriptors (by C
    # code or a child process) all reach the client.
    assert text == {"stdout": "hi\nfd\n", "stderr": "e\n"}


def test_dataframe_html(kernel):
    out, _ = run(kernel.kc, "import pandas as pd\npd.DataFrame({'a': [1, 2]})")
    assert "<table" in out[-1][1]["data"]["text/html"]


def test_inline_figure(kernel):
    out, _ = run(kernel.kc, "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()")
    assert any(m == "display_data" and "image/png" in c["data"] for m, c in out)
    # The inline backend is hooked in on the first plot, as in any kernel:
    # later cells show their figures without plt.show().
    out, _ = run(kernel.kc, "plt.plot([2, 1]);")
    assert any(m == "display_data" and "image/png" in c["data"] for m, c in out)


def test_error_traceback(kernel):
    out, reply = run(kernel.kc, "def f():\n    1/0\nf()")
    assert reply["status"] == "error" and reply["ename"] == "ZeroDivisionError"
    tb = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join([c for m, c in out if m == "error"][0]["traceback"]))
    assert "----> 2     1/0" in tb and "ZeroDivisionError: division by zero" in tb


def test_shell_and_magics(kernel, home):
    assert "hi" in stdout(kernel.kc, "!echo hi")
    assert result(kernel.kc, "%pwd") == repr(str(home))


def test_interrupt(kernel):
    kc = kernel.kc
    msg_id = kc.execute("print('looping', flush=True)\nwhile True: pass", stop_on_error=False)
    while True:  # interrupt once the loop runs
        m = kc.get_iopub_msg(timeout=TIMEOUT)
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream":
            break
    os.kill(kernel.pid, signal.SIGINT)
    while True:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert result(kc, "'still here'") == "'still here'"


def test_identity_and_environment(kernel, home):
    info = json.loads(
        stdout(
            kernel.kc,
            "import os, sys, json\n"
            "print(json.dumps(dict(uid=os.getuid(), cwd=os.getcwd(), env=dict(os.environ),"
            " fds=os.listdir('/proc/self/fd'), argv=sys.argv, exe=sys.executable)))",
        )
    )
    assert info["cwd"] == str(home)
    assert info["env"]["HOME"] == str(home) and info["env"]["HUTCH_TEST_ENV"] == "1"
    assert "PYTHONHOME" not in info["env"] and "PYTHONPATH" not in info["env"]
    assert info["fds"]  # readable: the kernel is dumpable after changing uid
    assert info["argv"][1:3] == ["-f", str(kernel.conn)]
    assert info["exe"] == "/usr/bin/python3"
    if os.getuid() == 0:
        assert info["uid"] == USER


def test_kernels_do_not_share_randomness(driver, home):
    a, b = Kernel(driver, home), Kernel(driver, home)
    code = "import random, numpy; (random.random(), float(numpy.random.rand()))"
    try:
        assert result(a.kc, code) != result(b.kc, code)
    finally:
        assert a.shutdown() == 0 and b.shutdown() == 0


def test_user_site_packages(driver, home):
    site = home / ".local" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "hutch_test_mod.py").write_text("VALUE = 42\n")
    if os.getuid() == 0:
        for p in [home / ".local", *site.parents, site]:
            if str(p).startswith(str(home)):
                os.chown(p, USER, USER)
    k = Kernel(driver, home)
    try:
        assert result(k.kc, "import hutch_test_mod; hutch_test_mod.VALUE") == "42"
    finally:
        assert k.shutdown() == 0


def test_config_files_are_honoured(driver, home):
    profile = home / ".ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        "c.InteractiveShell.ast_node_interactivity = 'all'\n"
    )
    if os.getuid() == 0:
        subprocess.run(["chown", "-R", f"{USER}:{USER}", str(home / ".ipython")], check=True)
    k = Kernel(driver, home)
    try:
        out, _ = run(k.kc, "1\n2")
        assert [c["data"]["text/plain"] for m, c in out if m == "execute_result"] == ["1", "2"]
    finally:
        assert k.shutdown() == 0


def test_spawn_errors(driver, home, tmp):
    conn = tmp / "k.json"
    write_connection_file(conn)
    with pytest.raises(FileNotFoundError):
        driver.fork(conn, os.getuid(), os.getgid(), home, home / "missing")


# What a cold kernel and a forked one report about themselves; they must
# agree except where DELIBERATE says.
PROBE = r"""
import json, locale, os, signal, site, sys, tempfile, threading
import matplotlib
ip = get_ipython()
print(json.dumps(dict(
    path=sys.path, argv=sys.argv[1:], flags=str(sys.flags), executable=sys.executable,
    env=sorted(k for k in os.environ if k not in ('JPY_PARENT_PID', 'HUTCH_TEST_ENV')),
    ipython_dir=ip.ipython_dir, profile=ip.profile_dir.location,
    history=str(ip.history_manager.hist_file), ns=sorted(ip.user_ns), hidden=len(ip.user_ns_hidden),
    configurables=sorted(type(c).__name__ for c in ip.configurables),
    events={k: len(v) for k, v in ip.events.callbacks.items()},
    extensions=sorted(ip.extension_manager.loaded), formatters=sorted(ip.display_formatter.active_types),
    backend=matplotlib.get_backend(), interactive=matplotlib.is_interactive(),
    dpi=matplotlib.rcParams['figure.dpi'], mpl_config=matplotlib.get_configdir(),
    signals={s.name: str(signal.getsignal(s)) for s in signal.valid_signals() if hasattr(s, 'name')},
    locale=locale.setlocale(locale.LC_CTYPE), tempdir=tempfile.gettempdir(),
    user_site=site.getusersitepackages(), cwd=os.getcwd(),
    displayhook=type(sys.displayhook).__name__, excepthook=getattr(sys.excepthook, '__qualname__', ''),
    threads=len([t for t in threading.enumerate() if not t.name.startswith('Thread-')]),
)))
"""


def formatters_arg():
    """What hutchd adds to a python3 kernelspec's command line: the result
    formatters (src/interp/result-formatters.c) as start-up code."""
    source = (Path(__file__).parents[2] / "src" / "interp" / "result-formatters.py").read_text()
    return ("--IPKernelApp.code_to_run=exec(compile(%r, '<hutch-result-formatters>', 'exec'), "
            "{'__name__': 'hutch_result_formatters'})" % source)


def cold_kernel(conn, home):
    """A kernel started as hutchd starts one from the python3 kernelspec."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
    }
    if os.getuid() == 0:
        env.update(USER="user", LOGNAME="user")
    return subprocess.Popen(
        [sys.executable, "-m", "ipykernel_launcher", "-f", str(conn), formatters_arg()],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=USER if os.getuid() == 0 else None,
        group=USER if os.getuid() == 0 else None,
        extra_groups=[100] if os.getuid() == 0 else None,
        start_new_session=True,
    )


def test_like_a_cold_kernel(driver, tmp):
    reports = []
    for which in ("cold", "forked"):
        home = tmp / which
        home.mkdir()
        if os.getuid() == 0:
            os.chown(home, USER, USER)
        if which == "cold":
            conn = home / "kernel.json"
            write_connection_file(conn, USER if os.getuid() == 0 else None)
            proc = cold_kernel(conn, home)
            kc = client(conn)
            wait_ready(kc)
            reports.append(json.loads(stdout(kc, PROBE)))
            kc.shutdown()
            proc.wait(TIMEOUT)
            kc.stop_channels()
        else:
            k = Kernel(driver, home, name="kernel.json")
            reports.append(json.loads(stdout(k.kc, PROBE)))
            assert k.shutdown() == 0
    cold, forked = reports
    assert cold["history"].endswith("/history.sqlite")
    for key, value in DELIBERATE.items():
        cold[key] = value(cold[key])
    for key in cold:
        expected = json.loads(json.dumps(cold[key]).replace("/cold", "/forked"))
        assert expected == forked[key], key


# A forked kernel keeps its input history in memory, so it has no history
# file and no thread saving to it; it has the result formatters from the
# zygote, not from its command line.
DELIBERATE = {
    "history": lambda cold: ":memory:",
    "threads": lambda cold: cold - 1,
    "argv": lambda cold: [a for a in cold if not a.startswith("--IPKernelApp.code_to_run=")],
}


def test_fork_latency(driver, home):
    """Fork to a kernel answering kernel_info (the client connects first)."""
    times = []
    for _ in range(5):
        k = Kernel(driver, home)
        times.append(k.ready_ms)
        assert k.shutdown() == 0
    print(f"fork -> ready: p50 {statistics.median(times):.1f} ms, min {min(times):.1f} ms")
    assert statistics.median(times) < 1000


def test_boot_header_in_sync():
    subprocess.run([sys.executable, str(Path(__file__).with_name("boot_header.py")), "check"], check=True)


SANDBOX_CLIENT = r"""
import ctypes, json, os, sys
sys.path.insert(0, sys.argv[3])
from test_pyzygote import client, wait_ready, result, stdout
fd = os.open(f"/proc/{sys.argv[1]}/ns/net", os.O_RDONLY)
assert ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) == 0  # CLONE_NEWNET
kc = client(sys.argv[2])
wait_ready(kc)
print(json.dumps(dict(two=result(kc, "1+1"), who=stdout(kc, "import os; print(os.getuid(), os.getcwd())"),
                      png=result(kc, "import matplotlib.pyplot as plt; plt.plot([1]); plt.gcf()"))))
kc.shutdown()
"""


@pytest.mark.skipif(os.getuid() != 0, reason="sandboxes need root here")
def test_in_a_sandbox(tmp):
    d = Driver(["--sandbox", str(tmp / "data")])
    try:
        words = d.first.get(timeout=TIMEOUT)
        assert words[0] == "sandbox", words
        pid, uid_base = int(words[1]), int(words[2])
        inside = "/tmp/kernel.json"
        host_conn = tmp / "kernel.json"
        write_connection_file(host_conn)
        shutil.copy(host_conn, f"/proc/{pid}/root{inside}")
        os.chown(f"/proc/{pid}/root{inside}", uid_base + USER, uid_base + USER)
        kpid, _ = d.fork(inside, USER, USER, "/home/user", "/home/user")
        out = subprocess.run(
            [sys.executable, "-c", SANDBOX_CLIENT, str(pid), str(host_conn), str(Path(__file__).parent)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout.splitlines()[-1])
        assert got["two"] == "2" and got["who"] == f"{USER} /home/user\n"
        assert d.wait_exit(kpid) == 0
    finally:
        d.close()
