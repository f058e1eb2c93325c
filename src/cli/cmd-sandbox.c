/* hutch sandbox: create, list, inspect, time out and kill the sandboxes
   of a running hutchd, through its control plane.  */
#define _GNU_SOURCE
#include "cli.h"
#include "client.h"
#include "libhutch/util.h"

#include <string.h>

#define DEFAULT_TEMPLATE "base"
#define PAGE_LIMIT "100"

static const char sandbox_usage[]
    = "usage: hutch sandbox COMMAND [OPTIONS] [ARGS]\n"
      "\n"
      "Manage the sandboxes of a running hutchd.\n"
      "\n"
      "  create [--template T] [--timeout S] [--metadata K=V]... [--env K=V]...\n"
      "                    create a sandbox (template " DEFAULT_TEMPLATE
      ", killed after S seconds,\n"
      "                    default 300; --env sets variables for all its processes);\n"
      "                    prints its id\n"
      "  list [--metadata K=V]... [--state running|paused]\n"
      "                    the sandboxes matching every K=V: ID, TEMPLATE, STARTED,\n"
      "                    ENDS, STATE\n"
      "  info ID           one sandbox's details\n"
      "  kill ID...        kill sandboxes; prints the id of each one killed\n"
      "  timeout ID SECS   make the sandbox end SECS seconds from now; prints when\n"
      "\n"
      "Options of every command:\n" CLIENT_OPTIONS_HELP "\n"
      "Exit status: 0 done, 2 bad usage, 3 sandbox not found, 4 authentication\n"
      "failed, 5 hutchd unreachable, 125 other failures.\n";

static const struct option long_options[] = {
  { "template", required_argument, NULL, 'T' },
  { "timeout", required_argument, NULL, 't' },
  { "metadata", required_argument, NULL, 'm' },
  { "env", required_argument, NULL, 'e' },
  { "state", required_argument, NULL, 's' },
  CLIENT_LONG_OPTIONS,
  { NULL, 0, NULL, 0 },
};

struct sandbox_args
{
  struct client c;
  const char *template;
  unsigned long timeout;
  bool has_timeout;
  json_t *metadata;
  json_t *env;
  const char *state;
  char **pos; /* positional arguments */
  int npos;
};

static const char *
option_name (int code)
{
  for (const struct option *o = long_options; o->name; o++)
    if (o->val == code)
      return o->name;
  return "?";
}

static int
parse_option (struct sandbox_args *a, int c, const char *arg)
{
  switch (c)
    {
    case 'T':
      a->template = arg;
      return 0;
    case 't':
      a->has_timeout = true;
      return client_seconds ("--timeout", arg, &a->timeout);
    case 'm':
      return client_add_pair (a->metadata, "--metadata", arg);
    case 'e':
      return client_add_pair (a->env, "--env", arg);
    case 's':
      a->state = arg;
      if (strcmp (arg, "running") == 0 || strcmp (arg, "paused") == 0)
        return 0;
      fprintf (stderr, "hutch: --state: expected `running` or `paused`, got `%s`\n", arg);
      return -1;
    default:
      return -1;
    }
}

/* Parse the options of one subcommand; ALLOWED lists its own option codes.
   Returns 0, 1 when --help was printed, -1 on bad usage (printed).  */
static int
parse_args (struct sandbox_args *a, const char *allowed, int argc, char **argv)
{
  int c;

  optind = 0;
  while ((c = getopt_long (argc, argv, "h", long_options, NULL)) != -1)
    {
      if (c == 'h')
        {
          fputs (sandbox_usage, stdout);
          return 1;
        }
      if (client_option (&a->c, c, optarg))
        continue;
      if (c != '?' && strchr (allowed, c) == NULL)
        {
          fprintf (stderr, "hutch sandbox %s: --%s is not one of its options\n", argv[0],
                   option_name (c));
          return -1;
        }
      if (c == '?' || parse_option (a, c, optarg) < 0)
        return -1;
    }
  a->pos = argv + optind;
  a->npos = argc - optind;
  return 0;
}

static int
expect_args (const struct sandbox_args *a, const char *sub, int min, int max, const char *what)
{
  if (a->npos >= min && (max < 0 || a->npos <= max))
    return 0;
  fprintf (stderr, "usage: hutch sandbox %s %s\n", sub, what);
  return -1;
}

static int
sandbox_create (struct sandbox_args *a)
{
  json_t *body = json_pack ("{s:s}", "templateID", a->template ? a->template : DEFAULT_TEMPLATE);
  json_t *sandbox = NULL;
  int status;

  if (a->has_timeout)
    json_object_set_new (body, "timeout", json_integer ((json_int_t)a->timeout));
  if (json_object_size (a->metadata))
    json_object_set (body, "metadata", a->metadata);
  if (json_object_size (a->env))
    json_object_set (body, "envVars", a->env);
  status = client_api (&a->c, "POST", "/v2/sandboxes", body, NULL, &sandbox, NULL);
  if (status == 0 && a->c.json)
    client_print_json (sandbox);
  else if (status == 0)
    printf ("%s\n", json_string_value (json_object_get (sandbox, "sandboxID")));
  json_decref (body);
  json_decref (sandbox);
  return status;
}

