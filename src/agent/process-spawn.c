/* Starting a process: pipes or a pty, fork, and the child's setup up to
   exec.  Between fork and exec the child of this multithreaded agent only
   makes async-signal-safe calls; everything it needs is prepared first.  */
#define _GNU_SOURCE
#include "child-setup.h"
#include "process-internal.h"
#include "libhutch/util.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

static const char *const step_names[CHILD_STEPS] = {
  [CHILD_SESSION] = "setsid",     [CHILD_CTTY] = "set controlling terminal",
  [CHILD_STDIO] = "set up stdio", [CHILD_FDS] = "close descriptors",
  [CHILD_GROUPS] = "setgroups",   [CHILD_GID] = "setgid",
  [CHILD_UID] = "setuid",         [CHILD_CHDIR] = "chdir",
  [CHILD_EXEC] = "exec",
};

/* Descriptors of one spawn.  CHILD are the child's stdin, stdout and
   stderr (all SLAVE with a pty); PARENT our ends of the pipes.  */
struct spawn_fds
{
  int child[3];
  int parent[3];
  int master, slave;
  int report[2];
};

static void
spawn_fds_close (struct spawn_fds *f)
{
  int *all[] = { &f->child[0],  &f->child[1], &f->child[2], &f->parent[0], &f->parent[1],
                 &f->parent[2], &f->master,   &f->slave,    &f->report[0], &f->report[1] };
  for (size_t i = 0; i < ARRAY_SIZE (all); i++)
    if (*all[i] >= 0)
      close (get_and_reset (all[i]));
}

#define cleanup_spawn_fds __attribute__ ((cleanup (spawn_fds_close)))

/* The child's side.  */

static void
child_session (const struct spawn_fds *f)
{
  if (f->slave < 0)
    {
      if (setpgid (0, 0) < 0)
        child_fail (f->report[1], CHILD_SESSION);
      return;
    }
  if (setsid () < 0)
    child_fail (f->report[1], CHILD_SESSION);
  if (ioctl (f->slave, TIOCSCTTY, 0) < 0)
    child_fail (f->report[1], CHILD_CTTY);
}

/* The agent keeps 0, 1 and 2 open, so every source is above 2 and no
   dup2 clobbers a later source.  */
