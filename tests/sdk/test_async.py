"""AsyncSandbox: the same surface on asyncio."""
import asyncio
import time

import pytest

from hutch import (AsyncCommandHandle, AsyncSandbox, AuthenticationException, CodeExecutionError,
                   CommandExitException, FilesystemEventType, NotFoundException, SandboxException,
                   TimeoutException)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_lifecycle(server, tag):
    async def main():
        async with await AsyncSandbox.create(metadata={"test": tag}) as sbx:
            assert await sbx.is_running()
            info = await sbx.get_info()
            assert info.sandbox_id == sbx.sandbox_id and info.metadata == {"test": tag}
            ids = [s.sandbox_id async for s in AsyncSandbox.list(metadata={"test": tag})]
            assert ids == [sbx.sandbox_id]
            page = AsyncSandbox.list(metadata={"test": tag}, limit=1)
            assert [s.sandbox_id for s in await page.next_items()] == [sbx.sandbox_id]
            other = await AsyncSandbox.connect(sbx.sandbox_id)
            assert await other.is_running()
            await sbx.set_timeout(500)
            await AsyncSandbox.set_timeout(sbx.sandbox_id, 600)
            assert (await AsyncSandbox.get_info(sbx.sandbox_id)).sandbox_id == sbx.sandbox_id
            assert await sbx.get_metrics()
            assert sbx.get_host(80).startswith(f"80-{sbx.sandbox_id}.")
            sid = sbx.sandbox_id
        assert not await sbx.is_running()
        with pytest.raises(NotFoundException):
            await AsyncSandbox.get_info(sid)
        assert await AsyncSandbox.kill(sid) is False
    run(main())


def test_wrong_key(server):
    async def main():
        with pytest.raises(AuthenticationException):
            await AsyncSandbox.create(api_key="e2b_" + "e" * 40)
    run(main())


def test_constructor_refused():
    with pytest.raises(TypeError, match="create"):
        AsyncSandbox()


def test_commands(server):
    async def main():
        async with await AsyncSandbox.create() as sbx:
            r = await sbx.commands.run("echo hi; id -un")
            assert r.stdout == "hi\nuser\n"
            with pytest.raises(CommandExitException) as e:
                await sbx.commands.run("exit 4")
            assert e.value.exit_code == 4

            seen = []

            async def on_stdout(s):
                await asyncio.sleep(0)
                seen.append((s, time.monotonic()))

            t0 = time.monotonic()
            h = await sbx.commands.run("echo a; sleep 1; echo b", background=True, on_stdout=on_stdout,
                                       on_stderr=lambda s: seen.append((s, 0)))
            assert isinstance(h, AsyncCommandHandle)
            assert h.pid in [p.pid for p in await sbx.commands.list()]
            result = await h.wait()
            assert result.stdout == "a\nb\n"
            assert [s for s, _ in seen] == ["a\n", "b\n"]
            assert seen[1][1] - seen[0][1] > 0.7
            assert time.monotonic() - t0 < 10

            h = await sbx.commands.run("cat", background=True, stdin=True)
            await h.send_stdin("piped")
            await h.close_stdin()
            assert (await h.wait()).stdout == "piped"

            h = await sbx.commands.run("sleep 60", background=True)
            assert await h.kill()
            with pytest.raises(CommandExitException):
                await h.wait()

            with pytest.raises(TimeoutException):
                await sbx.commands.run("sleep 30", timeout=1)

            h = await sbx.commands.run("sleep 0.5; echo late", background=True)
            attached = await sbx.commands.connect(h.pid)
            assert "late" in (await attached.wait()).stdout
    run(main())


def test_files(server):
    async def main():
        async with await AsyncSandbox.create() as sbx:
            info = await sbx.files.write("/tmp/a/x.txt", "async ✓")
            assert info.path == "/tmp/a/x.txt"
            assert await sbx.files.read("/tmp/a/x.txt") == "async ✓"
            assert await sbx.files.read("/tmp/a/x.txt", format="bytes") == "async ✓".encode()
            chunks = [c async for c in await sbx.files.read("/tmp/a/x.txt", format="stream")]
            assert b"".join(chunks) == "async ✓".encode()
            assert [e.name for e in await sbx.files.list("/tmp/a")] == ["x.txt"]
            assert await sbx.files.exists("/tmp/a/x.txt")
            assert (await sbx.files.get_info("/tmp/a/x.txt")).size == len("async ✓".encode())
            assert await sbx.files.make_dir("/tmp/b")
            await sbx.files.rename("/tmp/a/x.txt", "/tmp/b/y.txt")
            await sbx.files.write_files([{"path": "/tmp/b/z", "data": b"z"}])
            await sbx.files.remove("/tmp/a")
            assert not await sbx.files.exists("/tmp/a")

            events = []
            got = asyncio.Event()
            exits = []

            async def on_event(ev):
                events.append(ev)
                if ev.name == "w.txt":
                    got.set()

            w = await sbx.files.watch_dir("/tmp/b", on_event, on_exit=exits.append)
            await sbx.files.write("/tmp/b/w.txt", "w")
            await asyncio.wait_for(got.wait(), 10)
            assert any(e.type in (FilesystemEventType.CREATE, FilesystemEventType.WRITE) for e in events)
            await w.stop()
            assert exits == [None]
    run(main())


def test_run_code(server):
    async def main():
        async with await AsyncSandbox.create() as sbx:
            await sbx.run_code("x = 1")
            e = await sbx.run_code("x += 1; x")
            assert e.text == "2"
            seen = []

            async def on_stdout(m):
                seen.append((m.line, time.monotonic()))

            t0 = time.monotonic()
            e = await sbx.run_code("import time\nprint('a', flush=True)\ntime.sleep(1.2)\nprint('b')",
                                   on_stdout=on_stdout)
            assert [s for s, _ in seen] == ["a\n", "b\n"]
            assert seen[1][1] - seen[0][1] > 0.8 and time.monotonic() - t0 < 20
            e = await sbx.run_code("undeclared_var")
            assert e.error.name == "NameError"
            with pytest.raises(CodeExecutionError, match="Execution failed: NameError"):
                await sbx.run_code("undeclared_var", raise_on_error=True)
            with pytest.raises(TimeoutException):
                await sbx.run_code("import time; time.sleep(30)", timeout=1)
            task = asyncio.ensure_future(sbx.run_code("import time; time.sleep(30)"))
            await asyncio.sleep(1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await sbx.run_code("'after'", timeout=20)).text == "after"
            ctx = await sbx.create_code_context(cwd="/tmp")
            assert (await sbx.run_code("import os; os.getcwd()", context=ctx)).text == "/tmp"
            assert ctx.id in [c.id for c in await sbx.list_code_contexts()]
            await sbx.restart_code_context(ctx)
            await sbx.remove_code_context(ctx)
            assert (await sbx.validate_code("1 +")).valid is False
    run(main())


def test_killed(server):
    async def main():
        sbx = await AsyncSandbox.create()
        assert await sbx.kill()
        assert not await sbx.is_running()
        with pytest.raises(SandboxException):
            await sbx.commands.run("true")
        assert await sbx.close() is False
    run(main())


def test_gather(server):
    async def one(i):
        async with await AsyncSandbox.create() as sbx:
            r = await sbx.commands.run(f"echo {i}; sleep 0.5")
            return r.stdout

    async def main():
        t0 = time.monotonic()
        out = await asyncio.gather(*(one(i) for i in range(8)))
        assert out == [f"{i}\n" for i in range(8)]
        assert time.monotonic() - t0 < 4  # concurrent, not one after another
    run(main())
