"""Fixtures for the SDK tests: one real hutchd for the session, the
package imported from python/, a clean environment for every test."""
import sys
import time
import uuid

import pytest

from hutchd import REPO, Hutchd, hutchd_bin, session_hutchd

sys.path.insert(0, str(REPO / "python"))

import hutch  # noqa: E402

CONFIG_VARS = ("HUTCH_API_URL", "HUTCH_API_KEY", "HUTCH_SANDBOX_URL", "HUTCH_DOMAIN", "E2B_API_URL",
               "E2B_SANDBOX_URL", "E2B_API_KEY", "E2B_DOMAIN", "E2B_DEBUG")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No test sees the caller's HUTCH_* / E2B_* variables."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)


HUTCHD = hutchd_bin("build/hutchd")
hutchd, pytest_sessionfinish = session_hutchd(lambda: Hutchd(HUTCHD, "hutchd-sdk"))


@pytest.fixture
def server(hutchd, monkeypatch):
    """hutchd's address and key in HUTCH_API_URL / HUTCH_API_KEY."""
    assert hutchd.alive(), f"hutchd died:\n{hutchd.log_tail()}"
    monkeypatch.setenv("HUTCH_API_URL", hutchd.url)
    monkeypatch.setenv("HUTCH_API_KEY", hutchd.api_key)
    return hutchd


@pytest.fixture
def tag():
    """A unique metadata value, to find this test's sandboxes in list()."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def sandbox(server, tag):
    sbx = hutch.Sandbox.create(timeout=600, metadata={"test": tag})
    yield sbx
    try:
        sbx.kill()
    except hutch.SandboxException:
        pass


def wait_until(predicate, timeout=10.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