static void
child_stdio (const struct spawn_fds *f)
{
  for (int i = 0; i < 3; i++)
    if (dup2 (f->slave >= 0 ? f->slave : f->child[i], i) < 0)
      child_fail (f->report[1], CHILD_STDIO);
  /* Nothing of the agent leaks in, whether or not it was opened
     close-on-exec; the report pipe must survive until exec.  */
  if (syscall (SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
    return;
  if (syscall (SYS_close_range, 3, f->report[1] - 1, 0) < 0
      || syscall (SYS_close_range, f->report[1] + 1, ~0U, 0) < 0)
    child_fail (f->report[1], CHILD_FDS);
}

/* execvp without its allocations: try every PATH entry, and report
   EACCES if any candidate had it (as execvp does).  */
static void
child_exec (const struct proc_spec *spec)
{
  const char *file = spec->argv[0], *dir = spec->path ? spec->path : "";
  size_t flen = strlen (file);
  bool eacces = false;
  char buf[PATH_MAX];

  if (strchr (file, '/') || *file == '\0')
    {
      execve (file, spec->argv, spec->envp);
      return;
    }
  for (;;)
    {
      size_t dlen = strcspn (dir, ":");
      if (dlen + flen + 2 <= sizeof buf)
        {
          memcpy (buf, dlen ? dir : ".", dlen ? dlen : 1);
          buf[dlen ? dlen : 1] = '/';
          memcpy (buf + (dlen ? dlen : 1) + 1, file, flen + 1);
          execve (buf, spec->argv, spec->envp);
          if (errno == EACCES)
            eacces = true;
          else if (errno != ENOENT && errno != ENOTDIR)
            return;
        }
      if (dir[dlen] == '\0')
        break;
      dir += dlen + 1;
    }
  errno = eacces ? EACCES : ENOENT;
}

static void __attribute__ ((noreturn))
child_main (const struct proc_spec *spec, const struct spawn_fds *f)
{
  child_reset_signals ();
  child_session (f);
  child_stdio (f);
  child_set_ids (spec->uid, spec->gid, spec->groups, spec->n_groups, f->report[1]);
  if (chdir (spec->cwd) < 0)
    child_fail (f->report[1], CHILD_CHDIR);
  child_exec (spec);
  child_fail (f->report[1], CHILD_EXEC);
}

/* The parent's side.  */

static int
failed_step (const char **what, const char *step)
{
  *what = step;
  return -1;
}

/* Release P after a failed STEP, keeping errno.  */
static struct proc *
abandon (struct proc *p, const char **what, const char *step)
{
  int saved = errno;

  proc_unref (p);
  *what = step;
  errno = saved;
  return NULL;
}

static int
open_pipes (struct spawn_fds *f, bool stdin_pipe, const char **what)
{
  int p[2];

  if (stdin_pipe)
    {
      if (pipe2 (p, O_CLOEXEC) < 0)
        return failed_step (what, "pipe");
      f->child[0] = p[0];
      f->parent[0] = p[1];
    }
  else if ((f->child[0] = open ("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
    return failed_step (what, "open /dev/null");
  for (int i = 1; i < 3; i++)
    {
      if (pipe2 (p, O_CLOEXEC) < 0)
        return failed_step (what, "pipe");
      f->parent[i] = p[0];
      f->child[i] = p[1];
    }
  return 0;
}

static int
open_pty (struct spawn_fds *f, const struct proc_spec *spec, const char **what)
{
  struct winsize ws = { .ws_row = spec->rows, .ws_col = spec->cols };

  f->master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (f->master < 0)
    return failed_step (what, "open /dev/ptmx");
  if (grantpt (f->master) < 0 || unlockpt (f->master) < 0)
    return failed_step (what, "unlock pty");
  if (ioctl (f->master, TIOCSWINSZ, &ws) < 0)
    return failed_step (what, "set pty size");
  f->slave = ioctl (f->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (f->slave < 0)
    return failed_step (what, "open pty slave");
  /* The terminal belongs to the user it runs for, as a login's would.  */
  (void)!fchown (f->slave, spec->uid, (gid_t)-1);
  /* The output thread reads a descriptor of its own.  */
  f->parent[1] = fcntl (f->master, F_DUPFD_CLOEXEC, 3);
  if (f->parent[1] < 0)
    return failed_step (what, "dup pty master");
  return 0;
}

static struct proc *
proc_new (const struct proc_spec *spec, json_t *config, const char *tag)
{
  struct proc *p = xzalloc (sizeof *p);

  p->refs = 1;
  p->config = json_incref (config);
  p->tag = tag ? xstrdup (tag) : NULL;
  p->pty = spec->pty;
  pthread_mutex_init (&p->mu, NULL);
  pthread_mutex_init (&p->input_mu, NULL);
  p->stdin_fd = p->pty_fd = p->out_fd = p->err_fd = p->wake_fd = -1;
  return p;
}

/* Fork with every signal blocked, so no handler runs in the child before
   it resets them; register the child before the reaper can look for it.  */
static pid_t
fork_registered (struct proc *p, const struct proc_spec *spec, const struct spawn_fds *f)
{
  sigset_t all, old;
  pid_t pid;
  int saved;

  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  proc_table_lock ();
  pid = fork ();
  if (pid == 0)
    child_main (spec, f);
  saved = errno;
  if (pid > 0)
    {
      p->pid = pid;
      proc_table_insert_locked (p);
    }
  proc_table_unlock ();
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  errno = saved;
  return pid;
}

/* Hand the parent's descriptors to the record.  */
static void
adopt_fds (struct proc *p, struct spawn_fds *f)
{
  if (f->master >= 0)
    p->pty_fd = get_and_reset (&f->master);
  p->stdin_fd = get_and_reset (&f->parent[0]);
  p->out_fd = get_and_reset (&f->parent[1]);
  p->err_fd = get_and_reset (&f->parent[2]);
}

static void
mark_started (struct proc *p)
{
  proc_table_lock ();
  p->started = true;
  proc_table_unlock ();
}

/* Wait for exec: the report pipe closes on success, or carries the
   failed step.  */
static int
await_exec (struct spawn_fds *f, const char **what)
{
  int step;

  if (child_await_exec (f->report, &step) == 0)
    return 0;
  if (step < 0 || step_names[step] == NULL)
    {
      errno = EIO;
      return failed_step (what, "start the child");
    }
  *what = step_names[step];
  return -1;
}

static int
prepare_fds (struct spawn_fds *f, const struct proc_spec *spec, const char **what)
{
  if (pipe2 (f->report, O_CLOEXEC) < 0)
    return failed_step (what, "pipe");
  if (spec->pty)
    return open_pty (f, spec, what);
  return open_pipes (f, spec->stdin_pipe, what);
}

static void
close_child_ends (struct spawn_fds *f)
{
  for (int i = 0; i < 3; i++)
    if (f->child[i] >= 0)
      close (get_and_reset (&f->child[i]));
  if (f->slave >= 0)
    close (get_and_reset (&f->slave));
}

struct proc *
proc_spawn (const struct proc_spec *spec, json_t *config, const char *tag, const char **ret_what)
{
  cleanup_spawn_fds struct spawn_fds f = { { -1, -1, -1 }, { -1, -1, -1 }, -1, -1, { -1, -1 } };
  struct proc *p;

  if (prepare_fds (&f, spec, ret_what) < 0)
    return NULL;
  p = proc_new (spec, config, tag);
  p->wake_fd = eventfd (0, EFD_CLOEXEC);
  if (p->wake_fd < 0)
    return abandon (p, ret_what, "eventfd");
  if (fork_registered (p, spec, &f) < 0)
    return abandon (p, ret_what, "fork");
  close_child_ends (&f);
  adopt_fds (p, &f);
  if (await_exec (&f, ret_what) < 0)
    {
      int saved = errno;
      proc_table_remove (p);
      errno = saved;
      return abandon (p, ret_what, *ret_what);
    }
  mark_started (p);
  return p;
}
