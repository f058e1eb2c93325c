/* The code interpreter: stateful code contexts over Jupyter kernels.

   Pieces (one file each):
   - pyzygote.c: CPython embedded in hutchd's zygote with IPython,
     ipykernel, numpy, pandas and matplotlib imported once; each Python
     kernel is a fork of that state, made inside the sandbox.
   - kernelspec.c: other languages (bash, javascript, r) started from their
     installed Jupyter kernelspecs.
   - jupyter.c: the Jupyter messaging protocol over ZeroMQ with HMAC-SHA256
     signatures (a client of one kernel).
   - contexts.c: the contexts of a sandbox (one kernel each).
   - server.c: the HTTP API on port 49999 inside the sandbox (/execute as
     an NDJSON stream, /contexts, /health), as E2B's code-interpreter
     server.  */
#pragma once

#include "libhutch/error.h"

#include <stdbool.h>
#include <sys/types.h>

#define INTERP_PORT 49999

/* In hutchd's zygote, before it creates any sandbox and while it has one
   thread: start the embedded interpreter and import the data stack.
   Leaves the GIL released.  Failure is not fatal to hutchd: Python
   contexts then start cold from the python3 kernelspec.  */
int pyzygote_init (hutch_error_t *err);

/* True when pyzygote_init succeeded in this process's ancestry.  */
bool pyzygote_ready (void);

/* In the sandbox's agent: fork a Python kernel from the preloaded
   interpreter, serving the Jupyter connection file CONNECTION_FILE, as
   user UID/GID with home HOME and working directory CWD.  Thread-safe.
   Returns the kernel's pid or -1 with errno.  */
pid_t pyzygote_fork_kernel (const char *connection_file, uid_t uid, gid_t gid, const char *home,
                            const char *cwd);

/* In the agent: start the code-interpreter server on INTERP_PORT, and
   with WARM the default Python context's kernel right away (otherwise on
   first use).  Returns 0 or -1.  */
int interp_start (bool warm);
