"""Bad input to envd through the proxy (Connect JSON, spec §4.3): a Connect
error every time, never a crash, never a truncated or mangled command run."""
import base64
import json

import pytest

from client import expect_error

# Connect codes and their HTTP statuses for unary errors (spec §4.3.1).
CONNECT_STATUS = {
    "canceled": 499, "unknown": 500, "invalid_argument": 400, "deadline_exceeded": 504,
    "not_found": 404, "already_exists": 409, "permission_denied": 403,
    "resource_exhausted": 429, "failed_precondition": 400, "aborted": 409,
    "out_of_range": 400, "unimplemented": 501, "internal": 500, "unavailable": 503,
    "data_loss": 500, "unauthenticated": 401,
}


def envelope(payload, flags=0):
    return bytes([flags]) + len(payload).to_bytes(4, "big") + payload


def parse_envelopes(body):
    out, i = [], 0
    while i < len(body):
        assert len(body) - i >= 5, f"truncated envelope header at {i}: {body!r}"
        flags, n = body[i], int.from_bytes(body[i + 1:i + 5], "big")
        payload = body[i + 5:i + 5 + n]
        assert len(payload) == n, f"truncated envelope payload at {i}: {body!r}"
        out.append((flags, json.loads(payload)))
        i += 5 + n
    return out


def stream_headers(token, extra=None):
    h = {"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1",
         "Connect-Timeout-Ms": "10000", "Keepalive-Ping-Interval": "50"}
    if token:
        h["X-Access-Token"] = token
    h.update(extra or {})
    return h


def unary_headers(token, extra=None):
    h = {"Content-Type": "application/json", "Connect-Protocol-Version": "1"}
    if token:
        h["X-Access-Token"] = token
    h.update(extra or {})
    return h


def start(hutchd, sandbox, raw_body, extra=None, token=None):
    return hutchd.envd(sandbox["id"], "POST", "/process.Process/Start", raw_body,
                       headers=stream_headers(token or sandbox["token"], extra), timeout=30)


def start_json(cmd_json):
    return envelope(cmd_json)


def assert_stream_error(r, codes=None, what=""):
    """HTTP 200, connect+json, no start event, an end-stream envelope with an error."""
    assert r.status == 200, f"{what}: a stream error is HTTP 200 plus an end-stream envelope; got {r}"
    assert r.headers.get("Content-Type", "").startswith("application/connect+json"), \
        f"{what}: Content-Type {r.headers.get('Content-Type')!r}"
    envs = parse_envelopes(r.body)
    assert envs, f"{what}: empty stream"
    flags, last = envs[-1]
    assert flags == 0x02, f"{what}: the last envelope is not end-stream: {envs}"
    for f, msg in envs[:-1]:
        assert "start" not in msg.get("event", {}), f"{what}: a process was started: {envs}"
    err = last.get("error")
    assert isinstance(err, dict) and isinstance(err.get("code"), str), f"{what}: no Connect error: {last}"
    assert err["code"] in CONNECT_STATUS, f"{what}: not a Connect code: {err}"
    if codes:
        assert err["code"] in codes, f"{what}: code {err['code']!r}, expected {codes}"
    return err


def assert_unary_error(r, codes=None, what=""):
    assert r.status != 200, f"{what}: expected a Connect error, got {r}"
    body = r.json()
    assert isinstance(body.get("code"), str) and body["code"] in CONNECT_STATUS, f"{what}: not a Connect error: {r}"
    assert r.status == CONNECT_STATUS[body["code"]], f"{what}: status {r.status} for code {body['code']}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), f"{what}: {r.headers.get('Content-Type')}"
    if codes:
        assert body["code"] in codes, f"{what}: code {body['code']!r}, expected {codes}"
    return body


# ---- positive controls: the raw client is right ----------------------------

