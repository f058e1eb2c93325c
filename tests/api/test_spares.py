"""Sandboxes made in advance (spareSandboxes): a create hands one out with
its own settings; nothing of one user's create reaches another's."""
import json
import subprocess

import pytest

from client import expect_error, new_api_key
from hutchd import free_port, hutchd_bin


def create(hutchd, **body):
    r = hutchd.request("POST", "/v2/sandboxes", {"templateID": "code-interpreter-v1", "timeout": 120, **body})
    assert r.status == 201, r
    return r.json()


def kill(hutchd, sid):
    assert hutchd.request("DELETE", f"/sandboxes/{sid}").status == 204


def test_each_create_gets_its_own_variables_and_token(hutchd):
    made = [create(hutchd, envVars={"WHO": f"user-{i}"}) for i in range(4)]
    try:
        assert len({m["sandboxID"] for m in made}) == 4
        assert len({m["envdAccessToken"] for m in made}) == 4
        for i, m in enumerate(made):
            r = hutchd.envd(m["sandboxID"], "GET", "/envs", token=m["envdAccessToken"])
            assert r.status == 200, r
            assert r.json() == {"WHO": f"user-{i}"}
            # Another sandbox's token opens nothing here.
            other = made[(i + 1) % 4]["envdAccessToken"]
            assert hutchd.envd(m["sandboxID"], "GET", "/envs", token=other).status == 401
    finally:
        for m in made:
            kill(hutchd, m["sandboxID"])


def test_init_needs_the_token_once_the_sandbox_is_handed_out(hutchd):
    m = create(hutchd, envVars={"A": "1"})
    sid, token = m["sandboxID"], m["envdAccessToken"]
    try:
        stolen = {"accessToken": "0" * 40, "envVars": {"A": "2"}}
        assert hutchd.envd(sid, "POST", "/init", stolen).status == 401
        assert hutchd.envd(sid, "POST", "/init", stolen, token="f" * 40).status == 401
        # Nothing changed: the old token still works, the new one does not.
        r = hutchd.envd(sid, "GET", "/envs", token=token)
        assert r.status == 200 and r.json() == {"A": "1"}, r
        assert hutchd.envd(sid, "GET", "/envs", token="0" * 40).status == 401
        # The owner may still update its sandbox, as envd allows.
        r = hutchd.envd(sid, "POST", "/init", {"envVars": {"B": "2"}}, token=token)
        assert r.status == 204, r
        assert hutchd.envd(sid, "GET", "/envs", token=token).json() == {"A": "1", "B": "2"}
    finally:
        kill(hutchd, sid)


def test_spares_are_not_listed_or_reachable(hutchd):
    marker = {"purpose": "spares-listing"}
    m = create(hutchd, metadata=marker)
    try:
        r = hutchd.request("GET", "/v2/sandboxes?metadata=purpose%3Dspares-listing")
        assert r.status == 200, r
        assert [s["sandboxID"] for s in r.json()] == [m["sandboxID"]]
        # Every listed sandbox was created by a client: none carries an id
        # that was not handed out through a create.
        everything = hutchd.request("GET", "/v2/sandboxes").json()
        for s in everything:
            assert hutchd.request("GET", f"/sandboxes/{s['sandboxID']}").status == 200
    finally:
        kill(hutchd, m["sandboxID"])


@pytest.mark.parametrize("value", [-1, 65, "2", 1.5, None])
def test_a_bad_spare_count_stops_the_server_with_a_clear_message(tmp_path, value):
    config = tmp_path / "hutchd.json"
    config.write_text(json.dumps({"spareSandboxes": value}))
    r = subprocess.run(
        [str(hutchd_bin("build/hutchd")), "--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "data"),
         "--api-key", new_api_key(), "--config", str(config)],
        capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "`spareSandboxes` must be an integer from 0 to 64" in r.stderr, r.stderr


def test_errors_of_a_create_are_unchanged_by_spares(hutchd):
    r = hutchd.request("POST", "/v2/sandboxes", {"templateID": "no-such-template"})
    expect_error(hutchd, r, {400}, "unknown template")


def cgroup_procs(sid):
    for path in (f"/sys/fs/cgroup/pids/hutch/{sid}/cgroup.procs", f"/sys/fs/cgroup/hutch/{sid}/cgroup.procs"):
        try:
            with open(path) as f:
                return [int(p) for p in f.read().split()]
        except FileNotFoundError:
            continue
    pytest.fail(f"no cgroup for sandbox {sid}")


def test_a_base_sandbox_starts_its_kernel_when_code_first_runs(hutchd):
    r = hutchd.request("POST", "/v2/sandboxes", {"templateID": "base", "timeout": 120})
    assert r.status == 201, r
    sid, token = r.json()["sandboxID"], r.json()["envdAccessToken"]
    try:
        assert len(cgroup_procs(sid)) == 1  # the agent alone
        r = hutchd.envd(sid, "POST", "/execute", {"code": "6 * 7"}, token=token, port=49999, timeout=60)
        assert r.status == 200, r
        lines = [json.loads(line) for line in r.body.splitlines()]
        assert {"type": "result", "text": "42", "extra": {}, "is_main_result": True} in lines, lines
        assert len(cgroup_procs(sid)) == 2  # and now its Python kernel
    finally:
        kill(hutchd, sid)
