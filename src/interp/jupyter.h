/* A client of one Jupyter kernel: the messaging protocol (v5.3) over
   ZeroMQ, with HMAC-SHA256 signatures.

   The kernel binds; we connect shell and control (DEALER) and iopub (SUB).
   A client is not thread-safe: one thread at a time uses it (the context's
   lock serialises them, and the lock is the memory barrier ZeroMQ asks for
   when a socket changes threads).  The kernel's death is seen through its
   pidfd, polled together with the sockets.  */
#pragma once

#include "libhutch/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#define JUPYTER_ID_LEN 36 /* a UUID as text */

enum jupyter_channel
{
  JUPYTER_SHELL,
  JUPYTER_IOPUB,
  JUPYTER_STDIN,
  JUPYTER_CONTROL,
  JUPYTER_HB,
  _JUPYTER_CHANNEL_MAX,
};

/* Results of the receiving functions, besides < 0 for errors.  */
enum
{
  JUPYTER_TIMEOUT = 0,
  JUPYTER_GOT = 1,
  JUPYTER_DONE = 2,  /* the execution is complete */
  JUPYTER_DEAD = 3,  /* the kernel process exited */
  JUPYTER_WATCH = 4, /* the watched descriptor is readable */
};

/* What a connection file says.  */
struct jupyter_conn
{
  int ports[_JUPYTER_CHANNEL_MAX];
  char key[65];
};

/* A random version-4 UUID in OUT (JUPYTER_ID_LEN + 1 bytes).  */
void jupyter_uuid (char *out);

/* Choose five free ports on 127.0.0.1 and a random key, and write them as
   a connection file at PATH (mode 0600, owned by UID/GID).  */
int jupyter_conn_write (const char *path, uid_t uid, gid_t gid, struct jupyter_conn *ret,
                        hutch_error_t *err);

/* A received message.  The string fields point into the JSON parts.  */
struct jupyter_msg
{
  enum jupyter_channel channel;
  json_t *header, *parent, *metadata, *content;
  const char *type;      /* header.msg_type */
  const char *parent_id; /* parent_header.msg_id, "" when none */
  const char *date;      /* header.date, NULL when none */
};

void jupyter_msg_free (struct jupyter_msg *m);

static inline void
cleanup_jupyter_msgp (void *p)
{
  jupyter_msg_free (*(struct jupyter_msg **)p);
}
#define cleanup_jupyter_msg __attribute__ ((cleanup (cleanup_jupyter_msgp)))

struct jupyter_client;

/* Connect to the kernel of CONN, process PID watched through PIDFD (taken
   over).  INTERRUPT_BY_MESSAGE chooses interrupt_request over SIGINT.  */
struct jupyter_client *jupyter_client_new (const struct jupyter_conn *conn, pid_t pid, int pidfd,
                                           bool interrupt_by_message, hutch_error_t *err);

/* Close the sockets and the pidfd.  The kernel is left alone.  NULL is
   fine.  */
void jupyter_client_free (struct jupyter_client *c);

/* Wait until the kernel answers kernel_info_request and its iopub
   messages reach us (a SUB socket misses what is published before it is
   connected), up to TIMEOUT_MS.  */
int jupyter_wait_ready (struct jupyter_client *c, long timeout_ms, hutch_error_t *err);

/* Send a request of TYPE with CONTENT (stolen) on CHANNEL.  RET_ID, when
   not NULL, receives the msg_id (JUPYTER_ID_LEN + 1 bytes).  */
int jupyter_send (struct jupyter_client *c, enum jupyter_channel channel, const char *type,
                  json_t *content, char *ret_id, hutch_error_t *err);

/* The next correctly signed message on shell, iopub or control, waiting
   until DEADLINE (monotonic ns; 0 waits forever).  Returns JUPYTER_GOT
   with *RET, JUPYTER_TIMEOUT, JUPYTER_DEAD, JUPYTER_WATCH when WATCH_FD
   (-1: none) is readable, or < 0.  */
int jupyter_recv (struct jupyter_client *c, unsigned long long deadline, int watch_fd,
                  struct jupyter_msg **ret, hutch_error_t *err);

/* False once the kernel process has exited.  */
bool jupyter_alive (struct jupyter_client *c);

/* Interrupt the running execution: SIGINT to the kernel's process group,
   or an interrupt_request on control.  */
int jupyter_interrupt (struct jupyter_client *c);

/* SIGKILL the kernel and its process group.  */
void jupyter_kill (struct jupyter_client *c);

/* One execute_request and what is known of its progress.  */
struct jupyter_exec
{
  char id[JUPYTER_ID_LEN + 1];
  bool replied;  /* the shell execute_reply arrived */
  bool idle;     /* iopub status idle for it arrived */
  json_t *reply; /* the execute_reply content, once replied */
  bool silent;
  unsigned long long idle_ns;
  unsigned long long replied_ns;
  unsigned long long last_iopub_ns;
  int watch_fd; /* see jupyter_recv; -1 after jupyter_execute */
};

/* Send CODE as an execute_request.  SILENT executions neither count nor
   echo; they are the hidden ones (cwd, environment, validation).  */
int jupyter_execute (struct jupyter_client *c, const char *code, bool silent,
                     struct jupyter_exec *x, hutch_error_t *err);

/* The next message of X: its iopub messages (status excluded) and its
   execute_reply, until both the reply and the idle status arrived.
   Returns JUPYTER_GOT with *RET, JUPYTER_TIMEOUT (DEADLINE passed),
   JUPYTER_DONE, JUPYTER_DEAD, JUPYTER_WATCH (X->watch_fd), or < 0.  */
int jupyter_exec_next (struct jupyter_client *c, struct jupyter_exec *x,
                       unsigned long long deadline, struct jupyter_msg **ret, hutch_error_t *err);

void jupyter_exec_release (struct jupyter_exec *x);

/* Run CODE silently and wait up to TIMEOUT_MS for it.  *RET_STDOUT (when
   not NULL) gets what it printed; *RET_ERROR gets "name: value" when it
   raised, else NULL.  Returns 0 or < 0 (timeout, death).  */
int jupyter_run_hidden (struct jupyter_client *c, const char *code, long timeout_ms,
                        char **ret_stdout, char **ret_error, hutch_error_t *err);
