"""Network: loopback only, and a loopback of the sandbox's own."""

import errno
import socket
import uuid

import pytest


@pytest.mark.parametrize("user", ["user", "root"])
def test_only_loopback(hutch, user):
    r = hutch.probe("net", opts=["--user", user])
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout.decode().splitlines() == ["interface lo", f"connect_outside {errno.ENETUNREACH}", "loopback ping"]


CONNECT_PY = """
import socket, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
kind = socket.SOCK_DGRAM if sys.argv[3] == 'udp' else socket.SOCK_STREAM
s = socket.socket(family, kind)
s.settimeout(10)
if kind == socket.SOCK_DGRAM:
    try:
        s.sendto(b'x', (sys.argv[1], int(sys.argv[2])))
        print(0)
    except OSError as e:
        print(e.errno)
else:
    print(s.connect_ex((sys.argv[1], int(sys.argv[2]))))
"""


@pytest.mark.parametrize(
    "addr,port,proto",
    [("1.1.1.1", 53, "udp"), ("8.8.8.8", 443, "tcp"), ("2001:4860:4860::8888", 443, "tcp")],
)
def test_outside_is_unreachable(hutch, addr, port, proto):
    r = hutch.run("python3", "-c", CONNECT_PY, addr, str(port), proto)
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout == f"{errno.ENETUNREACH}\n".encode()


@pytest.fixture
def host_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def test_host_loopback_services_are_unreachable(hutch, host_listener):
    port = host_listener
    r = hutch.run("python3", "-c", CONNECT_PY, "127.0.0.1", str(port), "tcp")
    assert (r.returncode, r.stdout) == (0, f"{errno.ECONNREFUSED}\n".encode())


def test_sandbox_has_its_own_port_space(hutch, host_listener):
    # The port the host listens on is free inside.
    port = host_listener
    script = f"import socket\ns = socket.socket()\ns.bind(('127.0.0.1', {port}))\ns.listen(1)\nprint('bound')\n"
    r = hutch.run("python3", "-c", script)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"bound\n", b"")


def test_host_abstract_unix_sockets_are_unreachable(hutch):
    name = "hutch-e2e-" + uuid.uuid4().hex
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0" + name)
    s.listen(1)
    try:
        script = (
            "import socket, sys\n"
            "c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "print(c.connect_ex('\\0' + sys.argv[1]))\n"
        )
        r = hutch.run("python3", "-c", script, name)
    finally:
        s.close()
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{errno.ECONNREFUSED}\n".encode(), b"")


def test_sandboxes_cannot_reach_each_other(hutch):
    server = hutch.spawn(
        "python3",
        "-c",
        "import socket, sys\n"
        "s = socket.socket()\n"
        "s.bind(('127.0.0.1', 0))\n"
        "s.listen(1)\n"
        "print(s.getsockname()[1], flush=True)\n"
        "sys.stdin.readline()\n",
    )
    port = server.readline()
    assert port.isdigit()
    r = hutch.run("python3", "-c", CONNECT_PY, "127.0.0.1", port, "tcp")
    assert (r.returncode, r.stdout) == (0, f"{errno.ECONNREFUSED}\n".encode())
    server.send("done\n")
    assert server.wait() == 0


def test_own_hostname_resolves_to_loopback(hutch):
    r = hutch.sh('getent hosts "$(hostname)"; getent hosts localhost')
    assert r.returncode == 0, r.stderr
    lines = [line.split() for line in r.stdout.decode().splitlines()]
    assert lines[0][0] == "127.0.1.1"
    assert lines[1][0] in ("::1", "127.0.0.1")
