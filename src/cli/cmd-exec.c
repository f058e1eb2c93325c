/* hutch exec: run a command in a sandbox of a running hutchd through
   envd's process.Process/Start (a Connect server stream of JSON
   envelopes), pass its output on as it arrives, exit with its status.  */
#define _GNU_SOURCE
#include "cli.h"
#include "libhutch/signame.h"
#include "client.h"
#include "libhutch/util.h"

#include <signal.h>
#include <string.h>

static const char exec_usage[]
    = "usage: hutch exec ID [OPTIONS] -- CMD [ARGS...]\n"
      "\n"
      "Run a command in sandbox ID and exit with its status.  A single CMD string is\n"
      "run by a login shell, `/bin/bash -l -c CMD` (pipes, globs and variables work);\n"
      "CMD with ARGS is executed directly, without a shell (CMD looked up in PATH).\n"
      "Its stdout and stderr are passed on as they arrive; stdin is not passed.\n"
      "SIGINT, SIGTERM or SIGHUP sends SIGTERM to the command, a second one SIGKILL.\n"
      "\n"
      "  --user NAME       run as NAME (default: the sandbox's default user, `user`)\n"
      "  --cwd DIR         working directory (default: the user's home)\n"
      "  --env KEY=VALUE   set an environment variable (repeatable)\n"
      "  --timeout SECS    kill the command after SECS seconds (default: "
      "none)\n" CLIENT_OPTIONS_HELP
      "                    (here: envd's process events, one JSON object a line)\n"
      "\n"
      "Exit status: the command's, 128+N when it was killed by signal N, 124\n"
      "--timeout expired, 126 not executable, 127 not found; hutch's own failures:\n"
      "2 bad usage, 3 sandbox not found, 4 authentication failed, 5 hutchd\n"
      "unreachable, 125 other failures.\n";

static const struct option long_options[] = {
  { "user", required_argument, NULL, 'u' },
  { "cwd", required_argument, NULL, 'C' },
  { "env", required_argument, NULL, 'e' },
  { "timeout", required_argument, NULL, 't' },
  CLIENT_LONG_OPTIONS,
  { NULL, 0, NULL, 0 },
};

struct exec_args
{
  struct client c;
  const char *id;
  const char *user;
  const char *cwd;
  json_t *env;
  unsigned long timeout;
  char **cmd;
  int ncmd;
};

/* One run of the stream.  */
struct exec_state
{
  struct exec_args *a;
  struct sandbox_target *t;
  struct envelope_reader reader;
  long pid;         /* from the start event; 0 before it */
  json_t *end;      /* the end event */
  json_t *error;    /* the end-of-stream error */
  bool done;        /* the end-of-stream envelope arrived */
  int signals_sent; /* signals forwarded to the command */
};

static volatile sig_atomic_t signals_received;
static volatile sig_atomic_t last_signal;

static void
on_signal (int sig)
{
  signals_received++;
  last_signal = sig;
}

/* ---- arguments ---- */

static int
parse_option (struct exec_args *a, int c, const char *arg)
{
  switch (c)
    {
    case 'u':
      a->user = arg;
      return 0;
    case 'C':
      a->cwd = arg;
      return 0;
    case 'e':
      return client_add_pair (a->env, "--env", arg);
    case 't':
      return client_seconds ("--timeout", arg, &a->timeout);
    default:
      return -1;
    }
}

/* Options up to the first non-option (or `--`).  Returns the index of
   what follows, 0 when --help was printed, -1 on bad usage.  */
static int
parse_options (struct exec_args *a, int argc, char **argv)
{
  int c;

  optind = 0;
  while ((c = getopt_long (argc, argv, "+h", long_options, NULL)) != -1)
    {
      if (c == 'h')
        {
          fputs (exec_usage, stdout);
          return 0;
        }
      if (client_option (&a->c, c, optarg))
        continue;
      if (c == '?' || parse_option (a, c, optarg) < 0)
        return -1;
    }
  return optind;
}

