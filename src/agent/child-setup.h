/* Starting a child of the agent as a user of the sandbox: commands of the
   process service (process-spawn.c) and Jupyter kernels
   (interp/kernel-spawn.c).  What the parent prepares before fork, the
   child's common steps between fork and exec, and how the child reports
   the step that failed.  */
#pragma once

#include "users.h"

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

/* PATH of a child unless the sandbox or the request sets one.  */
#define CHILD_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Before fork: these allocate.  */

/* PATH, HOME, USER and LOGNAME of USER, then the sandbox's variables.  */
json_t *child_base_env (const struct agent_user *user);

/* The "KEY=VALUE" strings of ENV (an object; keys that are empty or hold
   '=' and values that are not strings are left out), NULL-terminated.  */
char **child_envp (json_t *env);

/* USER's groups, its primary group among them.  */
gid_t *child_groups (const struct agent_user *user, size_t *ret_n);

/* Between fork and exec the child of the multithreaded agent makes only
   async-signal-safe calls.  It writes the step that failed, with errno,
   to a close-on-exec pipe: the parent reads either that or end of file at
   exec.  */

enum child_step
{
  CHILD_SESSION,
  CHILD_CTTY,
  CHILD_STDIO,
  CHILD_FDS,
  CHILD_WAIT, /* for the parent's go-ahead */
  CHILD_GROUPS,
  CHILD_GID,
  CHILD_UID,
  CHILD_CHDIR,
  CHILD_EXEC,
  CHILD_STEPS
};

/* Report STEP with errno on REPORT and exit 127.  */
void child_fail (int report, enum child_step step) __attribute__ ((noreturn));

/* Every signal to its default disposition, none blocked: the parent forks
   with all of them blocked, so no handler of the agent runs in the child.  */
void child_reset_signals (void);

/* Become UID, GID with GROUPS for good, or fail with CHILD_GROUPS,
   CHILD_GID or CHILD_UID.  */
void child_set_ids (uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, int report);

/* In the parent: close the child's end REPORT[1] and wait for exec.
   Returns 0 once it exec'd, else -1 with the failed step in *RET_STEP and
   the child's errno, or with *RET_STEP -1 and errno EIO when the report
   makes no sense.  */
int child_await_exec (int report[2], int *ret_step);
