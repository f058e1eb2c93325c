"""Fixtures for the tests of hutch's client commands (sandbox, exec, code,
files): one real hutchd for the session, the hutch binary under test run
with a clean environment that names that server.

$HUTCH_BIN is the hutch under test (default build/asan/hutch), $HUTCHD_BIN
the server (default build/asan/hutchd).  Test modules import the helpers
with `from conftest import ...`.
"""
import datetime
import json
import os
import pathlib
import subprocess
import urllib.request
import uuid

import pytest

from hutchd import REPO, Hutchd, hutchd_bin, session_hutchd

HUTCH = pathlib.Path(os.environ.get("HUTCH_BIN") or REPO / "build" / "asan" / "hutch")
HUTCHD = hutchd_bin("build/asan/hutchd")
TIMEOUT = 120  # seconds: a hung hutch fails its test
CONFIG_VARS = ("HUTCH_API_URL", "HUTCH_API_KEY", "HUTCH_SANDBOX_URL", "E2B_API_URL",
               "E2B_API_KEY", "E2B_SANDBOX_URL", "E2B_DOMAIN", "HUTCH_DOMAIN")


def pytest_configure(config):
    missing = [str(p) for p in (HUTCH, HUTCHD) if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        raise pytest.UsageError(
            f"hutch CLI tests: missing executable(s): {', '.join(missing)}; build them "
            f"(`make build/asan/hutch build/asan/hutchd`) or set HUTCH_BIN and HUTCHD_BIN")
    if os.geteuid() != 0:
        raise pytest.UsageError("hutch CLI tests: hutchd needs root; run the tests as root")


def clean_env(**extra) -> dict:
    """The caller's environment without any HUTCH_* / E2B_* setting, plus EXTRA."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    env.update(extra)
    return env


class Cli:
    """Runs the hutch under test with ENV."""

    def __init__(self, env: dict):
        self.env = env

    def run(self, *args, input=None, env=None, cwd=None, binary=False, timeout=TIMEOUT):
        """hutch ARGS...; stdout and stderr captured (bytes when BINARY)."""
        return subprocess.run([str(HUTCH), *args], input=input, env=env or self.env, cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=not binary, timeout=timeout)

    def ok(self, *args, **kw):
        """hutch ARGS..., which must succeed without a word on stderr."""
        r = self.run(*args, **kw)
        assert (r.returncode, r.stderr) == (0, "" if not kw.get("binary") else b""), r
        return r

    def json(self, *args, **kw):
        return json.loads(self.ok(*args, "--json", **kw).stdout)

    def popen(self, *args, **kw):
        return subprocess.Popen([str(HUTCH), *args], env=self.env, **kw)


# Without --api-key: the key is the one hutchd makes and keeps in
# DATA_DIR/api-key, where docs/cli.md's examples read it.
hutchd, pytest_sessionfinish = session_hutchd(lambda: Hutchd(HUTCHD, "hutchd-cli", own_key=True))


@pytest.fixture
def cli(hutchd):
    assert hutchd.alive(), f"hutchd died:\n{hutchd.log_tail()}"
    return Cli(clean_env(HUTCH_API_URL=hutchd.url, HUTCH_API_KEY=hutchd.api_key))


@pytest.fixture
def tag():
    """A unique metadata value: list --metadata test=TAG finds this test's sandboxes."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def new_sandbox(cli, tag):
    """Creates sandboxes (extra `hutch sandbox create` arguments) and kills
    them after the test."""
    made = []

    def create(*args):
        r = cli.ok("sandbox", "create", "--timeout", "600", "--metadata", f"test={tag}", *args)
        made.append(r.stdout.strip())
        return made[-1]

    yield create
    for sid in made:
        cli.run("sandbox", "kill", sid)


@pytest.fixture
def sandbox(new_sandbox):
    return new_sandbox()


def api(server, method: str, path: str, body=None):
    """A direct control-plane call (what hutch has no command for):
    (status, decoded body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method,
                                 headers={"X-API-Key": server.api_key,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def short_time(rfc3339: str) -> str:
    """What hutch prints for a time: to the second, UTC, with a Z."""
    return rfc3339[:19] + "Z"


def parse_time(rfc3339: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))


def table(rows) -> str:
    """The text of a hutch table: columns two spaces apart, the last one
    not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    return "".join(line + "\n" for line in lines)
