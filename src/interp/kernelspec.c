/* Which kernel runs a language, and starting it: pyzygote for Python when
   it is ready, installed Jupyter kernelspecs, our own kernels last.  */
#define _GNU_SOURCE
#include "agent/child-setup.h"
#include "interp-internal.h"
#include "interp.h"
#include "libhutch/log.h"
#include "libhutch/util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>

#define MAX_SPECS 4

/* pyzygote.c is optional at link time: without it Python kernels start
   from the python3 kernelspec.  */
#pragma weak pyzygote_ready
#pragma weak pyzygote_fork_kernel

static const struct
{
  const char *language;
  const char *specs[MAX_SPECS]; /* kernelspec names, in order */
  bool builtin;                 /* then our own kernel */
} languages[] = {
  { "python", { "python3", "python" }, false },
  { "javascript", { "javascript", "jslab", "deno" }, true },
  { "typescript", { "tslab", "deno", "javascript", "jslab" }, true },
  { "r", { "ir", "r" }, false },
  { "bash", { "bash" }, true },
};

struct kernelspec
{
  char *dir;   /* the resource directory */
  json_t *doc; /* kernel.json */
};

static void
kernelspec_clear (struct kernelspec *k)
{
  free (k->dir);
  json_decref (k->doc);
}

static bool
argv_ok (json_t *argv)
{
  size_t i;
  json_t *v;

  if (!json_is_array (argv) || json_array_size (argv) == 0)
    return false;
  json_array_foreach (argv, i, v)
  {
    if (!json_is_string (v))
      return false;
  }
  return true;
}

static bool
load_spec (const char *root, const char *name, struct kernelspec *ret)
{
  cleanup_free char *dir = NULL, *file = NULL;
  json_t *doc;

  if (strchr (name, '/') || strcmp (name, "..") == 0 || *name == '.')
    return false;
  xasprintf (&dir, "%s/%s", root, name);
  xasprintf (&file, "%s/kernel.json", dir);
  doc = json_load_file (file, 0, NULL);
  if (doc == NULL || !argv_ok (json_object_get (doc, "argv")))
    {
      json_decref (doc);
      return false;
    }
  ret->dir = steal_pointer (&dir);
  ret->doc = doc;
  return true;
}

/* Jupyter's data path: the user's, then the system's.  */
static bool
find_spec (const char *name, const struct agent_user *user, struct kernelspec *ret)
{
  cleanup_free char *mine = NULL;
  const char *roots[] = { NULL, "/usr/local/share/jupyter/kernels", "/usr/share/jupyter/kernels" };

  xasprintf (&mine, "%s/.local/share/jupyter/kernels", user->home);
  roots[0] = mine;
  for (size_t i = 0; i < ARRAY_SIZE (roots); i++)
    if (load_spec (roots[i], name, ret))
      return true;
  return false;
}

/* Replace "{name}" by VALUE in S.  */
static char *
substitute (const char *s, const char *name, const char *value)
{
  const char *at = strstr (s, name);
  char *out;

  if (at == NULL)
    return xstrdup (s);
  xasprintf (&out, "%.*s%s%s", (int)(at - s), s, value, at + strlen (name));
  return out;
}

static char **
build_argv (json_t *argv, const char *dir, const char *conn_file)
{
  char **out = xzalloc ((json_array_size (argv) + 1) * sizeof *out);
  size_t i;
  json_t *v;

  json_array_foreach (argv, i, v)
  {
    cleanup_free char *a = substitute (json_string_value (v), "{connection_file}", conn_file);
    out[i] = substitute (a, "{resource_dir}", dir ? dir : "");
  }
  return out;
}

/* argv[0] as a path, looked up in PATH as execvp would, before the fork.  */
static char *
resolve_program (const char *prog, const char *path)
{
  if (strchr (prog, '/'))
    return xstrdup (prog);
  for (const char *p = path; p && *p;)
    {
      size_t n = strcspn (p, ":");
      char *cand;
      xasprintf (&cand, "%.*s/%s", (int)n, n ? p : ".", prog);
      if (access (cand, X_OK) == 0)
        return cand;
      free (cand);
      p += n + (p[n] == ':');
    }
  return xstrdup (prog);
}

static void
free_strv (char **v)
{
  for (char **p = v; p && *p; p++)
    free (*p);
  free (v);
}

/* Without LC_ALL, LC_CTYPE or LANG a kernel runs in the C locale, where
   R, for one, prints every non-ASCII character as <U+00E9>.  Give it
   UTF-8 text as the Python kernels have it (PEP 538 does the same).  */
static void
default_ctype (json_t *env)
{
  const char *vars[] = { "LC_ALL", "LC_CTYPE", "LANG" };

  for (size_t i = 0; i < ARRAY_SIZE (vars); i++)
    if (json_object_get (env, vars[i]))
      return;
  json_object_set_new (env, "LC_CTYPE", json_string ("C.UTF-8"));
}

/* Without TZ, R's Sys.timezone() runs timedatectl, which fails and warns
   in a sandbox (no systemd); TZ from /etc/timezone names the same zone
   as /etc/localtime does, and R takes it as it is.  */
static void
default_tz (json_t *env)
{
  cleanup_free char *text = NULL;
  size_t len;

  if (json_object_get (env, "TZ") || read_file_at (AT_FDCWD, "/etc/timezone", &text, &len) < 0)
    return;
  len = strcspn (text, " \t\r\n");
  if (len > 0 && len < 256 && strlen (text) == len + strspn (text + len, " \t\r\n"))
    json_object_set_new (env, "TZ", json_stringn (text, len));
}

