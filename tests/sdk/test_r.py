"""R through the SDK: IRkernel (Debian's r-cran-irkernel) in the sandbox.

IRkernel sends values as display_data, so R results are never the main
result: Execution.text is None and the values are in Execution.results."""
import asyncio
import base64
import time

import pytest

from hutch import (AsyncSandbox, CodeExecutionError, ExecutionError, OutputMessage, Sandbox,
                   SandboxException, TimeoutException)


def texts(e):
    return [r.text for r in e.results]


def read_timezone():
    # The sandbox's /etc/timezone is a copy of the host's.
    with open("/etc/timezone") as f:
        return f.read().strip()


def test_r_context_state(sandbox):
    ctx = sandbox.create_code_context(language="r")
    assert ctx.language == "r" and ctx.cwd == "/home/user"
    assert ctx.id in [c.id for c in sandbox.list_code_contexts() if c.language == "r"]
    first = sandbox.run_code("x <- 1", context=ctx)
    assert first.error is None and first.results == []
    e = sandbox.run_code("x + 1", context=ctx)
    assert e.error is None
    assert texts(e) == ["[1] 2"]
    r = e.results[0]
    assert r.is_main_result is False and e.text is None
    assert (r.html, r.markdown, r.latex) == ("2", "2", "2")
    assert sandbox.run_code("x * 3", context=ctx).execution_count == e.execution_count + 1


def test_r_default_context(server, tag):
    with Sandbox.create(metadata={"test": tag}) as sbx:
        assert "r" not in {c.language for c in sbx.list_code_contexts()}
        assert texts(sbx.run_code("v <- 40; v + 2", language="r")) == ["[1] 42"]
        assert texts(sbx.run_code("v", language="r")) == ["[1] 40"]
        assert [c.language for c in sbx.list_code_contexts()].count("r") == 1
        own = sbx.create_code_context(language="r")
        assert texts(sbx.run_code("exists('v')", context=own)) == ["[1] FALSE"]


def test_r_output_streams(sandbox):
    seen = []
    e = sandbox.run_code("cat('a\\n'); print(1:3); message('to stderr'); cat('b\\n')", language="r",
                         on_stdout=lambda m: seen.append(("out", m)),
                         on_stderr=lambda m: seen.append(("err", m)))
    assert e.error is None and e.results == []
    assert "".join(e.logs.stdout) == "a\n[1] 1 2 3\nb\n"
    assert "".join(e.logs.stderr).startswith("to stderr\n")
    assert all(isinstance(m, OutputMessage) for _, m in seen)
    kinds = [k for k, _ in seen]
    assert kinds.index("err") > 0 and kinds[-1] == "out", seen
    assert all(m.error == (k == "err") for k, m in seen)


def test_r_error(sandbox):
    errors = []
    e = sandbox.run_code("stop('boom')", language="r", on_error=errors.append)
    assert isinstance(e.error, ExecutionError)
    assert e.error.name == "ERROR"
    assert e.error.value == "Error in eval(expr, envir, enclos): boom\n"
    assert "Traceback:" in e.error.traceback and 'stop("boom")' in e.error.traceback
    assert errors == [e.error]
    with pytest.raises(CodeExecutionError) as exc:
        e.raise_for_error()
    assert exc.value.name == "ERROR"
    assert texts(sandbox.run_code("1 + 1", language="r")) == ["[1] 2"]


def test_r_data_frame_and_plot(sandbox):
    e = sandbox.run_code("data.frame(n = c(1.5, 2), s = c('p', 'q'))", language="r")
    assert e.error is None and len(e.results) == 1
    r = e.results[0]
    assert sorted(r.formats()) == ["html", "latex", "markdown", "text"]
    assert r.text == "  n   s\n1 1.5 p\n2 2.0 q"
    assert r.html.startswith('<table class="dataframe">') and "<td>1.5</td><td>p</td>" in r.html
    assert "| n &lt;dbl&gt; | s &lt;chr&gt; |" in r.markdown
    assert "\\begin{tabular}" in r.latex
    plot = sandbox.run_code("hist(c(1, 2, 2, 3, 3, 3))", language="r")
    pngs = [x for x in plot.results if x.png]
    assert len(pngs) == 1 and base64.b64decode(pngs[0].png).startswith(b"\x89PNG\r\n\x1a\n")


def test_r_envs_cwd_unicode_timezone(server, tag):
    with Sandbox.create(metadata={"test": tag}, envs={"SANDBOX_WIDE": "everywhere"}) as sbx:
        ctx = sbx.create_code_context(language="r", cwd="/tmp")
        code = "cat(Sys.getenv('SANDBOX_WIDE'), Sys.getenv('PER_RUN'), getwd(), sep = '|')"
        assert sbx.run_code(code, context=ctx, envs={"PER_RUN": "once"}).logs.stdout == [
            "everywhere|once|/tmp"]
        assert sbx.run_code(code, context=ctx).logs.stdout == ["everywhere||/tmp"]
        e = sbx.run_code("s <- 'héllo ✓ 世界'; cat(s, '\\n'); nchar(s)", context=ctx)
        assert e.logs.stdout == ["héllo ✓ 世界 \n"] and texts(e) == ["[1] 10"]
        zone = sbx.run_code("Sys.timezone()", context=ctx)
        assert zone.logs.stderr == [] and texts(zone) == [f'[1] "{read_timezone()}"']


def test_r_timeout_then_answers(sandbox):
    ctx = sandbox.create_code_context(language="r")
    t0 = time.monotonic()
    with pytest.raises(TimeoutException):
        sandbox.run_code("Sys.sleep(60)", context=ctx, timeout=2)
    assert time.monotonic() - t0 < 6
    assert texts(sandbox.run_code("'awake'", context=ctx, timeout=20)) == ['[1] "awake"']


def test_language_not_installed(sandbox):
    expected = ("500: Failed to create context: No kernel is installed for language 'java' "
                "(looked for Jupyter kernelspecs: java)")
    with pytest.raises(SandboxException) as exc:
        sandbox.create_code_context(language="java")
    assert str(exc.value) == expected
    with pytest.raises(SandboxException) as exc:
        sandbox.run_code("1", language="java")
    assert str(exc.value) == expected
    assert texts(sandbox.run_code("6 * 7", language="r")) == ["[1] 42"]


def test_r_async(server, tag):
    async def main():
        async with await AsyncSandbox.create(metadata={"test": tag}) as sbx:
            ctx = await sbx.create_code_context(language="r")
            await sbx.run_code("z <- 2", context=ctx)
            seen = []

            async def on_stdout(m):
                seen.append(m.line)

            e = await sbx.run_code("cat(z ^ 10, '\\n'); z + 1", context=ctx, on_stdout=on_stdout)
            assert seen == ["1024 \n"] and texts(e) == ["[1] 3"]
            assert (await sbx.run_code("stop('async boom')", language="r")).error.name == "ERROR"
    asyncio.run(asyncio.wait_for(main(), 120))
