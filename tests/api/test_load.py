"""Concurrency and slow clients: nobody blocks anybody."""
import http.client
import os
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

# How long a slow client may hold a connection before hutchd must answer 408
# or close it. Generous by default; the spec gives no number.
SLOW_DEADLINE = float(os.environ.get("HUTCH_SLOW_CLIENT_DEADLINE", "120"))
# A normal request made while slow or idle clients hold connections.
NORMAL_REQUEST_BUDGET = 5.0


def _list(hutchd, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", hutchd.port, timeout=60)
    try:
        conn.request("GET", "/v2/sandboxes", headers={"X-API-Key": hutchd.api_key})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        if own:
            conn.close()


def test_1000_concurrent_requests_all_200(hutchd, sandbox):
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: _list(hutchd), range(1000)))
    statuses = [s for s, _ in results]
    bad = [s for s in statuses if s != 200]
    assert not bad, f"{len(bad)} of 1000 not 200: {sorted(set(bad))}"
    assert all(sandbox["id"].encode() in body for _, body in results)


def test_1000_requests_over_50_keepalive_connections(hutchd):
    def worker(_):
        conn = http.client.HTTPConnection("127.0.0.1", hutchd.port, timeout=60)
        try:
            return [_list(hutchd, conn)[0] for _ in range(20)]
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = [s for batch in pool.map(worker, range(50)) for s in batch]
    assert len(statuses) == 1000
    assert statuses == [200] * 1000, sorted(set(statuses))


def _timed_normal_request(hutchd):
    t0 = time.monotonic()
    status, _ = _list(hutchd)
    return status, time.monotonic() - t0


class SlowClient(threading.Thread):
    """Sends `prefix`, then one byte a second forever, until hutchd answers
    (recorded in .answer) or closes the connection (.closed)."""

    def __init__(self, port, prefix, filler=b"a"):
        super().__init__(daemon=True)
        self.port = port
        self.prefix = prefix
        self.filler = filler
        self.answer = b""
        self.closed = False
        self.stop = threading.Event()
        self.started_sending = threading.Event()
        self.elapsed = None

    def run(self):
        t0 = time.monotonic()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            s.sendall(self.prefix[:1])
            self.started_sending.set()
            data = self.prefix[1:]
            i = 0
            while not self.stop.is_set() and time.monotonic() - t0 < SLOW_DEADLINE + 5:
                byte = data[i:i + 1] if i < len(data) else self.filler
                i += 1
                try:
                    s.sendall(byte)
                except OSError:
                    self.closed = True
                    break
                r, _, _ = select.select([s], [], [], 1.0)
                if r:
                    try:
                        chunk = s.recv(65536)
                    except OSError:
                        self.closed = True
                        break
                    if not chunk:
                        self.closed = True
                        break
                    self.answer += chunk
                    # Read whatever follows the answer, then stop.
                    s.settimeout(2)
                    try:
                        while True:
                            more = s.recv(65536)
                            if not more:
                                self.closed = True
                                break
                            self.answer += more
                    except OSError:
                        pass
                    break
        finally:
            self.elapsed = time.monotonic() - t0
            s.close()


def test_slow_clients_do_not_block_others_and_are_cut_off(hutchd):
    # One trickles an endless header; one trickles a body it announced.
    header_slow = SlowClient(hutchd.port, b"GET /v2/sandboxes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    body_slow = SlowClient(hutchd.port, (
        "POST /v2/sandboxes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " + hutchd.api_key +
        "\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"templateID\":\"base\","
    ).encode(), filler=b" ")  # JSON whitespace: no early parse error to answer
    slow = [header_slow, body_slow]
    for c in slow:
        c.start()
    for c in slow:
        assert c.started_sending.wait(10)
    time.sleep(3)  # let them trickle a few bytes: the point is "while it trickles"
    for _ in range(3):
        status, took = _timed_normal_request(hutchd)
        assert status == 200
        assert took < NORMAL_REQUEST_BUDGET, f"a normal request took {took:.1f} s while slow clients trickled"
    for c in slow:
        c.join(SLOW_DEADLINE + 15)
        c.stop.set()
    for c, name in ((header_slow, "header"), (body_slow, "body")):
        assert c.answer or c.closed, f"slow {name} client was still connected after {c.elapsed:.0f} s"
        if c.answer:
            status_line = c.answer.split(b"\r\n", 1)[0]
            assert status_line.split(b" ")[1:2] == [b"408"], \
                f"slow {name} client got {status_line!r}, expected 408 or a close"


def test_many_idle_connections_do_not_block_others(hutchd):
    idle = []
    try:
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", hutchd.port), timeout=10)
            if i % 2:
                s.sendall(b"GET /v2/sandboxes HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half a request
            idle.append(s)
        for _ in range(3):
            status, took = _timed_normal_request(hutchd)
            assert status == 200
            assert took < NORMAL_REQUEST_BUDGET, f"a normal request took {took:.1f} s with 100 idle connections"
    finally:
        for s in idle:
            s.close()