/* Start ARGV (a JSON array with {connection_file}) with the variables of
   SPEC_ENV (may be NULL) over the base environment; DEFAULTS: set
   LC_CTYPE and TZ when nothing chose a locale or a zone.  */
static int
start_argv (json_t *argv, const char *dir, json_t *spec_env, bool defaults, const char *conn_file,
            const struct agent_user *user, const char *cwd, struct kernel_proc *ret,
            hutch_error_t *err)
{
  cleanup_json_t json_t *env = child_base_env (user);
  struct kernel_spawn_spec s = { .cwd = cwd, .uid = user->uid, .gid = user->gid };
  int r;

  if (json_is_object (spec_env))
    json_object_update (env, spec_env);
  if (defaults)
    {
      default_ctype (env);
      default_tz (env);
    }
  s.argv = build_argv (argv, dir, conn_file);
  s.envp = child_envp (env);
  s.groups = child_groups (user, &s.n_groups);
  free (s.argv[0]);
  s.argv[0] = resolve_program (json_string_value (json_array_get (argv, 0)),
                               json_string_value (json_object_get (env, "PATH")));
  r = kernel_spawn (&s, ret, err);
  free_strv (s.argv);
  free_strv (s.envp);
  free (s.groups);
  return r;
}

/* Does ARGV start ipykernel (`python3 -m ipykernel_launcher` and the like)?  */
static bool
runs_ipykernel (json_t *argv)
{
  size_t i;
  json_t *v;

  json_array_foreach (argv, i, v)
  {
    const char *base = strrchr (json_string_value (v), '/');
    base = base ? base + 1 : json_string_value (v);
    if (strcmp (base, "ipykernel_launcher") == 0 || strcmp (base, "ipykernel_launcher.py") == 0
        || strcmp (base, "ipykernel") == 0)
      return true;
  }
  return false;
}

/* An IPython kernel installs the result formatters with its start-up code
   (what pyzygote's kernels have from the zygote).  */
static json_t *
spec_argv (const struct kernelspec *k, bool python)
{
  json_t *argv = json_object_get (k->doc, "argv");
  cleanup_free char *code = NULL, *arg = NULL;

  if (!python || !runs_ipykernel (argv))
    return json_incref (argv);
  argv = json_copy (argv);
  code = result_formatters_code ();
  xasprintf (&arg, "--IPKernelApp.code_to_run=%s", code);
  json_array_append_new (argv, json_string (arg));
  return argv;
}

static int
start_spec (const struct kernelspec *k, bool python, const char *conn_file,
            const struct agent_user *user, const char *cwd, struct kernel_proc *ret,
            hutch_error_t *err)
{
  const char *mode = json_string_value (json_object_get (k->doc, "interrupt_mode"));
  cleanup_json_t json_t *argv = spec_argv (k, python);

  ret->interrupt_by_message = mode && strcmp (mode, "message") == 0;
  return start_argv (argv, k->dir, json_object_get (k->doc, "env"), true, conn_file, user, cwd, ret,
                     err);
}

static int
start_builtin (const char *language, const char *conn_file, const struct agent_user *user,
               const char *cwd, struct kernel_proc *ret, hutch_error_t *err)
{
  cleanup_json_t json_t *argv = builtin_kernel_argv (language, err);

  if (argv == NULL)
    return -1;
  ret->interrupt_by_message = false;
  return start_argv (argv, NULL, NULL, false, conn_file, user, cwd, ret, err);
}

static bool
start_pyzygote (const char *conn_file, const struct agent_user *user, const char *cwd,
                struct kernel_proc *ret)
{
  pid_t pid;

  if (pyzygote_ready == NULL || pyzygote_fork_kernel == NULL || !pyzygote_ready ())
    return false;
  pid = pyzygote_fork_kernel (conn_file, user->uid, user->gid, user->home, cwd);
  if (pid < 0)
    {
      log_warn ("interp: pyzygote could not fork a kernel (%s); using the python3 kernelspec",
                strerror (errno));
      return false;
    }
  ret->pid = pid;
  ret->pidfd = (int)syscall (SYS_pidfd_open, pid, 0);
  ret->interrupt_by_message = false;
  return true;
}

static int
not_installed (const char *language, const char *const *names, hutch_error_t *err)
{
  char tried[256] = "";

  for (size_t i = 0; i < MAX_SPECS && names[i]; i++)
    snprintf (tried + strlen (tried), sizeof tried - strlen (tried), "%s%s", i ? ", " : "",
              names[i]);
  return hutch_make_error (err, 0,
                           "No kernel is installed for language '%s' (looked for Jupyter "
                           "kernelspecs: %s)",
                           language, tried);
}

int
kernel_start (const char *language, const char *conn_file, const struct agent_user *user,
              const char *cwd, struct kernel_proc *ret, hutch_error_t *err)
{
  const char *just_it[MAX_SPECS] = { language };
  const char *const *names = just_it;
  bool builtin = false;
  struct kernelspec k = { NULL, NULL };

  for (size_t i = 0; i < ARRAY_SIZE (languages); i++)
    if (strcmp (languages[i].language, language) == 0)
      {
        names = languages[i].specs;
        builtin = languages[i].builtin;
      }
  if (strcmp (language, "python") == 0 && start_pyzygote (conn_file, user, cwd, ret))
    return 0;
  for (size_t i = 0; i < MAX_SPECS && names[i]; i++)
    if (find_spec (names[i], user, &k))
      {
        int r = start_spec (&k, strcmp (language, "python") == 0, conn_file, user, cwd, ret, err);
        kernelspec_clear (&k);
        return r;
      }
  if (builtin)
    return start_builtin (language, conn_file, user, cwd, ret, err);
  return not_installed (language, names, err);
}
