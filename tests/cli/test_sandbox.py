"""hutch sandbox: create, list, info, timeout, kill; exact outputs and --json."""
import datetime
import re

from conftest import api, parse_time, short_time, table

ID_RE = re.compile(r"^[a-z0-9]+$")


def test_create_prints_the_id(cli, sandbox):
    assert ID_RE.match(sandbox)
    assert cli.json("sandbox", "info", sandbox)["state"] == "running"


def test_create_json_is_the_sandbox_object(cli, tag):
    s = cli.json("sandbox", "create", "--metadata", f"test={tag}")
    try:
        assert ID_RE.match(s["sandboxID"])
        assert s["templateID"] == "base"
        assert s["envdVersion"] and s["envdAccessToken"]
    finally:
        cli.ok("sandbox", "kill", s["sandboxID"])


def test_create_options_reach_the_sandbox(cli, new_sandbox, tag):
    sid = new_sandbox("--template", "code-interpreter-v1", "--timeout", "120", "--metadata",
                      "a b=c&d=e", "--env", "GREETING=hi there")
    info = cli.json("sandbox", "info", sid)
    assert info["alias"] == "code-interpreter-v1"
    assert info["metadata"] == {"a b": "c&d=e", "test": tag}
    # Later --timeout wins; the sandbox ends 120 s after it started.
    assert parse_time(info["endAt"]) - parse_time(info["startedAt"]) == datetime.timedelta(
        seconds=120)
    assert cli.ok("exec", sid, "--", "echo $GREETING").stdout == "hi there\n"


def test_list_is_a_table_of_the_matching_sandboxes(cli, new_sandbox, tag):
    ids = {new_sandbox(), new_sandbox("--template", "code-interpreter-v1")}
    listed = cli.json("sandbox", "list", "--metadata", f"test={tag}")
    assert {s["sandboxID"] for s in listed} == ids
    rows = [["ID", "TEMPLATE", "STARTED", "ENDS", "STATE"]]
    rows += [[s["sandboxID"], s["alias"], short_time(s["startedAt"]), short_time(s["endAt"]),
              "running"] for s in listed]
    r = cli.ok("sandbox", "list", "--metadata", f"test={tag}")
    assert r.stdout == table(rows)


def test_list_metadata_filter_needs_every_pair(cli, new_sandbox, tag):
    sid = new_sandbox("--metadata", "k=v/1 &=")
    assert [s["sandboxID"] for s in
            cli.json("sandbox", "list", "--metadata", f"test={tag}", "--metadata", "k=v/1 &=")
            ] == [sid]
    assert cli.json("sandbox", "list", "--metadata", f"test={tag}", "--metadata", "k=other") == []
    assert cli.ok("sandbox", "list", "--metadata", "test=nothing-has-this").stdout == \
        "ID  TEMPLATE  STARTED  ENDS  STATE\n"


def test_list_by_state(cli, hutchd, new_sandbox, tag):
    running, paused = new_sandbox(), new_sandbox()
    assert api(hutchd, "POST", f"/sandboxes/{paused}/pause", {})[0] == 204
    try:
        only = ["--metadata", f"test={tag}"]
        assert [s["sandboxID"] for s in cli.json("sandbox", "list", *only, "--state", "paused")
                ] == [paused]
        assert [s["sandboxID"] for s in cli.json("sandbox", "list", *only, "--state", "running")
                ] == [running]
        assert {s["state"] for s in cli.json("sandbox", "list", *only)} == {"running", "paused"}
        r = cli.ok("sandbox", "list", *only, "--state", "paused")
        assert r.stdout.splitlines()[1].split()[-1] == "paused"
        r = cli.run("exec", paused, "--", "true")
        assert r.returncode == 125 and "paused" in r.stderr
    finally:
        # Kill it running: hutchd cannot kill a frozen sandbox yet.
        api(hutchd, "POST", f"/sandboxes/{paused}/resume", {})


def test_info_exact(cli, sandbox, tag):
    d = cli.json("sandbox", "info", sandbox)
    assert cli.ok("sandbox", "info", sandbox).stdout == (
        f"ID        {sandbox}\n"
        f"TEMPLATE  base\n"
        f"STATE     running\n"
        f"STARTED   {short_time(d['startedAt'])}\n"
        f"ENDS      {short_time(d['endAt'])}\n"
        f"CPUS      {d['cpuCount']}\n"
        f"MEMORY    {d['memoryMB']} MiB\n"
        f"DISK      {d['diskSizeMB']} MiB\n"
        f"ENVD      {d['envdVersion']}\n"
        f"METADATA  test={tag}\n")
    assert set(d) >= {"sandboxID", "templateID", "startedAt", "endAt", "state", "metadata"}


def test_timeout_sets_the_end(cli, sandbox):
    before = datetime.datetime.now(datetime.timezone.utc)
    r = cli.ok("sandbox", "timeout", sandbox, "100")
    end = cli.json("sandbox", "info", sandbox)["endAt"]
    assert r.stdout == f"{sandbox} ends at {short_time(end)}\n"
    delta = (parse_time(end) - before).total_seconds()
    assert 99 <= delta <= 105
    # It can shorten too; --json prints the sandbox as it now is.
    assert cli.json("sandbox", "timeout", sandbox, "50")["endAt"] < end


def test_kill(cli, sandbox):
    assert cli.ok("sandbox", "kill", sandbox).stdout == f"{sandbox}\n"
    r = cli.run("sandbox", "info", sandbox)
    assert (r.returncode, r.stdout) == (3, "")
    assert r.stderr == f"hutch: sandbox `{sandbox}` not found\n"
    r = cli.run("sandbox", "kill", sandbox)
    assert (r.returncode, r.stdout) == (3, "")


def test_kill_several_goes_on_past_unknown_ids(cli, new_sandbox):
    a, b = new_sandbox(), new_sandbox()
    r = cli.run("sandbox", "kill", a, "nosuchsandbox", b)
    assert (r.returncode, r.stdout) == (3, f"{a}\n{b}\n")
    assert r.stderr == "hutch: sandbox `nosuchsandbox` not found\n"
    c = new_sandbox()
    r = cli.run("sandbox", "kill", "--json", "gone1", c)
    assert r.returncode == 3
    import json
    assert json.loads(r.stdout) == [{"sandboxID": "gone1", "killed": False},
                                    {"sandboxID": c, "killed": True}]


def test_usage_errors(cli):
    for args in (["sandbox"], ["sandbox", "bogus"], ["sandbox", "info"],
                 ["sandbox", "info", "a", "b"], ["sandbox", "kill"], ["sandbox", "timeout", "x"],
                 ["sandbox", "list", "--template", "base"], ["sandbox", "create", "--timeout", "x"],
                 ["sandbox", "create", "--metadata", "novalue"],
                 ["sandbox", "create", "--env", "=v"], ["sandbox", "list", "--state", "dead"],
                 ["sandbox", "create", "--nope"], ["sandbox", "timeout", "id", "-1"]):
        r = cli.run(*args)
        assert r.returncode == 2, args
        assert r.stdout == "" and r.stderr, args


def test_help(cli):
    r = cli.ok("sandbox", "--help")
    assert r.stdout.startswith("usage: hutch sandbox")
    assert cli.ok("sandbox", "list", "--help").stdout == r.stdout
    assert "sandbox" in cli.ok("--help").stdout