/* The metadata filter, encoded as the E2B SDKs do and hutchd decodes it:
   each key and value escaped, the pairs joined as a query string, and
   that whole string escaped once more as the parameter's value.  */
static char *
metadata_query (json_t *metadata)
{
  cleanup_free char *inner = xstrdup ("");
  const char *key;
  json_t *value;

  json_object_foreach (metadata, key, value)
  {
    cleanup_free char *k = client_escape (key);
    cleanup_free char *v = client_escape (json_string_value (value));
    cleanup_free char *kk = client_escape (k);
    cleanup_free char *vv = client_escape (v);
    char *next;
    xasprintf (&next, "%s%s%s=%s", inner, *inner ? "&" : "", kk, vv);
    free (inner);
    inner = next;
  }
  return client_escape (inner);
}

static char *
list_path (struct sandbox_args *a, const char *next_token)
{
  char *path;

  xasprintf (&path, "/v2/sandboxes?limit=" PAGE_LIMIT);
  if (a->state)
    {
      char *p;
      xasprintf (&p, "%s&state=%s", path, a->state);
      free (path);
      path = p;
    }
  if (json_object_size (a->metadata))
    {
      cleanup_free char *q = metadata_query (a->metadata);
      char *p;
      xasprintf (&p, "%s&metadata=%s", path, q);
      free (path);
      path = p;
    }
  if (next_token)
    {
      cleanup_free char *t = client_escape (next_token);
      char *p;
      xasprintf (&p, "%s&nextToken=%s", path, t);
      free (path);
      path = p;
    }
  return path;
}

/* Every page of GET /v2/sandboxes, following X-Next-Token, into ALL.  */
static int
fetch_all (struct sandbox_args *a, json_t *all)
{
  char *token = NULL;
  int status;

  do
    {
      cleanup_free char *path = list_path (a, token);
      json_t *page = NULL;
      free (token);
      token = NULL;
      status = client_api (&a->c, "GET", path, NULL, NULL, &page, &token);
      if (status == 0 && json_array_extend (all, page) < 0)
        {
          fprintf (stderr, "hutch: GET /v2/sandboxes: the answer is not a list\n");
          status = CLIENT_EXIT_FAILURE;
        }
      json_decref (page);
    }
  while (status == 0 && token);
  free (token);
  return status;
}

static const char *
template_name (json_t *sandbox)
{
  const char *alias = json_string_value (json_object_get (sandbox, "alias"));
  return alias && *alias ? alias : json_string_value (json_object_get (sandbox, "templateID"));
}

static void
print_list (json_t *all)
{
  static const char *const header[] = { "ID", "TEMPLATE", "STARTED", "ENDS", "STATE" };
  struct table t;
  size_t i;
  json_t *s;

  table_init (&t, ARRAY_SIZE (header), header);
  json_array_foreach (all, i, s)
  {
    char started[32], ends[32];
    const char *row[] = {
      json_string_value (json_object_get (s, "sandboxID")),
      template_name (s),
      client_format_time (json_string_value (json_object_get (s, "startedAt")), started,
                          sizeof started),
      client_format_time (json_string_value (json_object_get (s, "endAt")), ends, sizeof ends),
      json_string_value (json_object_get (s, "state")),
    };
    table_add (&t, row);
  }
  table_print (&t);
  table_release (&t);
}

static int
sandbox_list (struct sandbox_args *a)
{
  json_t *all = json_array ();
  int status = fetch_all (a, all);

  if (status == 0 && a->c.json)
    client_print_json (all);
  else if (status == 0)
    print_list (all);
  json_decref (all);
  return status;
}

static int
get_detail (struct sandbox_args *a, const char *id, json_t **ret)
{
  cleanup_free char *eid = client_escape (id);
  cleanup_free char *path = NULL;

  xasprintf (&path, "/sandboxes/%s", eid);
  return client_api (&a->c, "GET", path, NULL, id, ret, NULL);
}

static void
print_detail (json_t *d)
{
  char started[32], ends[32];
  const char *key;
  json_t *value;

  printf ("ID        %s\n", json_string_value (json_object_get (d, "sandboxID")));
  printf ("TEMPLATE  %s\n", template_name (d));
  printf ("STATE     %s\n", json_string_value (json_object_get (d, "state")));
  printf ("STARTED   %s\n",
          client_format_time (json_string_value (json_object_get (d, "startedAt")), started,
                              sizeof started));
  printf ("ENDS      %s\n",
          client_format_time (json_string_value (json_object_get (d, "endAt")), ends, sizeof ends));
  printf ("CPUS      %lld\n", (long long)json_integer_value (json_object_get (d, "cpuCount")));
  printf ("MEMORY    %lld MiB\n", (long long)json_integer_value (json_object_get (d, "memoryMB")));
  printf ("DISK      %lld MiB\n",
          (long long)json_integer_value (json_object_get (d, "diskSizeMB")));
  printf ("ENVD      %s\n", json_string_value (json_object_get (d, "envdVersion")));
  json_object_foreach (json_object_get (d, "metadata"), key, value)
      printf ("METADATA  %s=%s\n", key, json_string_value (value));
}

