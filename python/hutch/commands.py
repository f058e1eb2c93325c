"""sandbox.commands: processes in the sandbox, over envd's process.Process
Connect service.  Commands run as `/bin/bash -l -c CMD`, like E2B's."""
import codecs
import threading
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from ._http import Aborted, Broken
from ._rpc import ConnectStream, EnvdClient, b64decode, b64encode
from .exceptions import (CommandExitException, InvalidArgumentException, NotFoundException,
                         SandboxException, SandboxNotFoundException)
from .models import CommandResult, ProcessInfo

DEFAULT_TIMEOUT = 60  # seconds; also the process's lifetime on the server (0 = unlimited)
START = "/process.Process/Start"

Event = Tuple[Optional[str], Optional[str], Optional[bytes]]


def _start_pid(msg: dict, what: str) -> int:
    start = (msg.get("event") or {}).get("start")
    if not isinstance(start, dict) or "pid" not in start:
        raise SandboxException(f"{what}: expected a start event first, got {msg!r}")
    return int(start["pid"])


def _timeout(timeout: Optional[float]) -> Optional[float]:
    return None if not timeout else float(timeout)


def process_config(cmd: str, envs, cwd) -> dict:
    if not isinstance(cmd, str):
        raise InvalidArgumentException("cmd must be a string")
    process = {"cmd": "/bin/bash", "args": ["-l", "-c", cmd]}
    if envs:
        process["envs"] = {str(k): str(v) for k, v in envs.items()}
    if cwd:
        process["cwd"] = cwd
    return process


