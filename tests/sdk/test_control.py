"""Sandbox lifecycle against hutchd's control plane: create, connect, list,
kill, timeouts, info, metrics, and what a killed sandbox looks like."""
import datetime as dt
import http.client
import time

import pytest

from hutch import (NotFoundException, Sandbox, SandboxException, SandboxInfo, SandboxNotFoundException,
                   SandboxQuery, SandboxState)
from conftest import wait_until


def _ids(paginator):
    return [s.sandbox_id for s in paginator]


def test_issue_example(server):
    """The example of the issue, as written."""
    with Sandbox() as sandbox:
        sandbox.run_code("x = 1")
        execution = sandbox.run_code("x += 1; x")
        assert execution.text == "2"


def test_context_manager_kills(server, tag):
    with Sandbox(metadata={"test": tag}) as sbx:
        sid = sbx.sandbox_id
        assert sbx.is_running()
        info = sbx.get_info()
        assert isinstance(info, SandboxInfo)
        assert info.sandbox_id == sid and info.state == SandboxState.RUNNING
        assert info.template_id == "code-interpreter-v1"
        assert info.metadata == {"test": tag}
        assert info.envd_version
        assert info.started_at <= dt.datetime.now(dt.timezone.utc) < info.end_at
    assert not sbx.is_running()
    with pytest.raises(NotFoundException):
        Sandbox.get_info(sid)
    assert _ids(Sandbox.list(metadata={"test": tag})) == []


def test_create_options(server, tag):
    sbx = Sandbox.create(template="base", timeout=120, metadata={"test": tag, "k": "v w"},
                         envs={"HUTCH_SDK_TEST": "yes"})
    try:
        info = sbx.get_info()
        assert info.template_id == "base"
        assert info.metadata == {"test": tag, "k": "v w"}
        left = (info.end_at - dt.datetime.now(dt.timezone.utc)).total_seconds()
        assert 100 < left <= 121, left
        assert sbx.commands.run("echo $HUTCH_SDK_TEST").stdout == "yes\n"
    finally:
        assert sbx.kill() is True


def test_create_not_secure(server):
    with Sandbox.create(secure=False) as sbx:
        assert sbx.is_running()
        assert sbx.commands.run("echo open").stdout == "open\n"
        assert sbx.files.write("/tmp/o", "o").path == "/tmp/o"


def test_unknown_template(server):
    with pytest.raises(SandboxException, match="400"):
        Sandbox.create(template="no-such-template-here")


