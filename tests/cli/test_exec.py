"""hutch exec: the shell and argv forms, options, streaming, exit codes."""
import base64
import hashlib
import json
import signal
import subprocess
import time


def test_one_string_runs_in_a_login_shell(cli, sandbox):
    r = cli.run("exec", sandbox, "--", "echo $HOME $0; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "/home/user /bin/bash\n", "err\n")


def test_several_words_are_executed_without_a_shell(cli, sandbox):
    r = cli.ok("exec", sandbox, "--", "printf", "%s\\n", "a b", "$HOME", "*")
    assert r.stdout == "a b\n$HOME\n*\n"


def test_options_before_and_after_the_id(cli, sandbox):
    r = cli.ok("exec", "--user", "root", sandbox, "--cwd", "/tmp", "--env", "A=1", "--env",
               "B=x y", "--", 'echo "$A|$B|$(id -un)|$PWD"')
    assert r.stdout == "1|x y|root|/tmp\n"
    assert cli.ok("exec", sandbox, "--", "id -un").stdout == "user\n"


def test_exit_status_passes_through(cli, sandbox):
    for code in (0, 1, 7, 122, 255):
        assert cli.run("exec", sandbox, "--", f"exit {code}").returncode == code


def test_killed_by_a_signal_is_128_plus_n(cli, sandbox):
    assert cli.run("exec", sandbox, "--", "kill -TERM $$").returncode == 143
    assert cli.run("exec", sandbox, "--", "kill -KILL $$").returncode == 137
    assert cli.run("exec", sandbox, "--", "sh", "-c", "kill -SEGV $$").returncode == 139


def test_not_found_and_not_executable(cli, sandbox):
    r = cli.run("exec", sandbox, "--", "no-such-command-x")
    assert r.returncode == 127 and "no-such-command-x" in r.stderr
    r = cli.run("exec", sandbox, "--", "no-such-command-x", "arg")
    assert r.returncode == 127 and "No such file or directory" in r.stderr
    assert cli.run("exec", sandbox, "--", "/etc/passwd", "x").returncode == 126


def test_timeout_kills_the_command(cli, sandbox):
    start = time.monotonic()
    r = cli.run("exec", sandbox, "--timeout", "1", "--", "echo started; sleep 30")
    assert r.returncode == 124
    assert r.stdout == "started\n"
    assert "--timeout 1" in r.stderr
    assert time.monotonic() - start < 15


def test_output_streams_as_it_arrives_in_order(cli, sandbox):
    p = cli.popen("exec", sandbox, "--",
                  "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; sleep 4; echo end",
                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start = time.monotonic()
    seen = []
    for line in p.stdout:
        seen.append((line, time.monotonic() - start))
    assert p.wait(timeout=30) == 0
    assert [line for line, _ in seen] == ["one\n", "two\n", "three\n", "end\n"]
    # The first three lines came while the command still ran.
    assert seen[2][1] < seen[3][1] - 2.5


def test_sigint_is_forwarded_as_sigterm(cli, sandbox):
    p = cli.popen("exec", sandbox, "--", "echo ready; sleep 60", stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=15) == 128 + signal.SIGTERM


def test_stdin_is_not_passed(cli, sandbox):
    start = time.monotonic()
    r = cli.run("exec", sandbox, "--", "cat; echo done", input="not for the command\n")
    assert (r.returncode, r.stdout) == (0, "done\n")
    assert time.monotonic() - start < 10


def test_large_and_binary_output(cli, sandbox):
    r = cli.run("exec", sandbox, "--", "head -c 6000000 /dev/urandom | tee /tmp/big | sha256sum",
                binary=True)
    digest = r.stdout.split()[0].decode()
    r = cli.run("exec", sandbox, "--", "cat", "/tmp/big", binary=True)
    assert r.returncode == 0 and len(r.stdout) == 6000000
    assert hashlib.sha256(r.stdout).hexdigest() == digest
    r = cli.run("exec", sandbox, "--", "printf", "\\000\\377\\n", binary=True)
    assert r.stdout == b"\x00\xff\n"


def test_json_prints_the_process_events(cli, sandbox):
    r = cli.run("exec", sandbox, "--json", "--", "echo hi; exit 4")
    assert r.returncode == 4
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events[0]["start"]["pid"] > 0
    out = b"".join(base64.b64decode(e["data"]["stdout"]) for e in events if "data" in e)
    assert out == b"hi\n"
    assert events[-1] == {"end": {"exitCode": 4, "exited": True, "status": "exit status 4",
                                  "error": "exit status 4"}}


def test_errors(cli, sandbox):
    r = cli.run("exec", sandbox, "--user", "nobody-here", "--", "true")
    assert r.returncode == 4 and "user" in r.stderr
    r = cli.run("exec", sandbox, "--cwd", "/no/such/dir", "--", "true")
    assert r.returncode == 2 and "/no/such/dir" in r.stderr
    r = cli.run("exec", "nosuchsandbox", "--", "true")
    assert (r.returncode, r.stderr) == (3, "hutch: sandbox `nosuchsandbox` not found\n")


def test_a_sandbox_killed_under_the_command(cli, sandbox):
    p = cli.popen("exec", sandbox, "--", "echo ready; sleep 60", stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    cli.ok("sandbox", "kill", sandbox)
    assert p.wait(timeout=15) == 3
    assert f"sandbox `{sandbox}` not found" in p.stderr.read()


def test_usage(cli, sandbox):
    for args in (["exec"], ["exec", sandbox], ["exec", sandbox, "--"],
                 ["exec", sandbox, "--timeout", "x", "--", "true"],
                 ["exec", sandbox, "--env", "NOEQUALS", "--", "true"],
                 ["exec", "--bogus", sandbox, "--", "true"]):
        r = cli.run(*args)
        assert r.returncode == 2 and r.stdout == "", args
    r = cli.ok("exec", "--help")
    assert "/bin/bash -l -c" in r.stdout and "without a shell" in r.stdout
