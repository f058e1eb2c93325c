"""AsyncSandbox: the same surface as Sandbox, on asyncio.

The HTTP work is the sync SDK's, run in threads (one per call, so that long
streams never starve a pool).  Streamed output comes back to the event loop
through a queue, so callbacks (plain or async functions) run in the loop as
the output arrives.  Cancelling an awaiting task aborts its HTTP stream.
"""
import asyncio
import inspect
import threading
from typing import Any, Callable, Dict, List, Optional, Union

from ._http import AbortToken
from .commands import CommandHandle, Commands, DEFAULT_TIMEOUT as COMMAND_TIMEOUT, _timeout
from .exceptions import SandboxException
from .filesystem import Filesystem
from .models import (CommandResult, Context, EntryInfo, Execution, FilesystemEvent, ProcessInfo,
                     SandboxInfo, SandboxMetrics, SandboxQuery, ValidationResult, WriteInfo)
from .sandbox import Sandbox, SandboxPaginator, _ClassOrInstance, _config, _query


def _in_thread(fn: Callable, *args, **kwargs) -> "asyncio.Future":
    """Run FN(*ARGS) in a new daemon thread; a future of its result."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def run() -> None:
        try:
            value, ok = fn(*args, **kwargs), True
        except BaseException as e:  # noqa: B902 - handed to the awaiting task
            value, ok = e, False
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting

    threading.Thread(target=run, name="hutch-async", daemon=True).start()
    return fut


async def _call(cb: Optional[Callable], arg: Any) -> None:
    if cb is None:
        return
    r = cb(arg)
    if inspect.isawaitable(r):
        await r


async def _pumped(fn: Callable[[Callable[[str, Any], None]], Any],
                  callbacks: Dict[str, Optional[Callable]], abort: AbortToken) -> Any:
    """Run FN(emit) in a thread; emit(kind, payload) there makes
    callbacks[kind](payload) run here, in order, before FN's result."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def put(item) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            abort.abort()

    def run() -> None:
        try:
            put(("__return__", fn(lambda kind, payload: put((kind, payload)))))
        except BaseException as e:  # noqa: B902
            put(("__raise__", e))

    threading.Thread(target=run, name="hutch-async-stream", daemon=True).start()
    try:
        while True:
            kind, payload = await queue.get()
            if kind == "__return__":
                return payload
            if kind == "__raise__":
                raise payload
            await _call(callbacks.get(kind), payload)
    except BaseException:
        abort.abort()
        raise


class _AsyncClassOrInstance(_ClassOrInstance):
    pass


def class_or_instance(cls_method: str):
    return lambda fn: _AsyncClassOrInstance(cls_method, fn)


class AsyncSandboxPaginator:
    """Pages of AsyncSandbox.list(): `await next_items()` while has_next, or
    `async for` over every sandbox."""

    def __init__(self, sync: SandboxPaginator):
        self._sync = sync

    @property
    def has_next(self) -> bool:
        return self._sync.has_next

    @property
    def next_token(self) -> Optional[str]:
        return self._sync.next_token

    async def next_items(self, request_timeout: Optional[float] = None) -> List[SandboxInfo]:
        return await _in_thread(self._sync.next_items, request_timeout)

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        while self.has_next:
            for item in await self.next_items():
                yield item


