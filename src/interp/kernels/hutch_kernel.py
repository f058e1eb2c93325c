"""hutch's own Jupyter kernel, for languages without a packaged one.

    python3 hutch_kernel.py --language bash|javascript|typescript -f CONNECTION_FILE

It speaks the Jupyter messaging protocol 5.3 (pyzmq, HMAC-SHA256) and runs
the cells in one persistent process behind it: bash, or node running
hutch_node.js.  Standard library and pyzmq only (Debian's python3-zmq).

Interrupts come as SIGINT to the kernel's process group (interrupt_mode
"signal", what hutch sends), which reaches the shell or node directly; or
as interrupt_request on control, which we turn into the same signal.
"""

import argparse
import codecs
import datetime
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid

import zmq

DELIM = b"<IDS|MSG>"
PROTOCOL = "5.3"


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class Session:
    def __init__(self, key):
        self.key = key.encode()
        self.id = str(uuid.uuid4())

    def sign(self, parts):
        h = hmac.new(self.key, digestmod=hashlib.sha256)
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def send(self, sock, msg_type, content, parent=None, idents=()):
        header = {"msg_id": str(uuid.uuid4()), "session": self.id, "username": "hutch",
                  "date": now(), "msg_type": msg_type, "version": PROTOCOL}
        parts = [json.dumps(x).encode() for x in (header, parent or {}, {}, content)]
        sock.send_multipart(list(idents) + [DELIM, self.sign(parts)] + parts)

    def recv(self, sock):
        """(idents, header, content), or None for a malformed or forged message."""
        frames = sock.recv_multipart()
        if DELIM not in frames:
            return None
        i = frames.index(DELIM)
        sig, parts = frames[i + 1:i + 2], frames[i + 2:i + 6]
        if len(parts) < 4 or not sig or not hmac.compare_digest(sig[0], self.sign(parts)):
            return None
        try:
            header, _parent, _meta, content = [json.loads(p) for p in parts]
        except ValueError:
            return None
        return frames[:i], header, content


class Streams:
    """Reads the backend's stdout and stderr up to the end-of-cell token,
    decoding UTF-8 across reads and publishing text as it comes."""

    def __init__(self, token, publish):
        self.token = token
        self.publish = publish
        self.buf = {}
        self.dec = {}
        self.done = {}
        self.eof = {}
        self.tail = {}

    def reset(self, names):
        for n in names:
            self.buf[n] = b""
            self.dec[n] = codecs.getincrementaldecoder("utf-8")("replace")
            self.done[n] = False
            self.eof[n] = False
            self.tail[n] = b""

    def _emit(self, name, data, final=False):
        text = self.dec[name].decode(data, final)
        if text:
            self.publish(name, text)

    def feed(self, name, data):
        """Take DATA from stream NAME; b"" means EOF."""
        if self.done[name]:
            if data:
                self._emit(name, data)
            return
        if not data:
            self.done[name] = self.eof[name] = True
            self._emit(name, self.buf[name], True)
            self.buf[name] = b""
            return
        buf = self.buf[name] + data
        at = buf.find(self.token)
        if at >= 0:
            self._emit(name, buf[:at], True)
            self.tail[name] = buf[at + len(self.token):]
            self.buf[name] = b""
            self.done[name] = True
            return
        keep = self._partial(buf)
        self._emit(name, buf[:len(buf) - keep])
        self.buf[name] = buf[len(buf) - keep:]

    def _partial(self, buf):
        """Length of the longest end of BUF that could start the token."""
        for n in range(min(len(buf), len(self.token) - 1), 0, -1):
            if self.token.startswith(buf[-n:]):
                return n
        return 0


class Backend:
    """A persistent process running cells; stdout and stderr are pipes, and
    each cell ends with a token on both."""

    def __init__(self):
        self.proc = None
        self.token = ("\x1f__hutch_%s__" % uuid.uuid4().hex).encode()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def interrupt(self):
        try:
            os.killpg(os.getpgrp(), signal.SIGINT)
        except OSError:
            pass

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()


