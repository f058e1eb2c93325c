/* The processes the agent started, and the reaper.  The agent is pid 1:
   every orphan of the sandbox is reparented to it, so one thread waits for
   all children and hands the exit statuses of tracked processes to their
   records.  */
#define _GNU_SOURCE
#include "process-internal.h"
#include "libhutch/util.h"
#include "services.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spawned_cv = PTHREAD_COND_INITIALIZER;
static struct proc *table; /* newest first */
static unsigned long long spawned;

void
proc_ref (struct proc *p)
{
  __atomic_add_fetch (&p->refs, 1, __ATOMIC_RELAXED);
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

void
proc_unref (struct proc *p)
{
  if (p == NULL || __atomic_sub_fetch (&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
    return;
  for (struct proc_sub *s = p->subs, *next; s; s = next)
    {
      next = s->next;
      connect_stream_unref (s->stream);
      free (s);
    }
  close_fd (&p->stdin_fd);
  close_fd (&p->pty_fd);
  close_fd (&p->out_fd);
  close_fd (&p->err_fd);
  close_fd (&p->wake_fd);
  json_decref (p->config);
  json_decref (p->end);
  free (p->tag);
  pthread_mutex_destroy (&p->mu);
  pthread_mutex_destroy (&p->input_mu);
  free (p);
}

void
proc_table_lock (void)
{
  pthread_mutex_lock (&table_mu);
}

void
proc_table_unlock (void)
{
  pthread_mutex_unlock (&table_mu);
}

void
proc_table_insert_locked (struct proc *p)
{
  proc_ref (p);
  p->next = table;
  table = p;
  spawned++;
  pthread_cond_broadcast (&spawned_cv);
}

void
proc_table_remove (struct proc *p)
{
  bool found = false;

  pthread_mutex_lock (&table_mu);
  for (struct proc **pp = &table; *pp; pp = &(*pp)->next)
    if (*pp == p)
      {
        *pp = p->next;
        found = true;
        break;
      }
  pthread_mutex_unlock (&table_mu);
  if (found)
    proc_unref (p);
}

static bool
expired (struct proc *p, unsigned long long now)
{
  bool r;
  pthread_mutex_lock (&p->mu);
  r = p->finished && now - p->finished_ns > PROC_RETAIN_NS;
  pthread_mutex_unlock (&p->mu);
  return r;
}

/* Drop the records whose exit results were kept long enough.  */
static void
prune_locked (void)
{
  unsigned long long now = now_ns ();
  struct proc **pp = &table;

  while (*pp)
    {
      struct proc *p = *pp;
      if (!expired (p, now))
        {
          pp = &p->next;
          continue;
        }
      *pp = p->next;
      proc_unref (p);
    }
}

static bool
is_finished (struct proc *p)
{
  bool r;
  pthread_mutex_lock (&p->mu);
  r = p->finished;
  pthread_mutex_unlock (&p->mu);
  return r;
}

static bool
matches (struct proc *p, pid_t pid, const char *tag)
{
  if (tag)
    return p->tag && strcmp (p->tag, tag) == 0;
  return p->pid == pid;
}

struct proc *
proc_find (pid_t pid, const char *tag, bool finished)
{
  struct proc *found = NULL;

  pthread_mutex_lock (&table_mu);
  prune_locked ();
  for (struct proc *p = table; p && !found; p = p->next)
    if (p->started && matches (p, pid, tag) && (finished || !is_finished (p)))
      found = p;
  if (found)
    proc_ref (found);
  pthread_mutex_unlock (&table_mu);
  return found;
}

static bool
is_running (struct proc *p)
{
  bool r;
  pthread_mutex_lock (&p->mu);
  r = !p->reaped && !p->finished;
  pthread_mutex_unlock (&p->mu);
  return r;
}

void
proc_for_each_running (void (*fn) (struct proc *p, void *arg), void *arg)
{
  pthread_mutex_lock (&table_mu);
  prune_locked ();
  for (struct proc *p = table; p; p = p->next)
    if (p->started && is_running (p))
      fn (p, arg);
  pthread_mutex_unlock (&table_mu);
}

int
proc_signal (struct proc *p, int sig)
{
  int r = -1;

  pthread_mutex_lock (&p->mu);
  if (p->reaped)
    errno = ESRCH;
  else
    {
      /* The pid is a zombie at worst (the reaper marks it reaped before
         collecting it), so neither it nor its group can be reused yet.  */
      r = kill (-p->pid, sig);
      if (r < 0 && errno == ESRCH)
        r = kill (p->pid, sig);
    }
  pthread_mutex_unlock (&p->mu);
  return r;
}

/* The unreaped record for PID, referenced.  Blocks while a spawn holds
   the table lock, so a child that exits at once is still claimed.  */
static struct proc *
claim (pid_t pid)
{
  struct proc *found = NULL;

  pthread_mutex_lock (&table_mu);
  for (struct proc *p = table; p && !found; p = p->next)
    if (p->pid == pid)
      {
        pthread_mutex_lock (&p->mu);
        if (!p->reaped)
          {
            p->reaped = true;
            found = p;
            proc_ref (p);
          }
        pthread_mutex_unlock (&p->mu);
      }
  pthread_mutex_unlock (&table_mu);
  return found;
}

static void
reap (pid_t pid)
{
  struct proc *p = claim (pid);
  int status = 0;

  if (TEMP_FAILURE_RETRY (waitpid (pid, &status, 0)) < 0)
    status = W_EXITCODE (255, 0);
  if (p)
    proc_notify_exit (p, status);
  proc_unref (p);
}

static void
wait_for_spawn (unsigned long long seen)
{
  pthread_mutex_lock (&table_mu);
  while (spawned == seen)
    pthread_cond_wait (&spawned_cv, &table_mu);
  pthread_mutex_unlock (&table_mu);
}

static void *
reaper_main (void *arg)
{
  pthread_setname_np (pthread_self (), "reaper");
  for (;;)
    {
      siginfo_t info = { 0 };
      unsigned long long seen;

      pthread_mutex_lock (&table_mu);
      seen = spawned;
      pthread_mutex_unlock (&table_mu);
      /* WNOWAIT leaves the zombie, so the pid stays ours until claim()
         marked the record: signals never reach a recycled pid.  */
      if (waitid (P_ALL, 0, &info, WEXITED | WNOWAIT) < 0)
        {
          if (errno == ECHILD)
            wait_for_spawn (seen);
          continue;
        }
      if (info.si_pid > 0)
        reap (info.si_pid);
    }
  return NULL;
}

void
process_init (void)
{
  pthread_t t;
  pthread_attr_t attr;

  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize (&attr, 64 * 1024);
  if (pthread_create (&t, &attr, reaper_main, NULL) != 0)
    {
      perror ("hutch agent: start the reaper");
      abort ();
    }
  pthread_attr_destroy (&attr);
}