/* hutch exec [OPTIONS] ID [OPTIONS] [--] CMD [ARGS...]: options may come
   before and after the id; what follows `--` (or the first word after the
   options) is the command, untouched.  Returns 1, 0 for --help, -1.  */
static int
parse_args (struct exec_args *a, int argc, char **argv)
{
  int first = parse_options (a, argc, argv), next;
  char *id;

  if (first <= 0)
    return first;
  if (first >= argc)
    {
      fputs ("hutch exec: no sandbox id given\n\n", stderr);
      fputs (exec_usage, stderr);
      return -1;
    }
  /* The options after the id are parsed as an argv of their own, whose
     argv[0] (the id's place) getopt skips and names in its messages.  */
  id = argv[first];
  argv[first] = argv[0];
  next = parse_options (a, argc - first, argv + first);
  argv[first] = id;
  if (next <= 0)
    return next;
  a->id = id;
  a->cmd = argv + first + next;
  a->ncmd = argc - first - next;
  if (a->ncmd > 0)
    return 1;
  fputs ("hutch exec: no command given\n\n", stderr);
  fputs (exec_usage, stderr);
  return -1;
}

/* ---- the request ---- */

static json_t *
checked_string (const char *s)
{
  json_t *v = json_string (s);
  if (v == NULL)
    fprintf (stderr, "hutch exec: `%s` is not valid UTF-8\n", s);
  return v;
}

/* {"process": {"cmd", "args", "envs"?, "cwd"?}, "stdin": false}, or NULL
   after a message.  */
static json_t *
start_request (const struct exec_args *a)
{
  bool shell = a->ncmd == 1;
  json_t *process = json_object (), *args = json_array ();
  bool ok;

  if (shell)
    {
      json_array_append_new (args, json_string ("-l"));
      json_array_append_new (args, json_string ("-c"));
    }
  ok = json_object_set_new (process, "cmd",
                            shell ? json_string ("/bin/bash") : checked_string (a->cmd[0]))
       == 0;
  for (int i = shell ? 0 : 1; i < a->ncmd && ok; i++)
    ok &= json_array_append_new (args, checked_string (a->cmd[i])) == 0;
  json_object_set_new (process, "args", args);
  if (json_object_size (a->env))
    json_object_set (process, "envs", a->env);
  if (a->cwd)
    ok &= json_object_set_new (process, "cwd", checked_string (a->cwd)) == 0;
  if (!ok)
    {
      json_decref (process);
      return NULL;
    }
  /* No stdin pipe: nothing would ever close it.  */
  return json_pack ("{s:o, s:b}", "process", process, "stdin", 0);
}

static struct curl_slist *
start_headers (const struct exec_args *a, const struct sandbox_target *t)
{
  struct curl_slist *h = client_sandbox_headers (t, ENVD_PORT, a->user);
  char timeout[64];

  h = curl_slist_append (h, "Content-Type: application/connect+json");
  h = curl_slist_append (h, "Connect-Protocol-Version: 1");
  /* envd sends a keepalive event after this many idle seconds, so that no
     proxy on the way closes a quiet stream.  */
  h = curl_slist_append (h, "Keepalive-Ping-Interval: 50");
  if (a->timeout)
    {
      /* For Start this is the process's lifetime, enforced by envd.  */
      snprintf (timeout, sizeof timeout, "Connect-Timeout-Ms: %lu", a->timeout * 1000);
      h = curl_slist_append (h, timeout);
    }
  return h;
}

/* ---- the stream ---- */

static int
write_data (json_t *data)
{
  const char *names[] = { "stdout", "stderr" };

  for (int i = 0; i < 2; i++)
    {
      const char *b64 = json_string_value (json_object_get (data, names[i]));
      size_t len = b64 ? strlen (b64) : 0;
      cleanup_free unsigned char *buf = NULL;
      long n;

      if (len == 0)
        continue;
      buf = xmalloc (len / 4 * 3 + 4);
      n = base64_decode (b64, len, buf);
      if (n < 0)
        {
          fprintf (stderr, "hutch exec: the server sent invalid base64 output\n");
          return CLIENT_EXIT_FAILURE;
        }
      if (client_write (i + 1, (const char *)buf, (size_t)n))
        return CLIENT_EXIT_FAILURE;
    }
  return 0;
}

