"""Bad create and timeout bodies: a clear 4xx JSON error, nothing created,
hutchd alive, the earlier sandbox untouched (checked after each test)."""
import http.client
import json
import socket
import threading

import pytest

from client import Response, expect_error

CREATE = ["/sandboxes", "/v2/sandboxes"]

MALFORMED = [
    b"",
    b"{",
    b'{"templateID":',
    b"not json",
    b'{"templateID":"base",}',
    b"{'templateID':'base'}",
    b'{"templateID":"base"} trailing',
    b'{"templateID":"base"}{"templateID":"base"}',
    b"[]",
    b'"base"',
    b"null",
    b"{}",  # templateID is required
    b'{"templateID":5}',
    b'{"templateID":null}',
    b'{"templateID":["base"]}',
    b'{"templateID":"base","metadata":[]}',
    b'{"templateID":"base","metadata":"k=v"}',
    b'{"templateID":"base","metadata":{"k":1}}',
    b'{"templateID":"base","metadata":{"k":{"nested":"v"}}}',
    b'{"templateID":"base","envVars":"A=1"}',
    b'{"templateID":"base","envVars":{"A":true}}',
    b'{"templateID":"base"' + b"[" * 100000,
    b'{"templateID":"base","metadata":' + b'{"a":' * 10000 + b'"x"' + b"}" * 10001,
]


@pytest.mark.parametrize("path", CREATE)
@pytest.mark.parametrize("body", MALFORMED, ids=lambda b: repr(b[:40]))
def test_malformed_json_is_400(hutchd, path, body):
    expect_error(hutchd, hutchd.request("POST", path, body), {400}, f"POST {path} {body[:40]!r}")


@pytest.mark.parametrize("path", CREATE)
@pytest.mark.parametrize("body", [b"{", b'{"templateID":"base",}', b"{}"], ids=repr)
def test_malformed_json_chunked_is_400(hutchd, path, body):
    # JS 2.51 sends every API body chunked (spec §1).
    expect_error(hutchd, hutchd.request("POST", path, body, chunked=True), {400}, f"chunked POST {path} {body!r}")


def _huge_exchange(hutchd, head, body_chunks):
    """Send head, then the body from another thread (the server may answer
    before reading it all); return the parsed response."""
    s = socket.create_connection(("127.0.0.1", hutchd.port), timeout=60)
    send_error = []

    def sender():
        try:
            for c in body_chunks:
                s.sendall(c)
        except OSError as e:  # the server answered early and closed: fine
            send_error.append(e)

    try:
        s.sendall(head)
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        r = http.client.HTTPResponse(s, method="POST")
        try:
            r.begin()
        except (ConnectionResetError, http.client.RemoteDisconnected) as e:
            raise AssertionError(
                "hutchd closed or reset the connection without an answer to a 20 MB body; it should "
                f"answer 413/400 and drain or half-close (lingering close) so the client sees it: {e!r}") from None
        resp = Response(r.status, r.headers, r.read())
        t.join(timeout=5)
        return resp
    finally:
        s.close()


HUGE = 20 * 1024 * 1024


