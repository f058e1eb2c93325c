"""System calls, capabilities, no_new_privs: what even root inside may not do."""

import errno
import signal

import pytest

# Every call `probe syscalls` tries, in its order, with the errno it must
# fail with (0: the call must succeed).
DENIED = [
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "userfaultfd",
    "perf_event_open",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "mount",
    "umount2",
    "fsopen",
    "open_tree",
    "move_mount",
    "fsmount",
    "fspick",
    "mount_setattr",
    "pivot_root",
    "chroot",
    "unshare",
    "unshare_ns",
    "setns",
    "clone_newns",
    "clone3",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "open_by_handle_at",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "syslog",
    "settimeofday",
    "clock_settime",
    "socket_packet",
    "socket_vsock",
    "socket_alg",
    "socket_raw",
    "socket_raw6",
    "ioctl_tiocsti",
    "ioctl_tiocsti_high",
    "ioctl_tioclinux",
]
ALLOWED = ["socket_tcp", "socket_udp6", "socket_unix"]

EXPECTED_SYSCALLS = [(name, errno.ENOSYS if name == "clone3" else errno.EPERM) for name in DENIED] + [
    (name, 0) for name in ALLOWED
]


@pytest.mark.parametrize("user", ["user", "root"])
def test_denied_syscalls_fail_with_their_errno(hutch, user):
    r = hutch.probe("syscalls", opts=["--user", user])
    assert (r.returncode, r.stderr) == (0, b"")
    got = [(name, int(e)) for name, e in (line.split() for line in r.stdout.decode().splitlines())]
    # Compare call by call so a failure names the call.
    assert dict(got) == dict(EXPECTED_SYSCALLS)
    assert got == EXPECTED_SYSCALLS


@pytest.mark.parametrize("what", ["int80", "x32"])
@pytest.mark.parametrize("user", ["user", "root"])
def test_other_abis_are_killed_by_sigsys(hutch, what, user):
    r = hutch.probe(what, opts=["--user", user])
    assert r.returncode == 128 + signal.SIGSYS
    assert r.stdout == b""  # never "survived ..."


def test_sigsys_kills_only_the_offender(hutch):
    # The shell that ran the probe goes on and reports the signal.
    r = hutch.probe("int80", after='echo "probe status $?"')
    assert (r.returncode, r.stdout) == (0, f"probe status {128 + signal.SIGSYS}\n".encode())


@pytest.mark.parametrize("user", ["user", "root"])
def test_mount_command_fails(hutch, user):
    r = hutch.run("mount", "-t", "tmpfs", "none", "/mnt", opts=["--user", user])
    assert r.returncode == 32, r.stderr  # mount(8): mount failure
    assert r.stdout == b""
    r = hutch.sh("mount -t tmpfs none /tmp; ls -A /tmp; grep -c ' /tmp ' /proc/self/mountinfo", opts=["--user", user])
    assert r.stdout == b"0\n"


@pytest.mark.parametrize("user", ["user", "root"])
def test_umount_command_fails(hutch, user):
    r = hutch.run("umount", "/proc", opts=["--user", user])
    assert r.returncode == 32, r.stderr
    r = hutch.run("cat", "/proc/self/comm", opts=["--user", user])
    assert (r.returncode, r.stdout) == (0, b"cat\n")


@pytest.mark.parametrize("user", ["user", "root"])
@pytest.mark.parametrize("flags", [["-U"], ["-m"], ["-n"], ["-p", "-f"], ["-r"]], ids=lambda f: " ".join(f))
def test_unshare_command_fails(hutch, user, flags):
    r = hutch.run("unshare", *flags, "true", opts=["--user", user])
    assert r.returncode == 1
    assert r.stdout == b""
    assert b"unshare failed: Operation not permitted" in r.stderr


def test_chroot_command_fails_for_root(hutch):
    r = hutch.run("chroot", "/", "true", opts=["--user", "root"])
    assert r.returncode == 125  # chroot(8): the chroot itself failed
    assert b"Operation not permitted" in r.stderr