class Bash(Backend):
    language_info = {"name": "bash", "mimetype": "text/x-sh", "file_extension": ".sh",
                     "codemirror_mode": "shell", "pygments_lexer": "bash"}
    banner = "hutch bash kernel"

    # The trap makes SIGINT end the sourced cell (return), not the shell.
    # It is set again for every cell: after a return out of it while a
    # child was running, bash would not run it again.
    DRIVER = r"""
while :; do
  trap 'return 130 2>/dev/null' INT
  if IFS= read -r -u %(fd)d __hutch_cell; then
    . "$__hutch_cell"
    __hutch_rc=$?
    printf '%%s%%d\n' "$__HUTCH_TOKEN" "$__hutch_rc"
    printf '%%s\n' "$__HUTCH_TOKEN" >&2
  elif [ $? -le 128 ]; then
    exit 0
  fi
done
"""

    def __init__(self, workdir):
        super().__init__()
        self.dir = workdir
        self.cmd_w = None

    def start(self):
        r, w = os.pipe()
        env = dict(os.environ, __HUTCH_TOKEN=self.token.decode())
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-c", self.DRIVER % {"fd": r}],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(r,), env=env)
        os.close(r)
        self.cmd_w = w

    def send(self, code):
        path = os.path.join(self.dir, "cell.sh")
        with open(path, "w", encoding="utf-8") as f:
            f.write(code + "\n")
        os.write(self.cmd_w, (path + "\n").encode())

    def outcome(self, streams):
        """(status, data, error) once both tokens arrived."""
        tail = streams.tail.get("stdout", b"").split(b"\n", 1)[0]
        try:
            rc = int(tail)
        except ValueError:
            rc = 1
        if rc == 0:
            return "ok", None, None
        return "error", None, {"ename": "", "evalue": str(rc), "traceback": []}

    def kill(self):
        super().kill()
        if self.cmd_w is not None:
            os.close(self.cmd_w)
            self.cmd_w = None


class Node(Backend):
    def __init__(self, language):
        super().__init__()
        self.language = language
        ext = ".ts" if language == "typescript" else ".js"
        self.language_info = {"name": language, "mimetype": "text/" + language,
                              "file_extension": ext, "codemirror_mode": language,
                              "pygments_lexer": language}
        self.banner = "hutch %s kernel" % language
        self.cmd_w = None
        self.result = None

    def start(self):
        cr, cw = os.pipe()
        rr, rw = os.pipe()
        driver = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hutch_node.js")
        node = shutil.which("node") or shutil.which("nodejs") or "node"
        self.proc = subprocess.Popen(
            [node, driver, str(cr), str(rw), self.token.decode(), self.language],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(cr, rw))
        os.close(cr)
        os.close(rw)
        self.cmd_w = cw
        self.result = os.fdopen(rr, "rb")

    def send(self, code):
        os.write(self.cmd_w, (json.dumps({"code": code}) + "\n").encode())

    def outcome(self, streams):
        line = self.result.readline()
        try:
            r = json.loads(line)
        except ValueError:
            return "error", None, {"ename": "KernelError", "evalue": "no result from node",
                                   "traceback": []}
        if r.get("status") == "ok":
            return "ok", r.get("data"), None
        return "error", None, {k: r.get(k, "") for k in ("ename", "evalue", "traceback")}

    def kill(self):
        super().kill()
        for f in (self.cmd_w,):
            if f is not None:
                os.close(f)
        self.cmd_w = None
        if self.result:
            self.result.close()
            self.result = None


