"""`hutch run` as a command: exit codes, stdio, options, identity, env."""

import os
import re
import subprocess

import pytest

from conftest import HUTCH, SANDBOX_ID_RE, TIMEOUT, hutch_env


# --- exit status ------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 7, 122])
def test_exit_code_passes_through(hutch, code):
    r = hutch.sh(f"exit {code}")
    assert (r.returncode, r.stdout, r.stderr) == (code, b"", b"")


def test_killed_by_signal_is_128_plus_signal(hutch):
    r = hutch.sh("kill -TERM $$")
    assert (r.returncode, r.stdout, r.stderr) == (143, b"", b"")


def test_killed_by_sigkill_is_137(hutch):
    r = hutch.sh("kill -KILL $$")
    assert (r.returncode, r.stdout, r.stderr) == (137, b"", b"")


def test_missing_command_is_127_with_message(hutch):
    r = hutch.run("/nonexistent/command-that-does-not-exist")
    assert r.returncode == 127
    assert r.stdout == b""
    assert b"/nonexistent/command-that-does-not-exist" in r.stderr
    assert b"No such file or directory" in r.stderr


def test_missing_command_in_path_is_127(hutch):
    r = hutch.run("no-such-command-hutch-e2e")
    assert r.returncode == 127
    assert b"no-such-command-hutch-e2e" in r.stderr


def test_not_executable_is_126(hutch):
    # /etc/passwd exists in every sandbox and is not executable.
    r = hutch.run("/etc/passwd")
    assert r.returncode == 126
    assert r.stdout == b""
    assert b"/etc/passwd" in r.stderr
    assert b"Permission denied" in r.stderr


def test_timeout_is_124_with_message(hutch):
    r = hutch.run("sleep", "30", opts=["--timeout", "1"])
    assert r.returncode == 124
    assert r.stdout == b""
    assert re.search(rb"sandbox [a-z0-9]{20} timed out after 1 s", r.stderr), r.stderr


def test_timeout_not_reached_keeps_the_exit_code(hutch):
    r = hutch.sh("exit 5", opts=["--timeout", "30"])
    assert (r.returncode, r.stderr) == (5, b"")


# --- stdio ------------------------------------------------------------------


def test_stdin_passes_through(hutch):
    data = bytes(range(256)) * 512  # binary, 128 KiB
    r = hutch.run("cat", input=data)
    assert (r.returncode, r.stdout, r.stderr) == (0, data, b"")


def test_stdout_and_stderr_are_separate(hutch):
    r = hutch.sh("read line; echo out:$line; echo err:$line >&2; exit 3", input=b"hello\n")
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out:hello\n", b"err:hello\n")


def test_stdin_eof(hutch):
    r = hutch.run("wc", "-c", input=b"")
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, b"0", b"")


def test_documented_example_tr(hutch):
    r = hutch.run("tr", "a-z", "A-Z", input=b"data\n")
    assert (r.returncode, r.stdout) == (0, b"DATA\n")


def test_arguments_pass_through_verbatim(hutch):
    args = ["a b", "", "$HOME", "*", "'\"", "--user", "-x", "\u00e9\u00e8"]
    r = hutch.run("printf", "[%s]\\n", *args)
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout.decode() == "".join(f"[{a}]\n" for a in args)


# --- bad usage --------------------------------------------------------------


BAD_OPTIONS = [
    (["--memory", "abc"], "--memory"),
    (["--memory", "0"], "--memory"),
    (["--disk", "12Q"], "--disk"),
    (["--cpus", "0"], "--cpus"),
    (["--cpus", "-1"], "--cpus"),
    (["--pids", "-1"], "--pids"),
    (["--pids", "ten"], "--pids"),
    (["--timeout", "x"], "--timeout"),
    (["--timeout", "-5"], "--timeout"),
    (["--user", "nobody"], "--user"),
    (["--template", "nope"], "--template"),
    (["--env", "NOVALUE"], "--env"),
    (["--env", "=value"], "--env"),
]


def tree(path):
    out = []
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            out.append(os.path.relpath(os.path.join(root, name), path))
    return sorted(out)


