/* POST /execute: run code in a context and stream its output as NDJSON.

   The response body is pulled by libmicrohttpd on the connection's own
   thread, so the reader callback drives the execution itself: it waits
   for the context, sends the request and turns each kernel message into
   lines, blocking at most until the next keepalive is due.  A client that
   went away is noticed when a line cannot be written, or at once while
   the kernel runs, from the end of file on its socket; libmicrohttpd then
   frees the response, and the free callback interrupts the kernel and
   lets the context go.  */
#define _GNU_SOURCE
#include "contexts.h"
#include "interp-internal.h"
#include "libhutch/log.h"
#include "libhutch/util.h"
#include "server-internal.h"

#include <string.h>
#include <sys/socket.h>

#define HIDDEN_TIMEOUT_MS 30000
/* How long an abandoned execution may take to stop after SIGINT before
   the context is handed on anyway.  */
#define ABANDON_NS (10ULL * 1000000000ULL)
#define BLOCK_SIZE (32 * 1024)

enum exec_state
{
  ST_WAIT, /* for the context */
  ST_RUN,
  ST_END, /* end_of_execution is next */
  ST_DONE,
};

struct exec_stream
{
  struct interp_ctx *ctx;
  char *code;
  json_t *env_vars; /* NULL or a non-empty object */
  enum exec_state state;
  bool held;    /* we hold ctx */
  bool sent;    /* the execute_request went out */
  bool settled; /* the kernel is done with it (complete or dead) */
  bool errored;
  bool client_gone;
  int client_fd; /* watched for end of file while the kernel runs */
  struct jupyter_exec x;
  char *buf;
  size_t len, off;
  unsigned long long keepalive_at;
};

static void
emit (struct exec_stream *s, json_t *line)
{
  cleanup_free char *text = output_dump (line);
  size_t n = strlen (text);

  json_decref (line);
  s->buf = xrealloc (s->buf, s->len + n);
  memcpy (s->buf + s->len, text, n);
  s->len += n;
  s->keepalive_at = now_ns () + KEEPALIVE_NS;
}

static void
finish_with_error (struct exec_stream *s, const char *name, const char *value)
{
  emit (s, output_error (name, value));
  s->state = ST_END;
}

static void
unexpected_end (struct exec_stream *s)
{
  s->settled = true;
  finish_with_error (s, "UnexpectedEndOfExecution",
                     "Connection to the execution was closed before the execution was finished");
}

static void
run_hidden (struct exec_stream *s, char *code, const char *what)
{
  cleanup_error hutch_error_t err = NULL;
  cleanup_free char *error = NULL;

  if (code && jupyter_run_hidden (s->ctx->client, code, HIDDEN_TIMEOUT_MS, NULL, &error, &err) < 0)
    log_warn ("interp: context %s: %s: %s", s->ctx->id, what, err->msg);
  else if (error)
    log_warn ("interp: context %s: %s: %s", s->ctx->id, what, error);
  free (code);
}

static void
start (struct exec_stream *s)
{
  cleanup_error hutch_error_t err = NULL;

  if (ctx_prepare (s->ctx, &err) < 0)
    {
      finish_with_error (s, "KernelError", err->msg);
      return;
    }
  if (s->env_vars)
    run_hidden (s, snippet_setenv (s->ctx->language, s->env_vars), "set env_vars");
  if (jupyter_execute (s->ctx->client, s->code, false, &s->x, &err) < 0)
    {
      log_warn ("interp: context %s: %s", s->ctx->id, err->msg);
      finish_with_error (s, "WebSocketError", "Failed to send execution request");
      return;
    }
  s->sent = true;
  s->x.watch_fd = s->client_fd;
  s->state = ST_RUN;
}

static void
step_wait (struct exec_stream *s)
{
  switch (ctx_acquire (s->ctx, s->keepalive_at))
    {
    case CTX_TIMEOUT:
      emit (s, output_type ("keepalive"));
      break;
    case CTX_GONE:
      unexpected_end (s);
      break;
    case CTX_ACQUIRED:
      s->held = true;
      start (s);
      break;
    }
}

/* Readable: the client closed (end of file), or sent more (a pipelined
   request, which we leave for libmicrohttpd and stop watching for).  */
