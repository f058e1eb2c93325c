"""Where hutch finds hutchd and its key, and what it says when it cannot."""
from conftest import Cli, clean_env
from hutchd import free_port

# One command of each kind: they share the client layer.
COMMANDS = (["sandbox", "list"], ["sandbox", "info", "x"], ["exec", "x", "--", "true"],
            ["code", "x", "1"], ["files", "ls", "x"])


def test_wrong_key_is_4(hutchd):
    cli = Cli(clean_env(HUTCH_API_URL=hutchd.url, HUTCH_API_KEY="e2b_" + "0" * 40))
    for args in COMMANDS:
        r = cli.run(*args)
        assert (r.returncode, r.stdout) == (4, ""), args
        assert r.stderr.startswith("hutch: authentication failed (401): "), args


def test_no_key_is_4(hutchd):
    r = Cli(clean_env(HUTCH_API_URL=hutchd.url)).run("sandbox", "list")
    assert (r.returncode, r.stdout) == (4, "")
    assert "no API key" in r.stderr and "HUTCH_API_KEY" in r.stderr


def test_server_down_is_5():
    url = f"http://127.0.0.1:{free_port()}"
    cli = Cli(clean_env(HUTCH_API_URL=url, HUTCH_API_KEY="k"))
    for args in COMMANDS:
        r = cli.run(*args)
        assert (r.returncode, r.stdout) == (5, ""), args
        assert r.stderr.startswith(f"hutch: cannot reach hutchd at {url}: "), args
        assert "HUTCH_API_URL" in r.stderr


def test_unknown_sandbox_is_3(cli):
    for args in COMMANDS[1:] + (["sandbox", "kill", "x"], ["sandbox", "timeout", "x", "5"],
                                ["files", "get", "x", "y", "-"], ["files", "put", "x", "-", "y"]):
        r = cli.run(*args, input="")
        assert (r.returncode, r.stdout, r.stderr) == (3, "", "hutch: sandbox `x` not found\n"), \
            args


def test_e2b_variables_are_the_fallback(hutchd):
    down = f"http://127.0.0.1:{free_port()}"
    env = clean_env(E2B_API_URL=hutchd.url, E2B_API_KEY=hutchd.api_key)
    assert Cli(env).run("sandbox", "list").returncode == 0
    # HUTCH_* wins over E2B_*.
    env = clean_env(E2B_API_URL=down, E2B_API_KEY="bad", HUTCH_API_URL=hutchd.url,
                    HUTCH_API_KEY=hutchd.api_key)
    assert Cli(env).run("sandbox", "list").returncode == 0
    env = clean_env(HUTCH_API_URL=hutchd.url, E2B_API_KEY="bad", HUTCH_API_KEY=hutchd.api_key)
    assert Cli(env).run("sandbox", "list").returncode == 0


def test_options_win_over_the_environment(hutchd):
    down = f"http://127.0.0.1:{free_port()}"
    cli = Cli(clean_env(HUTCH_API_URL=down, HUTCH_API_KEY="bad"))
    assert cli.run("sandbox", "list", "--url", hutchd.url + "/", "--api-key",
                   hutchd.api_key).returncode == 0
    assert cli.run("sandbox", "list", "--url", hutchd.url).returncode == 4


def test_default_url():
    r = Cli(clean_env(HUTCH_API_KEY="e2b_" + "0" * 40)).run("sandbox", "list")
    # Whatever listens on port 3000 (often nothing) is what hutch asked.
    assert r.returncode in (4, 5)
    if r.returncode == 5:
        assert "http://127.0.0.1:3000" in r.stderr


def test_bad_url_is_usage():
    r = Cli(clean_env(HUTCH_API_KEY="k")).run("sandbox", "list", "--url", "127.0.0.1:3000")
    assert r.returncode == 2 and "http://" in r.stderr