class AsyncCommandHandle:
    """A running command; `await wait()`, `await kill()`, `await send_stdin()`.
    Output callbacks run in the event loop as the output arrives."""

    def __init__(self, handle: CommandHandle, commands: "AsyncCommands", abort: AbortToken,
                 on_stdout=None, on_stderr=None, on_pty=None):
        self._h = handle
        self._commands = commands
        self._abort = abort

        def consume(emit):
            return handle.wait(on_stdout=lambda s: emit("stdout", s),
                               on_stderr=lambda s: emit("stderr", s),
                               on_pty=lambda b: emit("pty", b))

        self._task = asyncio.ensure_future(
            _pumped(consume, {"stdout": on_stdout, "stderr": on_stderr, "pty": on_pty}, abort))
        self._task.add_done_callback(lambda t: t.cancelled() or t.exception())

    @property
    def pid(self) -> int:
        return self._h.pid

    @property
    def stdout(self) -> str:
        return self._h.stdout

    @property
    def stderr(self) -> str:
        return self._h.stderr

    @property
    def exit_code(self) -> Optional[int]:
        return self._h.exit_code

    @property
    def error(self) -> Optional[str]:
        return self._h.error

    async def wait(self) -> CommandResult:
        """The CommandResult; CommandExitException on a non-zero exit."""
        return await asyncio.shield(self._task)

    async def kill(self) -> bool:
        return await self._commands.kill(self.pid)

    async def send_stdin(self, data: Union[str, bytes], request_timeout: Optional[float] = None) -> None:
        await self._commands.send_stdin(self.pid, data, request_timeout)

    async def close_stdin(self, request_timeout: Optional[float] = None) -> None:
        await self._commands.close_stdin(self.pid, request_timeout)

    async def disconnect(self) -> None:
        """Stop receiving output; the command keeps running."""
        self._abort.abort()
        self._task.cancel()
        await asyncio.wait([self._task])


class AsyncCommands:
    def __init__(self, sync: Commands):
        self._sync = sync

    async def list(self, request_timeout: Optional[float] = None) -> List[ProcessInfo]:
        return await _in_thread(self._sync.list, request_timeout)

    async def kill(self, pid: int, request_timeout: Optional[float] = None) -> bool:
        return await _in_thread(self._sync.kill, pid, request_timeout)

    async def send_stdin(self, pid: int, data: Union[str, bytes],
                         request_timeout: Optional[float] = None) -> None:
        await _in_thread(self._sync.send_stdin, pid, data, request_timeout)

    async def close_stdin(self, pid: int, request_timeout: Optional[float] = None) -> None:
        await _in_thread(self._sync.close_stdin, pid, request_timeout)

    async def _open(self, start: Callable[[AbortToken], CommandHandle]) -> "tuple":
        abort = AbortToken()
        try:
            handle = await _in_thread(start, abort)
        except asyncio.CancelledError:
            abort.abort()
            raise
        return handle, abort

    async def run(self, cmd: str, background: Optional[bool] = None,
                  envs: Optional[Dict[str, str]] = None, user: Optional[str] = None,
                  cwd: Optional[str] = None, on_stdout: Optional[Callable] = None,
                  on_stderr: Optional[Callable] = None, stdin: Union[None, bool, str, bytes] = None,
                  timeout: Optional[float] = COMMAND_TIMEOUT, request_timeout: Optional[float] = None):
        """As Sandbox.commands.run; returns a CommandResult, or with
        background=True an AsyncCommandHandle."""
        data = None
        if isinstance(stdin, (str, bytes, bytearray)):
            data, stdin = stdin, True

        def start(abort: AbortToken) -> CommandHandle:
            h = self._sync._start(cmd, envs, user, cwd, bool(stdin), timeout, request_timeout,
                                  abort=abort)
            if data is not None:
                try:
                    if data:
                        self._sync.send_stdin(h.pid, data, request_timeout)
                    self._sync.close_stdin(h.pid, request_timeout)
                except BaseException:
                    h.disconnect()
                    raise
            return h

        handle, abort = await self._open(start)
        ah = AsyncCommandHandle(handle, self, abort, on_stdout, on_stderr)
        if background:
            return ah
        try:
            return await ah.wait()
        except asyncio.CancelledError:
            abort.abort()
            raise

    async def connect(self, pid: int, timeout: Optional[float] = COMMAND_TIMEOUT,
                      request_timeout: Optional[float] = None, on_stdout: Optional[Callable] = None,
                      on_stderr: Optional[Callable] = None) -> AsyncCommandHandle:
        handle, abort = await self._open(
            lambda abort: self._sync.connect(pid, timeout, request_timeout, _abort=abort))
        return AsyncCommandHandle(handle, self, abort, on_stdout, on_stderr)


