/* hutch code: run code in the code interpreter of a sandbox (POST
   /execute on port 49999), printing its NDJSON stream as it arrives.  */
#define _GNU_SOURCE
#include "cli.h"
#include "client.h"
#include "libhutch/util.h"

#include <string.h>
#include <unistd.h>

static const char code_usage[]
    = "usage: hutch code ID [OPTIONS] (CODE | -)\n"
      "\n"
      "Run CODE (read from stdin with `-`) in the code interpreter of sandbox ID,\n"
      "in the default Python context unless told otherwise; variables and imports\n"
      "stay for the next run.  stdout and stderr are passed on as they arrive;\n"
      "each result is printed as its text, or as a note such as\n"
      "`[image/png result, 1234 bytes]` when it has no text; an error is printed\n"
      "on stderr as its traceback and `Name: value`.\n"
      "\n"
      "  --language L      run in L's default context (python, javascript,\n"
      "                    typescript, bash...)\n"
      "  --context C       run in the context with id C\n" CLIENT_OPTIONS_HELP
      "                    (here: the NDJSON lines as the server sends them)\n"
      "\n"
      "Exit status: 0 the code ran, 1 it raised an error, 2 bad usage, 3 sandbox\n"
      "or context not found, 4 authentication failed, 5 hutchd unreachable, 125\n"
      "other failures.\n";

static const struct option long_options[] = {
  { "language", required_argument, NULL, 'l' },
  { "context", required_argument, NULL, 'c' },
  CLIENT_LONG_OPTIONS,
  { NULL, 0, NULL, 0 },
};

struct code_args
{
  struct client c;
  const char *id;
  const char *code; /* the argument, or NULL for stdin */
  const char *language;
  const char *context;
};

struct code_state
{
  struct code_args *a;
  struct line_reader lines;
  bool raised; /* an error line came */
  bool ended;  /* end_of_execution came */
};

/* Returns 1, 0 for --help, -1 on bad usage.  */
static int
parse_args (struct code_args *a, int argc, char **argv)
{
  int c;

  optind = 0;
  while ((c = getopt_long (argc, argv, "h", long_options, NULL)) != -1)
    {
      if (c == 'h')
        {
          fputs (code_usage, stdout);
          return 0;
        }
      if (c == 'l')
        a->language = optarg;
      else if (c == 'c')
        a->context = optarg;
      else if (!client_option (&a->c, c, optarg))
        return -1;
    }
  if (argc - optind != 2)
    {
      fputs ("usage: hutch code ID [--language L | --context C] (CODE | -)\n", stderr);
      return -1;
    }
  if (a->language && a->context)
    {
      fputs ("hutch code: --language and --context exclude each other\n", stderr);
      return -1;
    }
  a->id = argv[optind];
  a->code = strcmp (argv[optind + 1], "-") == 0 ? NULL : argv[optind + 1];
  return 1;
}

static char *
read_stdin (void)
{
  size_t len = 0, cap = 4096;
  char *buf = xmalloc (cap);
  ssize_t n;

  while ((n = TEMP_FAILURE_RETRY (read (0, buf + len, cap - len - 1))) > 0)
    {
      len += (size_t)n;
      if (len + 1 == cap)
        buf = xrealloc (buf, cap *= 2);
    }
  if (n < 0)
    {
      fprintf (stderr, "hutch code: reading stdin: %s\n", strerror (errno));
      free (buf);
      return NULL;
    }
  buf[len] = '\0';
  return buf;
}

/* ---- printing the lines ---- */

static const struct
{
  const char *field;
  const char *mime;
  bool base64;
} rich_formats[] = {
  { "png", "image/png", true },          { "jpeg", "image/jpeg", true },
  { "svg", "image/svg+xml", false },     { "pdf", "application/pdf", true },
  { "html", "text/html", false },        { "markdown", "text/markdown", false },
  { "latex", "text/latex", false },      { "javascript", "application/javascript", false },
  { "json", "application/json", false }, { "data", "e2b/data", false },
  { "chart", "e2b/chart", false },
};

/* The size of a format's content: decoded bytes for base64, else the
   length of the string or of the JSON.  */
static size_t
content_size (json_t *v, bool base64)
{
  const char *s = json_string_value (v);
  size_t len, pad = 0;
  cleanup_free char *dump = NULL;

  if (s == NULL)
    {
      dump = json_dumps (v, JSON_COMPACT | JSON_ENCODE_ANY);
      return dump ? strlen (dump) : 0;
    }
  len = strlen (s);
  if (!base64)
    return len;
  while (pad < len && pad < 2 && s[len - 1 - pad] == '=')
    pad++;
  return (len - pad) * 3 / 4;
}

static int
print_rich_note (json_t *result)
{
  char note[128];

  for (size_t i = 0; i < ARRAY_SIZE (rich_formats); i++)
    {
      json_t *v = json_object_get (result, rich_formats[i].field);
      if (v == NULL || json_is_null (v))
        continue;
      snprintf (note, sizeof note, "[%s result, %zu bytes]\n", rich_formats[i].mime,
                content_size (v, rich_formats[i].base64));
      return client_write (1, note, strlen (note));
    }
  return client_write (1, "[empty result]\n", 15);
}

static int
print_result (json_t *result)
{
  const char *text = json_string_value (json_object_get (result, "text"));
  size_t len = text ? strlen (text) : 0;

  if (text == NULL)
    return print_rich_note (result);
  if (client_write (1, text, len))
    return CLIENT_EXIT_FAILURE;
  return len && text[len - 1] == '\n' ? 0 : client_write (1, "\n", 1);
}

