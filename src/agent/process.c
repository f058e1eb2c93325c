/* process.Process: the RPC handlers but Start (process-start.c).  They
   parse proto3-JSON requests, find processes in the table
   (process-table.c) and attach streams to their output (process-io.c).  */
#define _GNU_SOURCE
#include "libhutch/util.h"
#include "process-internal.h"
#include "services.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>

int
proc_fail (struct rpc_error *e, const char *code, const char *fmt, ...)
{
  va_list ap;

  e->code = code;
  va_start (ap, fmt);
  vsnprintf (e->message, sizeof e->message, fmt, ap);
  va_end (ap);
  return -1;
}

static enum MHD_Result
reply_error (struct http_req *req, const struct rpc_error *e)
{
  return connect_error (req->conn, e->code, "%s", e->message);
}

json_t *
proc_keepalive_event (void)
{
  return json_pack ("{s:{s:{}}}", "event", "keepalive");
}

enum MHD_Result
proc_respond_stream (struct connect_stream *stream, int result, const struct rpc_error *e)
{
  enum MHD_Result r;

  if (result < 0)
    connect_stream_end (stream, e->code, "%s", e->message);
  r = connect_stream_respond (stream);
  connect_stream_unref (stream);
  return r;
}

int
proc_parse_pty (json_t *pty, unsigned short *cols, unsigned short *rows, struct rpc_error *e)
{
  json_t *size = json_object_get (pty, "size");
  long long c = 0, r = 0;

  if (!json_is_object (pty) || (size && !json_is_object (size))
      || !connect_get_int (size, "cols", NULL, &c) || !connect_get_int (size, "rows", NULL, &r)
      || c < 0 || r < 0 || c > 0xffff || r > 0xffff)
    return proc_fail (e, "invalid_argument", "invalid pty size");
  *cols = c ? (unsigned short)c : 80;
  *rows = r ? (unsigned short)r : 24;
  return 0;
}

/* Selectors.  */

/* {"process":{"pid":N}} or {"process":{"tag":"t"}}.  FINISHED admits
   processes whose exit is retained (Connect).  */
static struct proc *
select_process (json_t *body, bool finished, struct rpc_error *e)
{
  json_t *sel = json_object_get (body, "process");
  json_t *tag = json_object_get (sel, "tag");
  long long pid = -1;
  struct proc *p;

  if (json_is_string (tag))
    {
      p = proc_find (0, json_string_value (tag), finished);
      if (p == NULL)
        proc_fail (e, "not_found", "process with tag %s not found", json_string_value (tag));
      return p;
    }
  if (!json_is_object (sel) || !connect_get_int (sel, "pid", NULL, &pid) || pid < 0
      || pid > UINT32_MAX)
    {
      proc_fail (e, "invalid_argument", "a process selector (pid or tag) is required");
      return NULL;
    }
  p = pid > 0 ? proc_find ((pid_t)pid, NULL, finished) : NULL;
  if (p == NULL)
    proc_fail (e, "not_found", "process with pid %lld not found", pid);
  return p;
}

/* Connect.  */

enum MHD_Result
process_connect (struct http_req *req)
{
  cleanup_json json_t *body = connect_request (req, true);
  cleanup_proc struct proc *p = NULL;
  struct connect_stream *stream;
  struct rpc_error e;

  if (body == NULL)
    return MHD_YES;
  stream = connect_stream_new (req, proc_keepalive_event ());
  p = select_process (body, true, &e);
  if (p)
    proc_attach (p, stream, false);
  return proc_respond_stream (stream, p ? 0 : -1, &e);
}

/* List.  */

static void
list_one (struct proc *p, void *arg)
{
  json_t *info = json_pack ("{s:O, s:i}", "config", p->config, "pid", (int)p->pid);

  if (p->tag)
    json_object_set_new (info, "tag", json_string (p->tag));
  json_array_append_new (arg, info);
}

enum MHD_Result
process_list (struct http_req *req)
{
  cleanup_json json_t *body = connect_request (req, false);
  json_t *processes;

  if (body == NULL)
    return MHD_YES;
  processes = json_array ();
  proc_for_each_running (list_one, processes);
  if (json_array_size (processes) == 0)
    {
      json_decref (processes);
      return connect_reply (req->conn, json_object ());
    }
  return connect_reply (req->conn, json_pack ("{s:o}", "processes", processes));
}

