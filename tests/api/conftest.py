"""Session fixtures: one hutchd for the whole run, one sandbox that every
test must leave untouched (checked after each test)."""
import pytest

from client import ApiHutchd

UNTOUCHED_METADATA = {"purpose": "api-untouched", "owner": "tests/api"}


@pytest.fixture(scope="session")
def hutchd():
    h = ApiHutchd()
    try:
        h.start()
    except RuntimeError as e:
        pytest.exit(str(e), returncode=1)
    yield h
    problem = h.stop()
    assert problem is None, problem


def create_untouched_sandbox(hutchd):
    r = hutchd.request("POST", "/v2/sandboxes",
                       {"templateID": "base", "timeout": 3600, "metadata": UNTOUCHED_METADATA})
    assert r.status == 201, r
    created = r.json()
    for field in ("templateID", "sandboxID", "clientID", "envdVersion"):
        assert field in created, f"create response lacks {field}: {created}"
    detail = hutchd.request("GET", f"/sandboxes/{created['sandboxID']}")
    assert detail.status == 200, detail
    return {"id": created["sandboxID"], "token": created.get("envdAccessToken"), "endAt": detail.json()["endAt"]}


@pytest.fixture(scope="session")
def sandbox(hutchd):
    """A sandbox created before any bad input: {id, token, endAt}. If a test
    breaks it, that test fails and the next ones get a fresh one."""
    sbx = create_untouched_sandbox(hutchd)
    yield sbx
    hutchd.request("DELETE", f"/sandboxes/{sbx['id']}")


def assert_untouched(hutchd, sandbox):
    assert hutchd.alive(), f"hutchd died (status {hutchd.proc.returncode}):\n{hutchd.log_tail()}"
    r = hutchd.request("GET", "/health", key=None)
    assert r.status == 200, f"GET /health: {r}"
    r = hutchd.request("GET", "/v2/sandboxes")
    assert r.status == 200, f"GET /v2/sandboxes: {r}"
    ids = [s["sandboxID"] for s in r.json()]
    assert sandbox["id"] in ids, f"the sandbox created before is no longer listed: {ids}"
    r = hutchd.request("GET", f"/sandboxes/{sandbox['id']}")
    assert r.status == 200, f"GET /sandboxes/{{id}}: {r}"
    d = r.json()
    assert d["state"] == "running", d
    assert d.get("metadata") == UNTOUCHED_METADATA, d
    assert d["endAt"] == sandbox["endAt"], f"endAt changed: {sandbox['endAt']} -> {d['endAt']}"
    r = hutchd.envd(sandbox["id"], "GET", "/health")
    assert r.status == 204, f"envd /health through the proxy: {r}"


@pytest.fixture(autouse=True)
def untouched(hutchd, sandbox):
    """After every test: hutchd alive, the earlier sandbox listed, unchanged, its envd healthy."""
    yield
    try:
        assert_untouched(hutchd, sandbox)
    except AssertionError:
        if hutchd.alive():  # keep one broken sandbox from failing every later test
            hutchd.request("DELETE", f"/sandboxes/{sandbox['id']}")
            sandbox.update(create_untouched_sandbox(hutchd))
        raise
