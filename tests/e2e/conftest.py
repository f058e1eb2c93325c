"""End-to-end tests: drive the real `hutch` binary and real sandboxes.

The binary under test is $HUTCH_BIN, else <repo>/build/asan/hutch (the
ASan+UBSan build); the probe is <repo>/build/probe, copied into sandboxes
through stdin.  Every session uses a fresh data directory under /tmp, and
after every test the data directory must hold no sandbox state, no uid slot
and no mount on the host.

Helpers shared by the test modules live here; the modules import them with
`from conftest import ...`.
"""

import ctypes
import glob
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HUTCH = Path(os.environ.get("HUTCH_BIN") or REPO / "build" / "asan" / "hutch")
PROBE = REPO / "build" / "probe"

# Generous bound on any single hutch invocation: a hang fails the test.
TIMEOUT = 60

# A script prefix printing the sandbox id and its uid map: what tests need
# to look for the sandbox's traces on the host afterwards.
IDENTIFY = "hostname; cat /proc/self/uid_map; "

SANDBOX_ID_RE = re.compile(r"^[a-z0-9]{20}$")
HUTCH_UID_BASE = 0x10000000
HUTCH_UID_RANGE = 65536


def pytest_configure(config):
    missing = [str(p) for p in (HUTCH, PROBE) if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        raise pytest.UsageError(
            "hutch e2e tests: missing executable(s): %s\n"
            "Build them first: `make all build/asan/hutch` (or `make e2e`) in %s, "
            "or point HUTCH_BIN at a hutch binary." % (", ".join(missing), REPO)
        )
    if os.geteuid() != 0:
        raise pytest.UsageError("hutch e2e tests: hutch needs root; run the tests as root")
    # Some tests SIGKILL a supervisor: its sandbox's pid 1, orphaned, then
    # comes to us (not to a host init that may never reap it) and is reaped.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


PR_SET_CHILD_SUBREAPER = 36


def reap_orphans():
    """Reap children that exited without a Popen of ours waiting for them:
    sandbox pid 1s orphaned by a killed supervisor."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def reap_if_ours(pidfd):
    """Reap the exited process behind PIDFD if it became our child."""
    try:
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
    except ChildProcessError:
        pass


# ---------------------------------------------------------------------------
# The caller's environment for hutch: no TERM (so the sandbox environment is
# exactly the documented default) and no HUTCH_DATA_DIR (always --data-dir).


def hutch_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TERM", "HUTCH_DATA_DIR")}
    env.update(extra)
    return env


PROBE_BYTES = None


def probe_bytes():
    global PROBE_BYTES
    if PROBE_BYTES is None:
        PROBE_BYTES = PROBE.read_bytes()
    return PROBE_BYTES


def probe_script(args, before="", after=None):
    """A sh script that copies the probe from stdin (exactly its size, so
    stdin stays usable afterwards), then runs `probe ARGS`.  BEFORE runs
    first; when AFTER is None the probe is exec'ed, else AFTER follows it."""
    size = len(probe_bytes())
    copy = f"head -c {size} > /tmp/probe && chmod +x /tmp/probe && "
    if after is None:
        return f"{before}{copy}exec /tmp/probe {args}"
    return f"{before}{copy}/tmp/probe {args}; {after}"


class Sandbox:
    """A running `hutch run`, with line-by-line access to its stdout and a
    deadline on every wait.  stderr goes to a file (read when it ends)."""

    def __init__(self, argv, pass_fds=(), env=None):
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            bufsize=0,
            pass_fds=pass_fds,
            env=env if env is not None else hutch_env(),
        )
        self.pid = self.proc.pid
        self._buf = b""
        self.stdout_rest = b""

    def send(self, data, timeout=TIMEOUT):
        """Write DATA to the sandbox's stdin, failing after TIMEOUT."""
        if isinstance(data, str):
            data = data.encode()
        fd = self.proc.stdin.fileno()
        os.set_blocking(fd, False)
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            assert left > 0, "timed out writing to the sandbox's stdin"
            _, w, _ = select.select([], [fd], [], left)
            if w:
                n = os.write(fd, view[:65536])
                view = view[n:]

    def close_stdin(self):
        if not self.proc.stdin.closed:
            self.proc.stdin.close()

    def readline(self, timeout=TIMEOUT):
        """The next stdout line, without its newline."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for a line from the sandbox; got {self._buf!r}")
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(
                    f"sandbox stdout closed before a full line; got {self._buf!r}, "
                    f"exit {self.proc.wait(timeout=TIMEOUT)}, stderr {self.stderr()!r}"
                )
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def stderr(self):
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def wait(self, timeout=TIMEOUT, close_stdin=True):
        """Close stdin (unless told not to), read stdout to its end, reap
        hutch: its exit code.  What stdout still had is in self.stdout_rest."""
        if close_stdin:
            self.close_stdin()
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        rest = self._buf
        self._buf = b""
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "timed out waiting for the sandbox's stdout to close"
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            rest += chunk
        self.stdout_rest = rest
        return self.proc.wait(timeout=max(deadline - time.monotonic(), 1))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def running(self):
        return self.proc.poll() is None

    def kill_and_reap(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)
        self.close_stdin()
        self.proc.stdout.close()
        self._err.close()


class Hutch:
    """The binary under test bound to the session's data directory."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.spawned = []

    def argv(self, cmd, opts=()):
        return [str(HUTCH), "run", "--data-dir", self.data_dir, *opts, "--", *cmd]

    def run(self, *cmd, opts=(), input=b"", timeout=TIMEOUT, pass_fds=(), env=None):
        """Run CMD to completion: a CompletedProcess with bytes output."""
        if isinstance(input, str):
            input = input.encode()
        return subprocess.run(
            self.argv(cmd, opts),
            input=input,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            pass_fds=pass_fds,
            env=env if env is not None else hutch_env(),
        )

    def sh(self, script, opts=(), input=b"", timeout=TIMEOUT):
        return self.run("sh", "-c", script, opts=opts, input=input, timeout=timeout)

    def probe(self, args, opts=(), before="", after=None, timeout=TIMEOUT):
        """Copy the probe in and run it: a CompletedProcess."""
        return self.sh(probe_script(args, before, after), opts=opts, input=probe_bytes(), timeout=timeout)

    def spawn(self, *cmd, opts=(), pass_fds=()):
        """Start CMD in a sandbox and return at once: a Sandbox."""
        sb = Sandbox(self.argv(cmd, opts), pass_fds=pass_fds)
        self.spawned.append(sb)
        return sb

    def spawn_probe(self, args, opts=(), before="", after=None):
        """Start the probe in a sandbox; the probe is fed before returning."""
        sb = self.spawn("sh", "-c", probe_script(args, before, after), opts=opts)
        sb.send(probe_bytes())
        return sb

    def gc(self, timeout=TIMEOUT):
        return subprocess.run(
            [str(HUTCH), "gc", "--data-dir", self.data_dir],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            env=hutch_env(),
        )

    def mnt_entries(self):
        """What the host sees in DATA/mnt, the mount point of writable
        layers (mounted only inside sandboxes): nothing, ever."""
        path = os.path.join(self.data_dir, "mnt")
        return sorted(os.listdir(path)) if os.path.exists(path) else []

    def state_entries(self):
        """What DATA/sandboxes and DATA/slots hold."""
        out = {}
        for sub in ("sandboxes", "slots"):
            path = os.path.join(self.data_dir, sub)
            out[sub] = sorted(os.listdir(path)) if os.path.exists(path) else []
        return out


