/* hutch files: copy files into and out of a sandbox (envd's /files,
   streamed both ways) and list its directories
   (filesystem.Filesystem/ListDir).  */
#define _GNU_SOURCE
#include "cli.h"
#include "client.h"
#include "libhutch/util.h"
#include "options.h"

#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>

static const char files_usage[]
    = "usage: hutch files COMMAND [OPTIONS] ARGS\n"
      "\n"
      "Copy files into and out of a sandbox of a running hutchd, and list them.\n"
      "Relative paths in the sandbox start at the user's home directory.\n"
      "\n"
      "  put ID LOCAL REMOTE    upload LOCAL (`-`: stdin) to REMOTE, creating missing\n"
      "                         directories and replacing a file; prints REMOTE's\n"
      "                         absolute path\n"
      "  get ID REMOTE [LOCAL]  download REMOTE to LOCAL (default: REMOTE's name in\n"
      "                         the current directory; a directory: into it; `-`:\n"
      "                         stdout)\n"
      "  ls ID [PATH]           list a directory (default: the home): PERMISSIONS,\n"
      "                         OWNER, GROUP, SIZE, MODIFIED, NAME\n"
      "\n"
      "  --user NAME       act as NAME (default: the sandbox's default user)\n"
      "  --depth N         ls: descend N levels (default 1)\n" CLIENT_OPTIONS_HELP "\n"
      "Exit status: 0 done, 2 bad usage (or a path the sandbox refused), 3 sandbox\n"
      "or file not found, 4 authentication failed (or an unknown user), 5 hutchd\n"
      "unreachable, 125 other failures.\n";

static const struct option long_options[] = {
  { "user", required_argument, NULL, 'u' },
  { "depth", required_argument, NULL, 'd' },
  CLIENT_LONG_OPTIONS,
  { NULL, 0, NULL, 0 },
};

struct files_args
{
  struct client c;
  const char *user;
  unsigned long depth;
  char **pos; /* ID, then the subcommand's arguments */
  int npos;
};

/* Returns 1, 0 for --help, -1 on bad usage.  */
static int
parse_args (struct files_args *a, bool is_ls, int argc, char **argv)
{
  int c;

  optind = 0;
  while ((c = getopt_long (argc, argv, "h", long_options, NULL)) != -1)
    {
      if (c == 'h')
        {
          fputs (files_usage, stdout);
          return 0;
        }
      if (c == 'u')
        a->user = optarg;
      else if (c == 'd' && !is_ls)
        {
          fprintf (stderr, "hutch files %s: --depth is only for `ls`\n", argv[0]);
          return -1;
        }
      else if (c == 'd' && opt_count ("--depth", optarg, 1000, &a->depth) < 0)
        return -1;
      else if (c != 'd' && !client_option (&a->c, c, optarg))
        return -1;
    }
  a->pos = argv + optind;
  a->npos = argc - optind;
  return 1;
}

/* The /files URL path for REMOTE, as the user if one was given.  */
static char *
files_path (const struct files_args *a, const char *remote)
{
  cleanup_free char *p = client_escape (remote);
  cleanup_free char *u = a->user ? client_escape (a->user) : NULL;
  char *path;

  xasprintf (&path, "/files?path=%s%s%s", p, u ? "&username=" : "", u ? u : "");
  return path;
}

/* ---- put ---- */

static int
open_upload (const char *local, long long *ret_len)
{
  struct stat st;
  int fd = strcmp (local, "-") == 0 ? fcntl (0, F_DUPFD_CLOEXEC, 3)
                                    : open (local, O_RDONLY | O_CLOEXEC);

  if (fd < 0 || fstat (fd, &st) < 0)
    {
      fprintf (stderr, "hutch files put: cannot read `%s`: %s\n", local, strerror (errno));
      if (fd >= 0)
        close (fd);
      return -1;
    }
  if (S_ISDIR (st.st_mode))
    {
      fprintf (stderr, "hutch files put: `%s` is a directory\n", local);
      close (fd);
      return -1;
    }
  /* Pipes and terminals have no size: the body is sent chunked.  */
  *ret_len = S_ISREG (st.st_mode) ? (long long)st.st_size : -1;
  return fd;
}