def test_connect(sandbox):
    other = Sandbox.connect(sandbox.sandbox_id)
    assert other.sandbox_id == sandbox.sandbox_id
    assert other.is_running()
    assert other.get_info().sandbox_id == sandbox.sandbox_id
    sandbox.set_timeout(30)
    other = Sandbox.connect(sandbox.sandbox_id, timeout=500)
    left = (other.get_info().end_at - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert left > 400, left
    assert sandbox.connect() is sandbox


def test_connect_unknown(server):
    with pytest.raises(NotFoundException):
        Sandbox.connect("nosuchsandbox0000000")


def test_list_filters(server, tag):
    a = Sandbox.create(metadata={"test": tag, "role": "a"})
    b = Sandbox.create(metadata={"test": tag, "role": "b & c=d"})
    try:
        assert sorted(_ids(Sandbox.list(metadata={"test": tag}))) == sorted([a.sandbox_id, b.sandbox_id])
        assert _ids(Sandbox.list(query=SandboxQuery(metadata={"test": tag, "role": "b & c=d"}))) == [b.sandbox_id]
        assert _ids(Sandbox.list(metadata={"test": tag, "role": "nobody"})) == []
        running = Sandbox.list(query=SandboxQuery(metadata={"test": tag}, state=[SandboxState.RUNNING]))
        assert len(_ids(running)) == 2
        assert b.pause() is True
        assert b.pause() is False  # already paused
        assert _ids(Sandbox.list(metadata={"test": tag}, state=["paused"])) == [b.sandbox_id]
        assert _ids(Sandbox.list(metadata={"test": tag}, state="running")) == [a.sandbox_id]
        info = {s.sandbox_id: s for s in Sandbox.list(metadata={"test": tag})}
        assert info[b.sandbox_id].state == SandboxState.PAUSED
        Sandbox.connect(b.sandbox_id)  # resumes
        assert Sandbox.get_info(b.sandbox_id).state == SandboxState.RUNNING
    finally:
        a.kill()
        b.kill()


def test_list_pages(server, tag):
    made = [Sandbox.create(metadata={"test": tag}) for _ in range(5)]
    try:
        pages = Sandbox.list(metadata={"test": tag}, limit=2)
        seen = []
        sizes = []
        while pages.has_next:
            items = pages.next_items()
            sizes.append(len(items))
            seen += [s.sandbox_id for s in items]
        assert sizes == [2, 2, 1]
        assert sorted(seen) == sorted(s.sandbox_id for s in made)
        with pytest.raises(SandboxException):
            pages.next_items()
        # Iterating a paginator walks every page.
        assert sorted(_ids(Sandbox.list(metadata={"test": tag}, limit=2))) == sorted(seen)
        # A page can be resumed from its token.
        first = Sandbox.list(metadata={"test": tag}, limit=3)
        first.next_items()
        rest = Sandbox.list(metadata={"test": tag}, limit=3, next_token=first.next_token).next_items()
        assert len(rest) == 2
    finally:
        for s in made:
            s.kill()


def test_kill_forms(server):
    a, b, c = Sandbox.create(), Sandbox.create(), Sandbox.create()
    assert a.kill() is True
    assert a.kill() is False
    assert Sandbox.kill(b.sandbox_id) is True
    assert Sandbox.kill(b.sandbox_id) is False
    assert c.close() is True
    for s in (a, b, c):
        assert not s.is_running()


def test_set_timeout_expires(sandbox):
    sandbox.set_timeout(2)
    left = (sandbox.get_info().end_at - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 0 < left <= 2.5
    wait_until(lambda: not sandbox.is_running(), timeout=15, what="the sandbox to expire")
    with pytest.raises(SandboxNotFoundException):
        sandbox.get_info()
    with pytest.raises(NotFoundException):
        sandbox.set_timeout(60)
    assert sandbox.kill() is False


def test_set_timeout_class_form(sandbox):
    Sandbox.set_timeout(sandbox.sandbox_id, 1000)
    left = (Sandbox.get_info(sandbox.sandbox_id).end_at - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 990 < left <= 1001


def test_metrics(sandbox):
    metrics = sandbox.get_metrics()
    assert metrics, "no metrics"
    m = metrics[-1]
    assert m.cpu_count >= 1 and m.mem_total > 0 and m.disk_total > 0
    assert m.mem_used >= 0 and m.cpu_used_pct >= 0
    assert isinstance(m.timestamp, dt.datetime)
    assert Sandbox.get_metrics(sandbox.sandbox_id)


def test_get_host_routes_to_the_sandbox(sandbox, server):
    host = sandbox.get_host(8123)
    assert host == f"8123-{sandbox.sandbox_id}.localhost:{server.port}"
    sandbox.files.write("/tmp/www/index.html", "hello from the sandbox")
    sandbox.commands.run("cd /tmp/www && exec python3 -m http.server 8123 --bind 127.0.0.1",
                         background=True, timeout=0)

    def fetch():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            conn.request("GET", "/index.html", headers={"Host": host})
            r = conn.getresponse()
            return r.status == 200 and r.read() == b"hello from the sandbox"
        finally:
            conn.close()

    wait_until(fetch, timeout=15, what=f"the sandbox's web server through Host: {host}")


def test_get_host_with_domain(server, monkeypatch):
    monkeypatch.setenv("HUTCH_DOMAIN", "sbx.example.test")
    with Sandbox.create() as sbx:
        assert sbx.get_host(3000) == f"3000-{sbx.sandbox_id}.sbx.example.test"


def test_killed_sandbox(sandbox):
    sid = sandbox.sandbox_id
    assert Sandbox.kill(sid)
    assert sandbox.is_running() is False
    with pytest.raises(SandboxNotFoundException):
        sandbox.get_info()
    with pytest.raises(NotFoundException):
        sandbox.get_metrics()
    with pytest.raises(SandboxNotFoundException):
        sandbox.commands.run("true")
    with pytest.raises(NotFoundException):
        sandbox.files.read("/etc/hostname")
    with pytest.raises(SandboxNotFoundException):
        sandbox.run_code("1")
    with pytest.raises(NotFoundException):
        Sandbox.connect(sid)


def test_sandbox_url_down(sandbox):
    from hutchd import free_port
    url = f"http://127.0.0.1:{free_port()}"
    other = Sandbox.connect(sandbox.sandbox_id, sandbox_url=url)
    with pytest.raises(SandboxException) as e:
        other.commands.run("true")
    assert url in str(e.value) and "HUTCH_SANDBOX_URL" in str(e.value)
    with pytest.raises(SandboxException, match=url):
        other.run_code("1")


def test_request_timeout(sandbox):
    t0 = time.monotonic()
    info = sandbox.get_info(request_timeout=5)
    assert info.sandbox_id == sandbox.sandbox_id and time.monotonic() - t0 < 5


def test_rate_limit(server, tmp_path, monkeypatch):
    """A hutchd allowed one sandbox answers 429 to the second create."""
    import json
    from hutch import RateLimitException
    from conftest import HUTCHD
    from hutchd import Hutchd
    config = tmp_path / "hutchd.json"
    config.write_text(json.dumps({"maxSandboxes": 1}))
    small = Hutchd(HUTCHD, "hutchd-sdk", ["--config", str(config)]).start()
    try:
        monkeypatch.setenv("HUTCH_API_URL", small.url)
        monkeypatch.setenv("HUTCH_API_KEY", small.api_key)
        with Sandbox.create() as first:
            with pytest.raises(RateLimitException, match="429"):
                Sandbox.create()
            assert first.is_running()
    finally:
        small.stop()
