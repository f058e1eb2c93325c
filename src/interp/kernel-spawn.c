/* Starting a kernel process from the multithreaded agent: between fork and
   exec the child only makes raw syscalls; a CLOEXEC pipe reports the step
   that failed.  */
#define _GNU_SOURCE
#include "agent/child-setup.h"
#include "interp-internal.h"
#include "libhutch/log.h"
#include "libhutch/util.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>

static const char *const steps[CHILD_STEPS] = {
  [CHILD_SESSION] = "setsid",     [CHILD_STDIO] = "stdio",     [CHILD_WAIT] = "start",
  [CHILD_GROUPS] = "credentials", [CHILD_GID] = "credentials", [CHILD_UID] = "credentials",
  [CHILD_CHDIR] = "chdir",        [CHILD_EXEC] = "exec",
};

struct spawn_fds
{
  int devnull;
  int report[2];
  int go[2]; /* the child waits on it until the parent watches it */
};

static void
spawn_fds_close (struct spawn_fds *f)
{
  int *all[] = { &f->devnull, &f->report[0], &f->report[1], &f->go[0], &f->go[1] };
  for (size_t i = 0; i < ARRAY_SIZE (all); i++)
    if (*all[i] >= 0)
      close (get_and_reset (all[i]));
}

static void
child_stdio (const struct spawn_fds *f)
{
  int out = hutch_log_level >= HUTCH_LOG_DEBUG ? STDERR_FILENO : f->devnull;

  if (dup2 (f->devnull, 0) < 0 || dup2 (out, 1) < 0 || dup2 (out, 2) < 0)
    child_fail (f->report[1], CHILD_STDIO);
  /* Nothing of the agent leaks into the kernel; the report pipe closes
     at exec, which is how the parent learns that exec worked.  */
  if (syscall (SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    child_fail (f->report[1], CHILD_STDIO);
}

static void __attribute__ ((noreturn))
child_main (const struct kernel_spawn_spec *s, const struct spawn_fds *f)
{
  char go;

  child_reset_signals ();
  if (setsid () < 0)
    child_fail (f->report[1], CHILD_SESSION);
  child_stdio (f);
  if (read (f->go[0], &go, 1) != 1)
    child_fail (f->report[1], CHILD_WAIT);
  child_set_ids (s->uid, s->gid, s->groups, s->n_groups, f->report[1]);
  if (chdir (s->cwd) < 0)
    child_fail (f->report[1], CHILD_CHDIR);
  execve (s->argv[0], s->argv, s->envp);
  child_fail (f->report[1], CHILD_EXEC);
}

static pid_t
fork_child (const struct kernel_spawn_spec *s, const struct spawn_fds *f)
{
  sigset_t all, old;
  pid_t pid;
  int saved;

  /* No handler of the agent may run in the child before it resets them.  */
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  pid = fork ();
  if (pid == 0)
    child_main (s, f);
  saved = errno;
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  errno = saved;
  return pid;
}

/* The child reports a failed step, or the pipe closes at exec.  */
static int
await_exec (struct spawn_fds *f, const char *prog, hutch_error_t *err)
{
  int step;

  if (child_await_exec (f->report, &step) == 0)
    return 0;
  if (step < 0 || steps[step] == NULL)
    return hutch_make_error (err, EIO, "start `%s`", prog);
  return hutch_make_error (err, errno, "start `%s`: %s", prog, steps[step]);
}

static int
open_fds (struct spawn_fds *f, hutch_error_t *err)
{
  f->devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (f->devnull < 0)
    return hutch_make_error (err, errno, "open /dev/null");
  if (pipe2 (f->report, O_CLOEXEC) < 0 || pipe2 (f->go, O_CLOEXEC) < 0)
    return hutch_make_error (err, errno, "pipe");
  return 0;
}

int
kernel_spawn (const struct kernel_spawn_spec *spec, struct kernel_proc *ret, hutch_error_t *err)
{
  __attribute__ ((cleanup (spawn_fds_close))) struct spawn_fds f = { -1, { -1, -1 }, { -1, -1 } };
  pid_t pid;

  if (open_fds (&f, err) < 0)
    return -1;
  pid = fork_child (spec, &f);
  if (pid < 0)
    return hutch_make_error (err, errno, "fork");
  ret->pid = pid;
  ret->pidfd = (int)syscall (SYS_pidfd_open, pid, 0);
  if (ret->pidfd < 0)
    {
      int saved = errno;
      kill (pid, SIGKILL);
      return hutch_make_error (err, saved, "pidfd_open");
    }
  (void)!write (f.go[1], "g", 1);
  close (get_and_reset (&f.go[1]));
  if (await_exec (&f, spec->argv[0], err) < 0)
    {
      close (ret->pidfd);
      return -1;
    }
  return 0;
}