@pytest.mark.parametrize("path", CREATE)
def test_huge_body_content_length(hutchd, path):
    body = b'{"templateID":"base","metadata":{"k":"' + b"x" * HUGE + b'"}}'
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {hutchd.api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
    expect_error(hutchd, _huge_exchange(hutchd, head, chunks), {400, 413}, f"20 MB POST {path}")


@pytest.mark.parametrize("path", CREATE)
def test_huge_body_chunked(hutchd, path):
    def chunks():
        prefix = b'{"templateID":"base","metadata":{"k":"'
        yield b"%x\r\n" % len(prefix) + prefix + b"\r\n"
        piece = b"x" * 65536
        for _ in range(HUGE // len(piece)):
            yield b"%x\r\n" % len(piece) + piece + b"\r\n"
        yield b'3\r\n"}}\r\n0\r\n\r\n'
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {hutchd.api_key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    expect_error(hutchd, _huge_exchange(hutchd, head, chunks()), {400, 413}, f"20 MB chunked POST {path}")


BAD_TEXT = [
    b'{"templateID":"ba\xffse"}',
    b'{"templateID":"\xc3\x28"}',
    b'{"templateID":"base\xc0\xaf"}',          # overlong encoding
    b'{"templateID":"base\xed\xa0\x80"}',      # UTF-8-encoded surrogate
    b'{"templateID":"base\xf8\x88\x80\x80\x80"}',  # 5-byte form
    b'{"templateID":"base\xe2\x82"}',          # truncated sequence
    b'{"templateID":"base","metadata":{"k":"v\xff"}}',
    b'{"templateID":"base","metadata":{"k\xfe":"v"}}',
    b'{"templateID":"base","envVars":{"A":"\x80"}}',
    b'{"templateID":"base\\u0000"}',
    b'{"templateID":"ba\\u0000se"}',
    b'{"templateID":"base","metadata":{"k":"a\\u0000b"}}',
    b'{"templateID":"base","metadata":{"k\\u0000":"v"}}',
    b'{"templateID":"base","envVars":{"A":"a\\u0000b"}}',
    b'{"templateID":"base","envVars":{"A\\u0000B":"x"}}',
    b'{"templateID":"base\x00"}',               # raw NUL: invalid JSON
    b'{"templateID":"base","metadata":{"k":"a\x00b"}}',
    b'\x00{"templateID":"base"}',
    b'{"templateID":"base"}\x00',
]


@pytest.mark.parametrize("path", CREATE)
@pytest.mark.parametrize("body", BAD_TEXT, ids=repr)
def test_invalid_utf8_and_nul_are_400(hutchd, path, body):
    expect_error(hutchd, hutchd.request("POST", path, body), {400}, f"POST {path} {body!r}")


BAD_TIMEOUTS = [-1, -300, 10**12, 2**31, 2**63, 1.5, "10", True, [10], {"s": 10}]


@pytest.mark.parametrize("path", CREATE)
@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
def test_bad_create_timeout_is_400(hutchd, path, timeout):
    body = json.dumps({"templateID": "base", "timeout": timeout}).encode()
    expect_error(hutchd, hutchd.request("POST", path, body), {400}, f"POST {path} timeout={timeout!r}")


def test_v2_timeout_zero_is_400(hutchd):
    # NewSandboxV2.timeout: min 1 (spec §3.3).
    r = hutchd.request("POST", "/v2/sandboxes", {"templateID": "base", "timeout": 0})
    expect_error(hutchd, r, {400}, "POST /v2/sandboxes timeout=0")


@pytest.mark.parametrize("timeout", [-1, 10**12, 2**31, 1.5, "10", None], ids=repr)
def test_bad_set_timeout_is_400_and_changes_nothing(hutchd, sandbox, timeout):
    r = hutchd.request("POST", f"/sandboxes/{sandbox['id']}/timeout", {"timeout": timeout})
    expect_error(hutchd, r, {400}, f"set timeout {timeout!r}")


@pytest.mark.parametrize("body", [b"{}", b"", b"{", b'{"duration":10}'], ids=repr)
def test_set_timeout_without_timeout_is_400(hutchd, sandbox, body):
    r = hutchd.request("POST", f"/sandboxes/{sandbox['id']}/timeout", body)
    expect_error(hutchd, r, {400}, f"set timeout body {body!r}")


@pytest.mark.parametrize("timeout", [-1, 10**12, 1.5, "10"], ids=repr)
@pytest.mark.parametrize("path", ["/v2/sandboxes/{id}/connect", "/sandboxes/{id}/connect"])
def test_bad_connect_timeout_is_400(hutchd, sandbox, path, timeout):
    r = hutchd.request("POST", path.format(id=sandbox["id"]), {"timeout": timeout})
    expect_error(hutchd, r, {400}, f"connect timeout {timeout!r}")


@pytest.mark.parametrize("path", CREATE)
@pytest.mark.parametrize("template", [
    "no-such-template-hutch", "", " ", "../base", "base/../../etc", "/usr", ".", "..",
    "base\u00e9", "a" * 5000,
], ids=lambda t: repr(t[:30]))
def test_unknown_template_is_400_or_404(hutchd, path, template):
    r = hutchd.request("POST", path, {"templateID": template})
    expect_error(hutchd, r, {400, 404}, f"POST {path} templateID={template[:30]!r}")