static int
print_written (struct files_args *a, const struct client_response *r)
{
  json_t *list = json_loadb (r->body ? r->body : "", r->len, 0, NULL);
  const char *path = json_string_value (json_object_get (json_array_get (list, 0), "path"));

  if (path == NULL)
    {
      fprintf (stderr, "hutch files put: unexpected answer from the sandbox\n");
      json_decref (list);
      return CLIENT_EXIT_FAILURE;
    }
  if (a->c.json)
    client_print_json (list);
  else
    printf ("%s\n", path);
  json_decref (list);
  return 0;
}

static int
files_put (struct files_args *a, struct sandbox_target *t)
{
  cleanup_free char *path = files_path (a, a->pos[2]);
  struct client_request rq = { .method = "POST", .path = path };
  struct client_response r;
  cleanup_close int fd = open_upload (a->pos[1], &rq.upload_len);
  int status;

  if (fd < 0)
    return CLIENT_EXIT_USAGE;
  rq.upload = true;
  rq.upload_fd = fd;
  rq.headers = client_sandbox_headers (t, ENVD_PORT, NULL);
  rq.headers = curl_slist_append (rq.headers, "Content-Type: application/octet-stream");
  status = client_perform (&a->c, &rq, &r);
  if (status == 0 && r.status != 200)
    status = client_sandbox_error (t, ENVD_PORT, "upload", &r);
  else if (status == 0)
    status = print_written (a, &r);
  curl_slist_free_all (rq.headers);
  client_response_release (&r);
  return status;
}

/* ---- get ---- */

/* Where a download goes: stdout, a special file written in place, or a
   temporary file renamed over the target once complete, so that a failed
   download leaves no half-written file behind.  */
struct download
{
  int fd;
  char *target;
  char *tmp;
  unsigned long long bytes;
};

static char *
local_target (const char *remote, const char *local)
{
  cleanup_free char *copy = xstrdup (remote);
  const char *name = basename (copy);
  struct stat st;
  char *ret;

  if (local && !(stat (local, &st) == 0 && S_ISDIR (st.st_mode)))
    return xstrdup (local);
  if (*name == '\0' || strcmp (name, "/") == 0 || strcmp (name, ".") == 0
      || strcmp (name, "..") == 0)
    {
      fprintf (stderr, "hutch files get: `%s` names no file: give LOCAL\n", remote);
      return NULL;
    }
  xasprintf (&ret, "%s%s%s", local ? local : "", local ? "/" : "", name);
  return ret;
}

static int
open_temporary (struct download *d)
{
  cleanup_free char *copy = xstrdup (d->target);
  cleanup_free char *base = xstrdup (d->target);
  mode_t mask = umask (0);

  umask (mask);
  xasprintf (&d->tmp, "%s/.%s.hutch-XXXXXX", dirname (copy), basename (base));
  d->fd = mkostemp (d->tmp, O_CLOEXEC);
  if (d->fd < 0 || fchmod (d->fd, 0666 & ~mask) < 0)
    return -1;
  return 0;
}

static int
open_download (struct download *d, const char *remote, const char *local)
{
  struct stat st;

  d->fd = -1;
  if (local && strcmp (local, "-") == 0)
    {
      d->fd = fcntl (1, F_DUPFD_CLOEXEC, 3);
      return d->fd < 0 ? CLIENT_EXIT_FAILURE : 0;
    }
  d->target = local_target (remote, local);
  if (d->target == NULL)
    return CLIENT_EXIT_USAGE;
  if (stat (d->target, &st) == 0 && !S_ISREG (st.st_mode))
    d->fd = open (d->target, O_WRONLY | O_TRUNC | O_CLOEXEC);
  else if (open_temporary (d) < 0)
    d->fd = -1;
  if (d->fd >= 0)
    return 0;
  fprintf (stderr, "hutch files get: cannot write `%s`: %s\n", d->target, strerror (errno));
  return CLIENT_EXIT_FAILURE;
}