static int
print_event (json_t *event)
{
  cleanup_free char *line = json_dumps (event, JSON_COMPACT);
  size_t len = strlen (line);

  line[len] = '\n'; /* in the NUL's place: one write per event */
  return client_write (1, line, len + 1);
}

static int
on_event (struct exec_state *s, json_t *event)
{
  json_t *v;

  if (s->a->c.json && print_event (event))
    return CLIENT_EXIT_FAILURE;
  if ((v = json_object_get (event, "start")))
    s->pid = (long)json_integer_value (json_object_get (v, "pid"));
  else if ((v = json_object_get (event, "data")) && !s->a->c.json)
    return write_data (v);
  else if ((v = json_object_get (event, "end")))
    {
      json_decref (s->end);
      s->end = json_incref (v);
    }
  return 0;
}

static int
on_message (void *arg, unsigned flags, const char *payload, size_t len)
{
  struct exec_state *s = arg;
  json_t *msg;
  int status = 0;

  if (flags & ENVELOPE_COMPRESSED)
    {
      fprintf (stderr, "hutch exec: the server sent a compressed message\n");
      return CLIENT_EXIT_FAILURE;
    }
  msg = json_loadb (payload, len, 0, NULL);
  if (msg == NULL)
    {
      fprintf (stderr, "hutch exec: the server sent a message that is not JSON\n");
      return CLIENT_EXIT_FAILURE;
    }
  if (flags & ENVELOPE_END_STREAM)
    {
      s->done = true;
      s->error = json_incref (json_object_get (msg, "error"));
    }
  else if (json_object_get (msg, "event"))
    status = on_event (s, json_object_get (msg, "event"));
  json_decref (msg);
  return status;
}

static int
exec_sink (void *arg, const char *data, size_t len)
{
  struct exec_state *s = arg;
  return s->done ? 0 : envelope_feed (&s->reader, data, len);
}

static void
send_signal (struct exec_state *s, const char *signal)
{
  json_t *msg
      = json_pack ("{s:{s:I}, s:s}", "process", "pid", (json_int_t)s->pid, "signal", signal);
  json_t *answer = NULL;

  client_envd_unary (&s->a->c, s->t, "/process.Process/SendSignal", NULL, msg, &answer);
  json_decref (answer);
  json_decref (msg);
}

/* Forward the signals hutch got: SIGTERM, then SIGKILL; a third one (or a
   second before the command started) gives up on the command.  */
static int
exec_tick (void *arg)
{
  struct exec_state *s = arg;
  int got = signals_received;

  if (got == s->signals_sent)
    return 0;
  if (got >= 3 || (s->pid == 0 && got >= 2))
    {
      fprintf (stderr,
               "hutch exec: gave up waiting; the command may still be running in "
               "sandbox `%s`\n",
               s->t->id);
      return 128 + last_signal;
    }
  if (s->pid == 0)
    return 0;
  send_signal (s, s->signals_sent == 0 ? "SIGNAL_SIGTERM" : "SIGNAL_SIGKILL");
  s->signals_sent = got;
  return 0;
}

static void
catch_signals (bool on)
{
  static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
  struct sigaction sa = { .sa_handler = on ? on_signal : SIG_DFL };

  sigemptyset (&sa.sa_mask);
  for (size_t i = 0; i < ARRAY_SIZE (sigs); i++)
    sigaction (sigs[i], &sa, NULL);
}

/* ---- the exit status ---- */

/* The signal number in "signal: NAME[ (core dumped)]", or 0.  */
static int
signal_of (const char *status)
{
  static const char prefix[] = "signal: ";
  const char *name;
  int n;

  if (status == NULL || strncmp (status, prefix, sizeof prefix - 1) != 0)
    return 0;
  name = status + sizeof prefix - 1;
  if (sscanf (name, "signal %d", &n) == 1)
    return n;
  for (int sig = 1; sig < NSIG; sig++)
    {
      const char *known = hutch_signal_name (sig);
      size_t len = known ? strlen (known) : 0;
      if (len && strncmp (name, known, len) == 0 && (name[len] == '\0' || name[len] == ' '))
        return sig;
    }
  return 0;
}

