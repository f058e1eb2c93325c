"""hutchd killed with SIGKILL: its sandboxes (spares included) die with it,
and its next start on the same data directory removes what they left
(cgroups, state, uid slots)."""
import glob
import os
import shutil
import signal
import time

import pytest

from client import ApiHutchd

DEADLINE = 30  # seconds for what the kernel does asynchronously


def sandbox_dirs(data_dir):
    return set(os.listdir(os.path.join(data_dir, "sandboxes")))


def cgroups_of(sid):
    return glob.glob(f"/sys/fs/cgroup/*/hutch/{sid}") + glob.glob(f"/sys/fs/cgroup/hutch/{sid}")


def procs_of(sid):
    pids = set()
    for group in cgroups_of(sid):
        try:
            with open(os.path.join(group, "cgroup.procs")) as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:
            pass
    return pids


def wait_until(condition, what):
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"after {DEADLINE} s: {what}")
        time.sleep(0.05)


def test_a_killed_server_leaves_nothing_once_started_again():
    first = ApiHutchd().start()
    data_dir = first.data_dir
    for template in ("code-interpreter-v1", "base"):
        r = first.request("POST", "/v2/sandboxes", {"templateID": template, "timeout": 600})
        assert r.status == 201, r
    # Two sandboxes in use and the two spares.
    wait_until(lambda: len(sandbox_dirs(data_dir)) == 4, f"4 sandboxes in {data_dir}")
    old = sandbox_dirs(data_dir)
    pids = set().union(*(procs_of(sid) for sid in old))
    assert len(pids) >= 4

    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    shutil.rmtree(first.log_dir, ignore_errors=True)
    wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids),
               "processes of the killed server's sandboxes still run")

    second = ApiHutchd()
    os.rmdir(second.data_dir)
    second.data_dir = data_dir
    second.start()
    try:
        for sid in old:
            assert not cgroups_of(sid), f"cgroups of {sid} left: {cgroups_of(sid)}"
            assert sid not in sandbox_dirs(data_dir)
        assert second.request("GET", "/v2/sandboxes").json() == []
        # The new server works, with spares of its own.
        r = second.request("POST", "/v2/sandboxes", {"templateID": "code-interpreter-v1"})
        assert r.status == 201, r
        assert r.json()["sandboxID"] not in old
        everything = sandbox_dirs(data_dir)
    finally:
        problem = second.stop()
    assert problem is None, problem
    for sid in everything | old:
        assert not cgroups_of(sid), f"cgroups of {sid} left after a clean stop"
