"""hutch against a stub control plane: list follows X-Next-Token pages and
encodes the metadata filter as hutchd decodes it; a server failure is 125."""
import http.server
import json
import threading
import urllib.parse

import pytest

from conftest import Cli, clean_env


def sandbox(i):
    return {"sandboxID": f"sbx{i}", "templateID": "base", "alias": "base", "clientID": "x",
            "envdVersion": "0.6.4", "startedAt": "2026-01-02T03:04:05.678Z",
            "endAt": "2026-01-02T03:09:05Z", "state": "running", "metadata": {}}


class Stub(http.server.BaseHTTPRequestHandler):
    requests = []
    mode = "pages"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        Stub.requests.append((url.path, query, self.headers.get("X-API-Key")))
        if Stub.mode == "broken":
            return self.answer(500, {"code": 500, "message": "the stub broke"})
        if Stub.mode == "garbage":
            return self.answer(200, b"<html>not json")
        token = query.get("nextToken", [""])[0]
        page = {"": (0, "t1"), "t1": (1, "t 2"), "t 2": (2, None)}[token]
        headers = [("X-Next-Token", page[1])] if page[1] else []
        self.answer(200, [sandbox(page[0] * 2), sandbox(page[0] * 2 + 1)], headers)


@pytest.fixture
def stub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Stub.requests = []
    Stub.mode = "pages"
    yield Cli(clean_env(HUTCH_API_URL=f"http://127.0.0.1:{server.server_port}",
                        HUTCH_API_KEY="stub-key"))
    server.shutdown()
    server.server_close()


def test_list_follows_every_page(stub):
    r = stub.ok("sandbox", "list")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "TEMPLATE", "STARTED", "ENDS", "STATE"]
    assert [line.split()[0] for line in lines[1:]] == [f"sbx{i}" for i in range(6)]
    assert lines[1] == "sbx0  base      2026-01-02T03:04:05Z  2026-01-02T03:09:05Z  running"
    assert [q.get("nextToken") for _, q, _ in Stub.requests] == [None, ["t1"], ["t 2"]]
    assert {k for _, _, k in Stub.requests} == {"stub-key"}
    assert len(stub.json("sandbox", "list")) == 6


def test_metadata_filter_encoding(stub):
    stub.ok("sandbox", "list", "--metadata", "a b=c&d", "--metadata", "k=v=%/",
            "--state", "paused")
    path, query, _ = Stub.requests[0]
    assert path == "/v2/sandboxes"
    assert query["state"] == ["paused"]
    # Decoded as hutchd (and E2B) do: unescape the whole, split, unescape each.
    inner = urllib.parse.unquote(query["metadata"][0])
    pairs = dict(tuple(urllib.parse.unquote(x) for x in p.split("=", 1))
                 for p in inner.split("&"))
    assert pairs == {"a b": "c&d", "k": "v=%/"}


def test_server_errors_are_125(stub):
    Stub.mode = "broken"
    r = stub.run("sandbox", "list")
    assert (r.returncode, r.stdout) == (125, "")
    assert "500" in r.stderr and "the stub broke" in r.stderr
    Stub.mode = "garbage"
    r = stub.run("sandbox", "list")
    assert r.returncode == 125 and "not JSON" in r.stderr
