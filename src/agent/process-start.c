/* process.Process/Start: parse the request, build the child's argv,
   environment and credentials, spawn it and attach the call's stream.  */
#define _GNU_SOURCE
#include "child-setup.h"
#include "libhutch/util.h"
#include "process-internal.h"
#include "services.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct start_request
{
  const char *cmd;
  json_t *args, *envs;
  const char *cwd; /* NULL: absent */
  const char *tag;
  bool pty;
  unsigned short cols, rows;
  bool stdin_pipe;
};

static bool
all_strings (json_t *array)
{
  size_t i;
  json_t *v;

  json_array_foreach (array, i, v)
  {
    if (!json_is_string (v))
      return false;
  }
  return true;
}

static bool
all_string_values (json_t *object)
{
  const char *k;
  json_t *v;

  json_object_foreach (object, k, v)
  {
    if (!json_is_string (v))
      return false;
  }
  return true;
}

static int
parse_start (json_t *body, struct start_request *r, struct rpc_error *e)
{
  json_t *proc = json_object_get (body, "process");
  json_t *cmd = json_object_get (proc, "cmd"), *cwd = json_object_get (proc, "cwd");
  json_t *tag = json_object_get (body, "tag"), *in = json_object_get (body, "stdin");
  json_t *pty = json_object_get (body, "pty");

  r->args = json_object_get (proc, "args");
  r->envs = json_object_get (proc, "envs");
  if (!json_is_object (proc) || !json_is_string (cmd) || (r->args && !json_is_array (r->args))
      || (r->envs && !json_is_object (r->envs)) || (cwd && !json_is_string (cwd))
      || (tag && !json_is_string (tag)) || (in && !json_is_boolean (in)))
    return proc_fail (e, "invalid_argument", "invalid process configuration");
  if ((r->args && !all_strings (r->args)) || (r->envs && !all_string_values (r->envs)))
    return proc_fail (e, "invalid_argument", "args and envs must be strings");
  r->cmd = json_string_value (cmd);
  r->cwd = json_string_value (cwd);
  r->tag = json_string_value (tag);
  r->stdin_pipe = in == NULL || json_is_true (in);
  if (pty && !json_is_null (pty))
    {
      r->pty = true;
      return proc_parse_pty (pty, &r->cols, &r->rows, e);
    }
  return 0;
}

/* The ProcessConfig List reports: as given, defaults omitted.  */
static json_t *
config_json (const struct start_request *r)
{
  json_t *c = json_pack ("{s:s}", "cmd", r->cmd);

  if (json_array_size (r->args))
    json_object_set (c, "args", r->args);
  if (json_object_size (r->envs))
    json_object_set (c, "envs", r->envs);
  if (r->cwd)
    json_object_set_new (c, "cwd", json_string (r->cwd));
  return c;
}

/* Everything the child needs, owned here.  */
struct spawn_args
{
  struct proc_spec spec;
  char *cwd;
  json_t *env; /* the merged environment */
};

static void
spawn_args_free (struct spawn_args *a)
{
  if (a->spec.argv)
    for (char **s = a->spec.argv; *s; s++)
      free (*s);
  free (a->spec.argv);
  if (a->spec.envp)
    for (char **s = a->spec.envp; *s; s++)
      free (*s);
  free (a->spec.envp);
  free (a->spec.groups);
  free (a->cwd);
  json_decref (a->env);
}

#define cleanup_spawn_args __attribute__ ((cleanup (spawn_args_free)))

static char **
build_argv (const struct start_request *r)
{
  size_t n = json_array_size (r->args);
  char **argv = xzalloc ((n + 2) * sizeof *argv);

  argv[0] = xstrdup (r->cmd);
  for (size_t i = 0; i < n; i++)
    argv[i + 1] = xstrdup (json_string_value (json_array_get (r->args, i)));
  return argv;
}

/* PATH, HOME, USER and LOGNAME, then the sandbox's variables, then the
   request's, later ones replacing earlier ones.  */
static json_t *
merge_env (const struct agent_user *u, json_t *request_envs)
{
  json_t *env = child_base_env (u);

  if (request_envs)
    json_object_update (env, request_envs);
  return env;
}