/* Input.  */

static int
write_input (struct proc *p, bool to_pty, const unsigned char *data, size_t len,
             struct rpc_error *e)
{
  const char *what = to_pty ? "tty" : "stdin";
  int fd, r = 0;

  pthread_mutex_lock (&p->input_mu);
  fd = to_pty ? p->pty_fd : p->stdin_fd;
  if (p->pty != to_pty)
    r = proc_fail (e, "internal", "error writing to %s: %s", what,
                   to_pty ? "tty not assigned to process — input should be written to the stdin"
                          : "tty assigned to process — input should be written to the pty");
  else if (fd < 0)
    r = proc_fail (e, "internal", "error writing to %s: %s", what,
                   to_pty ? "tty closed" : "stdin not enabled or closed");
  else if (write_all (fd, data, len) < 0)
    r = proc_fail (e, "internal", "error writing to %s of process '%d': %s", what, (int)p->pid,
                   strerror (errno));
  pthread_mutex_unlock (&p->input_mu);
  return r;
}

/* ProcessInput: {"stdin": b64} or {"pty": b64}.  */
static int
apply_input (struct proc *p, json_t *input, struct rpc_error *e)
{
  json_t *in = json_object_get (input, "stdin"), *pty = json_object_get (input, "pty");
  json_t *data = in ? in : pty;
  cleanup_free unsigned char *bytes = NULL;
  size_t len = 0;

  if (!json_is_string (data))
    return proc_fail (e, "unimplemented", "invalid input type");
  bytes = connect_b64_decode (json_string_value (data), &len);
  if (bytes == NULL)
    return proc_fail (e, "invalid_argument", "input is not valid base64");
  return write_input (p, data == pty, bytes, len, e);
}

enum MHD_Result
process_send_input (struct http_req *req)
{
  cleanup_json json_t *body = connect_request (req, false);
  cleanup_proc struct proc *p = NULL;
  struct rpc_error e;

  if (body == NULL)
    return MHD_YES;
  p = select_process (body, false, &e);
  if (p == NULL || apply_input (p, json_object_get (body, "input"), &e) < 0)
    return reply_error (req, &e);
  return connect_reply (req->conn, NULL);
}

/* One StreamInputRequest: start (select), data (input) or keepalive.  */
static int
stream_input_message (json_t *msg, struct proc **p, struct rpc_error *e)
{
  json_t *start = json_object_get (msg, "start"), *data = json_object_get (msg, "data");

  if (start)
    {
      proc_unref (*p);
      *p = select_process (start, false, e);
      return *p ? 0 : -1;
    }
  if (data)
    {
      if (*p == NULL)
        return proc_fail (e, "failed_precondition", "input before the start event");
      return apply_input (*p, json_object_get (data, "input"), e);
    }
  if (json_object_get (msg, "keepalive"))
    return 0;
  return proc_fail (e, "unimplemented", "invalid event type");
}

/* The body holds every enveloped message of the client stream.  */
static int
stream_input (const char *body, size_t len, struct rpc_error *e)
{
  cleanup_proc struct proc *p = NULL;

  while (len > 0)
    {
      cleanup_json json_t *msg = NULL;
      uint32_t be, n;

      if (len < 5)
        return proc_fail (e, "invalid_argument", "truncated envelope");
      memcpy (&be, body + 1, 4);
      n = ntohl (be);
      if (n > len - 5 || (body[0] & 0x01))
        return proc_fail (e, "invalid_argument", "malformed or compressed envelope");
      if (!(body[0] & 0x02))
        {
          msg = json_loadb (body + 5, n, 0, NULL);
          if (!json_is_object (msg))
            return proc_fail (e, "invalid_argument", "invalid JSON message");
          if (stream_input_message (msg, &p, e) < 0)
            return -1;
        }
      body += 5 + n;
      len -= 5 + n;
    }
  return 0;
}

