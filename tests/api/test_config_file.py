"""The example config file of docs/configuration.md, given to a hutchd with
--config: each setting it makes takes effect, seen through the HTTP API.

`listen` is overridden by --listen (the command line wins over the file, as
the page says), so the test server keeps its free port.  `maxSandboxes: 200`
is not exercised here: reaching it would take 200 running sandboxes (the
limit itself is tested with a small value in tests/sdk/test_control.py).
"""
import datetime
import json
import os
import time

import pytest

from client import ApiHutchd
from docs import blocks


def example():
    found = [b for b in blocks("json") if b.doc == "docs/configuration.md"]
    assert len(found) == 1, [b.id for b in found]
    return json.loads(found[0].text)


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "hutchd.json"
    path.write_text(json.dumps(example()))
    h = ApiHutchd(["--config", str(path)])
    try:
        h.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield h
    problem = h.stop()
    assert problem is None, problem


@pytest.fixture
def created(configured):
    r = configured.request("POST", "/v2/sandboxes", {"templateID": "base"})
    assert r.status == 201, r
    sid = r.json()["sandboxID"]
    yield sid
    configured.request("DELETE", f"/sandboxes/{sid}")


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_example_sets_what_the_test_checks():
    assert set(example()) == {"listen", "domain", "maxSandboxes", "defaultTimeout", "memoryMB",
                              "spareSandboxes"}


def test_default_timeout(configured, created):
    detail = configured.request("GET", f"/sandboxes/{created}").json()
    lifetime = parse_time(detail["endAt"]) - parse_time(detail["startedAt"])
    assert abs(lifetime.total_seconds() - example()["defaultTimeout"]) <= 1, detail


def test_memory_limit(configured, created):
    mb = example()["memoryMB"]
    assert configured.request("GET", f"/sandboxes/{created}").json()["memoryMB"] == mb
    # What the kernel enforces: the sandbox's cgroup (v1 or v2).
    for path in (f"/sys/fs/cgroup/memory/hutch/{created}/memory.limit_in_bytes",
                 f"/sys/fs/cgroup/hutch/{created}/memory.max"):
        if os.path.exists(path):
            with open(path) as f:
                assert int(f.read()) == mb << 20, path
            return
    pytest.fail(f"no memory cgroup for sandbox {created}")


def test_domain_routes_by_host(configured, created):
    domain = example()["domain"]
    # envd answers its /health with 204; hutchd's own /health answers 200.
    r = configured.request("GET", "/health", key=None, headers={"Host": f"49983-{created}.{domain}"})
    assert r.status == 204, r
    r = configured.request("GET", "/health", key=None, headers={"Host": f"49983-{created}.other.test"})
    assert r.status == 200, r


def sandbox_dirs(h):
    """Every sandbox alive, handed out or spare: one state directory each."""
    return set(os.listdir(os.path.join(h.data_dir, "sandboxes")))


def wait_for_sandbox_count(h, n, timeout=60):
    deadline = time.monotonic() + timeout
    while len(sandbox_dirs(h)) != n:
        assert h.alive(), h.log_tail()
        if time.monotonic() > deadline:
            pytest.fail(f"expected {n} sandboxes under {h.data_dir}, found {sorted(sandbox_dirs(h))}")
        time.sleep(0.05)
    return sandbox_dirs(h)


def test_spares_are_made_and_handed_out(configured):
    n = example()["spareSandboxes"]
    spares = wait_for_sandbox_count(configured, n)
    assert configured.request("GET", "/v2/sandboxes").json() == []
    # Nobody reaches a spare: it has no token yet.
    for spare in spares:
        r = configured.envd(spare, "GET", "/envs")
        assert r.status == 502 and r.json()["message"] == "The sandbox was not found", r
        assert configured.request("GET", f"/sandboxes/{spare}").status == 404
    made = []
    try:
        r = configured.request("POST", "/v2/sandboxes",
                               {"templateID": "code-interpreter-v1", "envVars": {"X": "1"}})
        assert r.status == 201, r
        made.append(r.json()["sandboxID"])
        assert made[0] in spares  # made in advance, not by this create
        token = r.json()["envdAccessToken"]
        assert configured.envd(made[0], "GET", "/envs", token=token).json() == {"X": "1"}
        # The one handed out is replaced.
        before = wait_for_sandbox_count(configured, n + 1)
        # A base sandbox is never a spare: it is made for its create.
        r = configured.request("POST", "/v2/sandboxes", {"templateID": "base"})
        assert r.status == 201, r
        made.append(r.json()["sandboxID"])
        assert made[1] not in before
    finally:
        for sid in made:
            configured.request("DELETE", f"/sandboxes/{sid}")
    wait_for_sandbox_count(configured, n)