static int
close_download (struct download *d, int status)
{
  if (d->fd >= 0 && close (d->fd) < 0 && status == 0)
    {
      fprintf (stderr, "hutch files get: writing `%s`: %s\n", d->target ? d->target : "stdout",
               strerror (errno));
      status = CLIENT_EXIT_FAILURE;
    }
  d->fd = -1;
  if (d->tmp && status == 0 && rename (d->tmp, d->target) < 0)
    {
      fprintf (stderr, "hutch files get: cannot write `%s`: %s\n", d->target, strerror (errno));
      status = CLIENT_EXIT_FAILURE;
    }
  if (d->tmp && status != 0)
    unlink (d->tmp);
  free (d->tmp);
  d->tmp = NULL;
  return status;
}

static int
download_sink (void *arg, const char *data, size_t len)
{
  struct download *d = arg;

  if (write_all (d->fd, data, len) < 0)
    {
      if (errno != EPIPE)
        fprintf (stderr, "hutch files get: writing `%s`: %s\n", d->target ? d->target : "stdout",
                 strerror (errno));
      return CLIENT_EXIT_FAILURE;
    }
  d->bytes += len;
  return 0;
}

static void
print_download (const char *remote, const struct download *d)
{
  json_t *o = json_pack ("{s:s, s:s, s:I}", "path", remote, "local", d->target, "size",
                         (json_int_t)d->bytes);
  client_print_json (o);
  json_decref (o);
}

static int
files_get (struct files_args *a, struct sandbox_target *t)
{
  const char *remote = a->pos[1], *local = a->npos > 2 ? a->pos[2] : NULL;
  cleanup_free char *path = files_path (a, remote);
  struct download d = { .fd = -1 };
  struct client_request rq = { .method = "GET", .path = path };
  struct client_response r = { 0 };
  int status = open_download (&d, remote, local);

  rq.headers = client_sandbox_headers (t, ENVD_PORT, NULL);
  rq.sink = download_sink;
  rq.sink_arg = &d;
  if (status == 0)
    status = client_perform (&a->c, &rq, &r);
  if (status == 0 && r.status != 200)
    status = client_sandbox_error (t, ENVD_PORT, "download", &r);
  status = close_download (&d, status);
  if (status == 0 && a->c.json)
    print_download (remote, &d);
  free (d.target);
  curl_slist_free_all (rq.headers);
  client_response_release (&r);
  return status;
}

/* ---- ls ---- */

/* The directory every entry's path starts from: the shortest parent.  */
static size_t
base_length (json_t *entries)
{
  size_t best = (size_t)-1, i;
  json_t *e;

  json_array_foreach (entries, i, e)
  {
    const char *p = json_string_value (json_object_get (e, "path"));
    const char *slash = p ? strrchr (p, '/') : NULL;
    if (slash && (size_t)(slash - p) < best)
      best = (size_t)(slash - p);
  }
  return best == (size_t)-1 ? 0 : best + 1;
}

static void
add_entry (struct table *t, json_t *e, size_t base)
{
  const char *path = json_string_value (json_object_get (e, "path"));
  const char *link = json_string_value (json_object_get (e, "symlinkTarget"));
  const char *size = json_string_value (json_object_get (e, "size"));
  cleanup_free char *name = NULL;
  char modified[40];

  if (path && strlen (path) > base)
    path += base;
  else
    path = json_string_value (json_object_get (e, "name"));
  xasprintf (&name, "%s%s%s", path ? path : "", link ? " -> " : "", link ? link : "");
  const char *row[] = {
    json_string_value (json_object_get (e, "permissions")),
    json_string_value (json_object_get (e, "owner")),
    json_string_value (json_object_get (e, "group")),
    size ? size : "0",
    client_format_time (json_string_value (json_object_get (e, "modifiedTime")), modified,
                        sizeof modified),
    name,
  };
  table_add (t, row);
}