def test_control_start_echo(hutchd, sandbox):
    body = json.dumps({"process": {"cmd": "/bin/bash", "args": ["-l", "-c", "echo ok"]}, "stdin": False}).encode()
    r = start(hutchd, sandbox, envelope(body))
    assert r.status == 200, r
    assert r.headers.get("Content-Type", "").startswith("application/connect+json")
    envs = parse_envelopes(r.body)
    assert envs[0][0] == 0 and isinstance(envs[0][1]["event"]["start"]["pid"], int), envs
    out = b"".join(base64.b64decode(m["event"]["data"]["stdout"])
                   for f, m in envs if f == 0 and "data" in m.get("event", {}) and "stdout" in m["event"]["data"])
    assert out == b"ok\n"
    ends = [m["event"]["end"] for f, m in envs if f == 0 and "end" in m.get("event", {})]
    assert ends == [{"exited": True, "status": "exit status 0"}], ends
    assert envs[-1][0] == 0x02 and "error" not in envs[-1][1], envs[-1]


def test_control_unary_stat(hutchd, sandbox):
    r = hutchd.envd(sandbox["id"], "POST", "/filesystem.Filesystem/Stat", b'{"path":"/home/user"}',
                    headers=unary_headers(sandbox["token"]))
    assert r.status == 200, r
    assert r.headers.get("Content-Type", "").startswith("application/json")
    entry = r.json()["entry"]
    assert entry["type"] == "FILE_TYPE_DIRECTORY" and entry["path"] == "/home/user", entry


# ---- Start with invalid UTF-8 or NUL ---------------------------------------

FIELDS = {
    "cmd": b'{"process":{"cmd":"/bin/ech@@o","args":["x"]},"stdin":false}',
    "arg": b'{"process":{"cmd":"/bin/bash","args":["-l","-c","echo a@@b"]},"stdin":false}',
    "env-key": b'{"process":{"cmd":"/bin/bash","args":["-c","true"],"envs":{"K@@":"v"}},"stdin":false}',
    "env-value": b'{"process":{"cmd":"/bin/bash","args":["-c","true"],"envs":{"K":"v@@"}},"stdin":false}',
    "cwd": b'{"process":{"cmd":"/bin/bash","args":["-c","true"],"cwd":"/tmp@@"},"stdin":false}',
    "tag": b'{"process":{"cmd":"/bin/bash","args":["-c","true"]},"tag":"t@@","stdin":false}',
}
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82"]


@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize("bad", BAD_UTF8, ids=repr)
def test_start_invalid_utf8_is_invalid_argument(hutchd, sandbox, field, bad):
    r = start(hutchd, sandbox, envelope(FIELDS[field].replace(b"@@", bad)))
    assert_stream_error(r, {"invalid_argument"}, f"Start {field} {bad!r}")


@pytest.mark.parametrize("field", [f for f in FIELDS if f != "tag"])
def test_start_nul_is_a_connect_error(hutchd, sandbox, field):
    # A NUL cannot reach execve/environ: refuse, never truncate at it.
    r = start(hutchd, sandbox, envelope(FIELDS[field].replace(b"@@", b"\\u0000")))
    assert_stream_error(r, None, f"Start {field} with NUL")


@pytest.mark.parametrize("body", [
    envelope(b"{"),
    envelope(b"not json"),
    envelope(b"[]"),
    envelope(b'{"process":"x"}'),
    envelope(b'{"process":{"cmd":5}}'),
    envelope(b'{"process":{"cmd":"/bin/true","args":"x"}}'),
    envelope(b'{"process":{"cmd":"/bin/true","envs":["a"]}}'),
    envelope(b'{"process":{"cmd":"/bin/true"},"pty":{"size":{"cols":-1,"rows":"x"}}}'),
    envelope(b'{"process":{"cmd":"/bin/true\x00"}}'),
], ids=lambda b: repr(b[5:45]))
def test_start_bad_message_is_invalid_argument(hutchd, sandbox, body):
    r = start(hutchd, sandbox, body)
    assert_stream_error(r, {"invalid_argument"}, f"Start {body[5:45]!r}")