class CommandHandle:
    """A running command (background=True, or commands.connect()).

    `wait()` returns its CommandResult or raises CommandExitException;
    `kill()` sends SIGKILL; `send_stdin()` / `close_stdin()` need stdin=True.
    Iterating it yields (stdout, stderr, pty) tuples, one of them set, as
    output arrives.  When callbacks were given to run(), a thread reads the
    output and calls them as it arrives (in that thread).
    """

    def __init__(self, pid: int, stream: ConnectStream, commands: "Commands",
                 on_stdout: Optional[Callable[[str], None]] = None,
                 on_stderr: Optional[Callable[[str], None]] = None):
        self._pid = pid
        self._stream = stream
        self._commands = commands
        self._out: List[str] = []
        self._err: List[str] = []
        self._out_dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._err_dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._result: Optional[CommandResult] = None
        self._exc: Optional[BaseException] = None
        self._done = threading.Event()
        self._consuming = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._on_stdout = on_stdout
        self._on_stderr = on_stderr
        if on_stdout or on_stderr:
            self._thread = threading.Thread(target=self._pump, name=f"hutch-cmd-{pid}", daemon=True)
            self._thread.start()

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    @property
    def exit_code(self) -> Optional[int]:
        return self._result.exit_code if self._result else None

    @property
    def error(self) -> Optional[str]:
        return self._result.error if self._result else None

    # ---- reading events ----
    def _flush(self) -> Iterator[Event]:
        out = self._out_dec.decode(b"", final=True)
        if out:
            self._out.append(out)
            yield out, None, None
        err = self._err_dec.decode(b"", final=True)
        if err:
            self._err.append(err)
            yield None, err, None

    def _events(self) -> Iterator[Event]:
        try:
            for msg in self._stream:
                ev = msg.get("event") or {}
                if "data" in ev:
                    data = ev["data"] or {}
                    if data.get("stdout"):
                        s = self._out_dec.decode(b64decode(data["stdout"]))
                        if s:
                            self._out.append(s)
                            yield s, None, None
                    elif data.get("stderr"):
                        s = self._err_dec.decode(b64decode(data["stderr"]))
                        if s:
                            self._err.append(s)
                            yield None, s, None
                    elif data.get("pty"):
                        yield None, None, b64decode(data["pty"])
                elif "end" in ev:
                    end = ev["end"] or {}
                    flushed = list(self._flush())
                    self._result = CommandResult(
                        stdout=self.stdout, stderr=self.stderr,
                        exit_code=int(end.get("exitCode", end.get("exit_code", 0)) or 0),
                        error=end.get("error"))
                    yield from flushed
            if self._result is None:
                yield from self._flush()
        except Aborted:
            yield from self._flush()
            raise
        except SandboxException as e:
            yield from self._flush()
            raise self._commands._explain(e) from None
        finally:
            self._stream.close()

    def __iter__(self) -> Iterator[Event]:
        if self._thread is not None:
            raise SandboxException("this command's output is read by the callbacks given to run()")
        if not self._consuming.acquire(blocking=False):
            raise SandboxException("this command's output is already being read")
        try:
            yield from self._events()
        finally:
            self._done.set()
            self._consuming.release()

    def _pump(self, on_stdout=None, on_stderr=None, on_pty=None) -> None:
        on_stdout = on_stdout or self._on_stdout
        on_stderr = on_stderr or self._on_stderr
        try:
            with self._consuming:
                for out, err, pty in self._events():
                    if out is not None and on_stdout:
                        on_stdout(out)
                    elif err is not None and on_stderr:
                        on_stderr(err)
                    elif pty is not None and on_pty:
                        on_pty(pty)
        except BaseException as e:  # handed to wait()
            self._exc = e
            self._stream.close()
        finally:
            self._done.set()

    def wait(self, on_pty: Optional[Callable[[bytes], None]] = None,
             on_stdout: Optional[Callable[[str], None]] = None,
             on_stderr: Optional[Callable[[str], None]] = None) -> CommandResult:
        """Wait for the command to end.  Raises CommandExitException when it
        exits with a non-zero code (after SIGKILL: -1), TimeoutException when
        it outlives its timeout."""
        if self._thread is not None:
            self._thread.join()
        elif not self._done.is_set():
            self._pump(on_stdout, on_stderr, on_pty)
        else:
            self._done.wait()
        if self._exc is not None:
            raise self._exc
        if self._result is None:
            raise SandboxException(f"command {self._pid} ended without an end event")
        if self._result.exit_code != 0:
            raise CommandExitException(stdout=self._result.stdout, stderr=self._result.stderr,
                                       exit_code=self._result.exit_code, error=self._result.error)
        return self._result

    def kill(self) -> bool:
        """SIGKILL the command.  False if it is not running anymore."""
        return self._commands.kill(self._pid)

    def send_stdin(self, data: Union[str, bytes], request_timeout: Optional[float] = None) -> None:
        self._commands.send_stdin(self._pid, data, request_timeout)

    def close_stdin(self, request_timeout: Optional[float] = None) -> None:
        self._commands.close_stdin(self._pid, request_timeout)

    def disconnect(self) -> None:
        """Stop reading the output; the command keeps running (see commands.connect)."""
        self._stream.abort()
        self._stream.close()