static int
end_status (json_t *end)
{
  const char *text = json_string_value (json_object_get (end, "status"));
  int sig;

  if (json_is_true (json_object_get (end, "exited")))
    return (int)json_integer_value (json_object_get (end, "exitCode")) & 0xff;
  sig = signal_of (text);
  if (sig > 0)
    return 128 + sig;
  fprintf (stderr, "hutch exec: the command ended with `%s`\n", text ? text : "no status");
  return CLIENT_EXIT_FAILURE;
}

static int
error_status (struct exec_state *s)
{
  const char *code = json_string_value (json_object_get (s->error, "code"));
  const char *msg = json_string_value (json_object_get (s->error, "message"));

  if (code && strcmp (code, "deadline_exceeded") == 0)
    {
      fprintf (stderr, "hutch exec: the command ran past --timeout %lu and was killed\n",
               s->a->timeout);
      return CLIENT_EXIT_TIMEOUT;
    }
  /* envd could not execute the command: say it as a shell would.  */
  if (code && strcmp (code, "invalid_argument") == 0 && msg
      && strstr (msg, "error starting process"))
    {
      fprintf (stderr, "hutch exec: %s\n", msg);
      return strstr (msg, "No such file") ? 127 : 126;
    }
  return client_connect_error ("process.Process/Start", code ? code : "unknown", msg);
}

static int
exec_status (struct exec_state *s)
{
  const char *code = json_string_value (json_object_get (s->error, "code"));

  if (s->end && !(code && strcmp (code, "deadline_exceeded") == 0))
    return end_status (s->end);
  if (s->error)
    return error_status (s);
  fprintf (stderr, "hutch exec: the stream ended before the command did (the sandbox may have "
                   "been killed)\n");
  return CLIENT_EXIT_FAILURE;
}

static int
run_exec (struct exec_args *a, struct sandbox_target *t)
{
  json_t *request = start_request (a);
  cleanup_free char *payload = request ? json_dumps (request, JSON_COMPACT) : NULL;
  cleanup_free char *body = NULL;
  struct exec_state s = { .a = a, .t = t };
  struct client_request rq = { .method = "POST", .path = "/process.Process/Start" };
  struct client_response r;
  int status;

  json_decref (request);
  if (payload == NULL)
    return CLIENT_EXIT_USAGE;
  body = envelope_frame (payload, strlen (payload), &rq.body_len);
  rq.body = body;
  rq.headers = start_headers (a, t);
  rq.sink = exec_sink;
  rq.sink_arg = rq.tick_arg = &s;
  rq.tick = exec_tick;
  s.reader.on_message = on_message;
  s.reader.arg = &s;
  catch_signals (true);
  status = client_perform (&a->c, &rq, &r);
  status = client_check_gone (&a->c, t, &r, status);
  catch_signals (false);
  if (status == 0 && r.status != 200)
    status = client_sandbox_error (t, ENVD_PORT, "process.Process/Start", &r);
  else if (status == 0)
    status = exec_status (&s);
  curl_slist_free_all (rq.headers);
  client_response_release (&r);
  envelope_reader_release (&s.reader);
  json_decref (s.end);
  json_decref (s.error);
  return status;
}

int
cmd_exec (int argc, char **argv)
{
  struct exec_args a = { .env = json_object () };
  struct sandbox_target t = { 0 };
  int status = parse_args (&a, argc, argv);

  if (status <= 0)
    status = status < 0 ? CLIENT_EXIT_USAGE : 0;
  else if ((status = client_open (&a.c)) == 0 && (status = client_sandbox (&a.c, a.id, &t)) == 0)
    status = run_exec (&a, &t);
  sandbox_target_release (&t);
  client_close (&a.c);
  json_decref (a.env);
  return status;
}