enum MHD_Result
process_stream_input (struct http_req *req)
{
  struct connect_stream *stream = connect_stream_new (req, NULL);
  struct rpc_error e;
  int result = stream_input (req->body ? req->body : "", req->body_len, &e);

  if (result == 0)
    {
      connect_stream_send (stream, json_object ());
      connect_stream_end (stream, NULL, "%s", "");
    }
  return proc_respond_stream (stream, result, &e);
}

/* Signals.  */

/* Signal enum: a name or its number.  */
static int
parse_signal (json_t *body, struct rpc_error *e)
{
  json_t *v = json_object_get (body, "signal");
  const char *name = json_string_value (v);
  long long n = 0;

  if (name && strcmp (name, "SIGNAL_SIGKILL") == 0)
    return SIGKILL;
  if (name && strcmp (name, "SIGNAL_SIGTERM") == 0)
    return SIGTERM;
  if (name && strcmp (name, "SIGNAL_UNSPECIFIED") == 0)
    n = 0;
  else if (!connect_get_int (body, "signal", NULL, &n))
    return proc_fail (e, "invalid_argument", "invalid signal");
  if (n == SIGKILL || n == SIGTERM)
    return (int)n;
  if (n == 0)
    return proc_fail (e, "unimplemented", "invalid signal: SIGNAL_UNSPECIFIED");
  return proc_fail (e, "unimplemented", "invalid signal: %lld", n);
}

enum MHD_Result
process_send_signal (struct http_req *req)
{
  cleanup_json json_t *body = connect_request (req, false);
  cleanup_proc struct proc *p = NULL;
  struct rpc_error e;
  int sig;

  if (body == NULL)
    return MHD_YES;
  p = select_process (body, false, &e);
  if (p == NULL || (sig = parse_signal (body, &e)) < 0)
    return reply_error (req, &e);
  if (proc_signal (p, sig) < 0)
    {
      if (errno == ESRCH)
        return connect_error (req->conn, "not_found", "process with pid %d not found", (int)p->pid);
      return connect_error (req->conn, "internal", "error sending signal: %s", strerror (errno));
    }
  return connect_reply (req->conn, NULL);
}

/* Update and CloseStdin.  */

static int
resize (struct proc *p, json_t *pty, struct rpc_error *e)
{
  struct winsize ws = { 0 };
  int r = 0;

  if (proc_parse_pty (pty, &ws.ws_col, &ws.ws_row, e) < 0)
    return -1;
  pthread_mutex_lock (&p->input_mu);
  if (p->pty_fd < 0)
    r = proc_fail (e, "internal", "error resizing tty: tty not assigned to process");
  else if (ioctl (p->pty_fd, TIOCSWINSZ, &ws) < 0)
    r = proc_fail (e, "internal", "error resizing tty: %s", strerror (errno));
  pthread_mutex_unlock (&p->input_mu);
  return r;
}

enum MHD_Result
process_update (struct http_req *req)
{
  cleanup_json json_t *body = connect_request (req, false);
  cleanup_proc struct proc *p = NULL;
  json_t *pty;
  struct rpc_error e;

  if (body == NULL)
    return MHD_YES;
  p = select_process (body, false, &e);
  if (p == NULL)
    return reply_error (req, &e);
  pty = json_object_get (body, "pty");
  if (pty && !json_is_null (pty) && resize (p, pty, &e) < 0)
    return reply_error (req, &e);
  return connect_reply (req->conn, NULL);
}

static int
close_stdin (struct proc *p, struct rpc_error *e)
{
  if (p->pty)
    return proc_fail (
        e, "failed_precondition",
        "error closing stdin: cannot close stdin for PTY process — send Ctrl+D (0x04) "
        "instead");
  pthread_mutex_lock (&p->input_mu);
  if (p->stdin_fd >= 0)
    close (get_and_reset (&p->stdin_fd));
  pthread_mutex_unlock (&p->input_mu);
  return 0;
}

enum MHD_Result
process_close_stdin (struct http_req *req)
{
  cleanup_json json_t *body = connect_request (req, false);
  cleanup_proc struct proc *p = NULL;
  struct rpc_error e;

  if (body == NULL)
    return MHD_YES;
  p = select_process (body, false, &e);
  if (p == NULL || close_stdin (p, &e) < 0)
    return reply_error (req, &e);
  return connect_reply (req->conn, NULL);
}