# ---------------------------------------------------------------------------
# Host-side observation.


def host_mounts_mentioning(path):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if path in line]


def cgroup_dirs(sandbox_id):
    """Directories of the sandbox's cgroup on the host (v1: one per
    hierarchy, v2: one)."""
    return sorted(
        set(glob.glob(f"/sys/fs/cgroup/*/hutch/{sandbox_id}") + glob.glob(f"/sys/fs/cgroup/hutch/{sandbox_id}"))
    )


def cgroup_file(sandbox_id, v1_controller, name):
    """The path of a control file of the sandbox's cgroup: v1 under the
    controller's hierarchy, v2 in the unified group."""
    v2 = f"/sys/fs/cgroup/hutch/{sandbox_id}/{name}"
    if os.path.exists(v2):
        return v2
    return f"/sys/fs/cgroup/{v1_controller}/hutch/{sandbox_id}/{name}"


def proc_status(pid):
    """The fields of /proc/PID/status, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def host_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def pids_in_uid_range(base):
    """Host pids whose real uid lies in the sandbox range starting at BASE."""
    found = []
    for pid in host_pids():
        st = proc_status(pid)
        if st is None or "Uid" not in st:
            continue
        uid = int(st["Uid"].split()[0])
        if base <= uid < base + HUTCH_UID_RANGE:
            found.append(pid)
    return found


def pids_with_comm(name):
    found = []
    for pid in host_pids():
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().rstrip("\n") == name:
                    found.append(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def sandbox_init_pid(hutch_pid):
    """Host pid of the sandbox's pid 1: the only child of the supervisor."""
    with open(f"/proc/{hutch_pid}/task/{hutch_pid}/children") as f:
        children = f.read().split()
    assert len(children) == 1, children
    return int(children[0])


