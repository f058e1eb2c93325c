/* One context's kernel: starting it (connection file, process, client,
   readiness, working directory), stopping it, and the preparation before
   each execution.  */
#define _GNU_SOURCE
#include "agent/agent.h"
#include "context-internal.h"
#include "interp-internal.h"
#include "libhutch/log.h"
#include "libhutch/util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define READY_TIMEOUT_MS 60000
#define HIDDEN_TIMEOUT_MS 30000

static int
kernel_user (struct agent_user *ret, hutch_error_t *err)
{
  char name[64];

  agent_lock ();
  snprintf (name, sizeof name, "%s", agent.default_user ? agent.default_user : "user");
  agent_unlock ();
  if (agent_user_lookup (name, ret) < 0)
    return hutch_make_error (err, errno, "no user `%s` to run kernels as", name);
  return 0;
}

/* <interp_dir>/<id>/connection.json, in a directory of the kernel's user:
   ipykernel may rewrite its connection file.  */
static char *
conn_path (struct interp_ctx *c, const struct agent_user *u, hutch_error_t *err)
{
  cleanup_free char *dir = NULL;
  char *path;

  xasprintf (&dir, "%s/%s", interp_dir (), c->id);
  if (mkdir (dir, 0700) < 0 && errno != EEXIST)
    return hutch_make_error (err, errno, "mkdir `%s`", dir), NULL;
  if (chown (dir, u->uid, u->gid) < 0)
    return hutch_make_error (err, errno, "chown `%s`", dir), NULL;
  xasprintf (&path, "%s/connection.json", dir);
  return path;
}

static int
apply_cwd (struct interp_ctx *c, hutch_error_t *err)
{
  cleanup_free char *code = snippet_chdir (c->language, c->cwd), *error = NULL;

  if (code == NULL)
    return 0;
  if (jupyter_run_hidden (c->client, code, HIDDEN_TIMEOUT_MS, NULL, &error, err) < 0)
    return hutch_error_wrap (err, "Failed to set working directory");
  if (error)
    return hutch_make_error (err, 0, "Failed to set working directory: %s", error);
  return 0;
}

static void
publish_pid (struct interp_ctx *c, const struct kernel_proc *p)
{
  pthread_mutex_lock (&c->mu);
  c->pid = p->pid;
  c->pidfd = p->pidfd >= 0 ? fcntl (p->pidfd, F_DUPFD_CLOEXEC, 3) : -1;
  pthread_mutex_unlock (&c->mu);
}

static int
spawn (struct interp_ctx *c, hutch_error_t *err)
{
  struct agent_user u;
  struct jupyter_conn conn;
  struct kernel_proc p;
  cleanup_free char *path = NULL;
  struct stat st;

  if (kernel_user (&u, err) < 0 || (path = conn_path (c, &u, err)) == NULL)
    return -1;
  if (stat (c->cwd, &st) < 0)
    return hutch_make_error (err, errno, "Failed to set working directory `%s`", c->cwd);
  if (!S_ISDIR (st.st_mode))
    return hutch_make_error (err, ENOTDIR, "Failed to set working directory `%s`", c->cwd);
  if (jupyter_conn_write (path, u.uid, u.gid, &conn, err) < 0
      || kernel_start (c->language, path, &u, c->cwd, &p, err) < 0)
    return -1;
  publish_pid (c, &p);
  c->client = jupyter_client_new (&conn, p.pid, p.pidfd, p.interrupt_by_message, err);
  return c->client ? 0 : -1;
}

int
ctx_kernel_start (struct interp_ctx *c, hutch_error_t *err)
{
  int r = spawn (c, err);

  if (r == 0 && jupyter_wait_ready (c->client, READY_TIMEOUT_MS, err) < 0)
    r = hutch_error_wrap (err, "the %s kernel did not start", c->language);
  if (r == 0)
    r = apply_cwd (c, err);
  if (r < 0)
    {
      ctx_kernel_stop (c);
      return r;
    }
  log_debug ("interp: context %s runs a %s kernel, pid %d", c->id, c->language, (int)c->pid);
  return 0;
}

/* While the kernel's pidfd says it lives, its pid and group are its own.  */
void
ctx_kill_kernel (struct interp_ctx *c)
{
  struct pollfd p;

  pthread_mutex_lock (&c->mu);
  p = (struct pollfd){ .fd = c->pidfd, .events = POLLIN };
  if (c->pidfd >= 0 && poll (&p, 1, 0) == 0)
    {
      if (kill (-c->pid, SIGKILL) < 0)
        syscall (SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
    }
  pthread_mutex_unlock (&c->mu);
}

void
ctx_kernel_stop (struct interp_ctx *c)
{
  cleanup_free char *dir = NULL;

  ctx_kill_kernel (c);
  jupyter_client_free (c->client);
  c->client = NULL;
  json_decref (c->globals);
  c->globals = NULL;
  pthread_mutex_lock (&c->mu);
  if (c->pidfd >= 0)
    close (c->pidfd);
  c->pidfd = -1;
  pthread_mutex_unlock (&c->mu);
  xasprintf (&dir, "%s/%s", interp_dir (), c->id);
  rm_rf_at (AT_FDCWD, dir);
}

/* Before the first execution, the sandbox's variables as they are now
   (they may have changed since the kernel started), as E2B does.  */
static void
inject_globals (struct interp_ctx *c)
{
  cleanup_error hutch_error_t err = NULL;
  cleanup_free char *code = NULL, *error = NULL;

  agent_lock ();
  c->globals = agent.env_vars ? json_deep_copy (agent.env_vars) : json_object ();
  agent_unlock ();
  if (json_object_size (c->globals) == 0 || !(code = snippet_setenv (c->language, c->globals)))
    return;
  if (jupyter_run_hidden (c->client, code, HIDDEN_TIMEOUT_MS, NULL, &error, &err) < 0)
    log_warn ("interp: context %s: set the sandbox's variables: %s", c->id, err->msg);
  else if (error)
    log_warn ("interp: context %s: set the sandbox's variables: %s", c->id, error);
}

int
ctx_prepare (struct interp_ctx *c, hutch_error_t *err)
{
  if (c->client == NULL || !jupyter_alive (c->client))
    {
      if (c->client)
        log_info ("interp: context %s: the kernel died; starting a new one", c->id);
      ctx_kernel_stop (c);
      if (ctx_kernel_start (c, err) < 0)
        return -1;
    }
  if (c->globals == NULL)
    inject_globals (c);
  return 0;
}