@pytest.mark.parametrize("body", [
    b"",
    b"\x00\x00",
    b'{"process":{"cmd":"/bin/true"}}',                          # not enveloped
    b"\x00\x00\x00\x10\x00" + b'{"process":{}}',                 # length beyond the body
    b"\x00\x00\x00\x00\x02{}" + b"trailing",                     # bytes after the message
    envelope(b'{"process":{"cmd":"/bin/true"}}', flags=0x01),    # compressed, never negotiated
    b"\x00\xff\xff\xff\xff",                                     # 4 GiB announced
], ids=lambda b: repr(b[:24]))
def test_start_bad_envelope_is_a_connect_error(hutchd, sandbox, body):
    r = start(hutchd, sandbox, body)
    if r.status == 200:
        assert_stream_error(r, None, f"Start envelope {body[:24]!r}")
    else:
        assert_unary_error(r, None, f"Start envelope {body[:24]!r}")


# ---- unary calls -----------------------------------------------------------

@pytest.mark.parametrize("method", ["Stat", "ListDir", "MakeDir", "Remove"])
@pytest.mark.parametrize("bad", BAD_UTF8, ids=repr)
def test_unary_invalid_utf8_path_is_invalid_argument(hutchd, sandbox, method, bad):
    body = b'{"path":"/home/user/x' + bad + b'"}'
    r = hutchd.envd(sandbox["id"], "POST", f"/filesystem.Filesystem/{method}", body,
                    headers=unary_headers(sandbox["token"]))
    assert_unary_error(r, {"invalid_argument"}, f"{method} {bad!r}")


@pytest.mark.parametrize("method", ["Stat", "ListDir", "MakeDir", "Remove"])
def test_unary_nul_in_path_is_a_connect_error_and_not_truncated(hutchd, sandbox, method):
    # Would create or remove /home/user/nul-victim if the path were cut at the NUL.
    victim = hutchd.envd(sandbox["id"], "POST", "/filesystem.Filesystem/MakeDir",
                         b'{"path":"/home/user/nul-victim-keep"}', headers=unary_headers(sandbox["token"]))
    assert victim.status in (200, 409), victim
    for path in ("/home/user/nul-victim-keep\\u0000/x", "/home/user/nul-victim\\u0000-keep"):
        body = b'{"path":"' + path.encode() + b'"}'
        r = hutchd.envd(sandbox["id"], "POST", f"/filesystem.Filesystem/{method}", body,
                        headers=unary_headers(sandbox["token"]))
        if method == "Remove" and r.status == 200:
            continue  # "a missing path is not an error" (§4.5); truncation is checked below
        assert_unary_error(r, None, f"{method} {path}")
    for check, expect in (("/home/user/nul-victim-keep", 200), ("/home/user/nul-victim", 404)):
        r = hutchd.envd(sandbox["id"], "POST", "/filesystem.Filesystem/Stat", ('{"path":"%s"}' % check).encode(),
                        headers=unary_headers(sandbox["token"]))
        assert r.status == expect, f"after {method} with NUL, Stat {check}: {r}"


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"path":5}', b'{"path":"/tmp"}x', b"\xff"], ids=repr)
def test_unary_bad_json_is_invalid_argument(hutchd, sandbox, body):
    r = hutchd.envd(sandbox["id"], "POST", "/filesystem.Filesystem/Stat", body,
                    headers=unary_headers(sandbox["token"]))
    if body == b"" and r.status == 200:
        return  # some Connect servers read an empty unary body as the empty message
    assert_unary_error(r, {"invalid_argument"}, f"Stat body {body!r}")


def test_send_input_bad_base64_is_a_connect_error(hutchd, sandbox):
    body = b'{"process":{"pid":1},"input":{"stdin":"!!!not base64!!!"}}'
    r = hutchd.envd(sandbox["id"], "POST", "/process.Process/SendInput", body,
                    headers=unary_headers(sandbox["token"]))
    assert_unary_error(r, None, "SendInput bad base64")


# ---- users and tokens ------------------------------------------------------

def basic(user):
    return "Basic " + base64.b64encode(user + b":").decode()


ID_U = json.dumps({"process": {"cmd": "/bin/bash", "args": ["-c", "id -u"]}, "stdin": False}).encode()


def _stdout(r):
    return b"".join(base64.b64decode(m["event"]["data"]["stdout"]) for f, m in parse_envelopes(r.body)
                    if f == 0 and "stdout" in m.get("event", {}).get("data", {}))