class AsyncWatchHandle:
    """A directory watch streaming events to on_event; `await stop()` ends it."""

    def __init__(self, stream, on_event: Callable, on_exit: Optional[Callable], abort: AbortToken):
        self._stream = stream
        self._abort = abort
        self._on_exit = on_exit

        def consume(emit):
            for msg in stream:
                fs = msg.get("filesystem")
                if fs:
                    emit("event", FilesystemEvent.from_json(fs))

        self._task = asyncio.ensure_future(self._run(consume, on_event))

    async def _run(self, consume, on_event) -> None:
        error: Optional[BaseException] = None
        try:
            await _pumped(consume, {"event": on_event}, self._abort)
        except asyncio.CancelledError:
            await self._exit(None)
            raise
        except Exception as e:
            error = e
        await self._exit(error)

    async def _exit(self, error) -> None:
        try:
            await _call(self._on_exit, error)
        except Exception:
            pass

    async def stop(self) -> None:
        self._abort.abort()
        self._task.cancel()
        await asyncio.wait([self._task])


class AsyncFilesystem:
    def __init__(self, sync: Filesystem):
        self._sync = sync

    async def read(self, path: str, format: str = "text", user: Optional[str] = None,
                   request_timeout: Optional[float] = None):
        """text, bytes, or (format='stream') an async iterator of byte chunks."""
        if format == "stream":
            reader = await _in_thread(self._sync.read, path, "stream", user, request_timeout)
            return _AsyncReader(reader)
        return await _in_thread(self._sync.read, path, format, user, request_timeout)

    async def write(self, path: str, data, user: Optional[str] = None,
                    request_timeout: Optional[float] = None) -> WriteInfo:
        return await _in_thread(self._sync.write, path, data, user, request_timeout)

    async def write_files(self, files: List[Dict[str, Any]], user: Optional[str] = None,
                          request_timeout: Optional[float] = None) -> List[WriteInfo]:
        return await _in_thread(self._sync.write_files, files, user, request_timeout)

    async def list(self, path: str, depth: Optional[int] = 1, user: Optional[str] = None,
                   request_timeout: Optional[float] = None) -> List[EntryInfo]:
        return await _in_thread(self._sync.list, path, depth, user, request_timeout)

    async def exists(self, path: str, user: Optional[str] = None,
                     request_timeout: Optional[float] = None) -> bool:
        return await _in_thread(self._sync.exists, path, user, request_timeout)

    async def get_info(self, path: str, user: Optional[str] = None,
                       request_timeout: Optional[float] = None) -> EntryInfo:
        return await _in_thread(self._sync.get_info, path, user, request_timeout)

    async def remove(self, path: str, user: Optional[str] = None,
                     request_timeout: Optional[float] = None) -> None:
        await _in_thread(self._sync.remove, path, user, request_timeout)

    async def rename(self, old_path: str, new_path: str, user: Optional[str] = None,
                     request_timeout: Optional[float] = None) -> EntryInfo:
        return await _in_thread(self._sync.rename, old_path, new_path, user, request_timeout)

    async def make_dir(self, path: str, user: Optional[str] = None,
                       request_timeout: Optional[float] = None) -> bool:
        return await _in_thread(self._sync.make_dir, path, user, request_timeout)

    async def watch_dir(self, path: str, on_event: Callable[[FilesystemEvent], Any],
                        on_exit: Optional[Callable[[Optional[Exception]], Any]] = None,
                        user: Optional[str] = None, request_timeout: Optional[float] = None,
                        timeout: Optional[float] = 60, recursive: bool = False,
                        include_entry: bool = False) -> AsyncWatchHandle:
        """Stream the changes under PATH to on_event (plain or async);
        on_exit(error or None) when the watch ends.  timeout: seconds the
        watch lasts (60 by default, 0 for none)."""
        msg: Dict[str, Any] = {"path": path, "recursive": bool(recursive)}
        if include_entry:
            msg["includeEntry"] = True
        abort = AbortToken()
        envd = self._sync._envd

        def start():
            stream = envd.stream("/filesystem.Filesystem/WatchDir", msg, user=user,
                                 timeout=_timeout(timeout), request_timeout=request_timeout,
                                 files=True, abort=abort)
            try:
                first = next(stream)
            except StopIteration:
                raise SandboxException(f"watch_dir {path}: the stream ended before the start event") from None
            except BaseException:
                stream.close()
                raise
            if "start" not in first:
                stream.close()
                raise SandboxException(f"watch_dir {path}: expected a start event, got {first!r}")
            return stream

        try:
            stream = await _in_thread(start)
        except asyncio.CancelledError:
            abort.abort()
            raise
        return AsyncWatchHandle(stream, on_event, on_exit, abort)