class Commands:
    """Run and manage processes in the sandbox."""

    def __init__(self, envd: EnvdClient, is_running: Callable[[], bool]):
        self._envd = envd
        self._is_running = is_running

    def _explain(self, e: SandboxException) -> SandboxException:
        """A broken stream: say so if the sandbox is gone."""
        if not isinstance(e, Broken):
            return e
        try:
            running = self._is_running()
        except Exception:
            return e
        if not running:
            return SandboxNotFoundException(
                f"sandbox {self._envd.sandbox_id} was killed or timed out while the command was running")
        return e

    def list(self, request_timeout: Optional[float] = None) -> List[ProcessInfo]:
        """The running processes that envd started (commands, not their children)."""
        res = self._envd.unary("/process.Process/List", {}, request_timeout=request_timeout)
        out = []
        for p in res.get("processes") or []:
            cfg = p.get("config") or {}
            out.append(ProcessInfo(pid=int(p.get("pid", 0)), tag=p.get("tag"), cmd=cfg.get("cmd", ""),
                                   args=list(cfg.get("args") or []), envs=dict(cfg.get("envs") or {}),
                                   cwd=cfg.get("cwd")))
        return out

    def kill(self, pid: int, request_timeout: Optional[float] = None) -> bool:
        """SIGKILL process PID.  False if there is no such process."""
        try:
            self._envd.unary("/process.Process/SendSignal",
                             {"process": {"pid": int(pid)}, "signal": "SIGNAL_SIGKILL"},
                             request_timeout=request_timeout)
        except NotFoundException:
            return False
        return True

    def send_stdin(self, pid: int, data: Union[str, bytes], request_timeout: Optional[float] = None) -> None:
        """Write DATA to the stdin of PID (started with stdin=True)."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        self._envd.unary("/process.Process/SendInput",
                         {"process": {"pid": int(pid)}, "input": {"stdin": b64encode(raw)}},
                         request_timeout=request_timeout)

    def close_stdin(self, pid: int, request_timeout: Optional[float] = None) -> None:
        """Close the stdin of PID (the command then reads EOF)."""
        self._envd.unary("/process.Process/CloseStdin", {"process": {"pid": int(pid)}},
                         request_timeout=request_timeout)

    def _start(self, cmd: str, envs, user, cwd, stdin: bool, timeout, request_timeout,
               on_stdout=None, on_stderr=None, abort=None) -> CommandHandle:
        msg = {"process": process_config(cmd, envs, cwd), "stdin": bool(stdin)}
        stream = self._envd.stream(START, msg, user=user, timeout=_timeout(timeout),
                                   request_timeout=request_timeout, abort=abort)
        try:
            pid = _start_pid(next(stream), "start the command")
        except StopIteration:
            stream.close()
            raise SandboxException("start the command: the stream ended before the start event") from None
        except BaseException:
            stream.close()
            raise
        return CommandHandle(pid, stream, self, on_stdout, on_stderr)

    def run(self, cmd: str, background: Optional[bool] = None, envs: Optional[Dict[str, str]] = None,
            user: Optional[str] = None, cwd: Optional[str] = None,
            on_stdout: Optional[Callable[[str], None]] = None,
            on_stderr: Optional[Callable[[str], None]] = None,
            stdin: Union[None, bool, str, bytes] = None, timeout: Optional[float] = DEFAULT_TIMEOUT,
            request_timeout: Optional[float] = None, _abort=None):
        """Run CMD with `/bin/bash -l -c`.

        In the foreground (the default) wait for it and return a
        CommandResult, raising CommandExitException on a non-zero exit; with
        background=True return a CommandHandle as soon as it has started.
        stdin=True keeps its stdin open for send_stdin(); a str or bytes is
        written to its stdin, which is then closed.  timeout (seconds, 60 by
        default, 0 for none) bounds the command's life: the server kills it
        then, and the call raises TimeoutException.  user: 'user' (the
        default) or 'root'.  on_stdout/on_stderr get the output as it arrives.
        """
        data = None
        if isinstance(stdin, (str, bytes, bytearray)):
            data, stdin = stdin, True
        handle = self._start(cmd, envs, user, cwd, bool(stdin), timeout, request_timeout,
                             on_stdout if background else None, on_stderr if background else None,
                             _abort)
        if data is not None:
            try:
                if data:
                    self.send_stdin(handle.pid, data, request_timeout)
                self.close_stdin(handle.pid, request_timeout)
            except BaseException:
                handle.disconnect()
                raise
        if background:
            return handle
        return handle.wait(on_stdout=on_stdout, on_stderr=on_stderr)

    def connect(self, pid: int, timeout: Optional[float] = DEFAULT_TIMEOUT,
                request_timeout: Optional[float] = None,
                on_stdout: Optional[Callable[[str], None]] = None,
                on_stderr: Optional[Callable[[str], None]] = None, _abort=None) -> CommandHandle:
        """Attach to a running process: its output from now on, and its end."""
        stream = self._envd.stream("/process.Process/Connect", {"process": {"pid": int(pid)}},
                                   timeout=_timeout(timeout), request_timeout=request_timeout,
                                   abort=_abort)
        try:
            got = _start_pid(next(stream), "connect to the command")
        except StopIteration:
            stream.close()
            raise SandboxException("connect: the stream ended before the start event") from None
        except BaseException:
            stream.close()
            raise
        return CommandHandle(got, stream, self, on_stdout, on_stderr)
