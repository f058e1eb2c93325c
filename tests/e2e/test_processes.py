"""Processes: the sandbox sees and reaches only its own; nothing leaks in."""

import os
import platform
import signal
import time

import pytest

from conftest import HUTCH_UID_BASE, TIMEOUT, children_of, probe_bytes, probe_script, proc_status, sandbox_init_pid, wait_pidfd_exit


@pytest.mark.parametrize("user", ["user", "root"])
def test_ps_shows_only_the_sandbox(hutch, user):
    r = hutch.run("ps", "-e", "-o", "pid=,ppid=,comm=", opts=["--user", user])
    assert (r.returncode, r.stderr) == (0, b"")
    rows = [line.split() for line in r.stdout.decode().splitlines()]
    # pid 1 (hutch's init, whose parent is outside) and the command it ran.
    assert [(int(p), int(pp)) for p, pp, _ in rows] == [(1, 0), (2, 1)]
    assert rows[1][2] == "ps"


def test_proc_lists_only_the_sandbox(hutch, host_sleeper):
    proc, _ = host_sleeper
    r = hutch.run("ls", "/proc", opts=["--user", "root"])
    assert (r.returncode, r.stderr) == (0, b"")
    # pid 1 and the ls it started; never the host's processes.
    assert [e for e in r.stdout.decode().split() if e.isdigit()] == ["1", "2"]
    r = hutch.sh(f"test -e /proc/{proc.pid}; echo $?", opts=["--user", "root"])
    assert r.stdout == b"1\n"


@pytest.mark.parametrize("user", ["user", "root"])
def test_host_process_cannot_be_killed(hutch, host_sleeper, user):
    proc, fd = host_sleeper
    r = hutch.sh(f"kill -9 {proc.pid}; echo status $?", opts=["--user", user])
    assert r.returncode == 0
    assert r.stdout == b"status 1\n"
    assert b"No such process" in r.stderr
    # Still alive: its pidfd is not readable and it has not been reaped.
    assert not wait_pidfd_exit(fd, 0)
    assert proc.poll() is None


def test_kill_all_reaches_no_host_process(hutch, host_sleeper):
    # kill(-1) signals every process the caller may signal: inside, as root,
    # that is nothing but the caller and pid 1, which it leaves out.
    proc, fd = host_sleeper
    r = hutch.sh(f"kill -0 {proc.pid}; echo status $?", opts=["--user", "root"])
    assert r.stdout == b"status 1\n"
    script = "import os\ntry:\n    os.kill(-1, 9)\nexcept ProcessLookupError:\n    print('ESRCH')\n"
    r = hutch.run("python3", "-c", script, opts=["--user", "root"])
    assert (r.returncode, r.stdout, r.stderr) == (0, b"ESRCH\n", b"")
    assert not wait_pidfd_exit(fd, 0)
    assert proc.poll() is None


def test_sandbox_runs_as_unprivileged_host_uids(hutch):
    # Seen from the host, the sandbox's processes belong to its own uid
    # range, never to root or any uid below 0x10000000.
    sb = hutch.spawn("sh", "-c", "cat /proc/self/uid_map; echo ready; read x")
    line = sb.readline()
    assert sb.readline() == "ready"
    inside, outside, count = (int(x) for x in line.split())
    assert (inside, count) == (0, 65536)
    assert outside >= HUTCH_UID_BASE
    init = sandbox_init_pid(sb.pid)
    for pid in [init] + children_of(init):
        uids = proc_status(pid)["Uid"].split()
        assert uids == [str(outside + 1000)] * 4
    sb.send("x\n")
    assert sb.wait() == 0


def test_signals_to_hutch_are_forwarded(hutch):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        sb = hutch.spawn("sh", "-c", "echo ready; read x; echo not reached")
        assert sb.readline() == "ready"
        sb.signal(sig)
        assert sb.wait(close_stdin=False) == 128 + sig
        assert sb.stdout_rest == b""


def test_sigterm_can_be_handled_by_the_command(hutch):
    sb = hutch.spawn("sh", "-c", "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.05; done")
    assert sb.readline() == "ready"
    sb.signal(signal.SIGTERM)
    assert sb.readline() == "got TERM"
    assert sb.wait(close_stdin=False) == 42


def test_new_session(hutch):
    # The command runs in a session of its own, without a controlling tty.
    # pid 1 leads the session; the command it started (pid 2) is in it.
    r = hutch.run("python3", "-c", "import os; print(os.getsid(0), os.getpgrp(), os.getpid())")
    assert (r.returncode, r.stdout) == (0, b"1 1 2\n")
    r = hutch.sh("exec 3</dev/tty", opts=["--user", "root"])
    assert r.returncode == 2
    assert b"No such device or address" in r.stderr


# --- descriptors ------------------------------------------------------------


def probe_fds(hutch, user, pass_fds=()):
    return hutch.run(
        "sh", "-c", probe_script("fds"), opts=["--user", user], input=probe_bytes(), pass_fds=pass_fds
    )


@pytest.mark.parametrize("user", ["user", "root"])
def test_no_leaked_fds(hutch, user):
    r = probe_fds(hutch, user)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


@pytest.mark.parametrize("user", ["user", "root"])
def test_no_leaked_fds_with_inherited_fds(hutch, user, tmp_path):
    # hutch itself started with extra descriptors open (not close-on-exec):
    # a pipe, a file, a directory.
    r_end, w_end = os.pipe()
    f = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        r = probe_fds(hutch, user, pass_fds=(r_end, w_end, f, d))
    finally:
        for fd in (r_end, w_end, f, d):
            os.close(fd)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


# The syscall pid 1 waits in once it runs the command: rt_sigtimedwait.
SIGTIMEDWAIT = {"x86_64": 128, "aarch64": 137}[platform.machine()]


def test_no_leaked_fds_seen_from_the_host(hutch, tmp_path):
    # The host can read every sandbox process's descriptors, pid 1's too
    # (the sandbox cannot): only 0, 1 and 2, although hutch had more open.
    f = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        sb = hutch.spawn("sh", "-c", "echo ready; read x", pass_fds=(f,))
    finally:
        os.close(f)
    assert sb.readline() == "ready"
    init = sandbox_init_pid(sb.pid)
    [shell] = children_of(init)
    # pid 1 holds a pipe until the exec of the command has been reported;
    # once it waits for signals, it is settled.
    deadline = time.monotonic() + TIMEOUT
    while int(open(f"/proc/{init}/syscall").read().split()[0]) != SIGTIMEDWAIT:
        assert time.monotonic() < deadline, open(f"/proc/{init}/syscall").read()
        os.sched_yield()
    for pid in (init, shell):
        fds = sorted(int(x) for x in os.listdir(f"/proc/{pid}/fd"))
        assert fds == [0, 1, 2], (pid, {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds})
    sb.send("x\n")
    assert sb.wait() == 0
