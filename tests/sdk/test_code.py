"""run_code and code contexts against the sandbox's code interpreter
(port 49999): NDJSON /execute, /contexts, /validate."""
import base64
import json
import time

import pytest

from hutch import (CodeExecutionError, Context, Execution, ExecutionError, InvalidArgumentException,
                   NotFoundException, OutputMessage, Result, Sandbox, TimeoutException,
                   ValidationResult)


def test_state_and_text(sandbox):
    assert sandbox.run_code("x = 1").text is None
    e = sandbox.run_code("x += 1; x")
    assert isinstance(e, Execution)
    assert e.text == "2"
    assert e.error is None
    assert e.results[0].is_main_result
    assert sandbox.run_code("print('only printed')").text is None
    assert sandbox.run_code("'quoted'").text == "quoted"


def test_logs_and_count(sandbox):
    e = sandbox.run_code("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert "".join(e.logs.stdout) == "out\n"
    assert "".join(e.logs.stderr) == "err\n"
    n = e.execution_count
    assert isinstance(n, int)
    assert sandbox.run_code("1").execution_count == n + 1


def test_unicode(sandbox):
    e = sandbox.run_code("s = 'héllo ✓ 世界'; print(s); s")
    assert "".join(e.logs.stdout) == "héllo ✓ 世界\n"
    assert e.text == "héllo ✓ 世界"


def test_callbacks_fire_as_lines_arrive(sandbox):
    seen = []
    t0 = time.monotonic()
    e = sandbox.run_code(
        "import time, sys\nprint('first', flush=True)\ntime.sleep(1.5)\n"
        "print('second', file=sys.stderr, flush=True)\n41 + 1",
        on_stdout=lambda m: seen.append(("stdout", m, time.monotonic() - t0)),
        on_stderr=lambda m: seen.append(("stderr", m, time.monotonic() - t0)),
        on_result=lambda r: seen.append(("result", r, time.monotonic() - t0)))
    total = time.monotonic() - t0
    kinds = [k for k, _, _ in seen]
    assert kinds == ["stdout", "stderr", "result"], seen
    first = seen[0]
    assert isinstance(first[1], OutputMessage) and first[1].line == "first\n" and not first[1].error
    assert seen[1][1].error is True
    assert isinstance(first[1].timestamp, int) and first[1].timestamp > 1_600_000_000 * 10**9
    assert total - first[2] > 1.0, f"the first line came at {first[2]:.2f} s of {total:.2f} s"
    assert isinstance(seen[2][1], Result) and seen[2][1].text == "42"
    assert e.text == "42"


ERROR_CODE = "undeclared_var"
ERROR_MESSAGE = "Execution failed: NameError: name 'undeclared_var' is not defined"


def test_error_does_not_raise(sandbox):
    errors = []
    e = sandbox.run_code(ERROR_CODE, on_error=errors.append)
    assert isinstance(e.error, ExecutionError)
    assert e.error.name == "NameError"
    assert e.error.value == "name 'undeclared_var' is not defined"
    assert "undeclared_var" in e.error.traceback
    assert errors == [e.error]
    assert e.text is None
    assert sandbox.run_code("1 + 1").text == "2"  # the kernel is fine


def test_raise_for_error(sandbox):
    e = sandbox.run_code(ERROR_CODE)
    with pytest.raises(CodeExecutionError) as exc:
        e.raise_for_error()
    assert str(exc.value) == ERROR_MESSAGE
    assert exc.value.name == "NameError"
    assert exc.value.value == "name 'undeclared_var' is not defined"
    assert "undeclared_var" in exc.value.traceback
    assert exc.value.code == ERROR_CODE
    assert exc.value.execution is e
    ok = sandbox.run_code("1")
    assert ok.raise_for_error() is ok


def test_raise_on_error(sandbox):
    with pytest.raises(CodeExecutionError) as exc:
        sandbox.run_code(ERROR_CODE, raise_on_error=True)
    assert str(exc.value) == ERROR_MESSAGE
    assert exc.value.code == ERROR_CODE
    assert sandbox.run_code("2 * 3", raise_on_error=True).text == "6"


def test_display_results_and_mime(sandbox):
    e = sandbox.run_code(
        "from IPython.display import display, HTML, Markdown, JSON, Latex\n"
        "display(HTML('<b>bold</b>'))\n"
        "display(Markdown('# title'))\n"
        "display(Latex(r'$x^2$'))\n"
        "display(JSON({'a': 1}))\n"
        "'main'")
    by = {tuple(r.formats()): r for r in e.results}
    html = [r for r in e.results if r.html]
    assert html and html[0].html == "<b>bold</b>" and not html[0].is_main_result
    assert html[0]._repr_html_() == "<b>bold</b>"
    assert [r for r in e.results if r.markdown == "# title"]
    assert [r for r in e.results if r.latex == "$x^2$"]
    assert [r for r in e.results if r.json == {"a": 1}]
    main = [r for r in e.results if r.is_main_result]
    assert len(main) == 1 and main[0].text == "main" and e.text == "main"
    assert by  # every result has at least one format


def test_plot_png(sandbox):
    e = sandbox.run_code(
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3], [1, 4, 9])\nplt.show()")
    pngs = [r for r in e.results if r.png]
    assert pngs, e
    raw = base64.b64decode(pngs[0].png)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    assert pngs[0]._repr_png_() == pngs[0].png
    assert pngs[0]._repr_mimebundle_()["image/png"] == pngs[0].png
    assert "png" in pngs[0].formats()


