/* What starting a command and starting a kernel share: the child's
   environment and groups, prepared before fork, and its signals,
   credentials and failure reports between fork and exec.  */
#define _GNU_SOURCE
#include "child-setup.h"
#include "agent.h"
#include "libhutch/util.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

json_t *
child_base_env (const struct agent_user *user)
{
  json_t *env = json_pack ("{s:s, s:s, s:s, s:s}", "PATH", CHILD_PATH, "HOME", user->home, "USER",
                           user->name, "LOGNAME", user->name);

  agent_lock ();
  if (agent.env_vars)
    json_object_update (env, agent.env_vars);
  agent_unlock ();
  return env;
}

char **
child_envp (json_t *env)
{
  char **envp = xzalloc ((json_object_size (env) + 1) * sizeof *envp);
  size_t n = 0;
  const char *k;
  json_t *v;

  json_object_foreach (env, k, v)
  {
    if (*k && !strchr (k, '=') && json_is_string (v))
      xasprintf (&envp[n++], "%s=%s", k, json_string_value (v));
  }
  return envp;
}

gid_t *
child_groups (const struct agent_user *user, size_t *ret_n)
{
  int n = 32;
  gid_t *groups = NULL;

  for (;;)
    {
      int want = n;
      groups = xrealloc (groups, (size_t)n * sizeof *groups);
      if (getgrouplist (user->name, user->gid, groups, &n) >= 0)
        break;
      if (n <= want)
        n = want * 2;
    }
  *ret_n = (size_t)n;
  return groups;
}

struct child_report
{
  int step;
  int err;
};

void
child_fail (int report, enum child_step step)
{
  struct child_report r = { step, errno };
  (void)!write (report, &r, sizeof r);
  _exit (127);
}

void
child_reset_signals (void)
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  sigset_t none;

  for (int sig = 1; sig < _NSIG; sig++)
    sigaction (sig, &dfl, NULL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
}

/* Raw syscalls: glibc's wrappers would try to synchronise the threads of
   the parent, which do not exist here.  */
void
child_set_ids (uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, int report)
{
  if (syscall (SYS_setgroups, n_groups, groups) < 0)
    child_fail (report, CHILD_GROUPS);
  if (syscall (SYS_setresgid, gid, gid, gid) < 0)
    child_fail (report, CHILD_GID);
  if (syscall (SYS_setresuid, uid, uid, uid) < 0)
    child_fail (report, CHILD_UID);
}

int
child_await_exec (int report[2], int *ret_step)
{
  struct child_report r;
  ssize_t n;

  close (get_and_reset (&report[1]));
  n = read_all (report[0], &r, sizeof r);
  if (n == 0)
    return 0;
  if (n != (ssize_t)sizeof r || r.step < 0 || r.step >= CHILD_STEPS)
    {
      *ret_step = -1;
      errno = EIO;
      return -1;
    }
  *ret_step = r.step;
  errno = r.err;
  return -1;
}
