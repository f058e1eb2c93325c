/* The output of a process: one thread per process reads its stdout and
   stderr (or its pty), fans each chunk out to every stream watching it,
   kills it when its lifetime runs out, and sends the end event once it
   exited and its output is drained.  */
#define _GNU_SOURCE
#include "process-internal.h"
#include "libhutch/signame.h"
#include "libhutch/util.h"

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#define PIPE_CHUNK (32 * 1024)
#define PTY_CHUNK (16 * 1024)
/* A watcher with this much unsent output holds the process back.  */
#define PENDING_MAX (1024 * 1024)
/* After the exit, take at most this many chunks still buffered: a
   descendant that keeps the pipe open must not hold the end back.  */
#define DRAIN_CHUNKS 64

static json_t *
event (const char *kind, json_t *body)
{
  return json_pack ("{s:{s:o}}", "event", kind, body);
}

static void
describe_status (int status, char *buf, size_t size)
{
  int sig;

  if (WIFEXITED (status))
    {
      snprintf (buf, size, "exit status %d", WEXITSTATUS (status));
      return;
    }
  sig = WTERMSIG (status);
  if (hutch_signal_name (sig))
    snprintf (buf, size, "signal: %s%s", hutch_signal_name (sig),
              WCOREDUMP (status) ? " (core dumped)" : "");
  else
    snprintf (buf, size, "signal: signal %d%s", sig, WCOREDUMP (status) ? " (core dumped)" : "");
}

/* EndEvent in proto3 JSON: exitCode and exited omitted at their defaults,
   error only for a failure.  */
static json_t *
end_event (int status)
{
  json_t *end = json_object ();
  bool exited = WIFEXITED (status);
  int code = exited ? WEXITSTATUS (status) : -1;
  char text[96];

  describe_status (status, text, sizeof text);
  if (code != 0)
    json_object_set_new (end, "exitCode", json_integer (code));
  if (exited)
    json_object_set_new (end, "exited", json_true ());
  json_object_set_new (end, "status", json_string (text));
  if (code != 0)
    json_object_set_new (end, "error", json_string (text));
  return event ("end", end);
}

static void
sub_free (struct proc_sub *s)
{
  connect_stream_unref (s->stream);
  free (s);
}

/* Send MESSAGE (borrowed) to every watcher, dropping those that left.  */
static void
broadcast_locked (struct proc *p, json_t *message)
{
  struct proc_sub **pp = &p->subs;

  while (*pp)
    {
      struct proc_sub *s = *pp;
      if (connect_stream_send (s->stream, json_incref (message)))
        {
          pp = &s->next;
          continue;
        }
      *pp = s->next;
      sub_free (s);
    }
}

static void
drop_closed_locked (struct proc *p)
{
  struct proc_sub **pp = &p->subs;

  while (*pp)
    {
      struct proc_sub *s = *pp;
      if (!connect_stream_closed (s->stream))
        {
          pp = &s->next;
          continue;
        }
      *pp = s->next;
      sub_free (s);
    }
}

void
proc_attach (struct proc *p, struct connect_stream *stream, bool owner)
{
  struct proc_sub *s;

  pthread_mutex_lock (&p->mu);
  connect_stream_send (stream, event ("start", json_pack ("{s:i}", "pid", (int)p->pid)));
  if (p->finished)
    {
      connect_stream_send (stream, json_incref (p->end));
      connect_stream_end (stream, NULL, "%s", "");
      pthread_mutex_unlock (&p->mu);
      return;
    }
  drop_closed_locked (p);
  s = xzalloc (sizeof *s);
  connect_stream_ref (stream);
  s->stream = stream;
  s->owner = owner;
  s->next = p->subs;
  p->subs = s;
  pthread_mutex_unlock (&p->mu);
}

/* Hold the reader back while a watcher is far behind, so a fast process
   is paced by its clients instead of filling the agent's memory.  The
   lifetime deadline bounds the wait.  */
static void
throttle (struct proc *p)
{
  for (;;)
    {
      struct connect_stream *behind = NULL;

      pthread_mutex_lock (&p->mu);
      /* A zero timeout only tests the backlog.  */
      for (struct proc_sub *s = p->subs; s && !behind; s = s->next)
        if (!connect_stream_wait_drained (s->stream, PENDING_MAX, 0))
          behind = s->stream;
      if (behind)
        connect_stream_ref (behind);
      pthread_mutex_unlock (&p->mu);
      if (behind == NULL)
        return;
      bool drained = connect_stream_wait_drained (behind, PENDING_MAX, ms_until (p->deadline_ns));
      connect_stream_unref (behind);
      if (!drained)
        return;
    }
}

static bool
watched (struct proc *p)
{
  bool r;
  pthread_mutex_lock (&p->mu);
  r = p->subs != NULL;
  pthread_mutex_unlock (&p->mu);
  return r;
}

static void
publish (struct proc *p, const char *kind, const char *data, size_t len)
{
  cleanup_free char *b64 = NULL;
  json_t *message;

  /* Output nobody watches is dropped: Connect does not replay.  */
  if (!watched (p))
    return;
  b64 = connect_b64_encode (data, len);
  message = event ("data", json_pack ("{s:s}", kind, b64));
  pthread_mutex_lock (&p->mu);
  broadcast_locked (p, message);
  pthread_mutex_unlock (&p->mu);
  json_decref (message);
  throttle (p);
}