static int
sandbox_info (struct sandbox_args *a)
{
  json_t *detail = NULL;
  int status = get_detail (a, a->pos[0], &detail);

  if (status == 0 && a->c.json)
    client_print_json (detail);
  else if (status == 0)
    print_detail (detail);
  json_decref (detail);
  return status;
}

static int
kill_one (struct sandbox_args *a, const char *id, json_t *results)
{
  cleanup_free char *eid = client_escape (id);
  cleanup_free char *path = NULL;
  int status;

  xasprintf (&path, "/sandboxes/%s", eid);
  status = client_api (&a->c, "DELETE", path, NULL, id, NULL, NULL);
  json_array_append_new (results, json_pack ("{s:s, s:b}", "sandboxID", id, "killed", status == 0));
  if (status == 0 && !a->c.json)
    printf ("%s\n", id);
  return status;
}

static int
sandbox_kill (struct sandbox_args *a)
{
  json_t *results = json_array ();
  int status = 0;

  /* An unknown id does not stop the others; any other failure (key,
     server) would fail them all the same.  */
  for (int i = 0; i < a->npos; i++)
    {
      int s = kill_one (a, a->pos[i], results);
      if (status == 0)
        status = s;
      if (s != 0 && s != CLIENT_EXIT_NOT_FOUND)
        break;
    }
  if (a->c.json)
    client_print_json (results);
  json_decref (results);
  return status;
}

static int
sandbox_timeout (struct sandbox_args *a)
{
  cleanup_free char *eid = client_escape (a->pos[0]);
  cleanup_free char *path = NULL;
  json_t *body, *detail = NULL;
  unsigned long seconds;
  int status;
  char ends[32];

  if (client_seconds ("SECONDS", a->pos[1], &seconds) < 0)
    return CLIENT_EXIT_USAGE;
  xasprintf (&path, "/sandboxes/%s/timeout", eid);
  body = json_pack ("{s:I}", "timeout", (json_int_t)seconds);
  status = client_api (&a->c, "POST", path, body, a->pos[0], NULL, NULL);
  json_decref (body);
  if (status == 0)
    status = get_detail (a, a->pos[0], &detail);
  if (status == 0 && a->c.json)
    client_print_json (detail);
  else if (status == 0)
    printf ("%s ends at %s\n", a->pos[0],
            client_format_time (json_string_value (json_object_get (detail, "endAt")), ends,
                                sizeof ends));
  json_decref (detail);
  return status;
}

static const struct
{
  const char *name;
  int (*fn) (struct sandbox_args *a);
  const char *options; /* codes of its own options */
  int min, max;        /* positional arguments; max -1: any number */
  const char *args;
} subcommands[] = {
  { "create", sandbox_create, "Ttme", 0, 0,
    "[--template T] [--timeout S] [--metadata K=V]... [--env K=V]..." },
  { "list", sandbox_list, "ms", 0, 0, "[--metadata K=V]... [--state running|paused]" },
  { "info", sandbox_info, "", 1, 1, "ID" },
  { "kill", sandbox_kill, "", 1, -1, "ID..." },
  { "timeout", sandbox_timeout, "", 2, 2, "ID SECONDS" },
};

static int
run_subcommand (size_t i, int argc, char **argv)
{
  struct sandbox_args a = { .metadata = json_object (), .env = json_object () };
  int status = parse_args (&a, subcommands[i].options, argc, argv);

  if (status == 0
      && expect_args (&a, subcommands[i].name, subcommands[i].min, subcommands[i].max,
                      subcommands[i].args)
             < 0)
    status = -1;
  /* -1: bad usage, 1: --help printed.  */
  if (status != 0)
    status = status < 0 ? CLIENT_EXIT_USAGE : 0;
  else if ((status = client_open (&a.c)) == 0)
    status = subcommands[i].fn (&a);
  client_close (&a.c);
  json_decref (a.metadata);
  json_decref (a.env);
  return status;
}

int
cmd_sandbox (int argc, char **argv)
{
  if (argc < 2)
    {
      fputs (sandbox_usage, stderr);
      return CLIENT_EXIT_USAGE;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      fputs (sandbox_usage, stdout);
      return 0;
    }
  for (size_t i = 0; i < ARRAY_SIZE (subcommands); i++)
    if (strcmp (argv[1], subcommands[i].name) == 0)
      return run_subcommand (i, argc - 1, argv + 1);
  fprintf (stderr, "hutch sandbox: unknown command `%s`\n\n", argv[1]);
  fputs (sandbox_usage, stderr);
  return CLIENT_EXIT_USAGE;
}