static void
check_client (struct exec_stream *s)
{
  char b;
  ssize_t n = recv (s->client_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
    s->client_gone = true;
  else if (n > 0)
    s->x.watch_fd = -1;
}

static void
step_run (struct exec_stream *s)
{
  cleanup_error hutch_error_t err = NULL;
  cleanup_jupyter_msg struct jupyter_msg *m = NULL;
  cleanup_json_t json_t *lines = NULL;
  size_t i;
  json_t *line;

  switch (jupyter_exec_next (s->ctx->client, &s->x, s->keepalive_at, &m, &err))
    {
    case JUPYTER_GOT:
      lines = json_array ();
      output_lines (m, &s->errored, lines);
      json_array_foreach (lines, i, line)
      {
        emit (s, json_incref (line));
      }
      break;
    case JUPYTER_TIMEOUT:
      emit (s, output_type ("keepalive"));
      break;
    case JUPYTER_DONE:
      s->settled = true;
      s->state = ST_END;
      break;
    case JUPYTER_WATCH:
      check_client (s);
      break;
    default:
      if (err)
        log_warn ("interp: context %s: %s", s->ctx->id, err->msg);
      unexpected_end (s);
      break;
    }
}

static void
step (struct exec_stream *s)
{
  switch (s->state)
    {
    case ST_WAIT:
      step_wait (s);
      break;
    case ST_RUN:
      step_run (s);
      break;
    case ST_END:
      emit (s, output_type ("end_of_execution"));
      s->state = ST_DONE;
      break;
    case ST_DONE:
      break;
    }
}

static ssize_t
exec_read (void *cls, uint64_t pos, char *out, size_t max)
{
  struct exec_stream *s = cls;
  size_t n;

  while (s->off == s->len)
    {
      s->off = s->len = 0;
      if (s->client_gone)
        return MHD_CONTENT_READER_END_WITH_ERROR;
      if (s->state == ST_DONE)
        return MHD_CONTENT_READER_END_OF_STREAM;
      step (s);
    }
  n = s->len - s->off < max ? s->len - s->off : max;
  memcpy (out, s->buf + s->off, n);
  s->off += n;
  return (ssize_t)n;
}

/* The client left mid-run: interrupt, as E2B's server does, and give the
   kernel a moment to finish the cell so the next execution starts clean.  */
static void
abandon (struct exec_stream *s)
{
  unsigned long long deadline = now_ns () + ABANDON_NS;

  log_info ("interp: context %s: client gone, interrupting the kernel", s->ctx->id);
  s->x.watch_fd = -1;
  if (jupyter_interrupt (s->ctx->client) < 0)
    return;
  for (;;)
    {
      cleanup_error hutch_error_t err = NULL;
      struct jupyter_msg *m = NULL;
      int r = jupyter_exec_next (s->ctx->client, &s->x, deadline, &m, &err);

      jupyter_msg_free (m);
      if (r == JUPYTER_TIMEOUT)
        log_warn ("interp: context %s: the interrupted execution goes on", s->ctx->id);
      if (r == JUPYTER_DONE || r == JUPYTER_DEAD)
        s->settled = true;
      if (r != JUPYTER_GOT)
        break;
    }
}

/* Put the sandbox's values back.  Behind a cell that would not stop, the
   request is only queued: the kernel runs it when the cell ends.  */
static void
restore_env (struct exec_stream *s)
{
  cleanup_error hutch_error_t err = NULL;
  char *code = snippet_restore_env (s->ctx->language, s->env_vars, s->ctx->globals);
  struct jupyter_exec x;

  if (s->settled || code == NULL)
    {
      run_hidden (s, code, "restore env_vars");
      return;
    }
  if (jupyter_execute (s->ctx->client, code, true, &x, &err) < 0)
    log_warn ("interp: context %s: restore env_vars: %s", s->ctx->id, err->msg);
  jupyter_exec_release (&x);
  free (code);
}

static void
exec_free (void *cls)
{
  struct exec_stream *s = cls;

  if (s->held)
    {
      if (s->sent && !s->settled)
        abandon (s);
      if (s->env_vars && s->sent && jupyter_alive (s->ctx->client))
        restore_env (s);
      ctx_release (s->ctx);
    }
  jupyter_exec_release (&s->x);
  ctx_unref (s->ctx);
  json_decref (s->env_vars);
  free (s->code);
  free (s->buf);
  free (s);
}

/* The request.  */

static const struct field_check execute_fields[] = {
  { "code", true, false },     { "context_id", false, false }, { "language", false, false },
  { "env_vars", false, true }, { NULL, false, false },
};

static struct exec_stream *
stream_new (struct http_req *req, struct interp_ctx *c, json_t *body)
{
  const union MHD_ConnectionInfo *info
      = MHD_get_connection_info (req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  struct exec_stream *s = xzalloc (sizeof *s);
  json_t *env = json_object_get (body, "env_vars");

  s->client_fd = info ? info->connect_fd : -1;
  s->ctx = c;
  s->code = xstrdup (json_string_value (json_object_get (body, "code")));
  s->env_vars = json_object_size (env) > 0 ? json_incref (env) : NULL;
  s->state = ST_WAIT;
  s->keepalive_at = now_ns () + KEEPALIVE_NS;
  return s;
}

enum MHD_Result
execute_handle (struct http_req *req)
{
  cleanup_json_t json_t *body = request_object (req);
  enum MHD_Result ret = MHD_YES;
  struct MHD_Response *r;
  struct interp_ctx *c;

  if (body == NULL || !request_check (req, body, execute_fields))
    return MHD_YES;
  c = request_context (req, body, &ret);
  if (c == NULL)
    return ret;
  r = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, BLOCK_SIZE, exec_read,
                                         stream_new (req, c, body), exec_free);
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
  return http_queue (req->conn, 200, r);
}