/* One read from an output descriptor.  Returns false at its end.  */
static bool
pump (struct proc *p, int fd, const char *kind)
{
  char buf[PIPE_CHUNK];
  size_t size = p->pty ? PTY_CHUNK : PIPE_CHUNK;
  ssize_t n = TEMP_FAILURE_RETRY (read (fd, buf, size));

  /* A pty master reads EIO once no slave descriptor is left.  */
  if (n <= 0)
    return false;
  publish (p, kind, buf, (size_t)n);
  return true;
}

struct outputs
{
  struct pollfd fds[3]; /* stdout (or pty), stderr, the exit notice */
  const char *kinds[2];
};

static void
outputs_init (struct outputs *o, struct proc *p)
{
  o->fds[0] = (struct pollfd){ .fd = p->out_fd, .events = POLLIN };
  o->fds[1] = (struct pollfd){ .fd = p->err_fd, .events = POLLIN };
  o->fds[2] = (struct pollfd){ .fd = p->wake_fd, .events = POLLIN };
  o->kinds[0] = p->pty ? "pty" : "stdout";
  o->kinds[1] = "stderr";
}

/* Read what poll reported; a descriptor at its end leaves the set.  */
static void
pump_ready (struct proc *p, struct outputs *o)
{
  for (int i = 0; i < 2; i++)
    if (o->fds[i].fd >= 0 && (o->fds[i].revents & (POLLIN | POLLHUP | POLLERR))
        && !pump (p, o->fds[i].fd, o->kinds[i]))
      o->fds[i].fd = -1;
}

/* The output written before the exit is already buffered: take it, but
   do not wait for descendants that still hold the descriptors.  */
static void
drain (struct proc *p, struct outputs *o)
{
  for (int chunks = 0; chunks < DRAIN_CHUNKS; chunks++)
    {
      if (poll (o->fds, 2, 0) <= 0)
        return;
      pump_ready (p, o);
    }
}

static void
kill_at_deadline (struct proc *p)
{
  pthread_mutex_lock (&p->mu);
  p->deadline_hit = true;
  pthread_mutex_unlock (&p->mu);
  proc_signal (p, SIGKILL);
  p->deadline_ns = 0;
}

static void
wait_for_exit (struct proc *p, struct outputs *o)
{
  for (;;)
    {
      int n;
      /* Checked before polling: a process that never stops writing
         never lets poll time out.  */
      if (p->deadline_ns && ms_until (p->deadline_ns) == 0)
        kill_at_deadline (p);
      n = poll (o->fds, 3, ms_until (p->deadline_ns));
      if (n <= 0)
        continue; /* the deadline, or EINTR */
      pump_ready (p, o);
      if (o->fds[2].revents & POLLIN)
        return;
    }
}

/* Like envd once the process was waited for: descendants still writing
   get EPIPE (or a hangup on the pty) instead of blocking on a full pipe
   nobody reads.  An input write stuck on a descendant that holds stdin
   but never reads must not hold the end back: its descriptors are then
   left to the record's release.  */
static void
close_descriptors (struct proc *p)
{
  /* The reaper wrote its one notice already.  */
  int *own[] = { &p->out_fd, &p->err_fd, &p->wake_fd };

  if (pthread_mutex_trylock (&p->input_mu) == 0)
    {
      if (p->stdin_fd >= 0)
        close (get_and_reset (&p->stdin_fd));
      if (p->pty_fd >= 0)
        close (get_and_reset (&p->pty_fd));
      pthread_mutex_unlock (&p->input_mu);
    }
  for (size_t i = 0; i < ARRAY_SIZE (own); i++)
    if (*own[i] >= 0)
      close (get_and_reset (own[i]));
}

/* Send the end event to every watcher and keep it for late ones.  The
   Start stream of a process killed at its deadline ends with
   deadline_exceeded instead, as the call's own deadline passed.  */
static void
finish (struct proc *p)
{
  struct proc_sub *subs;

  pthread_mutex_lock (&p->mu);
  p->end = end_event (p->status);
  p->finished = true;
  p->finished_ns = now_ns ();
  subs = steal_pointer (&p->subs);
  for (struct proc_sub *s = subs, *next; s; s = next)
    {
      next = s->next;
      if (s->owner && p->deadline_hit)
        connect_stream_end (s->stream, "deadline_exceeded", "context deadline exceeded");
      else
        {
          connect_stream_send (s->stream, json_incref (p->end));
          connect_stream_end (s->stream, NULL, "%s", "");
        }
      sub_free (s);
    }
  pthread_mutex_unlock (&p->mu);
}

static void *
output_main (void *arg)
{
  struct proc *p = arg;
  struct outputs o;

  pthread_setname_np (pthread_self (), "proc-output");
  outputs_init (&o, p);
  wait_for_exit (p, &o);
  drain (p, &o);
  close_descriptors (p);
  finish (p);
  proc_unref (p);
  return NULL;
}

int
proc_start_output (struct proc *p)
{
  pthread_attr_t attr;
  pthread_t t;
  int r;

  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize (&attr, 256 * 1024);
  proc_ref (p);
  r = pthread_create (&t, &attr, output_main, p);
  pthread_attr_destroy (&attr);
  if (r != 0)
    {
      proc_unref (p);
      errno = r;
      return -1;
    }
  return 0;
}

void
proc_notify_exit (struct proc *p, int status)
{
  uint64_t one = 1;

  pthread_mutex_lock (&p->mu);
  p->status = status;
  pthread_mutex_unlock (&p->mu);
  (void)!write (p->wake_fd, &one, sizeof one);
}