static void
print_entries (json_t *entries)
{
  static const char *const header[]
      = { "PERMISSIONS", "OWNER", "GROUP", "SIZE", "MODIFIED", "NAME" };
  size_t base = base_length (entries), i;
  struct table t;
  json_t *e;

  table_init (&t, ARRAY_SIZE (header), header);
  json_array_foreach (entries, i, e)
  {
    add_entry (&t, e, base);
  }
  table_sort (&t, ARRAY_SIZE (header) - 1);
  table_print (&t);
  table_release (&t);
}

static int
files_ls (struct files_args *a, struct sandbox_target *t)
{
  json_t *msg = json_pack ("{s:s, s:I}", "path", a->npos > 1 ? a->pos[1] : "", "depth",
                           (json_int_t)(a->depth ? a->depth : 1));
  json_t *answer = NULL, *entries;
  int status;

  if (msg == NULL)
    {
      fprintf (stderr, "hutch files ls: the path is not valid UTF-8\n");
      return CLIENT_EXIT_USAGE;
    }
  status = client_envd_unary (&a->c, t, "/filesystem.Filesystem/ListDir", a->user, msg, &answer);
  entries = json_object_get (answer, "entries");
  if (entries == NULL)
    entries = json_array ();
  else
    json_incref (entries);
  if (status == 0 && a->c.json)
    client_print_json (entries);
  else if (status == 0)
    print_entries (entries);
  json_decref (entries);
  json_decref (answer);
  json_decref (msg);
  return status;
}

static const struct
{
  const char *name;
  int (*fn) (struct files_args *a, struct sandbox_target *t);
  int min, max; /* arguments, the id included */
  const char *args;
} subcommands[] = {
  { "put", files_put, 3, 3, "ID LOCAL REMOTE" },
  { "get", files_get, 2, 3, "ID REMOTE [LOCAL|-]" },
  { "ls", files_ls, 1, 2, "ID [PATH] [--depth N]" },
};

static int
run_subcommand (size_t i, int argc, char **argv)
{
  struct files_args a = { 0 };
  struct sandbox_target t = { 0 };
  int status = parse_args (&a, strcmp (subcommands[i].name, "ls") == 0, argc, argv);

  if (status > 0 && (a.npos < subcommands[i].min || a.npos > subcommands[i].max))
    {
      fprintf (stderr, "usage: hutch files %s %s\n", subcommands[i].name, subcommands[i].args);
      status = -1;
    }
  if (status > 0 && a.c.json && i == 1 && a.npos == 3 && strcmp (a.pos[2], "-") == 0)
    {
      fputs ("hutch files get: --json and `-` both want stdout\n", stderr);
      status = -1;
    }
  if (status <= 0)
    return status < 0 ? CLIENT_EXIT_USAGE : 0;
  if ((status = client_open (&a.c)) == 0 && (status = client_sandbox (&a.c, a.pos[0], &t)) == 0)
    status = subcommands[i].fn (&a, &t);
  sandbox_target_release (&t);
  client_close (&a.c);
  return status;
}

int
cmd_files (int argc, char **argv)
{
  if (argc < 2)
    {
      fputs (files_usage, stderr);
      return CLIENT_EXIT_USAGE;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      fputs (files_usage, stdout);
      return 0;
    }
  for (size_t i = 0; i < ARRAY_SIZE (subcommands); i++)
    if (strcmp (argv[1], subcommands[i].name) == 0)
      return run_subcommand (i, argc - 1, argv + 1);
  fprintf (stderr, "hutch files: unknown command `%s`\n\n", argv[1]);
  fputs (files_usage, stderr);
  return CLIENT_EXIT_USAGE;
}
