/* interp-driver: the code-interpreter server (src/interp) on the host,
   outside any sandbox, for tests.  It stands in for the agent: the
   sandbox-wide variables, the user kernels run as ($TEST_USER, else the
   caller), and the reaping pid 1 does.

     HUTCH_INTERP_PORT=PORT HUTCH_INTERP_DIR=DIR build/interp-driver

   SIGTERM or SIGINT kills the kernels and exits.  Built with
   -DWITH_PYZYGOTE (and src/interp/pyzygote.c), Python kernels are forked
   from a preloaded interpreter, as in hutchd.  */
#define _GNU_SOURCE
#include "agent/agent.h"
#include "interp/contexts.h"
#include "interp/interp.h"
#include "libhutch/log.h"
#include "libhutch/util.h"

#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

static void *
reaper (void *arg)
{
  sigset_t chld;
  int sig;

  sigemptyset (&chld);
  sigaddset (&chld, SIGCHLD);
  for (;;)
    {
      sigwait (&chld, &sig);
      while (waitpid (-1, NULL, WNOHANG) > 0)
        ;
    }
  return NULL;
}

int
main (void)
{
  const char *user = getenv ("TEST_USER");
  sigset_t set;
  pthread_t t;
  int sig;

  hutch_log_init ("interp-driver", HUTCH_LOG_INFO);
#ifdef WITH_PYZYGOTE
  {
    cleanup_error hutch_error_t err = NULL;
    /* As hutchd's zygote: before any thread.  */
    if (pyzygote_init (&err) < 0)
      fprintf (stderr, "interp-driver: pyzygote: %s\n", err->msg);
  }
#endif
  agent.env_vars = json_pack ("{s:s}", "SANDBOX_VAR", "global-value");
  agent.default_user = xstrdup (user ? user : getpwuid (getuid ())->pw_name);
  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGCHLD);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
  signal (SIGPIPE, SIG_IGN);
  pthread_create (&t, NULL, reaper, NULL);
  sigdelset (&set, SIGCHLD);
  if (interp_start (true) < 0)
    return 1;
  fprintf (stderr, "interp-driver: ready\n");
  sigwait (&set, &sig);
  contexts_shutdown ();
  return 0;
}
