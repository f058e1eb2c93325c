"""hutch code: stdout, results, errors, exit status, --json, languages."""
import json
import subprocess
import time


def test_output_and_result(cli, sandbox):
    r = cli.ok("code", sandbox, 'print("hi")\nx = 21\nx * 2')
    assert r.stdout == "hi\n42\n"


def test_state_stays_between_runs(cli, sandbox):
    cli.ok("code", sandbox, "y = 5")
    assert cli.ok("code", sandbox, "y + 1").stdout == "6\n"


def test_stderr(cli, sandbox):
    r = cli.run("code", sandbox, 'import sys\nprint("e", file=sys.stderr)\nprint("o")')
    assert (r.returncode, r.stdout, r.stderr) == (0, "o\n", "e\n")

def test_error_exits_1_with_name_value_and_traceback(cli, sandbox):
    r = cli.run("code", sandbox, 'print("before")\n1/0')
    assert r.returncode == 1
    assert r.stdout == "before\n"
    assert "\x1b" not in r.stderr  # not a terminal: no colour escapes
    lines = r.stderr.splitlines()
    assert "Traceback" in r.stderr and "1/0" in r.stderr
    assert lines[-1] == "ZeroDivisionError: division by zero"
    assert lines.count("ZeroDivisionError: division by zero") == 1


def test_raised_exception(cli, sandbox):
    r = cli.run("code", sandbox, 'raise ValueError("bad input")')
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == "ValueError: bad input"


def test_rich_only_result_is_a_note(cli, sandbox):
    r = cli.ok("code", sandbox,
               "from IPython.display import display\n"
               "display({'image/png': 'iVBORw0KGgo='}, raw=True)\n"
               "display({'text/html': '<b>x</b>'}, raw=True)")
    assert r.stdout == "[image/png result, 8 bytes]\n[text/html result, 8 bytes]\n"


def test_code_from_stdin(cli, sandbox):
    assert cli.ok("code", sandbox, "-", input="a = 3\nprint(a * 3)\n").stdout == "9\n"


def test_json_prints_the_lines(cli, sandbox):
    r = cli.run("code", sandbox, "--json", 'print("x")\n7')
    assert r.returncode == 0
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    types = [line["type"] for line in lines]
    assert types[0] == "number_of_executions" and types[-1] == "end_of_execution"
    assert {"type": "stdout", "text": "x\n"}.items() <= lines[types.index("stdout")].items()
    assert lines[types.index("result")]["text"] == "7"
    r = cli.run("code", sandbox, "--json", "1/0")
    assert r.returncode == 1
    assert any(json.loads(line)["type"] == "error" for line in r.stdout.splitlines())


def test_languages_and_contexts(cli, sandbox):
    assert cli.ok("code", sandbox, "--language", "bash", "echo hi").stdout == "hi\n"
    assert cli.run("code", sandbox, "--language", "bash", "exit 3").returncode == 1
    r = cli.run("code", sandbox, "--context", "nosuchcontext", "1")
    assert r.returncode == 3 and "nosuchcontext" in r.stderr
    r = cli.run("code", sandbox, "--language", "cobol", "1")
    assert r.returncode == 125 and "cobol" in r.stderr
    r = cli.run("code", sandbox, "--language", "python", "--context", "c", "1")
    assert r.returncode == 2


def test_output_streams_as_it_arrives(cli, sandbox):
    p = cli.popen("code", sandbox, 'import time\nprint("a", flush=True)\ntime.sleep(4)\nprint("b")',
                  stdout=subprocess.PIPE, text=True)
    start = time.monotonic()
    assert p.stdout.readline() == "a\n"
    first = time.monotonic() - start
    assert p.stdout.readline() == "b\n"
    assert p.wait(timeout=30) == 0
    assert first < time.monotonic() - start - 2.5


def test_errors(cli, sandbox):
    r = cli.run("code", "nosuchsandbox", "1")
    assert (r.returncode, r.stderr) == (3, "hutch: sandbox `nosuchsandbox` not found\n")
    for args in (["code"], ["code", sandbox], ["code", sandbox, "1", "2"]):
        assert cli.run(*args).returncode == 2, args