@pytest.mark.parametrize("opts,option", BAD_OPTIONS, ids=[" ".join(o) for o, _ in BAD_OPTIONS])
def test_bad_option_value_is_usage_error(hutch, tmp_path, opts, option):
    fresh = tmp_path / "data"
    before = tree(hutch.data_dir)
    for data in (str(fresh), hutch.data_dir):
        r = subprocess.run(
            [str(HUTCH), "run", "--data-dir", data, *opts, "--", "true"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT,
            env=hutch_env(),
        )
        assert r.returncode == 2, r.stderr
        assert r.stdout == b""
        assert option.encode() in r.stderr
    assert not fresh.exists()
    assert tree(hutch.data_dir) == before


def test_no_command_is_usage_error(hutch, tmp_path):
    fresh = tmp_path / "data"
    for argv in (["run", "--data-dir", str(fresh)], ["run", "--data-dir", str(fresh), "--"]):
        r = subprocess.run(
            [str(HUTCH), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, env=hutch_env()
        )
        assert r.returncode == 2
        assert b"no command" in r.stderr
    assert not fresh.exists()


def test_unknown_option_is_usage_error(hutch, tmp_path):
    fresh = tmp_path / "data"
    r = subprocess.run(
        [str(HUTCH), "run", "--data-dir", str(fresh), "--bogus", "--", "true"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT,
        env=hutch_env(),
    )
    assert r.returncode == 2
    assert b"bogus" in r.stderr
    assert not fresh.exists()


def test_unknown_subcommand_is_usage_error():
    r = subprocess.run(
        [str(HUTCH), "frobnicate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, env=hutch_env()
    )
    assert r.returncode == 2
    assert b"frobnicate" in r.stderr


def test_data_dir_with_comma_is_refused(hutch, tmp_path):
    bad = tmp_path / "a,b"
    r = subprocess.run(
        [str(HUTCH), "run", "--data-dir", str(bad), "--", "true"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT,
        env=hutch_env(),
    )
    assert r.returncode == 125
    assert b"," in r.stderr and b"data directory" in r.stderr


@pytest.mark.parametrize("template", ["host", "base", "code-interpreter-v1", "code-interpreter"])
def test_template_aliases_are_accepted(hutch, template):
    r = hutch.run("cat", "/etc/os-release", opts=["--template", template])
    assert r.returncode == 0, r.stderr
    with open("/etc/os-release", "rb") as f:
        assert r.stdout == f.read()


# --- identity and environment -----------------------------------------------


def test_hostname_is_the_sandbox_id(hutch):
    r = hutch.sh("hostname; uname -n; cat /etc/hostname; echo")
    assert r.returncode == 0, r.stderr
    a, b, c = r.stdout.decode().split()
    assert SANDBOX_ID_RE.match(a), a
    assert a == b == c


def test_each_run_gets_a_new_id(hutch):
    ids = {hutch.run("hostname").stdout.decode().strip() for _ in range(3)}
    assert len(ids) == 3
    assert all(SANDBOX_ID_RE.match(i) for i in ids), ids


def test_default_user(hutch):
    r = hutch.sh('id -u; id -g; id -un; echo "$HOME"; pwd')
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout.decode().splitlines() == ["1000", "1000", "user", "/home/user", "/home/user"]


def test_root_user(hutch):
    r = hutch.sh('id -u; id -g; id -un; echo "$HOME"; pwd', opts=["--user", "root"])
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout.decode().splitlines() == ["0", "0", "root", "/root", "/root"]


def test_explicit_user_user(hutch):
    r = hutch.run("id", "-un", opts=["--user", "user"])
    assert (r.returncode, r.stdout) == (0, b"user\n")


DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_default_environment_is_exact(hutch):
    env = hutch_env(SECRET_HOST_VARIABLE="leak")
    r = hutch.run("env", env=env)
    assert (r.returncode, r.stderr) == (0, b"")
    assert sorted(r.stdout.decode().splitlines()) == sorted(
        [DEFAULT_PATH, "HOME=/home/user", "USER=user", "LOGNAME=user", "LANG=C.UTF-8"]
    )


def test_root_environment_is_exact(hutch):
    r = hutch.run("env", opts=["--user", "root"])
    assert sorted(r.stdout.decode().splitlines()) == sorted(
        [DEFAULT_PATH, "HOME=/root", "USER=root", "LOGNAME=root", "LANG=C.UTF-8"]
    )


def test_term_is_passed_when_set(hutch):
    r = hutch.run("printenv", "TERM", env=hutch_env(TERM="vt100"))
    assert (r.returncode, r.stdout) == (0, b"vt100\n")


def test_env_sets_variables(hutch):
    r = hutch.sh(
        'printf "%s|%s|%s\\n" "$FOO" "$EMPTY" "$SPACED"',
        opts=["--env", "FOO=bar", "--env", "EMPTY=", "--env", "SPACED=a b=c"],
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, b"bar||a b=c\n", b"")


def test_env_overrides_a_default_variable(hutch):
    # The environment must hold one HOME, the one asked for: programs that
    # take the first entry (Python, getenv) and ones that take the last
    # (dash) must agree.
    r = hutch.run("env", opts=["--env", "HOME=/srv", "--env", "LANG=C"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert [l for l in lines if l.startswith("HOME=")] == ["HOME=/srv"]
    assert [l for l in lines if l.startswith("LANG=")] == ["LANG=C"]
    r = hutch.run("python3", "-c", "import os; print(os.environ['HOME'])", opts=["--env", "HOME=/srv"])
    assert (r.returncode, r.stdout) == (0, b"/srv\n")


def test_env_accepts_256_variables_and_refuses_more(hutch, tmp_path):
    many = [x for i in range(256) for x in ("--env", f"V{i}={i}")]
    r = hutch.sh('echo "$V0 $V255"', opts=many)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"0 255\n", b"")
    fresh = tmp_path / "data"
    r = subprocess.run(
        [str(HUTCH), "run", "--data-dir", str(fresh), *many, "--env", "V256=x", "--", "true"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT,
        env=hutch_env(),
    )
    assert r.returncode == 2
    assert b"--env" in r.stderr
    assert not fresh.exists()
