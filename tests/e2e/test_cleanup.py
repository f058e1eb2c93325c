"""Nothing of a sandbox outlives it: processes (even setsid double-forked
daemons), mounts, cgroups, state and uid slots; also when the supervisor
is SIGKILLed, once `hutch gc` or the next `hutch run` has run."""

import os
import re
import signal
import subprocess

import pytest

from conftest import (
    HUTCH,
    IDENTIFY,
    SANDBOX_ID_RE,
    TIMEOUT,
    cgroup_dirs,
    host_mounts_mentioning,
    hutch_env,
    pids_in_uid_range,
    pids_with_comm,
    proc_status,
    reap_if_ours,
    sandbox_init_pid,
    uid_base_from_map,
    unique_name,
    wait_pidfd_exit,
)

# How long a process may take to disappear once it should.
EXIT_WAIT = 10


class Daemonised:
    """A sandbox whose probe left a setsid, double-forked sleeper behind;
    the shell then runs TAIL (by default: wait for a line on stdin)."""

    def __init__(self, hutch, opts=(), tail="read x; echo bye"):
        self.name = unique_name()
        self.sb = hutch.spawn_probe(f"daemon {self.name}", opts=opts, before=IDENTIFY, after=f"echo started; {tail}")
        self.id = self.sb.readline()
        assert SANDBOX_ID_RE.match(self.id), self.id
        self.uid_base = uid_base_from_map(self.sb.readline())
        m = re.fullmatch(r"daemon (\d+)", self.sb.readline())
        assert m
        inner_pid = int(m[1])
        assert self.sb.readline() == "started"
        # The daemon, seen from the host: found by its unique name.
        found = pids_with_comm(self.name)
        assert len(found) == 1, found
        self.pid = found[0]
        self.pidfd = os.pidfd_open(self.pid)
        status = proc_status(self.pid)
        assert int(status["NSpid"].split()[-1]) == inner_pid
        assert int(status["Uid"].split()[0]) == self.uid_base + 1000
        self.init = sandbox_init_pid(self.sb.pid)
        self.init_pidfd = os.pidfd_open(self.init)
        # While it runs, the sandbox has processes, a cgroup and state.
        assert self.pid in pids_in_uid_range(self.uid_base)
        assert cgroup_dirs(self.id) != []
        assert self.id in os.listdir(os.path.join(hutch.data_dir, "sandboxes"))
        # Its mounts are its own: none shows on the host.
        assert host_mounts_mentioning(hutch.data_dir) == []

    def assert_daemon_gone(self):
        assert wait_pidfd_exit(self.pidfd, EXIT_WAIT), f"daemon {self.pid} outlived its sandbox"
        assert wait_pidfd_exit(self.init_pidfd, EXIT_WAIT), f"pid 1 ({self.init}) outlived its sandbox"
        reap_if_ours(self.init_pidfd)
        assert pids_with_comm(self.name) == []

    def assert_nothing_left(self, hutch):
        self.assert_daemon_gone()
        assert pids_in_uid_range(self.uid_base) == []
        assert cgroup_dirs(self.id) == []
        assert hutch.state_entries() == {"sandboxes": [], "slots": []}
        assert hutch.mnt_entries() == []
        assert host_mounts_mentioning(hutch.data_dir) == []

    def close(self):
        os.close(self.pidfd)
        os.close(self.init_pidfd)


