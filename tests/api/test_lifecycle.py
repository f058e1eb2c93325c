"""Pause, resume and kill in the orders clients use them."""


def create(hutchd):
    r = hutchd.request("POST", "/v2/sandboxes", {"templateID": "base", "timeout": 120})
    assert r.status == 201, r
    return r.json()["sandboxID"]


def state(hutchd, sid):
    r = hutchd.request("GET", f"/sandboxes/{sid}")
    return r.json()["state"] if r.status == 200 else r.status


def test_a_paused_sandbox_can_be_killed_and_the_server_goes_on(hutchd):
    sid = create(hutchd)
    assert hutchd.request("POST", f"/sandboxes/{sid}/pause", {}).status == 204
    assert state(hutchd, sid) == "paused"
    assert hutchd.request("DELETE", f"/sandboxes/{sid}", timeout=10).status == 204
    assert state(hutchd, sid) == 404
    other = create(hutchd)
    assert hutchd.request("DELETE", f"/sandboxes/{other}", timeout=10).status == 204


def test_pause_twice_is_409_and_connect_resumes(hutchd):
    sid = create(hutchd)
    assert hutchd.request("POST", f"/sandboxes/{sid}/pause", {}).status == 204
    r = hutchd.request("POST", f"/sandboxes/{sid}/pause", {})
    assert r.status == 409 and r.json()["code"] == 409
    r = hutchd.request("POST", f"/v2/sandboxes/{sid}/connect", {"timeout": 60})
    assert r.status == 201, r
    assert state(hutchd, sid) == "running"
    assert hutchd.envd(sid, "GET", "/health").status == 204
    assert hutchd.request("DELETE", f"/sandboxes/{sid}").status == 204
