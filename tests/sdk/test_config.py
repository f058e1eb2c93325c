"""Configuration, the package's shape and the failure paths that need no
sandbox: no key, wrong key, no server."""
import ast
import sys

import pytest

import hutch
from hutch import (AuthenticationException, ConnectionConfig, Sandbox, SandboxException,
                   SandboxQuery)
from hutchd import REPO, free_port

PACKAGE = REPO / "python" / "hutch"


def test_defaults():
    c = ConnectionConfig()
    assert c.api_url == "http://127.0.0.1:3000"
    assert c.sandbox_url == c.api_url
    assert c.api_key is None
    assert c.request_timeout == 60


def test_arguments_then_hutch_then_e2b(monkeypatch):
    monkeypatch.setenv("E2B_API_URL", "http://e2b:1")
    monkeypatch.setenv("E2B_API_KEY", "e2b_key")
    monkeypatch.setenv("E2B_SANDBOX_URL", "http://e2b-sandbox:2")
    c = ConnectionConfig()
    assert (c.api_url, c.api_key, c.sandbox_url) == ("http://e2b:1", "e2b_key", "http://e2b-sandbox:2")

    monkeypatch.setenv("HUTCH_API_URL", "http://hutch:3/")
    monkeypatch.setenv("HUTCH_API_KEY", "hutch_key")
    c = ConnectionConfig()
    assert (c.api_url, c.api_key) == ("http://hutch:3", "hutch_key")
    assert c.sandbox_url == "http://e2b-sandbox:2"

    c = ConnectionConfig(api_key="arg_key", api_url="http://arg:4", sandbox_url="http://arg:5")
    assert (c.api_url, c.api_key, c.sandbox_url) == ("http://arg:4", "arg_key", "http://arg:5")


def test_sandbox_url_defaults_to_api_url(monkeypatch):
    monkeypatch.setenv("HUTCH_API_URL", "http://10.1.2.3:3000")
    assert ConnectionConfig().sandbox_url == "http://10.1.2.3:3000"


def test_bad_url_is_refused():
    with pytest.raises(hutch.InvalidArgumentException, match="http://"):
        ConnectionConfig(api_url="127.0.0.1:3000")


def test_no_key_says_which_variable(monkeypatch):
    # Pointed at nothing: the key is checked before any request is made.
    monkeypatch.setenv("HUTCH_API_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(AuthenticationException) as e:
        Sandbox.create()
    assert "HUTCH_API_KEY" in str(e.value) and "E2B_API_KEY" in str(e.value)
    with pytest.raises(AuthenticationException):
        Sandbox.list().next_items()


@pytest.mark.parametrize("call", ["create", "list", "kill", "get_info", "connect"])
def test_server_down_names_the_url(monkeypatch, call):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HUTCH_API_URL", url)
    monkeypatch.setenv("HUTCH_API_KEY", "e2b_" + "0" * 40)
    with pytest.raises(SandboxException) as e:
        if call == "create":
            Sandbox.create()
        elif call == "list":
            Sandbox.list().next_items()
        elif call == "kill":
            Sandbox.kill("nosuchsandbox")
        elif call == "get_info":
            Sandbox.get_info("nosuchsandbox")
        else:
            Sandbox.connect("nosuchsandbox")
    msg = str(e.value)
    assert url in msg, msg
    assert "hutchd" in msg and "HUTCH_API_URL" in msg, msg


def test_wrong_key(server):
    before = {s.sandbox_id for s in Sandbox.list()}
    with pytest.raises(AuthenticationException) as e:
        Sandbox.create(api_key="e2b_" + "f" * 40)
    msg = str(e.value)
    assert "invalid API key" in msg and "HUTCH_API_KEY" in msg, msg
    with pytest.raises(AuthenticationException):
        Sandbox.list(api_key="e2b_" + "f" * 40).next_items()
    assert {s.sandbox_id for s in Sandbox.list()} == before


def test_wrong_key_from_e2b_variable(server, monkeypatch):
    monkeypatch.delenv("HUTCH_API_KEY")
    monkeypatch.setenv("E2B_API_KEY", "e2b_" + "1" * 40)
    with pytest.raises(AuthenticationException):
        Sandbox.create()
    monkeypatch.setenv("E2B_API_KEY", server.api_key)
    monkeypatch.delenv("HUTCH_API_URL")
    monkeypatch.setenv("E2B_API_URL", server.url)
    with Sandbox.create() as sbx:
        assert sbx.is_running()


def test_code_interpreter_is_gone():
    with pytest.raises(ImportError) as e:
        from hutch import CodeInterpreter  # noqa: F401
    assert "Sandbox" in str(e.value)
    with pytest.raises(ImportError, match="Sandbox"):
        hutch.CodeInterpreter
    with pytest.raises(AttributeError):
        hutch.NoSuchThing


def test_exception_names():
    names = ["SandboxException", "AuthenticationException", "NotFoundException", "TimeoutException",
             "RateLimitException", "InvalidArgumentException", "CommandExitException",
             "CodeExecutionError", "FileNotFoundException", "SandboxNotFoundException",
             "NotEnoughSpaceException", "TemplateException"]
    for n in names:
        assert issubclass(getattr(hutch, n), hutch.SandboxException), n
    assert issubclass(hutch.CommandExitException, hutch.CommandResult)
    assert issubclass(hutch.FileNotFoundException, hutch.NotFoundException)
    e = hutch.CodeExecutionError("NameError", "name 'undeclared_var' is not defined", "tb", code="x")
    assert str(e) == "Execution failed: NameError: name 'undeclared_var' is not defined"


def test_public_surface():
    for name in ["Sandbox", "AsyncSandbox", "Execution", "Result", "Logs", "ExecutionError",
                 "OutputMessage", "Context", "CommandResult", "CommandHandle", "AsyncCommandHandle",
                 "EntryInfo", "FileType", "WriteInfo", "FilesystemEvent", "FilesystemEventType",
                 "SandboxInfo", "SandboxQuery", "SandboxState", "SandboxMetrics", "ProcessInfo"]:
        assert hasattr(hutch, name), name
    for method in ["create", "connect", "list", "kill", "close", "set_timeout", "get_info",
                   "is_running", "get_host", "get_metrics", "run_code", "validate_code",
                   "create_code_context", "list_code_contexts", "restart_code_context",
                   "remove_code_context"]:
        assert callable(getattr(hutch.Sandbox, method, None)), method
        assert callable(getattr(hutch.AsyncSandbox, method, None)), method
    assert SandboxQuery(metadata={"a": "b"}).metadata == {"a": "b"}


def test_standard_library_only():
    stdlib = set(sys.stdlib_module_names)
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module]
            else:
                continue
            for m in mods:
                assert m.split(".")[0] in stdlib, f"{path.name} imports {m}, not in the standard library"