static int
resolve_cwd (const struct agent_user *u, const char *given, char **ret, struct rpc_error *e)
{
  struct stat st;
  char *cwd = agent_resolve_path (u, given ? given : "");

  if (cwd == NULL)
    return proc_fail (e, "invalid_argument", "invalid cwd '%s'", given);
  if (stat (cwd, &st) < 0 && errno == ENOENT)
    {
      proc_fail (e, "invalid_argument", "cwd '%s' does not exist", cwd);
      free (cwd);
      return -1;
    }
  *ret = cwd;
  return 0;
}

static int
prepare_spawn (const struct agent_user *u, const struct start_request *r, struct spawn_args *a,
               struct rpc_error *e)
{
  if (resolve_cwd (u, r->cwd, &a->cwd, e) < 0)
    return -1;
  a->env = merge_env (u, r->envs);
  a->spec.argv = build_argv (r);
  a->spec.envp = child_envp (a->env);
  a->spec.path = json_string_value (json_object_get (a->env, "PATH"));
  a->spec.cwd = a->cwd;
  a->spec.uid = u->uid;
  a->spec.gid = u->gid;
  a->spec.groups = child_groups (u, &a->spec.n_groups);
  a->spec.pty = r->pty;
  a->spec.cols = r->cols;
  a->spec.rows = r->rows;
  a->spec.stdin_pipe = r->stdin_pipe;
  return 0;
}

static const char *
spawn_error_code (int err)
{
  /* Transient shortages are retryable, as envd reports them.  */
  if (err == EAGAIN || err == ENOMEM || err == EMFILE || err == ENFILE || err == ENOSPC)
    return "resource_exhausted";
  return "invalid_argument";
}

static char *
command_line (const struct start_request *r)
{
  size_t n = json_array_size (r->args);
  char *line = xstrdup (r->cmd);

  for (size_t i = 0; i < n; i++)
    {
      char *longer;
      xasprintf (&longer, "%s %s", line, json_string_value (json_array_get (r->args, i)));
      free (line);
      line = longer;
    }
  return line;
}

static struct proc *
spawn (const struct start_request *r, const struct spawn_args *a, struct rpc_error *e)
{
  cleanup_json json_t *config = config_json (r);
  cleanup_free char *line = NULL;
  const char *what = "start";
  struct proc *p = proc_spawn (&a->spec, config, r->tag, &what);
  int err = errno;

  if (p)
    return p;
  line = command_line (r);
  proc_fail (e, spawn_error_code (err), "error starting process '%s': %s: %s", line, what,
             strerror (err));
  return NULL;
}

static void
set_lifetime (struct proc *p, struct connect_stream *stream)
{
  long ms = connect_stream_deadline_ms (stream);
  if (ms >= 0)
    p->deadline_ns = now_ns () + (unsigned long long)ms * 1000000ULL;
}

static int
start (struct http_req *req, json_t *body, struct connect_stream *stream, struct rpc_error *e)
{
  cleanup_spawn_args struct spawn_args a = { 0 };
  cleanup_proc struct proc *p = NULL;
  struct start_request r = { 0 };
  struct agent_user u;

  if (agent_user_from_basic_auth (http_header (req->conn, "Authorization"), &u) < 0)
    return proc_fail (e, "unauthenticated", "invalid or unknown user");
  if (parse_start (body, &r, e) < 0 || prepare_spawn (&u, &r, &a, e) < 0)
    return -1;
  p = spawn (&r, &a, e);
  if (p == NULL)
    return -1;
  set_lifetime (p, stream);
  proc_attach (p, stream, true);
  if (proc_start_output (p) < 0)
    {
      int err = errno;
      proc_signal (p, SIGKILL);
      proc_table_remove (p);
      return proc_fail (e, "resource_exhausted", "cannot watch the process: %s", strerror (err));
    }
  return 0;
}

enum MHD_Result
process_start (struct http_req *req)
{
  cleanup_json json_t *body = connect_request (req, true);
  struct connect_stream *stream;
  struct rpc_error e;
  int result;

  if (body == NULL)
    return MHD_YES;
  stream = connect_stream_new (req, proc_keepalive_event ());
  result = start (req, body, stream, &e);
  return proc_respond_stream (stream, result, &e);
}
