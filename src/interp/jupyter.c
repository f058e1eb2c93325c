/* The protocol side of the Jupyter client: readiness, executions and
   their completion, interrupts.  */
#define _GNU_SOURCE
#include "jupyter-internal.h"
#include "libhutch/util.h"

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>

#define READY_RETRY_NS (250ULL * 1000000ULL)
/* After the execute_reply, how long iopub may stay silent before the idle
   status is taken as lost.  The kernel publishes idle right after the
   reply, so this only matters if a message was dropped.  */
#define IDLE_GRACE_NS (3ULL * 1000000000ULL)
/* After the idle status, how long the reply may take on the other socket.
   ipykernel sends none when an interrupt lands outside the cell's code
   (it logs "KeyboardInterrupt caught in kernel" and goes idle).  */
#define REPLY_GRACE_NS (1ULL * 1000000000ULL)
#define ABORT_BARRIER_NS (5ULL * 1000000000ULL)

static unsigned long long
min_deadline (unsigned long long a, unsigned long long b)
{
  if (a == 0)
    return b;
  if (b == 0)
    return a;
  return a < b ? a : b;
}

static bool
deadline_passed (unsigned long long deadline)
{
  return deadline && now_ns () >= deadline;
}

/* Readiness.  */

int
jupyter_wait_ready (struct jupyter_client *c, long timeout_ms, hutch_error_t *err)
{
  unsigned long long deadline = now_ns () + (unsigned long long)timeout_ms * 1000000ULL;
  unsigned long long resend = 0;
  bool replied = false, heard_iopub = false;

  while (!replied || !heard_iopub)
    {
      cleanup_jupyter_msg struct jupyter_msg *m = NULL;
      int r;

      /* Each kernel_info_request also makes the kernel publish busy and
         idle, so repeating it until iopub speaks proves SUB is connected.  */
      if (!heard_iopub && now_ns () >= resend)
        {
          if (jupyter_send (c, JUPYTER_SHELL, "kernel_info_request", json_object (), NULL, err) < 0)
            return -1;
          resend = now_ns () + READY_RETRY_NS;
        }
      r = jupyter_recv (c, heard_iopub ? deadline : min_deadline (deadline, resend), -1, &m, err);
      if (r < 0)
        return r;
      if (r == JUPYTER_DEAD)
        return hutch_make_error (err, 0, "the kernel exited while starting");
      if (r == JUPYTER_TIMEOUT && deadline_passed (deadline))
        return hutch_make_error (err, ETIMEDOUT, "the kernel did not answer");
      if (m && m->channel == JUPYTER_IOPUB)
        heard_iopub = true;
      if (m && strcmp (m->type, "kernel_info_reply") == 0)
        replied = true;
    }
  return 0;
}

/* Executions.  */

/* After an error with stop_on_error, ipykernel aborts the execute
   requests it receives until an event it queued behind that error has
   run, which a request sent right after the idle status can beat.  The
   reply to a kernel_info_request sent now proves that event ran.  */
static void
pass_abort_window (struct jupyter_client *c)
{
  cleanup_error hutch_error_t err = NULL;
  unsigned long long deadline = now_ns () + ABORT_BARRIER_NS;
  char id[JUPYTER_ID_LEN + 1];

  c->aborting = false;
  if (jupyter_send (c, JUPYTER_SHELL, "kernel_info_request", json_object (), id, &err) < 0)
    return;
  for (;;)
    {
      cleanup_jupyter_msg struct jupyter_msg *m = NULL;

      if (jupyter_recv (c, deadline, -1, &m, &err) != JUPYTER_GOT)
        return;
      if (m->channel == JUPYTER_SHELL && strcmp (m->parent_id, id) == 0)
        return;
    }
}

int
jupyter_execute (struct jupyter_client *c, const char *code, bool silent, struct jupyter_exec *x,
                 hutch_error_t *err)
{
  json_t *content = json_pack ("{s:s, s:b, s:b, s:{}, s:b, s:b}", "code", code, "silent", silent,
                               "store_history", !silent, "user_expressions", "allow_stdin", 0,
                               "stop_on_error", 1);

  memset (x, 0, sizeof *x);
  x->watch_fd = -1;
  x->silent = silent;
  if (content == NULL)
    return hutch_make_error (err, EINVAL, "the code is not valid UTF-8");
  if (c->aborting)
    pass_abort_window (c);
  return jupyter_send (c, JUPYTER_SHELL, "execute_request", content, x->id, err);
}

void
jupyter_exec_release (struct jupyter_exec *x)
{
  json_decref (x->reply);
  x->reply = NULL;
}

static bool
is_idle (const struct jupyter_msg *m)
{
  const char *state = json_string_value (json_object_get (m->content, "execution_state"));
  return state && strcmp (state, "idle") == 0;
}

static bool
is_error_reply (const struct jupyter_msg *m)
{
  const char *status = json_string_value (json_object_get (m->content, "status"));
  return status && strcmp (status, "error") == 0;
}

