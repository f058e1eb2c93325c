/* hutch run: one command in a fresh sandbox, stdio passed through, the
   command's exit status returned, nothing left behind.  */
#define _GNU_SOURCE
#include "cli.h"
#include "libhutch/init.h"
#include "libhutch/log.h"
#include "libhutch/sandbox.h"
#include "libhutch/template.h"
#include "libhutch/util.h"
#include "options.h"

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#define MAX_ENV 256

struct run_options
{
  struct hutch_sandbox_config config;
  unsigned long timeout_s;
  const char *data_dir;
  char *env[MAX_ENV + 8];
  size_t nenv;
};

static const char run_usage[]
    = "usage: hutch run [OPTIONS] -- CMD [ARGS...]\n"
      "\n"
      "Run CMD in a new sandbox and exit with its status.\n"
      "\n"
      "  --memory SIZE     memory limit, no swap (default 512M)\n"
      "  --cpus N          cpu quota, may be fractional (default 1)\n"
      "  --pids N          most processes and threads at once (default 512)\n"
      "  --disk SIZE       size of the writable layer (default 1G)\n"
      "  --timeout SECS    kill the sandbox after SECS seconds (default: none)\n"
      "  --template NAME   root filesystem template (default host)\n"
      "  --user NAME       user or root (default user)\n"
      "  --env KEY=VALUE   set an environment variable (repeatable)\n"
      "  --data-dir DIR    state directory (default $HUTCH_DATA_DIR or " HUTCH_DEFAULT_DATA_DIR
      ")\n"
      "\n"
      "Exit status: the command's, 128+N when killed by signal N, 123 out of\n"
      "memory, 124 timed out, 125 hutch failed, 126 not executable, 127 not found.\n";

static const struct option long_options[] = {
  { "memory", required_argument, NULL, 'm' },
  { "cpus", required_argument, NULL, 'c' },
  { "pids", required_argument, NULL, 'p' },
  { "disk", required_argument, NULL, 'd' },
  { "timeout", required_argument, NULL, 't' },
  { "template", required_argument, NULL, 'T' },
  { "user", required_argument, NULL, 'u' },
  { "env", required_argument, NULL, 'e' },
  { "data-dir", required_argument, NULL, 'D' },
  { "help", no_argument, NULL, 'h' },
  { NULL, 0, NULL, 0 },
};

static int
add_env (struct run_options *o, const char *kv)
{
  if (strchr (kv, '=') == NULL || kv[0] == '=')
    {
      fprintf (stderr, "hutch: --env: expected KEY=VALUE, got `%s`\n", kv);
      return -1;
    }
  if (o->nenv >= MAX_ENV)
    {
      fprintf (stderr, "hutch: --env: at most %d variables\n", MAX_ENV);
      return -1;
    }
  o->env[o->nenv++] = (char *)kv;
  return 0;
}

static int
parse_user (struct run_options *o, const char *name)
{
  if (strcmp (name, "root") == 0)
    o->config.root = true;
  else if (strcmp (name, "user") == 0)
    o->config.root = false;
  else
    {
      fprintf (stderr, "hutch: --user: expected `user` or `root`, got `%s`\n", name);
      return -1;
    }
  return 0;
}

static int
parse_option (struct run_options *o, int c, const char *arg)
{
  switch (c)
    {
    case 'm':
      return opt_size ("--memory", arg, &o->config.memory_bytes);
    case 'c':
      return opt_cpus ("--cpus", arg, &o->config.cpu_millis);
    case 'p':
      return opt_count ("--pids", arg, 4194304, &o->config.pids);
    case 'd':
      return opt_size ("--disk", arg, &o->config.disk_bytes);
    case 't':
      return opt_count ("--timeout", arg, 86400 * 365, &o->timeout_s);
    case 'T':
      o->config.template = arg;
      if (hutch_template_canonical (arg) == NULL)
        {
          fprintf (stderr, "hutch: --template: unknown template `%s`\n", arg);
          return -1;
        }
      return 0;
    case 'u':
      return parse_user (o, arg);
    case 'e':
      return add_env (o, arg);
    case 'D':
      o->data_dir = arg;
      return 0;
    default:
      return -1;
    }
}

static int
parse_args (struct run_options *o, int argc, char **argv)
{
  int c;

  o->config.memory_bytes = 512ULL << 20;
  o->config.cpu_millis = 1000;
  o->config.pids = 512;
  o->config.disk_bytes = 1ULL << 30;
  o->data_dir = cli_default_data_dir ();
  optind = 1;
  while ((c = getopt_long (argc, argv, "+h", long_options, NULL)) != -1)
    {
      if (c == 'h')
        {
          fputs (run_usage, stdout);
          exit (0);
        }
      if (c == '?' || parse_option (o, c, optarg) < 0)
        return -1;
    }
  if (optind >= argc)
    {
      fputs ("hutch run: no command given\n\n", stderr);
      fputs (run_usage, stderr);
      return -1;
    }
  return optind;
}

static void
default_env (struct run_options *o, char **storage)
{
  const char *term = getenv ("TERM");
  const char *home = o->config.root ? "/root" : "/home/user";
  const char *user = o->config.root ? "root" : "user";
  size_t n = 0;

  storage[n++] = xstrdup ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  xasprintf (&storage[n++], "HOME=%s", home);
  xasprintf (&storage[n++], "USER=%s", user);
  xasprintf (&storage[n++], "LOGNAME=%s", user);
  storage[n++] = xstrdup ("LANG=C.UTF-8");
  if (term)
    xasprintf (&storage[n++], "TERM=%s", term);
  storage[n] = NULL;
}

