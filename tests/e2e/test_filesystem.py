"""The sandbox's root filesystem: what of the host it shows, where writes go."""

import os
import uuid

import pytest


@pytest.fixture
def host_markers():
    """Unique files in the host's /root and /tmp, removed afterwards."""
    name = "hutch-e2e-marker-" + uuid.uuid4().hex
    paths = [os.path.join("/root", name), os.path.join("/tmp", name)]
    for p in paths:
        with open(p, "w") as f:
            f.write("host secret\n")
    yield name, paths
    for p in paths:
        os.unlink(p)


def test_host_files_outside_the_template_are_invisible(hutch, host_markers):
    name, paths = host_markers
    # Root inside may look everywhere; "user" cannot enter /root at all, so
    # only /tmp says anything for it.
    for user, path in [("root", paths[0]), ("root", paths[1]), ("user", paths[1])]:
        r = hutch.run("cat", path, opts=["--user", user])
        assert r.returncode == 1, (user, path, r.stdout, r.stderr)
        assert r.stdout == b""
        assert r.stderr == f"cat: {path}: No such file or directory\n".encode()


def test_host_root_home_is_not_listed(hutch, host_markers):
    name, _ = host_markers
    r = hutch.run("ls", "-A", "/root", opts=["--user", "root"])
    assert (r.returncode, r.stderr) == (0, b"")
    assert name.encode() not in r.stdout
    # The sandbox's /root is its own, empty directory.
    assert r.stdout == b""
    r = hutch.run("ls", "-A", "/tmp", opts=["--user", "root"])
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


def test_data_dir_is_invisible(hutch):
    r = hutch.run("ls", "-d", hutch.data_dir)
    assert r.returncode == 2
    assert b"No such file or directory" in r.stderr


def test_host_shadow_is_absent(hutch):
    for user in ("user", "root"):
        r = hutch.run("cat", "/etc/shadow", opts=["--user", user])
        assert (r.returncode, r.stdout) == (1, b"")
        assert r.stderr == b"cat: /etc/shadow: No such file or directory\n"
        r = hutch.sh("test -e /etc/shadow || test -e /etc/gshadow || test -e /etc/sudoers", opts=["--user", user])
        assert r.returncode == 1


def test_generated_passwd_and_group(hutch):
    r = hutch.run("cat", "/etc/passwd")
    assert r.stdout.decode().splitlines() == [
        "root:x:0:0:root:/root:/bin/bash",
        "user:x:1000:1000:user:/home/user:/bin/bash",
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
    ]


def test_host_home_is_not_visible(hutch):
    r = hutch.run("ls", "-A", "/home")
    assert (r.returncode, r.stdout) == (0, b"user\n")


def test_usr_is_the_hosts_read_only(hutch):
    # Same content as the host's /usr...
    with open("/usr/bin/env", "rb") as f:
        host_env = f.read()
    r = hutch.run("cat", "/usr/bin/env")
    assert (r.returncode, r.stdout) == (0, host_env)
    # ...mounted read-only, nosuid, nodev.
    r = hutch.run("findmnt", "-n", "-o", "OPTIONS", "/usr")
    assert r.returncode == 0, r.stderr
    options = r.stdout.decode().strip().split(",")
    assert {"ro", "nosuid", "nodev"} <= set(options), options


@pytest.mark.parametrize("path", ["/usr/bin/hutch-e2e-file", "/usr/lib/hutch-e2e-file", "/bin/hutch-e2e-file"])
def test_usr_is_read_only_even_for_root(hutch, path):
    r = hutch.run("touch", path, opts=["--user", "root"])
    assert r.returncode == 1
    assert r.stderr == f"touch: cannot touch '{path}': Read-only file system\n".encode()
    assert not os.path.exists(path)


