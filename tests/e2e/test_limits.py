"""Resource limits: processes, memory, disk, cpu; a bomb stays in its sandbox."""

import os
import re
import resource
import subprocess

import pytest

from conftest import (
    IDENTIFY,
    SANDBOX_ID_RE,
    TIMEOUT,
    cgroup_dirs,
    cgroup_file,
    pids_in_uid_range,
    sandbox_init_pid,
    uid_base_from_map,
    wait_pidfd_exit,
)

def identity(lines):
    sandbox_id, uid_map = lines[0], lines[1]
    assert SANDBOX_ID_RE.match(sandbox_id), sandbox_id
    return sandbox_id, uid_base_from_map(uid_map)


def assert_nothing_left(sandbox_id, uid_base):
    assert pids_in_uid_range(uid_base) == []
    assert cgroup_dirs(sandbox_id) == []


# --- processes --------------------------------------------------------------


def test_fork_bomb_stops_at_the_pids_limit(hutch):
    r = hutch.probe("forkbomb", opts=["--pids", "64"], before=IDENTIFY)
    assert (r.returncode, r.stderr) == (0, b"")
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 3, lines
    sandbox_id, uid_base = identity(lines)
    m = re.fullmatch(r"forked (\d+) errno (\d+)", lines[2])
    assert m, lines[2]
    forked, err = int(m[1]), int(m[2])
    assert err == 11  # EAGAIN
    # The limit counts every task of the sandbox: pid 1 and the probe too.
    assert 32 < forked <= 62
    assert_nothing_left(sandbox_id, uid_base)


def test_fork_bomb_leaves_the_host_able_to_fork(hutch, host_sleeper):
    proc, fd = host_sleeper
    r = hutch.probe("forkbomb", opts=["--pids", "32"])
    assert r.returncode == 0
    assert re.fullmatch(rb"forked \d+ errno 11\n", r.stdout), r.stdout
    assert subprocess.run(["true"], timeout=TIMEOUT).returncode == 0
    assert not wait_pidfd_exit(fd, 0)


def test_threads_count_against_the_pids_limit(hutch):
    script = (
        "import threading\n"
        "gate = threading.Event()\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(100):\n"
        "        threading.Thread(target=gate.wait).start()\n"
        "        n += 1\n"
        "except RuntimeError as e:\n"
        "    print('refused after', n, e)\n"
        "gate.set()\n"
    )
    r = hutch.run("python3", "-c", script, opts=["--pids", "16"])
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(rb"refused after (\d+) can't start new thread\n", r.stdout)
    assert m, r.stdout
    assert int(m[1]) < 16


# --- memory -----------------------------------------------------------------


def test_memory_within_the_limit_is_fine(hutch):
    r = hutch.probe("membomb 32", opts=["--memory", "64M"])
    assert (r.returncode, r.stdout, r.stderr) == (0, b"touched 32 MiB\n", b"")


def test_memory_bomb_is_oom_killed_and_nothing_else_is(hutch, host_sleeper):
    host_proc, host_fd = host_sleeper
    # A second sandbox, started first, waits for a line.
    other = hutch.spawn("sh", "-c", "echo ready; read x; echo alive $x")
    assert other.readline() == "ready"

    r = hutch.probe("membomb 512", opts=["--memory", "64M"], before=IDENTIFY)
    assert r.returncode == 123, (r.stdout, r.stderr)
    lines = r.stdout.decode().splitlines()
    sandbox_id, uid_base = identity(lines)
    assert lines[2:] == []  # never "touched 512 MiB"
    assert re.search(rb"sandbox [a-z0-9]{20} ran out of memory", r.stderr), r.stderr
    assert sandbox_id.encode() in r.stderr
    assert_nothing_left(sandbox_id, uid_base)

    # The other sandbox is unaffected.
    other.send("after-the-bomb\n")
    assert other.readline() == "alive after-the-bomb"
    assert other.wait() == 0
    # So is the host.
    assert not wait_pidfd_exit(host_fd, 0)
    assert host_proc.poll() is None
    ok = subprocess.run(
        ["/usr/bin/python3", "-c", "print(len(bytearray(128 << 20)))"], stdout=subprocess.PIPE, timeout=TIMEOUT
    )
    assert (ok.returncode, ok.stdout) == (0, b"134217728\n")


def test_oom_in_a_child_is_reported_as_out_of_memory(hutch):
    # The bomb is a child of the command, whose shell passes its status on:
    # the sandbox still reports 123.
    r = hutch.probe("membomb 512", opts=["--memory", "64M"], after="exit $?")
    assert r.returncode == 123
    assert b"out of memory" in r.stderr


# --- disk -------------------------------------------------------------------


