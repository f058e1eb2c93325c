"""Unknown and malformed sandbox ids, and API key checks."""
import pytest

from client import expect_error, new_api_key, unknown_sandbox_id

# (method, path template, body) for every per-sandbox endpoint of spec §3.4.
PER_SANDBOX = [
    ("GET", "/sandboxes/{id}", None),
    ("DELETE", "/sandboxes/{id}", None),
    ("POST", "/sandboxes/{id}/timeout", {"timeout": 30}),
    ("POST", "/v2/sandboxes/{id}/connect", {}),
    ("POST", "/sandboxes/{id}/connect", {"timeout": 300}),
    ("POST", "/sandboxes/{id}/pause", {}),
    ("POST", "/sandboxes/{id}/resume", {"timeout": 300}),
    ("GET", "/sandboxes/{id}/metrics", None),
    ("POST", "/sandboxes/{id}/refreshes", {"duration": 10}),
]


@pytest.mark.parametrize("method,path,body", PER_SANDBOX, ids=lambda x: x if isinstance(x, str) else "")
def test_unknown_id_is_404_with_code_404(hutchd, method, path, body):
    sid = unknown_sandbox_id()
    r = hutchd.request(method, path.format(id=sid), body)
    expect_error(hutchd, r, {404}, f"{method} {path} unknown id")


def tricky_ids(real):
    return [
        "%2e%2e",
        "%2E%2E",
        "%2e%2e%2f%2e%2e",
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e%2fv2%2fsandboxes",
        "%2e%2e%2f" + real,
        real + "%2f..",
        real + "%2f%2e%2e%2f" + real,
        "x%2f..%2f" + real,
        real + "%00",
        "%00" + real,
        real + "%20",
        "%20" + real,
        real + "%0a",
        real + ";x",
        real + "%3bx",
        real + "%23",
        real.upper(),
        "%C3%A9" + real,
        "%ff%fe",
        "%",
        "%zz",
        real + "*",
        "*",
        "a" * 4096,
        real * 100,
    ]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_path_tricks_are_404_or_400(hutchd, sandbox, method):
    # The autouse check then proves none of these reached the real sandbox.
    for sid in tricky_ids(sandbox["id"]):
        r = hutchd.request(method, f"/sandboxes/{sid}")
        expect_error(hutchd, r, {400, 404}, f"{method} /sandboxes/{sid[:60]}")


def test_path_tricks_on_sub_resources(hutchd, sandbox):
    for sid in tricky_ids(sandbox["id"]):
        for method, path, body in [("POST", "/sandboxes/{id}/timeout", {"timeout": 1}),
                                   ("POST", "/v2/sandboxes/{id}/connect", {"timeout": 99999})]:
            r = hutchd.request(method, path.format(id=sid), body)
            expect_error(hutchd, r, {400, 404}, f"{method} {path} id={sid[:60]}")


def test_very_long_id(hutchd):
    # A 64 KiB request line: 414 and 431 are the HTTP answers for "too long".
    for method in ("GET", "DELETE"):
        r = hutchd.request(method, "/sandboxes/" + "a" * 65536)
        expect_error(hutchd, r, {400, 404, 414, 431}, f"{method} 64 KiB id")


def test_raw_nul_and_control_bytes_in_path(hutchd, sandbox):
    # http.client refuses these, so send them raw.
    for raw_path in [b"/sandboxes/" + sandbox["id"].encode() + b"\x00",
                     b"/sandboxes/\x00",
                     b"/sandboxes/" + sandbox["id"].encode() + b"\x7f",
                     b"/sandboxes/\xff\xfe"]:
        for method in (b"GET", b"DELETE"):
            req = (method + b" " + raw_path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: "
                   + hutchd.api_key.encode() + b"\r\nConnection: close\r\n\r\n")
            r = hutchd.raw(req, method=method.decode())
            expect_error(hutchd, r, {400, 404}, f"{method!r} {raw_path!r}")


# ---- API key ---------------------------------------------------------------

def key_variants(real):
    return {
        "missing": None,
        "empty": "",
        "other-valid-shaped": new_api_key(),
        "truncated": real[:-1],
        "extended": real + "0",
        "one-char-changed": real[:-1] + ("1" if real.endswith("0") else "0"),
        "uppercase": real.upper(),
        "prefix-only": "e2b_",
        "huge": "e2b_" + "0" * 100000,
    }


ENDPOINTS = [
    ("GET", "/v2/sandboxes", None),
    ("GET", "/sandboxes", None),
    ("POST", "/v2/sandboxes", {"templateID": "base"}),
    ("POST", "/sandboxes", {"templateID": "base"}),
] + [(m, p, b) for m, p, b in PER_SANDBOX]


@pytest.mark.parametrize("variant", list(key_variants("e2b_" + "0" * 40)))
def test_missing_or_wrong_key_is_401(hutchd, sandbox, variant):
    key = key_variants(hutchd.api_key)[variant]
    for method, path, body in ENDPOINTS:
        # Per-sandbox endpoints aim at the real sandbox: a wrong key must not
        # delete it, pause it or move its endAt (checked after the test).
        r = hutchd.request(method, path.format(id=sandbox["id"]), body, key=key)
        expect_error(hutchd, r, {401} if variant != "huge" else {400, 401, 431},
                     f"{method} {path} with key {variant}")


def test_key_header_name_is_case_insensitive(hutchd, sandbox):
    for name in ("x-api-key", "X-API-KEY", "X-Api-Key"):
        r = hutchd.request("GET", f"/sandboxes/{sandbox['id']}", key=None, headers={name: hutchd.api_key})
        assert r.status == 200, f"{name}: {r}"


def test_key_in_query_or_other_header_is_not_accepted(hutchd):
    r = hutchd.request("GET", f"/v2/sandboxes?api_key={hutchd.api_key}", key=None)
    expect_error(hutchd, r, {401}, "key in the query")
    r = hutchd.request("GET", "/v2/sandboxes", key=None, headers={"X-API-Key-": hutchd.api_key})
    expect_error(hutchd, r, {401}, "key in another header")


def test_health_needs_no_key(hutchd):
    r = hutchd.request("GET", "/health", key=None)
    assert r.status == 200, r
