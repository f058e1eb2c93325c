#!/usr/bin/python3
"""bench-interp's baselines: a local ipykernel through Debian's jupyter_client.

    /usr/bin/python3 bench/interp/baseline.py cold N   N cold starts
    /usr/bin/python3 bench/interp/baseline.py fast N   N cold starts, tight client
    /usr/bin/python3 bench/interp/baseline.py warm N   N round trips, one kernel
    /usr/bin/python3 bench/interp/baseline.py serve    one sample per request,
                                                       for bench.mjs (round-robin)

cold: one sample is jupyter_client.manager.start_new_kernel('python3')
(spawn /usr/bin/python3 -m ipykernel_launcher, stdio on /dev/null as in a
sandbox, then kernel_info until it answers), execute '1+1' until both its
execute_reply and the kernel's idle status are in, the execute_result's
text/plain checked to be '2', then kc.stop_channels() and
km.shutdown_kernel() (a shutdown_request, then wait for the process to
exit): all timed with time.perf_counter_ns.

fast: what a cold kernel needs at least, with a client that wastes no
time: KernelManager.start_kernel(), a client whose sockets reconnect every
millisecond (zmq's default is 100 ms) sending kernel_info_request every
5 ms until it has the reply and has heard iopub, then execute '1+1' (text
'2'), timed; the kernel is killed afterwards, not timed (as a sandbox's
kill() is not).

warm: one kernel started once (untimed), 'x = 0' run in it, then each
sample is kc.execute('x += 1; x') on a BlockingKernelClient until the
execute_reply and the idle status are in; the execute_result must be the
previous value plus one.

The kernel is the python3 kernelspec (/usr/share/jupyter/kernels/python3),
the one a hutch sandbox runs.  It gets what a sandbox's kernel gets from
its environment: an empty HOME on a tmpfs (a sandbox's /home/user is on its
tmpfs writable layer; a fresh one for every cold start, so IPython creates
its profile directory and history database each time, as in a new
sandbox), the sandbox's PATH, LANG C.UTF-8.  The scratch directory is in
/dev/shm (else $TMPDIR) and removed at the end.

cold, fast and warm print one line per sample (nanoseconds, then the
phases), then min/p50/p90/p99/max in ms.  serve reads one request per line
on stdin ('cold', 'fast', 'warm-start', 'warm', 'quit') and answers one
JSON object per line on stdout: {"ns": N, "phases": [...]} or {"error":
"..."}.  Any check that fails ends the program with status 1.
"""

import json
import math
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time

SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TIMEOUT = 60  # seconds for any single message; a sample never takes that long
# The kernelspec a sandbox uses; its stdio on /dev/null as in a sandbox.
KERNEL = {
    "kernel_name": "python3",
    "startup_timeout": TIMEOUT,
    "stdin": subprocess.DEVNULL,
    "stdout": subprocess.DEVNULL,
    "stderr": subprocess.DEVNULL,
}


class BaselineError(Exception):
    pass


SCRATCH = None


def fresh_home():
    """A new empty HOME for the kernels started from now on."""
    home = tempfile.mkdtemp(prefix="home-", dir=SCRATCH)
    os.environ["HOME"] = home
    return home


def setup_env():
    global SCRATCH
    shm = "/dev/shm"
    on_tmpfs = os.path.isdir(shm) and os.access(shm, os.W_OK)
    SCRATCH = tempfile.mkdtemp(prefix="hutch-bench-interp-baseline-", dir=shm if on_tmpfs else None)
    keep = {k: os.environ[k] for k in ("TMPDIR",) if k in os.environ}
    os.environ.clear()
    os.environ.update(keep)
    os.environ.update({"PATH": SANDBOX_PATH, "LANG": "C.UTF-8"})
    fresh_home()
    # jupyter_client imports ipykernel (for its kernelspec), which imports
    # debugpy, which warns on stderr that frozen modules are used.  Silence
    # it in this process only: the kernels do not get the variable.
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    import jupyter_client.manager  # noqa: F401
    import ipykernel.kernelspec  # noqa: F401

    del os.environ["PYDEVD_DISABLE_FILE_VALIDATION"]
    return SCRATCH


def run_cell(kc, code):
    """Execute code; wait for the execute_reply and the idle status of its
    request.  Returns the execute_result's text/plain (or None)."""
    msg_id = kc.execute(code, store_history=True)
    result = None
    idle = False
    reply = None
    while not idle:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "execute_result":
            result = msg["content"]["data"].get("text/plain")
        elif kind == "error":
            raise BaselineError(f"{code!r}: {msg['content']['ename']}: {msg['content']['evalue']}")
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            idle = True
    while reply is None:
        msg = kc.get_shell_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") == msg_id:
            reply = msg
    if reply["content"]["status"] != "ok":
        raise BaselineError(f"{code!r}: execute_reply status {reply['content']['status']}")
    return result


def cold_sample():
    from jupyter_client.manager import start_new_kernel

    fresh_home()
    t0 = time.perf_counter_ns()
    km, kc = start_new_kernel(**KERNEL)
    t1 = time.perf_counter_ns()
    try:
        text = run_cell(kc, "1+1")
    except BaseException:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    t2 = time.perf_counter_ns()
    kc.stop_channels()
    km.shutdown_kernel()
    t3 = time.perf_counter_ns()
    if text != "2":
        raise BaselineError(f"1+1 gave {text!r}, expected '2'")
    if km.is_alive():
        raise BaselineError("the kernel is still alive after shutdown_kernel()")
    return t3 - t0, [t1 - t0, t2 - t1, t3 - t2]