/* Index of the entry of ENV (N entries) with the same name as KV, or N.  */
static size_t
find_env (char **env, size_t n, const char *kv)
{
  size_t len = strcspn (kv, "=");
  for (size_t i = 0; i < n; i++)
    if (strncmp (env[i], kv, len) == 0 && env[i][len] == '=')
      return i;
  return n;
}

/* The defaults, then --env in order; a later name replaces an earlier.  */
static char **
build_env (struct run_options *o)
{
  char *defaults[8];
  char **env = xzalloc (sizeof (char *) * (o->nenv + 8));
  size_t n = 0;

  default_env (o, defaults);
  for (size_t i = 0; defaults[i]; i++)
    env[n++] = defaults[i];
  for (size_t i = 0; i < o->nenv; i++)
    {
      size_t at = find_env (env, n, o->env[i]);
      if (at < n)
        free (env[at]);
      else
        n++;
      env[at] = xstrdup (o->env[i]);
    }
  env[n] = NULL;
  return env;
}

static int
block_signals (sigset_t *set)
{
  static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
  sigemptyset (set);
  for (size_t i = 0; i < ARRAY_SIZE (sigs); i++)
    sigaddset (set, sigs[i]);
  if (sigprocmask (SIG_BLOCK, set, NULL) < 0)
    return -1;
  return signalfd (-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Wait for the sandbox, forwarding signals.  Returns 1 when it exited, 0
   when the timeout struck.  */
static int
supervise (struct hutch_sandbox *sb, int sigfd, unsigned long timeout_s, hutch_error_t *err)
{
  unsigned long long deadline = timeout_s ? now_ns () + timeout_s * 1000000000ULL : 0;

  for (;;)
    {
      struct pollfd p[2]
          = { { .fd = sb->pidfd, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };
      int n = poll (p, 2, ms_until (deadline));
      if (n < 0 && errno != EINTR)
        return hutch_make_error (err, errno, "poll");
      if (n == 0)
        return 0;
      if (p[1].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          while (read (sigfd, &si, sizeof si) == (ssize_t)sizeof si)
            hutch_sandbox_signal (sb, (int)si.ssi_signo, err);
          hutch_error_release (err);
        }
      if (p[0].revents & POLLIN)
        return hutch_sandbox_wait (sb, -1, err);
    }
}

static int
exit_status (struct hutch_sandbox *sb, unsigned long timeout_s, int finished)
{
  int status = sb->wait_status;

  if (!finished)
    {
      fprintf (stderr, "hutch: sandbox %s timed out after %lu s and was killed\n", sb->id,
               timeout_s);
      return HUTCH_EXIT_TIMEOUT;
    }
  if (WIFEXITED (status))
    {
      int code = WEXITSTATUS (status);
      if (code == 128 + SIGKILL && hutch_sandbox_oom_killed (sb))
        {
          fprintf (stderr, "hutch: sandbox %s ran out of memory; the command was killed\n", sb->id);
          return HUTCH_EXIT_OOM;
        }
      return code;
    }
  if (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL && hutch_sandbox_oom_killed (sb))
    {
      fprintf (stderr, "hutch: sandbox %s ran out of memory and was killed\n", sb->id);
      return HUTCH_EXIT_OOM;
    }
  return WIFSIGNALED (status) ? 128 + WTERMSIG (status) : HUTCH_EXIT_FAILURE;
}

/* A copy of CMD (it lives in argv, which the sandbox does not see).  */
static char **
copy_argv (char **cmd)
{
  size_t n = 0;
  char **copy;

  while (cmd[n])
    n++;
  copy = xzalloc (sizeof (char *) * (n + 1));
  for (size_t i = 0; i < n; i++)
    copy[i] = xstrdup (cmd[i]);
  return copy;
}

static int
run_sandbox (struct hutch_runtime *rt, struct run_options *o, char **cmd)
{
  cleanup_error hutch_error_t err = NULL;
  cleanup_strv char **env = build_env (o);
  cleanup_strv char **argv = copy_argv (cmd);
  struct hutch_exec_spec spec = { .argv = argv, .envp = env };
  struct hutch_sandbox *sb = NULL;
  sigset_t set;
  cleanup_close int sigfd = block_signals (&set);
  int finished, code;

  o->config.init = hutch_init_exec;
  o->config.init_arg = &spec;
  for (int i = 0; i < 3; i++)
    o->config.stdio[i] = i;
  if (sigfd < 0 || hutch_sandbox_create (rt, &o->config, &sb, &err) < 0)
    {
      fprintf (stderr, "hutch: %s\n", err ? err->msg : strerror (errno));
      return HUTCH_EXIT_FAILURE;
    }
  finished = supervise (sb, sigfd, o->timeout_s, &err);
  if (finished < 0)
    {
      fprintf (stderr, "hutch: %s\n", err->msg);
      hutch_error_release (&err);
    }
  code = finished < 0 ? HUTCH_EXIT_FAILURE : exit_status (sb, o->timeout_s, finished);
  if (hutch_sandbox_destroy (sb, &err) < 0)
    {
      fprintf (stderr, "hutch: cleaning up: %s\n", err->msg);
      code = HUTCH_EXIT_FAILURE;
    }
  return code;
}

int
cmd_run (int argc, char **argv)
{
  cleanup_error hutch_error_t err = NULL;
  struct run_options o = { 0 };
  struct hutch_runtime *rt = NULL;
  int first, code;

  first = parse_args (&o, argc, argv);
  if (first < 0)
    return HUTCH_EXIT_USAGE;
  if (hutch_runtime_new (o.data_dir, &rt, &err) < 0 || hutch_gc (rt, &err) < 0)
    {
      fprintf (stderr, "hutch: %s\n", err->msg);
      hutch_runtime_free (rt);
      return HUTCH_EXIT_FAILURE;
    }
  code = run_sandbox (rt, &o, argv + first);
  hutch_runtime_free (rt);
  return code;
}
