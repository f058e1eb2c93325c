/* Test driver for pyzygote (see tests/interp/README).

     pyzygote-driver [--sandbox DATA_DIR]

   Calls pyzygote_init() in a single-threaded process, then forks kernels
   the way the agent does: from a fresh thread while other threads run with
   SIGINT and SIGTERM blocked.  With --sandbox, that happens in pid 1 of a
   real hutch sandbox (as root there, kernels as the given user); the
   driver first prints "sandbox PID UID_BASE".

   stdin, one request per line:  CONNECTION_FILE UID GID HOME CWD [LOG]
   (paths as the kernel sees them; LOG receives its stdout and stderr)
   stdout: "pid PID T0_NS" (T0: CLOCK_MONOTONIC before the fork), or
           "error ERRNO", then "exit PID STATUS" when the kernel exits.  */
#define _GNU_SOURCE
#include "interp/interp.h"
#include "interp/pyzygote-internal.h"
#include "libhutch/error.h"
#include "libhutch/log.h"
#include "libhutch/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kids_cv = PTHREAD_COND_INITIALIZER;
static int kids;

static void __attribute__ ((format (printf, 1, 2))) say (const char *fmt, ...)
{
  va_list ap;

  pthread_mutex_lock (&mu);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  fflush (stdout);
  pthread_mutex_unlock (&mu);
}

static long long
now_ns (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *
idle (void *arg)
{
  for (;;)
    pause ();
  return NULL;
}

/* Report kernel exits; waits on a condition while there is no child.  */
static void *
reaper (void *arg)
{
  for (;;)
    {
      pid_t pid;
      int st;

      pthread_mutex_lock (&mu);
      while (kids == 0)
        pthread_cond_wait (&kids_cv, &mu);
      pthread_mutex_unlock (&mu);
      pid = waitpid (-1, &st, 0);
      if (pid < 0)
        continue;
      pthread_mutex_lock (&mu);
      kids--;
      pthread_mutex_unlock (&mu);
      say ("exit %d %d\n", (int)pid, WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st));
    }
  return NULL;
}

static void *
fork_one (void *arg)
{
  char *line = arg, conn[1024], home[1024], cwd[1024], log[1024] = "";
  unsigned uid, gid;
  struct pyzygote_kernel k = { .connection_file = conn, .home = home, .cwd = cwd, .log_fd = -1 };
  char *env[] = { (char *)"HUTCH_TEST_ENV=1", NULL };
  long long t0;
  pid_t pid;

  if (sscanf (line, "%1023s %u %u %1023s %1023s %1023s", conn, &uid, &gid, home, cwd, log) < 5)
    {
      say ("error %d\n", EINVAL);
      free (line);
      return NULL;
    }
  free (line);
  k.uid = uid;
  k.gid = gid;
  k.env = env;
  if (log[0])
    k.log_fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  t0 = now_ns ();
  pid = pyzygote_spawn (&k);
  if (pid < 0)
    say ("error %d\n", errno);
  else
    {
      pthread_mutex_lock (&mu);
      kids++;
      pthread_cond_signal (&kids_cv);
      pthread_mutex_unlock (&mu);
      say ("pid %d %lld\n", (int)pid, t0);
    }
  if (k.log_fd >= 0)
    close (k.log_fd);
  return NULL;
}

/* What the agent does: threads with SIGINT and SIGTERM blocked, then
   kernels forked from threads.  */
static int
serve (void *arg)
{
  sigset_t set;
  pthread_t t;
  char line[4096];

  sigemptyset (&set);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGTERM);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
  signal (SIGPIPE, SIG_IGN);
  for (int i = 0; i < 3; i++)
    pthread_create (&t, NULL, idle, NULL);
  pthread_create (&t, NULL, reaper, NULL);
  if (arg)
    hutch_sandbox_notify_ready ();
  while (fgets (line, sizeof line, stdin))
    {
      line[strcspn (line, "\n")] = '\0';
      if (line[0] && pthread_create (&t, NULL, fork_one, strdup (line)) == 0)
        pthread_detach (t);
    }
  return 0;
}

static int
in_sandbox (const char *data_dir)
{
  cleanup_error hutch_error_t err = NULL;
  struct hutch_runtime *rt = NULL;
  struct hutch_sandbox *sb = NULL;
  struct hutch_sandbox_config config = {
    .stdio = { 0, 1, 2 },
    .wait_ready = true,
    .memory_bytes = 2ULL << 30,
    .pids = 1024,
    .root = true,
    .init = serve,
    .init_arg = (void *)data_dir,
  };

  if (hutch_runtime_new (data_dir, &rt, &err) < 0 || hutch_gc (rt, &err) < 0
      || hutch_sandbox_create (rt, &config, &sb, &err) < 0)
    {
      fprintf (stderr, "pyzygote-driver: %s\n", err->msg);
      return 1;
    }
  say ("sandbox %d %u\n", (int)sb->pid, (unsigned)sb->uid_base);
  hutch_sandbox_wait (sb, -1, &err);
  hutch_sandbox_destroy (sb, &err);
  hutch_runtime_free (rt);
  return 0;
}

int
main (int argc, char **argv)
{
  cleanup_error hutch_error_t err = NULL;
  long long t0 = now_ns ();

  hutch_log_init ("pyzygote-driver", HUTCH_LOG_INFO);
  if (pyzygote_init (&err) < 0)
    {
      fprintf (stderr, "pyzygote-driver: %s\n", err->msg);
      return 1;
    }
  fprintf (stderr, "pyzygote-driver: pyzygote_init %.0f ms\n", (now_ns () - t0) / 1e6);
  if (argc == 3 && strcmp (argv[1], "--sandbox") == 0)
    return in_sandbox (argv[2]);
  return serve (NULL);
}