class Kernel:
    def __init__(self, conn, backend):
        self.session = Session(conn["key"])
        self.backend = backend
        self.count = 0
        self.parent = None
        ctx = zmq.Context()
        url = "%s://%s:" % (conn.get("transport", "tcp"), conn["ip"])

        def bind(kind, port):
            s = ctx.socket(kind)
            s.setsockopt(zmq.LINGER, 1000)
            s.bind(url + str(port))
            return s

        self.shell = bind(zmq.ROUTER, conn["shell_port"])
        self.control = bind(zmq.ROUTER, conn["control_port"])
        self.stdin = bind(zmq.ROUTER, conn["stdin_port"])
        self.iopub = bind(zmq.PUB, conn["iopub_port"])
        self.hb = bind(zmq.REP, conn["hb_port"])

    # Messages.

    def publish(self, msg_type, content, parent=None):
        self.session.send(self.iopub, msg_type, content, parent or self.parent)

    def status(self, state, parent):
        self.publish("status", {"execution_state": state}, parent)

    def stream(self, name, text):
        self.publish("stream", {"name": name, "text": text})

    def reply(self, sock, idents, parent, content):
        msg_type = parent["msg_type"].replace("_request", "_reply")
        self.session.send(sock, msg_type, content, parent, idents)

    # Polling: control and heartbeat are served even while a cell runs.

    def poll(self, fds, timeout=None):
        poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        poller.register(self.hb, zmq.POLLIN)
        for fd in fds:
            poller.register(fd, zmq.POLLIN)
        try:
            events = dict(poller.poll(timeout))
        except (InterruptedError, zmq.ZMQError):
            return []
        if self.hb in events:
            self.hb.send(self.hb.recv())
        if self.control in events:
            self.on_control()
        return [fd for fd in fds if fd in events]

    def on_control(self):
        msg = self.session.recv(self.control)
        if msg is None:
            return
        idents, header, content = msg
        t = header.get("msg_type")
        if t == "interrupt_request":
            self.backend.interrupt()
            self.reply(self.control, idents, header, {"status": "ok"})
        elif t == "shutdown_request":
            self.reply(self.control, idents, header,
                       {"status": "ok", "restart": bool(content.get("restart"))})
            self.backend.kill()
            sys.exit(0)
        elif t == "kernel_info_request":
            self.reply(self.control, idents, header, self.kernel_info())

    # Shell requests.

    def kernel_info(self):
        return {"status": "ok", "protocol_version": PROTOCOL, "implementation": "hutch",
                "implementation_version": "1.0", "language_info": self.backend.language_info,
                "banner": self.backend.banner, "help_links": []}

    def on_shell(self):
        msg = self.session.recv(self.shell)
        if msg is None:
            return
        idents, header, content = msg
        self.parent = header
        self.status("busy", header)
        try:
            self.dispatch(idents, header, content)
        finally:
            self.status("idle", header)

    def dispatch(self, idents, header, content):
        t = header.get("msg_type")
        if t == "execute_request":
            self.reply(self.shell, idents, header, self.execute(content))
        elif t == "kernel_info_request":
            self.reply(self.shell, idents, header, self.kernel_info())
        elif t == "is_complete_request":
            self.reply(self.shell, idents, header, {"status": "unknown"})
        elif t == "comm_info_request":
            self.reply(self.shell, idents, header, {"status": "ok", "comms": {}})
        elif t == "history_request":
            self.reply(self.shell, idents, header, {"status": "ok", "history": []})
        elif t == "complete_request":
            pos = content.get("cursor_pos", 0)
            self.reply(self.shell, idents, header,
                       {"status": "ok", "matches": [], "cursor_start": pos,
                        "cursor_end": pos, "metadata": {}})
        elif t == "inspect_request":
            self.reply(self.shell, idents, header,
                       {"status": "ok", "found": False, "data": {}, "metadata": {}})
        elif t == "shutdown_request":
            self.reply(self.shell, idents, header, {"status": "ok", "restart": False})
            self.backend.kill()
            sys.exit(0)

    def execute(self, content):
        code = content.get("code", "")
        silent = content.get("silent", False)
        if not silent:
            self.count += 1
            self.publish("execute_input", {"code": code, "execution_count": self.count})
        status, data, error = self.run(code)
        if status == "ok":
            if data and not silent:
                self.publish("execute_result",
                             {"execution_count": self.count, "data": data, "metadata": {}})
            return {"status": "ok", "execution_count": self.count, "user_expressions": {},
                    "payload": []}
        self.publish("error", error)
        return dict(error, status="error", execution_count=self.count)

    def run(self, code):
        """Run CODE in the backend, publishing its output as it comes."""
        if not self.backend.alive():
            self.backend.start()
        streams = Streams(self.backend.token, self.stream)
        streams.reset(["stdout", "stderr"])
        fds = {self.backend.proc.stdout.fileno(): "stdout",
               self.backend.proc.stderr.fileno(): "stderr"}
        self.backend.send(code)
        while not all(streams.done.values()):
            for fd in self.poll(list(fds)):
                streams.feed(fds[fd], os.read(fd, 65536))
        if not any(streams.eof.values()):
            return self.backend.outcome(streams)
        rc = self.backend.proc.wait()
        self.backend.kill()
        self.stream("stderr", "The %s process exited (status %d); its state was reset.\n"
                    % (self.backend.language_info["name"], rc))
        return "error", None, {"ename": "", "evalue": str(rc), "traceback": []}

    def serve(self):
        self.status("starting", {})
        while True:
            if self.poll([self.shell]):
                self.on_shell()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--language", required=True, choices=["bash", "javascript", "typescript"])
    p.add_argument("-f", dest="connection_file", required=True)
    args = p.parse_args()
    with open(args.connection_file, encoding="utf-8") as f:
        conn = json.load(f)
    # A handler, not SIG_IGN: exec resets handlers, so the shell and node
    # still get SIGINT with its default action and can trap it.
    signal.signal(signal.SIGINT, lambda *_: None)
    # Cells go next to the connection file, in a directory of our own that
    # hutch removes with the kernel.
    workdir = os.path.dirname(os.path.abspath(args.connection_file))
    backend = Bash(workdir) if args.language == "bash" else Node(args.language)
    backend.start()
    Kernel(conn, backend).serve()


if __name__ == "__main__":
    main()
