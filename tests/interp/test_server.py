"""The code-interpreter server (src/interp) on the host, through
build/interp-driver: the NDJSON of /execute, contexts, languages, errors,
interrupts and /validate, against real kernels (Debian's ipykernel, our
bash and javascript kernels).  The spec: e2b-protocol.md section 5."""
import http.client
import json
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DRIVER = pathlib.Path(os.environ.get("HUTCH_INTERP_DRIVER", REPO / "build" / "interp-driver"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    if "HUTCH_INTERP_DRIVER" not in os.environ:
        subprocess.run([str(REPO / "tests/interp/build-driver.sh")], check=True)
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="hutch-interp-test-")
    env = dict(os.environ, HUTCH_INTERP_PORT=str(port), HUTCH_INTERP_DIR=workdir)
    proc = subprocess.Popen([str(DRIVER)], env=env, stderr=subprocess.PIPE)
    try:
        for line in proc.stderr:  # pyzygote may log first
            if line.startswith(b"interp-driver: ready"):
                break
        else:
            pytest.fail("interp-driver did not start")
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # never let it block
        yield port
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        shutil.rmtree(workdir, ignore_errors=True)


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    conn.request(method, path, data, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.getheader("Content-Type"), resp.read().decode()


def execute(port, body, timed=False):
    """The lines of /execute, each with its arrival time when TIMED."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/execute", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    lines = []
    while True:
        raw = resp.readline()
        if not raw:
            break
        assert raw.endswith(b"\n") and raw.strip(), raw
        assert raw.isascii()
        lines.append((json.loads(raw), time.monotonic()) if timed else json.loads(raw))
    return lines


def kinds(lines):
    return [line["type"] for line in lines]


def main_text(lines):
    return next((x.get("text") for x in lines if x["type"] == "result" and x["is_main_result"]), None)


def test_health(server):
    assert request(server, "GET", "/health")[::2] == (200, '"OK"')


def test_state_and_counts(server):
    first = execute(server, {"code": "counter = 41"})
    second = execute(server, {"code": "counter += 1\ncounter"})
    assert main_text(second) == "42"
    assert second[0]["type"] == "number_of_executions"
    assert second[0]["execution_count"] == first[0]["execution_count"] + 1
    assert second[-1] == {"type": "end_of_execution"}


def test_exact_lines(server):
    lines = execute(server, {"code": "print('hi')\n'quoted'"})
    assert kinds(lines) == ["number_of_executions", "stdout", "result", "end_of_execution"]
    assert lines[1]["text"] == "hi\n" and lines[1]["timestamp"].endswith("+00:00")
    assert lines[2] == {"type": "result", "text": "quoted", "extra": {}, "is_main_result": True}


def test_error(server):
    lines = execute(server, {"code": "1/0"})
    err = [x for x in lines if x["type"] == "error"]
    assert len(err) == 1 and err[0]["name"] == "ZeroDivisionError"
    assert err[0]["value"] == "division by zero" and "ZeroDivisionError" in err[0]["traceback"]


def test_results_and_mime(server):
    code = ("from IPython.display import display, HTML, JSON\n"
            "import matplotlib.pyplot as plt, pandas as pd\n"
            "display(HTML('<b>x</b>'), JSON({'a': 1}))\n"
            "display({'text/plain': 'p', 'application/x-custom': 3}, raw=True)\n"
            "plt.plot([1, 2]); plt.show()\n"
            "pd.DataFrame({'a': [1]})")
    results = [x for x in execute(server, {"code": code}) if x["type"] == "result"]
    assert results[0]["html"] == "<b>x</b>" and results[1]["json"] == {"a": 1}
    assert results[2]["extra"] == {"application/x-custom": 3}
    assert results[3]["png"].startswith("iVBOR") and not results[3]["is_main_result"]
    assert "<table" in results[4]["html"] and results[4]["is_main_result"]


def test_unicode_is_escaped(server):
    assert main_text(execute(server, {"code": "'日本 😀'"})) == "日本 😀"


def test_streamed_line_by_line(server):
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(1)"
    lines = [x for x in execute(server, {"code": code}, timed=True) if x[0]["type"] == "stdout"]
    assert [x[0]["text"] for x in lines] == ["0\n", "1\n", "2\n"]
    assert lines[2][1] - lines[0][1] > 1.5


def test_env_vars_restored(server):
    code = "import os; os.environ.get('FOO', 'unset') + ' ' + os.environ['SANDBOX_VAR']"
    lines = execute(server, {"code": code, "env_vars": {"FOO": "it's", "SANDBOX_VAR": "mine"}})
    assert main_text(lines) == "it's mine"
    assert main_text(execute(server, {"code": code})) == "unset global-value"


def test_env_vars_restored_after_error(server):
    for _ in range(5):
        execute(server, {"code": "1/0", "env_vars": {"AFTER_ERROR": "1"}})
        lines = execute(server, {"code": "import os; os.environ.get('AFTER_ERROR', 'unset')"})
        assert main_text(lines) == "unset"


def test_disconnect_interrupts(server):
    execute(server, {"code": "survivor = 'yes'"})
    for code in ("while True: pass", "import time; time.sleep(60)"):
        conn = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
        conn.request("POST", "/execute", json.dumps({"code": code}))
        resp = conn.getresponse()
        assert json.loads(resp.readline())["type"] == "number_of_executions"
        resp.close()
        conn.close()
        t0 = time.monotonic()
        assert main_text(execute(server, {"code": "survivor"})) == "yes"
        assert time.monotonic() - t0 < 5


def test_kernel_death(server):
    ctx = json.loads(request(server, "POST", "/contexts", {})[2])
    lines = execute(server, {"code": "import os; os._exit(1)", "context_id": ctx["id"]})
    assert [x["name"] for x in lines if x["type"] == "error"] == ["UnexpectedEndOfExecution"]
    assert lines[-1]["type"] == "end_of_execution"
    assert main_text(execute(server, {"code": "1 + 1", "context_id": ctx["id"]})) == "2"


def test_contexts(server):
    status, _, body = request(server, "POST", "/contexts", {"language": " Python ", "cwd": "/tmp"})
    ctx = json.loads(body)
    assert status == 200 and ctx["language"] == "python" and ctx["cwd"] == "/tmp"
    assert main_text(execute(server, {"code": "import os; os.getcwd()", "context_id": ctx["id"]})) == "/tmp"
    assert any(c["id"] == ctx["id"] for c in json.loads(request(server, "GET", "/contexts")[2]))
    execute(server, {"code": "kept = 1", "context_id": ctx["id"]})
    assert request(server, "POST", f"/contexts/{ctx['id']}/restart")[::2] == (200, "null")
    lines = execute(server, {"code": "kept", "context_id": ctx["id"]})
    assert [x["name"] for x in lines if x["type"] == "error"] == ["NameError"]
    assert request(server, "DELETE", f"/contexts/{ctx['id']}")[::2] == (200, "null")
    assert request(server, "DELETE", f"/contexts/{ctx['id']}")[0] == 404
    status, ctype, body = request(server, "POST", "/execute", {"code": "1", "context_id": ctx["id"]})
    assert (status, body) == (404, f"Context {ctx['id']} not found") and ctype.startswith("text/plain")


def test_bash(server):
    execute(server, {"code": "v=5; cd /tmp", "language": "bash"})
    lines = execute(server, {"code": "echo $v $(pwd); echo e >&2; false", "language": "BASH"})
    assert [x["text"] for x in lines if x["type"] == "stdout"] == ["5 /tmp\n"]
    assert [x["text"] for x in lines if x["type"] == "stderr"] == ["e\n"]
    assert [(x["name"], x["value"]) for x in lines if x["type"] == "error"] == [("", "1")]


def test_javascript(server):
    execute(server, {"code": "const base = 40", "language": "js"})
    assert main_text(execute(server, {"code": "base + 2", "language": "javascript"})) == "42"
    lines = execute(server, {"code": "await new Promise(r => setTimeout(() => r('later'), 50))",
                             "language": "js"})
    assert main_text(lines) == "later"
    lines = execute(server, {"code": "throw new TypeError('bad')", "language": "js"})
    assert [(x["name"], x["value"]) for x in lines if x["type"] == "error"] == [("TypeError", "bad")]
    # Top-level await: declarations outlive the cell, the last expression is the result.
    lines = execute(server, {"code": "const got = await Promise.resolve(20);\nconst twice = got * 2;\ntwice",
                             "language": "js"})
    assert main_text(lines) == "40"
    assert main_text(execute(server, {"code": "got + twice", "language": "js"})) == "60"


@pytest.mark.skipif(not pathlib.Path("/usr/share/nodejs/typescript").exists(),
                    reason="no typescript package (Debian's node-typescript)")
def test_typescript(server):
    code = "interface P { x: number }\nconst p: P = { x: 41 };\nconst y: number = await Promise.resolve(p.x + 1);\ny"
    assert main_text(execute(server, {"code": code, "language": "ts"})) == "42"
    contexts = json.loads(request(server, "GET", "/contexts")[2])
    assert "typescript" in {c["language"] for c in contexts}


def test_request_errors(server):
    status, ctype, body = request(server, "POST", "/execute", {"code": "1", "context_id": "x",
                                                               "language": "python"})
    assert (status, body) == (400, "Only one of context_id or language can be provided")
    status, _, body = request(server, "POST", "/execute", {"env_vars": {"A": 1}})
    assert status == 422
    assert [d["loc"] for d in json.loads(body)["detail"]] == [["body", "code"], ["body", "env_vars", "A"]]
    assert request(server, "POST", "/execute", "not json")[0] == 422
    status, ctype, body = request(server, "POST", "/execute", {"code": "1", "language": "nosuchlang"})
    assert status == 500 and "nosuchlang" in body and ctype.startswith("text/plain")
    status, _, body = request(server, "POST", "/execute?source=test", {"code": "1", "context_id": None,
                                                                       "language": None, "env_vars": None})
    assert status == 200 and '"text": "1"' in body


def test_validate(server):
    def validate(body):
        status, _, text = request(server, "POST", "/validate", body)
        assert status == 200
        return json.loads(text)

    assert validate({"code": "%ls\nx = await f()"}) == {"valid": True}
    bad = validate({"code": "x = 1\nprint("})
    assert bad["valid"] is False and bad["error"]["name"] == "SyntaxError" and bad["error"]["line"] in (1, 2)
    assert validate({"code": "let = ;", "language": "js"})["valid"] is False
    assert validate({"code": "for i in 1; do\nfi", "language": "bash"})["error"]["line"] == 2
    assert main_text(execute(server, {"code": "'validate ran nothing'"})) == "validate ran nothing"