def poll(get, timeout):
    """One message from a blocking channel getter within timeout s, or None."""
    try:
        return get(timeout=timeout)
    except queue.Empty:
        return None


def fast_sample():
    import zmq
    from jupyter_client.manager import KernelManager

    fresh_home()
    t0 = time.perf_counter_ns()
    km = KernelManager(kernel_name="python3")
    km.start_kernel(**{k: v for k, v in KERNEL.items() if k not in ("kernel_name", "startup_timeout")})
    kc = km.client()
    try:
        kc.context.setsockopt(zmq.RECONNECT_IVL, 1)  # the default for new sockets
        kc.start_channels()
        t1 = time.perf_counter_ns()
        replied = heard_iopub = False
        deadline = time.monotonic() + TIMEOUT
        while not (replied and heard_iopub):
            if time.monotonic() > deadline:
                raise BaselineError("the kernel did not answer kernel_info")
            if not heard_iopub:
                kc.kernel_info()
            for _ in range(5):  # a kernel_info_request every 5 ms
                if not replied and poll(kc.get_shell_msg, 0.0005):
                    replied = True  # only kernel_info requests were sent
                if not heard_iopub and poll(kc.get_iopub_msg, 0.0005):
                    heard_iopub = True
                if replied and heard_iopub:
                    break
        # Drop what the extra kernel_info requests still bring.
        while poll(kc.get_shell_msg, 0) or poll(kc.get_iopub_msg, 0):
            pass
        t2 = time.perf_counter_ns()
        text = run_cell(kc, "1+1")
        t3 = time.perf_counter_ns()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    if text != "2":
        raise BaselineError(f"1+1 gave {text!r}, expected '2'")
    return t3 - t0, [t1 - t0, t2 - t1, t3 - t2]


class Warm:
    def __init__(self):
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(**KERNEL)
        if run_cell(self.kc, "x = 0") is not None:
            raise BaselineError("x = 0 returned a value")
        self.x = 0

    def sample(self):
        t0 = time.perf_counter_ns()
        text = run_cell(self.kc, "x += 1; x")
        t1 = time.perf_counter_ns()
        self.x += 1
        if text != str(self.x):
            raise BaselineError(f"x += 1; x gave {text!r}, expected {str(self.x)!r}")
        return t1 - t0, []

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel()


def pct(s, q):
    """Nearest-rank percentile of the sorted list s."""
    rank = min(len(s), max(1, math.ceil(q * len(s) - 1e-9)))
    return s[rank - 1]


def batch(mode, n):
    warmup = 10 if mode == "warm" else 1
    warm = Warm() if mode == "warm" else None
    sample = {"cold": cold_sample, "fast": fast_sample, "warm": lambda: warm.sample()}[mode]
    samples = []
    names = {
        "cold": "start_new_kernel / execute / shutdown",
        "fast": "start_kernel / until ready / execute",
        "warm": "",
    }[mode]
    print(f"# baseline {mode}: {n} samples after {warmup} discarded; ns{'  (' + names + ' ns)' if names else ''}")
    try:
        for i in range(-warmup, n):
            ns, phases = sample()
            if i >= 0:
                samples.append(ns)
                print(ns, *phases, flush=True)
    finally:
        if warm:
            warm.close()
    s = sorted(samples)
    ms = lambda v: f"{v / 1e6:.3f}"  # noqa: E731
    print(
        f"# {mode} (ms): n {len(s)} min {ms(s[0])} p50 {ms(pct(s, .5))} p90 {ms(pct(s, .9))} "
        f"p99 {ms(pct(s, .99))} max {ms(s[-1])}"
    )


def serve():
    warm = None
    try:
        for line in sys.stdin:
            req = line.strip()
            try:
                if req in ("cold", "fast"):
                    ns, phases = cold_sample() if req == "cold" else fast_sample()
                    out = {"ns": ns, "phases": phases}
                elif req == "warm-start":
                    if warm is None:
                        warm = Warm()
                    out = {"ns": 0, "phases": []}
                elif req == "warm":
                    if warm is None:
                        raise BaselineError("warm before warm-start")
                    ns, phases = warm.sample()
                    out = {"ns": ns, "phases": phases}
                elif req == "quit":
                    break
                else:
                    raise BaselineError(f"unknown request {req!r}")
            except Exception as e:  # reported to bench.mjs, which aborts
                out = {"error": f"{type(e).__name__}: {e}"}
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()
    finally:
        if warm:
            warm.close()


def main(argv):
    usage = "usage: baseline.py cold N | fast N | warm N | serve"
    if len(argv) == 2 and argv[1] == "serve":
        mode, n = "serve", 0
    elif len(argv) == 3 and argv[1] in ("cold", "fast", "warm") and argv[2].isdigit() and int(argv[2]) > 0:
        mode, n = argv[1], int(argv[2])
    else:
        print(usage, file=sys.stderr)
        return 2
    scratch = setup_env()
    try:
        if mode == "serve":
            serve()
        else:
            batch(mode, n)
    except BaselineError as e:
        print(f"baseline: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