def children_of(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def wait_pidfd_exit(pidfd, timeout):
    """True when the process behind PIDFD exits within TIMEOUT seconds."""
    p = select.poll()
    p.register(pidfd, select.POLLIN)
    return bool(p.poll(int(timeout * 1000)))


def uid_base_from_map(line):
    """The host uid of root inside, from a line of /proc/self/uid_map."""
    inside, outside, count = (int(x) for x in line.split())
    assert (inside, count) == (0, HUTCH_UID_RANGE), line
    return outside


def unique_name(prefix="hz"):
    return prefix + uuid.uuid4().hex[:12]


# ---------------------------------------------------------------------------
# Fixtures.


@pytest.fixture(scope="session")
def data_dir():
    d = tempfile.mkdtemp(prefix="hutch-e2e-", dir="/tmp")
    assert os.path.isabs(d) and "," not in d and ":" not in d, d
    yield d
    subprocess.run(
        [str(HUTCH), "gc", "--data-dir", d],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=TIMEOUT,
        env=hutch_env(),
    )
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def host_sleeper():
    """A host `sleep` process and a pidfd on it."""
    proc = subprocess.Popen(["sleep", "600"])
    fd = os.pidfd_open(proc.pid)
    yield proc, fd
    os.close(fd)
    proc.kill()
    proc.wait(timeout=TIMEOUT)


@pytest.fixture(scope="session")
def hutch_bin():
    return HUTCH


@pytest.fixture(scope="session")
def session_hutch(data_dir):
    return Hutch(data_dir)


@pytest.fixture(autouse=True)
def hutch(session_hutch):
    """The hutch under test.  After each test: every sandbox it started has
    ended, and the data directory holds no sandbox state, no uid slot, and
    no host mount mentions it."""
    session_hutch.spawned = []
    yield session_hutch
    leftover = [sb for sb in session_hutch.spawned if sb.running()]
    for sb in session_hutch.spawned:
        sb.kill_and_reap()
    session_hutch.spawned = []
    reap_orphans()
    if leftover:
        session_hutch.gc()
        pytest.fail(f"the test left {len(leftover)} `hutch run` process(es) running")
    assert session_hutch.state_entries() == {"sandboxes": [], "slots": []}
    assert session_hutch.mnt_entries() == []
    assert host_mounts_mentioning(session_hutch.data_dir) == []