/* Account for M; true when the caller should see it.  */
static bool
track (struct jupyter_client *c, struct jupyter_exec *x, const struct jupyter_msg *m)
{
  if (strcmp (m->parent_id, x->id) != 0)
    return false;
  if (m->channel == JUPYTER_IOPUB)
    {
      x->last_iopub_ns = now_ns ();
      if (strcmp (m->type, "status") != 0)
        return true;
      if (is_idle (m) && !x->idle)
        {
          x->idle = true;
          x->idle_ns = now_ns ();
        }
      return false;
    }
  if (m->channel == JUPYTER_SHELL && strcmp (m->type, "execute_reply") == 0 && !x->replied)
    {
      x->replied = true;
      x->replied_ns = now_ns ();
      x->reply = json_incref (m->content);
      if (!x->silent && is_error_reply (m))
        c->aborting = true;
      return true;
    }
  return false;
}

/* When the execution counts as complete though half of its end is
   missing; 0 while both are.  */
static unsigned long long
grace_deadline (const struct jupyter_exec *x)
{
  unsigned long long last = x->replied_ns > x->last_iopub_ns ? x->replied_ns : x->last_iopub_ns;

  if (x->replied && !x->idle)
    return last + IDLE_GRACE_NS;
  if (x->idle && !x->replied)
    return x->idle_ns + REPLY_GRACE_NS;
  return 0;
}

int
jupyter_exec_next (struct jupyter_client *c, struct jupyter_exec *x, unsigned long long deadline,
                   struct jupyter_msg **ret, hutch_error_t *err)
{
  for (;;)
    {
      struct jupyter_msg *m = NULL;
      unsigned long long grace = grace_deadline (x);
      int r;

      if ((x->replied && x->idle) || deadline_passed (grace))
        return JUPYTER_DONE;
      r = jupyter_recv (c, min_deadline (deadline, grace), x->watch_fd, &m, err);
      if (r != JUPYTER_GOT)
        {
          if (r == JUPYTER_TIMEOUT && !deadline_passed (deadline))
            continue;
          return r;
        }
      if (track (c, x, m))
        {
          *ret = m;
          return JUPYTER_GOT;
        }
      jupyter_msg_free (m);
    }
}

/* Hidden executions.  */

struct hidden
{
  char *out;
  char *error;
};

static void
append (char **s, const char *more)
{
  char *joined;
  xasprintf (&joined, "%s%s", *s ? *s : "", more);
  free (*s);
  *s = joined;
}

static void
set_error (struct hidden *h, json_t *content)
{
  const char *name = json_string_value (json_object_get (content, "ename"));
  const char *value = json_string_value (json_object_get (content, "evalue"));

  if (h->error == NULL)
    xasprintf (&h->error, "%s: %s", name ? name : "Error", value ? value : "");
}

static void
collect (struct hidden *h, const struct jupyter_msg *m)
{
  const char *status = json_string_value (json_object_get (m->content, "status"));

  if (strcmp (m->type, "stream") == 0)
    {
      const char *name = json_string_value (json_object_get (m->content, "name"));
      const char *text = json_string_value (json_object_get (m->content, "text"));
      if (name && text && strcmp (name, "stdout") == 0)
        append (&h->out, text);
    }
  else if (strcmp (m->type, "error") == 0)
    set_error (h, m->content);
  else if (strcmp (m->type, "execute_reply") == 0 && status && strcmp (status, "ok") != 0)
    set_error (h, m->content);
}

static int
wait_hidden (struct jupyter_client *c, struct jupyter_exec *x, unsigned long long deadline,
             struct hidden *h, hutch_error_t *err)
{
  for (;;)
    {
      struct jupyter_msg *m = NULL;
      int r = jupyter_exec_next (c, x, deadline, &m, err);

      if (r == JUPYTER_DONE)
        return 0;
      if (r == JUPYTER_TIMEOUT)
        return hutch_make_error (err, ETIMEDOUT, "hidden execution");
      if (r == JUPYTER_DEAD)
        return hutch_make_error (err, 0, "the kernel exited");
      if (r < 0)
        return r;
      collect (h, m);
      jupyter_msg_free (m);
    }
}

int
jupyter_run_hidden (struct jupyter_client *c, const char *code, long timeout_ms, char **ret_stdout,
                    char **ret_error, hutch_error_t *err)
{
  unsigned long long deadline = now_ns () + (unsigned long long)timeout_ms * 1000000ULL;
  struct hidden h = { NULL, NULL };
  struct jupyter_exec x;
  int r;

  if (jupyter_execute (c, code, true, &x, err) < 0)
    return -1;
  r = wait_hidden (c, &x, deadline, &h, err);
  jupyter_exec_release (&x);
  if (r < 0)
    {
      free (h.out);
      free (h.error);
      return r;
    }
  if (ret_stdout)
    *ret_stdout = h.out ? h.out : xstrdup ("");
  else
    free (h.out);
  *ret_error = h.error;
  return 0;
}

/* Signals.  */

/* The kernel leads its own process group (it was started with setsid), so
   its children get the signal too, as jupyter_client does it.  The group
   cannot be recycled while the kernel is unreaped.  */
static int
signal_kernel (struct jupyter_client *c, int sig)
{
  if (!jupyter_alive (c))
    return errno = ESRCH, -1;
  if (kill (-c->pid, sig) == 0)
    return 0;
  return (int)syscall (SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0);
}

int
jupyter_interrupt (struct jupyter_client *c)
{
  cleanup_error hutch_error_t err = NULL;

  if (!c->interrupt_by_message)
    return signal_kernel (c, SIGINT);
  return jupyter_send (c, JUPYTER_CONTROL, "interrupt_request", json_object (), NULL, &err);
}

void
jupyter_kill (struct jupyter_client *c)
{
  signal_kernel (c, SIGKILL);
}