def test_dataframe_html(sandbox):
    e = sandbox.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2]})")
    assert e.results and e.results[0].html and "<table" in e.results[0].html
    assert "a" in e.text


def test_to_json(sandbox):
    e = sandbox.run_code("print('p')\n7")
    d = json.loads(e.to_json())
    assert d["results"][0]["text"] == "7" and d["results"][0]["is_main_result"] is True
    assert d["logs"] == {"stdout": ["p\n"], "stderr": []}
    assert d["error"] is None
    err = json.loads(sandbox.run_code(ERROR_CODE).to_json())["error"]
    assert err["name"] == "NameError" and "undeclared_var" in err["value"]


def test_envs(server):
    with Sandbox.create(envs={"SANDBOX_WIDE": "everywhere"}) as sbx:
        code = "import os; (os.environ.get('SANDBOX_WIDE'), os.environ.get('PER_RUN'))"
        assert sbx.run_code(code, envs={"PER_RUN": "once"}).text == "('everywhere', 'once')"
        assert sbx.run_code(code).text == "('everywhere', None)"


def test_timeout(sandbox):
    t0 = time.monotonic()
    with pytest.raises(TimeoutException, match="timed out"):
        sandbox.run_code("import time\ntime.sleep(30)", timeout=2)
    assert time.monotonic() - t0 < 6
    # The kernel was interrupted when the client went away: it answers again.
    t0 = time.monotonic()
    assert sandbox.run_code("'alive'", timeout=20).text == "alive"
    assert time.monotonic() - t0 < 10


def test_contexts(sandbox):
    ctx = sandbox.create_code_context(cwd="/tmp")
    assert isinstance(ctx, Context) and ctx.id and ctx.language == "python" and ctx.cwd == "/tmp"
    assert sandbox.run_code("import os; os.getcwd()", context=ctx).text == "/tmp"
    sandbox.run_code("only_here = 5", context=ctx)
    assert sandbox.run_code("only_here", context=ctx).text == "5"
    assert sandbox.run_code("only_here").error.name == "NameError"  # the default context
    assert ctx.id in [c.id for c in sandbox.list_code_contexts()]
    sandbox.restart_code_context(ctx)
    assert sandbox.run_code("only_here", context=ctx).error.name == "NameError"
    sandbox.remove_code_context(ctx.id)
    assert ctx.id not in [c.id for c in sandbox.list_code_contexts()]
    with pytest.raises(NotFoundException):
        sandbox.run_code("1", context=ctx)
    with pytest.raises(NotFoundException):
        sandbox.remove_code_context(ctx)


def test_language(sandbox):
    assert sandbox.run_code("1 + 2", language="python").text == "3"
    langs = {c.language for c in sandbox.list_code_contexts()}
    assert "python" in langs
    ctx = sandbox.create_code_context()
    with pytest.raises(InvalidArgumentException):
        sandbox.run_code("1", language="python", context=ctx)


def test_validate_code(sandbox):
    ok = sandbox.validate_code("x_validated = 1\nprint(x_validated)")
    assert isinstance(ok, ValidationResult) and ok.valid and ok and ok.error is None
    bad = sandbox.validate_code("x = 1\nprint(")
    assert not bad and bad.valid is False
    assert bad.error.name == "SyntaxError" and bad.error.value and bad.error.line in (1, 2)
    with pytest.raises(CodeExecutionError) as e:
        sandbox.validate_code("def f(:\n  pass", raise_on_error=True)
    assert e.value.name == "SyntaxError"
    # Validation runs nothing.
    assert sandbox.run_code("x_validated").error.name == "NameError"
    assert sandbox.validate_code("undeclared_name_is_fine_syntax").valid
    ctx = sandbox.create_code_context()
    assert sandbox.validate_code("1 +", context=ctx).valid is False
    assert sandbox.validate_code("1 + 1", context=ctx).valid
    with pytest.raises(InvalidArgumentException):
        sandbox.validate_code("1", language="python", context=ctx)


def test_result_repr_without_server():
    r = Result(text="t", html="<i>h</i>", png="iVBORw0KGgo=", extra={"application/x-custom": {"k": 1}},
               is_main_result=True)
    assert r._repr_html_() == "<i>h</i>" and r._repr_png_() == "iVBORw0KGgo="
    assert r._repr_markdown_() is None
    bundle = r._repr_mimebundle_()
    assert bundle["text/html"] == "<i>h</i>" and bundle["application/x-custom"] == {"k": 1}
    assert set(r.formats()) == {"text", "html", "png", "application/x-custom"}
    e = Execution(results=[Result(text="no", is_main_result=False), r])
    assert e.text == "t"
    assert Execution().text is None
