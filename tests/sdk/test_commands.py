"""sandbox.commands against the sandbox's envd (process.Process)."""
import threading
import time

import pytest

from hutch import (CommandExitException, CommandHandle, CommandResult, Sandbox, SandboxException,
                   TimeoutException)
from conftest import wait_until


def test_run(sandbox):
    r = sandbox.commands.run("echo out; echo err >&2; id -un; pwd")
    assert isinstance(r, CommandResult)
    assert r.exit_code == 0 and r.error is None
    assert r.stdout == "out\nuser\n/home/user\n"
    assert r.stderr == "err\n"


def test_user_cwd_envs(sandbox):
    assert sandbox.commands.run("id -u", user="root").stdout == "0\n"
    assert sandbox.commands.run("id -un", user="user").stdout == "user\n"
    assert sandbox.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n"
    r = sandbox.commands.run('echo "$A-$B"', envs={"A": "1", "B": "two words"})
    assert r.stdout == "1-two words\n"


def test_bad_cwd(sandbox):
    with pytest.raises(SandboxException):
        sandbox.commands.run("true", cwd="/no/such/dir")


def test_exit_code(sandbox):
    with pytest.raises(CommandExitException) as e:
        sandbox.commands.run("echo partial; echo bad >&2; exit 3")
    assert e.value.exit_code == 3
    assert e.value.stdout == "partial\n" and e.value.stderr == "bad\n"
    assert e.value.error and "3" in e.value.error
    assert isinstance(e.value, CommandResult)
    assert "exited with code 3" in str(e.value)


def test_output_arrives_as_it_is_written(sandbox):
    seen = []
    t0 = time.monotonic()
    r = sandbox.commands.run("echo first; sleep 1.5; echo second >&2",
                             on_stdout=lambda s: seen.append(("out", s, time.monotonic() - t0)),
                             on_stderr=lambda s: seen.append(("err", s, time.monotonic() - t0)))
    total = time.monotonic() - t0
    assert [(k, s) for k, s, _ in seen] == [("out", "first\n"), ("err", "second\n")]
    assert total - seen[0][2] > 1.0, f"stdout came at {seen[0][2]:.2f} s of {total:.2f} s"
    assert r.stdout == "first\n"


def test_utf8_split_across_chunks(sandbox):
    text = "héllo wörld ✓ " * 3000
    sandbox.files.write("/tmp/u.txt", text)
    r = sandbox.commands.run("cat /tmp/u.txt | dd bs=7 status=none")
    assert r.stdout == text


def test_large_output(sandbox):
    r = sandbox.commands.run("head -c 3000000 /dev/zero | tr '\\0' a")
    assert r.stdout == "a" * 3000000


def test_background_wait_and_list(sandbox):
    h = sandbox.commands.run("sleep 1; echo done", background=True)
    assert isinstance(h, CommandHandle) and h.pid > 0
    pids = [p.pid for p in sandbox.commands.list()]
    assert h.pid in pids
    proc = [p for p in sandbox.commands.list() if p.pid == h.pid][0]
    assert proc.cmd == "/bin/bash" and proc.args[-1] == "sleep 1; echo done"
    r = h.wait()
    assert r.stdout == "done\n" and r.exit_code == 0
    assert h.exit_code == 0 and h.stdout == "done\n"
    wait_until(lambda: h.pid not in [p.pid for p in sandbox.commands.list()], what="the process to go")


def test_background_callbacks(sandbox):
    got = []
    done = threading.Event()

    def on_stdout(s):
        got.append(s)
        if "3" in s:
            done.set()

    h = sandbox.commands.run("for i in 1 2 3; do echo $i; sleep 0.2; done", background=True,
                             on_stdout=on_stdout)
    assert done.wait(10), got
    assert h.wait().stdout == "1\n2\n3\n"
    assert "".join(got) == "1\n2\n3\n"


def test_iterate_handle(sandbox):
    h = sandbox.commands.run("echo a; echo b >&2", background=True)
    events = list(h)
    assert ("a\n", None, None) in events and (None, "b\n", None) in events
    assert h.wait().exit_code == 0


def test_kill(sandbox):
    h = sandbox.commands.run("sleep 60", background=True)
    assert h.kill() is True
    with pytest.raises(CommandExitException) as e:
        h.wait()
    assert e.value.exit_code != 0
    assert h.kill() is False or h.pid not in [p.pid for p in sandbox.commands.list()]
    assert sandbox.commands.kill(999999) is False


def test_stdin(sandbox):
    h = sandbox.commands.run("cat", background=True, stdin=True)
    h.send_stdin("hello ")
    sandbox.commands.send_stdin(h.pid, b"world\n")
    h.close_stdin()
    assert h.wait().stdout == "hello world\n"


def test_stdin_data(sandbox):
    assert sandbox.commands.run("wc -c", stdin=b"\x00\x01\x02abc").stdout.strip() == "6"
    assert sandbox.commands.run("tr a-z A-Z", stdin="shout").stdout == "SHOUT"
    # Without stdin the command reads EOF at once instead of hanging.
    assert sandbox.commands.run("cat", timeout=10).stdout == ""


def test_connect(sandbox):
    h = sandbox.commands.run("sleep 0.5; for i in 1 2 3; do echo line$i; sleep 0.3; done",
                             background=True)
    other = Sandbox.connect(sandbox.sandbox_id)
    attached = other.commands.connect(h.pid)
    assert attached.pid == h.pid
    r = attached.wait()
    assert r.exit_code == 0 and "line3\n" in r.stdout
    assert h.wait().stdout == "line1\nline2\nline3\n"
    with pytest.raises(SandboxException):
        other.commands.connect(999999)


def test_timeout(sandbox):
    t0 = time.monotonic()
    with pytest.raises(TimeoutException):
        sandbox.commands.run("sleep 30; echo never", timeout=1)
    assert time.monotonic() - t0 < 8
    wait_until(lambda: not [p for p in sandbox.commands.list() if "sleep 30" in " ".join(p.args)],
               what="the timed-out command to be killed")


def test_background_timeout_kills_the_process(sandbox):
    h = sandbox.commands.run("sleep 30", background=True, timeout=1)
    with pytest.raises(TimeoutException):
        h.wait()
    wait_until(lambda: h.pid not in [p.pid for p in sandbox.commands.list()],
               what="the process to be killed at its timeout")


def test_no_timeout(sandbox):
    h = sandbox.commands.run("sleep 2; echo ok", background=True, timeout=0)
    assert h.wait().stdout == "ok\n"


def test_disconnect_keeps_running(sandbox):
    h = sandbox.commands.run("sleep 1; echo kept > /tmp/kept", background=True)
    h.disconnect()
    wait_until(lambda: sandbox.files.exists("/tmp/kept"), what="the disconnected command to finish")


def test_concurrent_use(sandbox):
    """One Sandbox object used from several threads at once (shared keep-alive pool)."""
    from concurrent.futures import ThreadPoolExecutor

    def work(i):
        sandbox.files.write(f"/tmp/conc/{i}", str(i))
        return sandbox.commands.run(f"cat /tmp/conc/{i}; sleep 0.2").stdout

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(work, range(16))) == [str(i) for i in range(16)]


def test_wrong_access_token(sandbox):
    from hutch import AuthenticationException
    other = Sandbox.connect(sandbox.sandbox_id)
    other._envd.token = "not-the-token"
    with pytest.raises(AuthenticationException):
        other.commands.run("true")
    with pytest.raises(AuthenticationException):
        other.files.list("/tmp")
    assert sandbox.commands.run("true").exit_code == 0