@pytest.mark.parametrize("user", [b"no-such-user-hutch", b"../root", b"root\x00", b"root\x00x", b"us\xffer",
                                  b"root/../root", b"0", b"x" * 5000], ids=lambda u: repr(u[:20]))
def test_unknown_user_is_a_connect_error(hutchd, sandbox, user):
    # Well-formed Basic auth naming no user (§4.1: unauthenticated). A name cut
    # at the NUL would be root.
    r = start(hutchd, sandbox, envelope(ID_U), extra={"Authorization": basic(user)})
    assert_stream_error(r, None, f"Start as {user[:40]!r}")
    r = hutchd.envd(sandbox["id"], "POST", "/filesystem.Filesystem/Stat", b'{"path":"/root"}',
                    headers=unary_headers(sandbox["token"], {"Authorization": basic(user)}))
    assert_unary_error(r, None, f"Stat as {user[:40]!r}")


@pytest.mark.parametrize("auth", [basic(b""), "Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(),
                                  "Bearer x", "Basic", "Basic " + "A" * 10000], ids=lambda a: repr(a[:30]))
def test_malformed_authorization_is_refused_or_default_user(hutchd, sandbox, auth):
    # envd ignores an Authorization it cannot parse as Basic and uses the
    # default user; refusing is fine too. Never root.
    r = start(hutchd, sandbox, envelope(ID_U), extra={"Authorization": auth})
    envs = parse_envelopes(r.body) if r.status == 200 else []
    if envs and "start" in envs[0][1].get("event", {}):
        assert _stdout(r) == b"1000\n", _stdout(r)
        assert envs[-1] == (0x02, {}) or "error" not in envs[-1][1], envs[-1]
    elif r.status == 200:
        assert_stream_error(r, None, f"Start with Authorization {auth[:30]!r}")
    else:
        assert_unary_error(r, None, f"Start with Authorization {auth[:30]!r}")


def test_unknown_user_is_unauthenticated(hutchd, sandbox):
    body = json.dumps({"process": {"cmd": "/bin/true"}, "stdin": False}).encode()
    r = start(hutchd, sandbox, envelope(body), extra={"Authorization": basic(b"no-such-user-hutch")})
    assert_stream_error(r, {"unauthenticated"}, "Start as an unknown user")


def test_envd_access_token_is_required_and_per_sandbox(hutchd, sandbox):
    assert isinstance(sandbox["token"], str) and sandbox["token"], "v2 create must return an envdAccessToken"
    other = hutchd.request("POST", "/v2/sandboxes", {"templateID": "base", "timeout": 120})
    assert other.status == 201, other
    other = other.json()
    try:
        stat = b'{"path":"/home/user"}'
        for token, what in ((None, "no token"), ("wrong-token", "a wrong token"),
                            (other.get("envdAccessToken"), "another sandbox's token"),
                            (sandbox["token"] + "x", "the token plus a byte")):
            h = unary_headers(None)
            if token:
                h["X-Access-Token"] = token
            r = hutchd.envd(sandbox["id"], "POST", "/filesystem.Filesystem/Stat", stat, headers=h)
            # §4.1: 401 with {"code":401,"message":...}, even for RPCs.
            expect_error(hutchd, r, {401}, f"Stat with {what}")
            body = json.dumps({"process": {"cmd": "/bin/true"}, "stdin": False}).encode()
            h = stream_headers(None)
            if token:
                h["X-Access-Token"] = token
            r = hutchd.envd(sandbox["id"], "POST", "/process.Process/Start", envelope(body), headers=h)
            expect_error(hutchd, r, {401}, f"Start with {what}")
            r = hutchd.envd(sandbox["id"], "GET", "/files?path=%2Fetc%2Fhostname", headers=h)
            expect_error(hutchd, r, {401}, f"GET /files with {what}")
        r = hutchd.envd(sandbox["id"], "GET", "/health")
        assert r.status == 204, r
    finally:
        hutchd.request("DELETE", f"/sandboxes/{other['sandboxID']}")