# --- capabilities, no_new_privs, seccomp in every thread ---------------------

CAP = {
    "CHOWN": 0,
    "DAC_OVERRIDE": 1,
    "FOWNER": 3,
    "FSETID": 4,
    "KILL": 5,
    "SETGID": 6,
    "SETUID": 7,
    "SETPCAP": 8,
    "NET_BIND_SERVICE": 10,
    "NET_RAW": 13,
    "SYS_MODULE": 16,
    "SYS_CHROOT": 18,
    "SYS_PTRACE": 19,
    "SYS_ADMIN": 21,
    "MKNOD": 27,
    "AUDIT_WRITE": 29,
    "SETFCAP": 31,
}
FORBIDDEN = ["SYS_ADMIN", "NET_RAW", "SYS_PTRACE", "SYS_MODULE"]
# docs/security.md: root keeps Docker's default set minus CAP_NET_RAW.
ROOT_CAPS = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "KILL",
    "AUDIT_WRITE",
    "SYS_CHROOT",
]

# Starts threads, then prints each task's status fields while all of them
# are alive.
THREADS_PY = r"""
import glob, threading
gate = threading.Event()
threads = [threading.Thread(target=gate.wait) for _ in range(4)]
for t in threads:
    t.start()
keys = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
for path in sorted(glob.glob("/proc/self/task/*/status")):
    fields = dict(line.split(":", 1) for line in open(path).read().splitlines())
    print(" ".join(fields[k].strip() for k in keys))
gate.set()
for t in threads:
    t.join()
"""


def thread_status(hutch, user):
    r = hutch.run("python3", "-c", THREADS_PY, opts=["--user", user])
    assert (r.returncode, r.stderr) == (0, b"")
    rows = [line.split() for line in r.stdout.decode().splitlines()]
    assert len(rows) == 5  # the main thread and four more
    keys = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
    return [dict(zip(keys, row)) for row in rows]


def mask(names):
    return sum(1 << CAP[n] for n in names)


def test_user_has_no_capabilities_in_any_thread(hutch):
    for st in thread_status(hutch, "user"):
        for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            assert int(st[k], 16) == 0, st
        for name in FORBIDDEN:
            assert not int(st["CapBnd"], 16) & (1 << CAP[name]), (name, st)
        assert (st["NoNewPrivs"], st["Seccomp"]) == ("1", "2"), st


def test_root_capabilities_in_every_thread(hutch):
    for st in thread_status(hutch, "root"):
        eff = int(st["CapEff"], 16)
        assert int(st["CapBnd"], 16) == eff, st
        assert int(st["CapPrm"], 16) == eff, st
        assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0, st
        for name in FORBIDDEN:
            assert not eff & (1 << CAP[name]), (name, st)
        assert eff == mask(ROOT_CAPS), st
        assert (st["NoNewPrivs"], st["Seccomp"]) == ("1", "2"), st


@pytest.mark.parametrize("user", ["user", "root"])
def test_no_new_privs_and_seccomp_in_grandchildren(hutch, user):
    r = hutch.sh("sh -c 'grep -E \"^(NoNewPrivs|Seccomp):\" /proc/self/status' &\nwait", opts=["--user", user])
    assert (r.returncode, r.stdout.split()) == (0, [b"NoNewPrivs:", b"1", b"Seccomp:", b"2"])


def test_setuid_binaries_do_not_raise_privileges(hutch):
    # /usr is nosuid and every process has no_new_privs: the setuid-root su
    # runs as the caller, and cannot run anything as root.
    r = hutch.run("su", "-c", "id -u", "root", input=b"\n")
    assert (r.returncode, r.stdout) == (1, b"")


def test_user_cannot_become_root(hutch):
    script = "import os\ntry:\n    os.setuid(0)\nexcept PermissionError as e:\n    print(e.errno)\n"
    r = hutch.run("python3", "-c", script)
    assert (r.returncode, r.stdout) == (0, b"1\n")