class _AsyncReader:
    """Async iterator over a FileStreamReader's chunks."""

    def __init__(self, reader):
        self._reader = reader

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        chunk = await _in_thread(next, self._reader, None)
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def read(self) -> bytes:
        return await _in_thread(self._reader.read)

    async def aclose(self) -> None:
        self._reader.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        self._reader.close()


class AsyncSandbox:
    """The asyncio twin of Sandbox: `sbx = await AsyncSandbox.create()`,
    then `await sbx.run_code(...)`, `await sbx.commands.run(...)`,
    `await sbx.files.read(...)`; `async with` kills it on exit."""

    default_template = Sandbox.default_template

    def __init__(self, *args, **kwargs):
        raise TypeError("create an AsyncSandbox with `await AsyncSandbox.create(...)`")

    @classmethod
    def _wrap(cls, sync: Sandbox) -> "AsyncSandbox":
        obj = cls.__new__(cls)
        obj._sync = sync
        obj._files = AsyncFilesystem(sync.files)
        obj._commands = AsyncCommands(sync.commands)
        return obj

    # ---- properties ----
    @property
    def sandbox_id(self) -> str:
        return self._sync.sandbox_id

    @property
    def sandbox_domain(self) -> Optional[str]:
        return self._sync.sandbox_domain

    @property
    def envd_api_url(self) -> str:
        return self._sync.envd_api_url

    @property
    def connection_config(self):
        return self._sync.connection_config

    @property
    def files(self) -> AsyncFilesystem:
        return self._files

    @property
    def commands(self) -> AsyncCommands:
        return self._commands

    def __repr__(self) -> str:
        return f"AsyncSandbox(sandbox_id={self.sandbox_id!r})"

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        try:
            await self.kill()
        except SandboxException:
            if exc_type is None:
                raise

    # ---- lifecycle ----
    @classmethod
    async def create(cls, template: Optional[str] = None, timeout: Optional[int] = None,
                     metadata: Optional[Dict[str, str]] = None, envs: Optional[Dict[str, str]] = None,
                     secure: bool = True, allow_internet_access: Optional[bool] = None,
                     **opts) -> "AsyncSandbox":
        """As Sandbox.create."""
        sync_cls = type("Sandbox", (Sandbox,), {"default_template": cls.default_template})
        sync = await _in_thread(sync_cls, template, timeout, metadata, envs, secure,
                                allow_internet_access, **opts)
        return cls._wrap(sync)

    @classmethod
    async def _cls_connect(cls, sandbox_id: str, timeout: Optional[int] = None, **opts) -> "AsyncSandbox":
        return cls._wrap(await _in_thread(Sandbox._cls_connect, sandbox_id, timeout, **opts))

    @class_or_instance("_cls_connect")
    async def connect(self, timeout: Optional[int] = None, **opts) -> "AsyncSandbox":
        await _in_thread(self._sync.connect, timeout, **opts)
        return self

    @classmethod
    def list(cls, query: Optional[SandboxQuery] = None, limit: Optional[int] = None,
             next_token: Optional[str] = None, metadata: Optional[Dict[str, str]] = None,
             state=None, **opts) -> AsyncSandboxPaginator:
        return AsyncSandboxPaginator(SandboxPaginator(_config(opts), _query(query, metadata, state),
                                                      limit, next_token))

    @classmethod
    async def _cls_kill(cls, sandbox_id: str, **opts) -> bool:
        return await _in_thread(Sandbox._cls_kill, sandbox_id, **opts)

    @class_or_instance("_cls_kill")
    async def kill(self, request_timeout: Optional[float] = None) -> bool:
        return await _in_thread(self._sync.kill, request_timeout)

    async def close(self, request_timeout: Optional[float] = None) -> bool:
        return await self.kill(request_timeout)

    @classmethod
    async def _cls_set_timeout(cls, sandbox_id: str, timeout: int, **opts) -> None:
        await _in_thread(Sandbox._cls_set_timeout, sandbox_id, timeout, **opts)

    @class_or_instance("_cls_set_timeout")
    async def set_timeout(self, timeout: int, request_timeout: Optional[float] = None) -> None:
        await _in_thread(self._sync.set_timeout, timeout, request_timeout)

    @classmethod
    async def _cls_get_info(cls, sandbox_id: str, **opts) -> SandboxInfo:
        return await _in_thread(Sandbox._cls_get_info, sandbox_id, **opts)

    @class_or_instance("_cls_get_info")
    async def get_info(self, request_timeout: Optional[float] = None) -> SandboxInfo:
        return await _in_thread(self._sync.get_info, request_timeout)

    @classmethod
    async def _cls_get_metrics(cls, sandbox_id: str, start=None, end=None, **opts) -> List[SandboxMetrics]:
        return await _in_thread(Sandbox._cls_get_metrics, sandbox_id, start, end, **opts)

    @class_or_instance("_cls_get_metrics")
    async def get_metrics(self, start=None, end=None,
                          request_timeout: Optional[float] = None) -> List[SandboxMetrics]:
        return await _in_thread(self._sync.get_metrics, start, end, request_timeout)

    @classmethod
    async def _cls_pause(cls, sandbox_id: str, **opts) -> bool:
        return await _in_thread(Sandbox._cls_pause, sandbox_id, **opts)

    @class_or_instance("_cls_pause")
    async def pause(self, request_timeout: Optional[float] = None) -> bool:
        return await _in_thread(self._sync.pause, request_timeout)

    beta_pause = pause

    async def is_running(self, request_timeout: Optional[float] = None) -> bool:
        return await _in_thread(self._sync.is_running, request_timeout)

    def get_host(self, port: int) -> str:
        return self._sync.get_host(port)

    # ---- code interpreter ----
    async def run_code(self, code: str, language: Optional[str] = None,
                       context: Optional[Context] = None, on_stdout: Optional[Callable] = None,
                       on_stderr: Optional[Callable] = None, on_result: Optional[Callable] = None,
                       on_error: Optional[Callable] = None, envs: Optional[Dict[str, str]] = None,
                       timeout: Optional[float] = None, request_timeout: Optional[float] = None,
                       raise_on_error: bool = False) -> Execution:
        """As Sandbox.run_code; callbacks may be coroutine functions."""
        abort = AbortToken()
        execution = await _pumped(
            lambda emit: self._sync._execute(code, language, context, envs, timeout, request_timeout,
                                             emit, abort),
            {"stdout": on_stdout, "stderr": on_stderr, "result": on_result, "error": on_error}, abort)
        if raise_on_error:
            execution.raise_for_error()
        return execution

    async def validate_code(self, code: str, language: Optional[str] = None,
                            context: Optional[Context] = None, request_timeout: Optional[float] = None,
                            raise_on_error: bool = False) -> ValidationResult:
        return await _in_thread(self._sync.validate_code, code, language, context, request_timeout,
                                raise_on_error)

    async def create_code_context(self, cwd: Optional[str] = None, language: Optional[str] = None,
                                  request_timeout: Optional[float] = None) -> Context:
        return await _in_thread(self._sync.create_code_context, cwd, language, request_timeout)

    async def list_code_contexts(self, request_timeout: Optional[float] = None) -> List[Context]:
        return await _in_thread(self._sync.list_code_contexts, request_timeout)

    async def restart_code_context(self, context: Union[Context, str],
                                   request_timeout: Optional[float] = None) -> None:
        await _in_thread(self._sync.restart_code_context, context, request_timeout)

    async def remove_code_context(self, context: Union[Context, str],
                                  request_timeout: Optional[float] = None) -> None:
        await _in_thread(self._sync.remove_code_context, context, request_timeout)