def test_writes_land_in_the_sandboxs_own_layer(hutch):
    newfile = "newfile-" + uuid.uuid4().hex[:12]
    assert not os.path.exists(f"/etc/{newfile}")
    script = (
        f"hostname && echo etc > /etc/{newfile} && echo home > /home/user/f && echo tmp > /tmp/f && "
        f"cat /etc/{newfile} /home/user/f /tmp/f"
    )
    r = hutch.sh(script, opts=["--user", "root"])
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    lines = r.stdout.decode().splitlines()
    assert lines[1:] == ["etc", "home", "tmp"]
    # Not on the host, not in the template.
    assert not os.path.exists(f"/etc/{newfile}")
    assert not os.path.exists(os.path.join(hutch.data_dir, "templates", "host", "etc", newfile))
    assert not os.path.exists(os.path.join(hutch.data_dir, "templates", "host", "home", "user", "f"))
    assert not os.path.exists(os.path.join(hutch.data_dir, "templates", "host", "tmp", "f"))
    # Not in the next sandbox.
    r = hutch.sh(f"ls -A /etc/{newfile} /home/user/f /tmp/f", opts=["--user", "root"])
    assert r.returncode == 2
    assert r.stdout == b""
    for p in (f"/etc/{newfile}", "/home/user/f", "/tmp/f"):
        assert f"cannot access '{p}': No such file or directory".encode() in r.stderr


@pytest.mark.parametrize("directory", ["/etc", "/var/lib", "/opt", "/home", "/root", "/tmp"])
def test_root_can_write_the_sandboxs_own_directories(hutch, directory):
    # Root inside may do anything to its sandbox: every directory outside
    # the read-only /usr is its to write (in its own layer).
    r = hutch.sh(f"mkdir {directory}/d && echo data > {directory}/d/f && cat {directory}/d/f", opts=["--user", "root"])
    assert (r.returncode, r.stdout, r.stderr) == (0, b"data\n", b"")


def test_user_writes_land_in_the_sandboxs_own_layer(hutch):
    r = hutch.sh("echo home > /home/user/f && echo tmp > /tmp/f && echo vt > /var/tmp/f && cat /home/user/f /tmp/f /var/tmp/f")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"home\ntmp\nvt\n", b"")
    r = hutch.sh("cat /home/user/f /tmp/f /var/tmp/f")
    assert r.returncode == 1
    assert r.stdout == b""
    assert not os.path.exists(os.path.join(hutch.data_dir, "templates", "host", "tmp", "f"))


def test_concurrent_sandboxes_do_not_see_each_others_files(hutch):
    a = hutch.spawn("sh", "-c", "echo secret-a > /tmp/a && echo ready && read x && ls -A /tmp")
    b = hutch.spawn("sh", "-c", "echo secret-b > /tmp/b && echo ready && read x && ls -A /tmp")
    assert a.readline() == "ready"
    assert b.readline() == "ready"
    a.send("go\n")
    b.send("go\n")
    assert a.readline() == "a"
    assert b.readline() == "b"
    assert a.wait() == 0
    assert b.wait() == 0
    assert (a.stdout_rest, b.stdout_rest) == (b"", b"")


def test_user_cannot_write_system_directories(hutch):
    r = hutch.run("touch", "/etc/hutch-e2e")
    assert r.returncode == 1
    assert r.stderr == b"touch: cannot touch '/etc/hutch-e2e': Permission denied\n"
    r = hutch.run("ls", "-A", "/root")
    assert r.returncode == 2
    assert b"Permission denied" in r.stderr


def test_minimal_dev(hutch):
    r = hutch.run("ls", "-A", "/dev")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.decode().split()) == sorted(
        ["fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"]
    )
    r = hutch.sh("echo x > /dev/null && head -c 4 /dev/zero | od -An -tx1 && head -c 16 /dev/urandom | wc -c")
    assert (r.returncode, r.stdout.split()) == (0, [b"00", b"00", b"00", b"00", b"16"])


def test_kernel_paths_are_masked_or_read_only(hutch):
    r = hutch.run("cat", "/proc/keys", opts=["--user", "root"])
    assert (r.returncode, r.stdout) == (0, b"")
    r = hutch.sh("echo Linux > /proc/sys/kernel/ostype", opts=["--user", "root"])
    assert r.returncode == 2
    assert b"Read-only file system" in r.stderr
    r = hutch.sh("echo x > /sys/kernel/uevent_helper", opts=["--user", "root"])
    assert r.returncode == 2
    assert b"Read-only file system" in r.stderr
