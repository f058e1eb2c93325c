#define _GNU_SOURCE
#include "init.h"
#include "util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const int forwarded[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH };

static void __attribute__ ((noreturn))
exec_child (const struct hutch_exec_spec *spec, const sigset_t *old, int report_fd)
{
  int e;

  for (size_t i = 0; i < ARRAY_SIZE (forwarded); i++)
    signal (forwarded[i], SIG_DFL);
  sigprocmask (SIG_SETMASK, old, NULL);
  environ = (char **)spec->envp;
  execvp (spec->argv[0], spec->argv);
  e = errno;
  (void)!write (report_fd, &e, sizeof e);
  _exit (127);
}

static int
exit_code (int status)
{
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return 125;
}

/* Reap everything that exited; returns the main child's code once it is
   among them, else -1.  */
static int
reap (pid_t main_pid)
{
  int status, code = -1;
  pid_t p;

  while ((p = waitpid (-1, &status, WNOHANG)) > 0)
    if (p == main_pid)
      code = exit_code (status);
  return code;
}

int
hutch_init_exec (void *arg)
{
  const struct hutch_exec_spec *spec = arg;
  sigset_t set, old;
  int pipefd[2], e = 0;
  pid_t pid;

  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  for (size_t i = 0; i < ARRAY_SIZE (forwarded); i++)
    sigaddset (&set, forwarded[i]);
  sigprocmask (SIG_BLOCK, &set, &old);
  if (pipe2 (pipefd, O_CLOEXEC) < 0)
    return 125;
  pid = fork ();
  if (pid < 0)
    {
      fprintf (stderr, "hutch: fork: %s\n", strerror (errno));
      return 125;
    }
  if (pid == 0)
    exec_child (spec, &old, pipefd[1]);
  close (pipefd[1]);
  if (read_all (pipefd[0], &e, sizeof e) == (ssize_t)sizeof e)
    {
      fprintf (stderr, "hutch: cannot execute `%s`: %s\n", spec->argv[0], strerror (e));
      return e == ENOENT ? 127 : 126;
    }
  close (pipefd[0]);
  for (;;)
    {
      siginfo_t info;
      int code;
      if (sigwaitinfo (&set, &info) < 0)
        continue;
      if (info.si_signo != SIGCHLD)
        {
          kill (pid, info.si_signo);
          continue;
        }
      if ((code = reap (pid)) >= 0)
        return code;
    }
}