@pytest.fixture
def daemonised(hutch):
    made = []

    def make(**kw):
        d = Daemonised(hutch, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def test_daemon_dies_when_the_sandbox_ends(hutch, daemonised):
    d = daemonised()
    d.sb.send("go\n")
    assert d.sb.wait() == 0
    assert d.sb.stdout_rest == b"bye\n"
    assert d.sb.stderr() == ""
    d.assert_nothing_left(hutch)


def test_daemon_dies_on_timeout(hutch, daemonised):
    d = daemonised(opts=["--timeout", "3"])
    assert d.sb.wait(close_stdin=False) == 124
    assert d.sb.stdout_rest == b""
    assert f"sandbox {d.id} timed out after 3 s".encode() in d.sb.stderr().encode()
    d.assert_nothing_left(hutch)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_daemon_dies_when_hutch_is_signalled(hutch, daemonised, sig):
    d = daemonised()
    d.sb.signal(sig)
    assert d.sb.wait(close_stdin=False) == 128 + sig
    assert d.sb.stdout_rest == b""
    d.assert_nothing_left(hutch)


def test_daemon_dies_when_the_command_exits_without_it(hutch, daemonised):
    # The shell ends while the daemon sleeps on: the sandbox ends with the
    # command, not with its last process.
    d = daemonised(tail="read x; exit 9")
    d.sb.send("go\n")
    assert d.sb.wait() == 9
    d.assert_nothing_left(hutch)


@pytest.mark.parametrize("restart", ["gc", "run"])
def test_sigkill_of_the_supervisor_then_restart_leaves_nothing(hutch, daemonised, restart):
    d = daemonised()
    d.sb.proc.kill()
    assert d.sb.proc.wait(timeout=EXIT_WAIT) == -signal.SIGKILL
    # The kernel kills the sandbox's processes at once...
    d.assert_daemon_gone()
    assert pids_in_uid_range(d.uid_base) == []
    # ...the rest is removed by the next hutch.
    if restart == "gc":
        r = hutch.gc()
        assert (r.returncode, r.stdout, r.stderr) == (0, b"cleaned 1 sandbox\n", b"")
    else:
        r = hutch.run("true")
        assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    d.assert_nothing_left(hutch)
    r = hutch.gc()
    assert (r.returncode, r.stdout) == (0, b"cleaned 0 sandboxes\n")


def test_sigkill_of_the_supervisor_during_a_timeout(hutch, daemonised):
    d = daemonised(opts=["--timeout", "600"])
    d.sb.proc.kill()
    assert d.sb.proc.wait(timeout=EXIT_WAIT) == -signal.SIGKILL
    d.assert_daemon_gone()
    r = hutch.gc()
    assert (r.returncode, r.stdout) == (0, b"cleaned 1 sandbox\n")
    d.assert_nothing_left(hutch)


def test_gc_leaves_live_sandboxes_alone(hutch, daemonised):
    d = daemonised()
    r = hutch.gc()
    assert (r.returncode, r.stdout, r.stderr) == (0, b"cleaned 0 sandboxes\n", b"")
    # A concurrent `hutch run` (which also collects garbage) neither.
    r = hutch.run("true")
    assert r.returncode == 0
    assert not wait_pidfd_exit(d.pidfd, 0)
    assert cgroup_dirs(d.id) != []
    d.sb.send("still here\n")
    assert d.sb.readline() == "bye"
    assert d.sb.wait() == 0
    d.assert_nothing_left(hutch)


def test_gc_with_nothing_to_do(hutch):
    r = hutch.gc()
    assert (r.returncode, r.stdout, r.stderr) == (0, b"cleaned 0 sandboxes\n", b"")


def test_gc_bad_usage(hutch):
    r = subprocess.run(
        [str(HUTCH), "gc", "--bogus"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, env=hutch_env()
    )
    assert r.returncode == 2
    assert b"usage: hutch gc" in r.stderr


@pytest.mark.parametrize("user", ["user", "root"])
def test_normal_exit_leaves_nothing(hutch, user):
    r = hutch.sh(IDENTIFY + "sleep 600 & setsid sleep 600 & exit 0", opts=["--user", user])
    assert (r.returncode, r.stderr) == (0, b"")
    sandbox_id, uid_map = r.stdout.decode().splitlines()
    uid_base = uid_base_from_map(uid_map)
    assert pids_in_uid_range(uid_base) == []
    assert cgroup_dirs(sandbox_id) == []
    assert host_mounts_mentioning(hutch.data_dir) == []
    assert hutch.state_entries() == {"sandboxes": [], "slots": []}


def test_concurrent_sandboxes_get_distinct_ids_and_uid_ranges(hutch):
    sandboxes = [hutch.spawn("sh", "-c", IDENTIFY + "read x; echo done $x") for _ in range(8)]
    seen = []
    for sb in sandboxes:
        sandbox_id = sb.readline()
        assert SANDBOX_ID_RE.match(sandbox_id)
        seen.append((sandbox_id, uid_base_from_map(sb.readline())))
    assert len({i for i, _ in seen}) == 8
    assert len({b for _, b in seen}) == 8
    state = hutch.state_entries()
    assert sorted(state["sandboxes"]) == sorted(i for i, _ in seen)
    assert len(state["slots"]) == 8
    for n, sb in enumerate(sandboxes):
        sb.send(f"{n}\n")
    for n, sb in enumerate(sandboxes):
        assert sb.readline() == f"done {n}"
        assert sb.wait() == 0
    for sandbox_id, uid_base in seen:
        assert cgroup_dirs(sandbox_id) == []
        assert pids_in_uid_range(uid_base) == []