@pytest.mark.parametrize("disk,low,high", [("16M", 10, 16), ("32M", 26, 32)])
def test_disk_writes_are_bounded(hutch, disk, low, high):
    r = hutch.probe("fill /tmp/big", opts=["--disk", disk, "--memory", "512M"])
    assert (r.returncode, r.stderr) == (0, b"")
    m = re.fullmatch(r"wrote (\d+) MiB errno (\d+)\n", r.stdout.decode())
    assert m, r.stdout
    assert int(m[2]) == 28  # ENOSPC
    assert low <= int(m[1]) <= high


def test_disk_limit_covers_every_writable_path(hutch):
    r = hutch.probe(
        "fill /home/user/big",
        opts=["--disk", "16M", "--memory", "512M"],
        after="/tmp/probe fill /tmp/more; /tmp/probe fill /var/tmp/more",
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 3
    first = re.fullmatch(r"wrote (\d+) MiB errno 28", lines[0])
    assert first and 10 <= int(first[1]) <= 16, lines
    # The layer is full: the other paths get nothing (or less than 1 MiB).
    assert lines[1:] == ["wrote 0 MiB errno 28", "wrote 0 MiB errno 28"]


def test_disk_pages_count_against_memory(hutch):
    # The writable layer is memory-backed: a 1G layer cannot hold more than
    # the 64M the sandbox may use.
    r = hutch.probe("fill /tmp/big", opts=["--disk", "1G", "--memory", "64M"])
    assert r.returncode == 123, (r.stdout, r.stderr)
    assert b"out of memory" in r.stderr


# --- cgroup settings and rlimits ---------------------------------------------


def read(path):
    with open(path) as f:
        return f.read().strip()


def test_limits_are_set_on_the_sandboxs_cgroup(hutch):
    sb = hutch.spawn(
        "sh", "-c", IDENTIFY + "echo ready; read x", opts=["--memory", "96M", "--cpus", "0.5", "--pids", "100"]
    )
    sandbox_id, _ = identity([sb.readline(), sb.readline()])
    assert sb.readline() == "ready"
    assert cgroup_dirs(sandbox_id) != []
    if os.path.exists(f"/sys/fs/cgroup/hutch/{sandbox_id}"):  # v2
        base = f"/sys/fs/cgroup/hutch/{sandbox_id}"
        assert read(f"{base}/memory.max") == str(96 << 20)
        assert read(f"{base}/memory.swap.max") == "0"
        assert read(f"{base}/cpu.max") == "50000 100000"
        assert read(f"{base}/pids.max") == "100"
    else:  # v1
        assert read(cgroup_file(sandbox_id, "memory", "memory.limit_in_bytes")) == str(96 << 20)
        memsw = cgroup_file(sandbox_id, "memory", "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            assert read(memsw) == str(96 << 20)
        assert read(cgroup_file(sandbox_id, "cpu", "cpu.cfs_period_us")) == "100000"
        assert read(cgroup_file(sandbox_id, "cpu", "cpu.cfs_quota_us")) == "50000"
        assert read(cgroup_file(sandbox_id, "pids", "pids.max")) == "100"
    # Every process of the sandbox is in the group.
    init = sandbox_init_pid(sb.pid)
    with open(f"/proc/{init}/cgroup") as f:
        groups = f.read().splitlines()
    for controller in ("memory", "pids"):
        line = [g for g in groups if re.match(rf"\d+:([^:]*,)?{controller}(,[^:]*)?:", g)]
        if line:
            assert line[0].endswith(f"/hutch/{sandbox_id}"), line
    sb.send("x\n")
    assert sb.wait() == 0
    assert cgroup_dirs(sandbox_id) == []


def test_default_limits(hutch):
    sb = hutch.spawn("sh", "-c", IDENTIFY + "echo ready; read x")
    sandbox_id, _ = identity([sb.readline(), sb.readline()])
    assert sb.readline() == "ready"
    if os.path.exists(f"/sys/fs/cgroup/hutch/{sandbox_id}"):
        base = f"/sys/fs/cgroup/hutch/{sandbox_id}"
        assert read(f"{base}/memory.max") == str(512 << 20)
        assert read(f"{base}/cpu.max") == "100000 100000"
        assert read(f"{base}/pids.max") == "512"
    else:
        assert read(cgroup_file(sandbox_id, "memory", "memory.limit_in_bytes")) == str(512 << 20)
        assert read(cgroup_file(sandbox_id, "cpu", "cpu.cfs_quota_us")) == "100000"
        assert read(cgroup_file(sandbox_id, "pids", "pids.max")) == "512"
    sb.send("x\n")
    assert sb.wait() == 0


def test_cgroup_view_is_private(hutch):
    r = hutch.run("cat", "/proc/self/cgroup")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines
    for line in lines:
        assert line.endswith(":/"), line


def test_rlimits(hutch):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = min(hard, 65536)
    r = hutch.sh("ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc")
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout.decode().split() == [str(expected), str(expected), "0", "0"]