/* The last non-empty line of S, in BUF.  */
static const char *
last_line (const char *s, char *buf, size_t size)
{
  size_t end = strlen (s), start;

  while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == ' '))
    end--;
  start = end;
  while (start > 0 && s[start - 1] != '\n')
    start--;
  snprintf (buf, size, "%.*s", (int)(end - start), s + start);
  return buf;
}

/* The traceback, then `Name: value` unless the traceback already ends
   with it (Python's does).  Escapes only for a terminal.  */
static int
print_error (json_t *error)
{
  const char *name = json_string_value (json_object_get (error, "name"));
  const char *value = json_string_value (json_object_get (error, "value"));
  const char *tb = json_string_value (json_object_get (error, "traceback"));
  cleanup_free char *text = xstrdup (tb ? tb : "");
  cleanup_free char *plain = xstrdup (text);
  cleanup_free char *headline = NULL;
  size_t len;
  char last[1024];

  client_strip_ansi (plain);
  if (!isatty (2))
    client_strip_ansi (text);
  len = strlen (text);
  if (len && (client_write (2, text, len) || (text[len - 1] != '\n' && client_write (2, "\n", 1))))
    return CLIENT_EXIT_FAILURE;
  name = name && *name ? name : "Error";
  xasprintf (&headline, value && *value ? "%s: %s\n" : "%s\n", name, value ? value : "");
  len = strlen (headline);
  if (strncmp (last_line (plain, last, sizeof last), headline, len - 1) == 0
      && last[len - 1] == '\0')
    return 0;
  return client_write (2, headline, len);
}

static int
on_line (void *arg, char *line, size_t len)
{
  struct code_state *s = arg;
  json_t *msg, *text;
  const char *type;
  int status = 0;

  if (len == 0)
    return 0;
  if (s->a->c.json)
    {
      line[len] = '\n';
      status = client_write (1, line, len + 1);
      line[len] = '\0';
    }
  msg = json_loadb (line, len, 0, NULL);
  type = json_string_value (json_object_get (msg, "type"));
  text = json_object_get (msg, "text");
  if (msg == NULL)
    {
      fprintf (stderr, "hutch code: the server sent a line that is not JSON\n");
      return CLIENT_EXIT_FAILURE;
    }
  if (type && strcmp (type, "error") == 0)
    s->raised = true;
  if (type && strcmp (type, "end_of_execution") == 0)
    s->ended = true;
  if (status == 0 && type && !s->a->c.json)
    {
      if (strcmp (type, "stdout") == 0 || strcmp (type, "stderr") == 0)
        status = client_write (strcmp (type, "stdout") == 0 ? 1 : 2, json_string_value (text),
                               json_string_length (text));
      else if (strcmp (type, "result") == 0)
        status = print_result (msg);
      else if (strcmp (type, "error") == 0)
        status = print_error (msg);
    }
  json_decref (msg);
  return status;
}

static int
code_sink (void *arg, const char *data, size_t len)
{
  struct code_state *s = arg;
  return line_feed (&s->lines, data, len);
}

/* ---- the request ---- */

static char *
execute_body (const struct code_args *a, const char *code)
{
  json_t *body = json_pack ("{s:s}", "code", code);
  char *data;

  if (body == NULL)
    {
      fprintf (stderr, "hutch code: the code is not valid UTF-8\n");
      return NULL;
    }
  if (a->language)
    json_object_set_new (body, "language", json_string (a->language));
  if (a->context)
    json_object_set_new (body, "context_id", json_string (a->context));
  data = json_dumps (body, JSON_COMPACT);
  json_decref (body);
  return data;
}

static int
execution_status (struct code_state *s)
{
  if (s->raised)
    return CLIENT_EXIT_REMOTE;
  if (s->ended)
    return 0;
  fprintf (stderr, "hutch code: the execution ended early (the connection broke, or the sandbox "
                   "was killed)\n");
  return CLIENT_EXIT_FAILURE;
}

static int
run_code (struct code_args *a, struct sandbox_target *t, const char *code)
{
  cleanup_free char *body = execute_body (a, code);
  struct code_state s = { .a = a };
  struct client_request rq = { .method = "POST", .path = "/execute" };
  struct client_response r;
  int status;

  if (body == NULL)
    return CLIENT_EXIT_USAGE;
  rq.body = body;
  rq.body_len = strlen (body);
  rq.headers = client_sandbox_headers (t, INTERP_PORT, NULL);
  rq.headers = curl_slist_append (rq.headers, "Content-Type: application/json");
  rq.sink = code_sink;
  rq.sink_arg = &s;
  s.lines.on_line = on_line;
  s.lines.arg = &s;
  status = client_perform (&a->c, &rq, &r);
  status = client_check_gone (&a->c, t, &r, status);
  if (status == 0 && r.status != 200)
    status = client_sandbox_error (t, INTERP_PORT, "execute", &r);
  else if (status == 0 && (status = line_finish (&s.lines)) == 0)
    status = execution_status (&s);
  curl_slist_free_all (rq.headers);
  client_response_release (&r);
  line_reader_release (&s.lines);
  return status;
}

int
cmd_code (int argc, char **argv)
{
  struct code_args a = { 0 };
  struct sandbox_target t = { 0 };
  cleanup_free char *input = NULL;
  int status = parse_args (&a, argc, argv);

  if (status <= 0)
    return status < 0 ? CLIENT_EXIT_USAGE : 0;
  if (a.code == NULL && (input = read_stdin ()) == NULL)
    return CLIENT_EXIT_FAILURE;
  if ((status = client_open (&a.c)) == 0 && (status = client_sandbox (&a.c, a.id, &t)) == 0)
    status = run_code (&a, &t, a.code ? a.code : input);
  sandbox_target_release (&t);
  client_close (&a.c);
  return status;
}
