/* The Python kernel zygote.

   pyzygote_init() embeds Debian's CPython in hutchd's zygote, imports the
   data stack (IPython, ipykernel, numpy, pandas, matplotlib) and builds an
   ipykernel shell with no socket or thread (pyzygote-boot.h, the Python
   half).  Sandboxes are forked from the zygote, so each agent holds that
   interpreter in copy-on-write memory; pyzygote_fork_kernel() forks it once
   more into a Jupyter kernel, which then only opens its sockets, threads
   and history, in milliseconds instead of a second.

   The interpreter must see nothing of hutchd: it starts with a clean
   environment in a scratch directory, and everything it caches about its
   home, host or entropy is redone in each kernel.  Two invariants make the
   forks safe: the zygote stays single-threaded (checked), and the
   descriptors the interpreter keeps open are all /dev/null (checked; a
   kernel reopens them at the same numbers, since the sandbox and the
   kernel close every inherited descriptor).  */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "interp-internal.h"
#include "interp.h"
#include "libhutch/log.h"
#include "libhutch/util.h"
#include "pyzygote-boot.h"
#include "pyzygote-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PYTHON_EXECUTABLE L"/usr/bin/python3"
#define KERNEL_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_KEPT_FDS 8
#define MAX_GROUPS 64

extern char **environ;

static bool ready;
static PyObject *boot; /* the globals of pyzygote-boot.h */
static int kept_fds[MAX_KEPT_FDS];
static size_t n_kept_fds;

/* Descriptors and threads.  */

static int
count_threads (void)
{
  cleanup_dir DIR *d = opendir ("/proc/self/task");
  struct dirent *de;
  int n = 0;

  if (d == NULL)
    return -1;
  while ((de = readdir (d)))
    if (de->d_name[0] != '.')
      n++;
  return n;
}

/* The open descriptors, as a bitmap of the first FD_SETSIZE.  */
static int
open_fds (fd_set *ret)
{
  cleanup_dir DIR *d = opendir ("/proc/self/fd");
  struct dirent *de;

  if (d == NULL)
    return -1;
  FD_ZERO (ret);
  while ((de = readdir (d)))
    {
      int fd = atoi (de->d_name);
      if (de->d_name[0] != '.' && fd != dirfd (d) && fd < FD_SETSIZE)
        FD_SET (fd, ret);
    }
  return 0;
}

static bool
is_dev_null (int fd)
{
  struct stat st;
  return fstat (fd, &st) == 0 && S_ISCHR (st.st_mode) && st.st_rdev == makedev (1, 3);
}

/* Remember the descriptors the interpreter opened (those not in BEFORE).
   A kernel inherits none of them, so only /dev/null, which it can reopen
   at the same number, is allowed (IPython keeps one).  */
static int
record_kept_fds (const fd_set *before, hutch_error_t *err)
{
  fd_set now;

  if (open_fds (&now) < 0)
    return hutch_make_error (err, errno, "list `/proc/self/fd`");
  for (int fd = 3; fd < FD_SETSIZE; fd++)
    {
      char link[64], target[PATH_MAX] = "?";

      if (!FD_ISSET (fd, &now) || FD_ISSET (fd, before))
        continue;
      if (is_dev_null (fd) && n_kept_fds < MAX_KEPT_FDS)
        {
          kept_fds[n_kept_fds++] = fd;
          continue;
        }
      snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
      (void)!readlink (link, target, sizeof target - 1);
      return hutch_make_error (err, 0, "the interpreter keeps descriptor %d (`%s`) open", fd,
                               target);
    }
  return 0;
}

static long
rss_kib (void)
{
  long pages = 0;
  FILE *f = fopen ("/proc/self/statm", "re");

  if (f && fscanf (f, "%*s %ld", &pages) != 1)
    pages = 0;
  if (f)
    fclose (f);
  return pages * (sysconf (_SC_PAGESIZE) / 1024);
}

static long
elapsed_ms (const struct timespec *since)
{
  struct timespec now;
  clock_gettime (CLOCK_MONOTONIC, &now);
  return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Starting the interpreter.  */

static int
remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  remove (path);
  return 0;
}

static void
remove_tree (const char *path)
{
  nftw (path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The environment of the interpreter while it imports: nothing of
   hutchd's (PYTHONPATH, PYTHONHOME, secrets), the scratch directory as
   home and matplotlib cache, and no BLAS thread pool (the zygote must stay
   single-threaded to fork).  No LANG: kernels get Python's C-locale
   behaviour, as a python3 started by the agent does.  */
static char **
clean_environ (const char *scratch)
{
  char **env = xzalloc (8 * sizeof *env);
  size_t n = 0;

  env[n++] = xstrdup ("PATH=" KERNEL_PATH);
  xasprintf (&env[n++], "HOME=%s", scratch);
  xasprintf (&env[n++], "MPLCONFIGDIR=%s/matplotlib", scratch);
  env[n++] = xstrdup ("OPENBLAS_NUM_THREADS=1");
  env[n++] = xstrdup ("OMP_NUM_THREADS=1");
  env[n++] = xstrdup ("MKL_NUM_THREADS=1");
  /* ipykernel's debugger warns about frozen modules when imported.  */
  env[n++] = xstrdup ("PYDEVD_DISABLE_FILE_VALIDATION=1");
  return env;
}

/* Describe the pending Python exception in *ERR and print its traceback
   to stderr.  */
static int
python_error (hutch_error_t *err, const char *what)
{
  PyObject *type, *value, *tb;
  const char *name = "unknown error";
  PyObject *str = NULL;
  int ret;

  PyErr_Fetch (&type, &value, &tb);
  PyErr_NormalizeException (&type, &value, &tb);
  if (type)
    name = ((PyTypeObject *)type)->tp_name;
  if (value)
    str = PyObject_Str (value);
  ret = hutch_make_error (err, 0, "%s: %s: %s", what, name,
                          str && PyUnicode_Check (str) ? PyUnicode_AsUTF8 (str) : "");
  Py_XDECREF (str);
  PyErr_Restore (type, value, tb);
  PyErr_Print ();
  return ret;
}

/* Debian's python3, as /usr/bin/python3 runs it (site, dist-packages and
   the user's site directory), minus what would clash with hutchd: no
   signal handlers, no command line.  The environment is already clean, so
   reading it is harmless and keeps sys.flags those of a plain python3.  */
static int
start_interpreter (hutch_error_t *err)
{
  PyConfig config;
  PyStatus status;

  PyConfig_InitPythonConfig (&config);
  config.install_signal_handlers = 0;
  config.parse_argv = 0;
  status = PyConfig_SetString (&config, &config.program_name, PYTHON_EXECUTABLE);
  if (!PyStatus_Exception (status))
    status = Py_InitializeFromConfig (&config);
  PyConfig_Clear (&config);
  if (PyStatus_Exception (status))
    return hutch_make_error (err, 0, "start Python: %s",
                             status.err_msg ? status.err_msg : "unknown error");
  return 0;
}

/* The bootstrap's _RESULT_FORMATTERS, which it runs in the shell.  */
static int
set_formatters_code (PyObject *dict)
{
  cleanup_free char *code = result_formatters_code ();
  PyObject *s = PyUnicode_FromString (code);
  int r = s ? PyDict_SetItemString (dict, "_RESULT_FORMATTERS", s) : -1;

  Py_XDECREF (s);
  return r;
}

static int
run_bootstrap (const char *scratch, hutch_error_t *err)
{
  PyObject *code, *module, *result;

  module = PyImport_AddModule ("_hutch_pyzygote"); /* borrowed */
  if (module == NULL)
    return python_error (err, "create the bootstrap module");
  boot = PyModule_GetDict (module);
  Py_INCREF (boot);
  if (PyDict_SetItemString (boot, "__builtins__", PyEval_GetBuiltins ()) < 0
      || set_formatters_code (boot) < 0)
    return python_error (err, "set up the bootstrap module");
  code = Py_CompileString (pyzygote_boot_py, "<hutch-pyzygote>", Py_file_input);
  if (code == NULL)
    return python_error (err, "compile the bootstrap");
  result = PyEval_EvalCode (code, boot, boot);
  Py_DECREF (code);
  if (result == NULL)
    return python_error (err, "run the bootstrap");
  Py_DECREF (result);
  result = PyObject_CallFunction (PyDict_GetItemString (boot, "prepare"), "s", scratch);
  if (result == NULL)
    return python_error (err, "preload the kernel");
  Py_DECREF (result);
  return 0;
}

/* Start and preload the interpreter in SCRATCH, with the clean
   environment; then put the process's environment and directory back.  */
static int
preload (const char *scratch, hutch_error_t *err)
{
  cleanup_close int cwd = open (".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_strv char **env = clean_environ (scratch);
  cleanup_free char *ctype = xstrdup (setlocale (LC_CTYPE, NULL));
  char **saved = environ;
  int ret;

  if (cwd < 0)
    return hutch_make_error (err, errno, "open the working directory");
  if (chdir (scratch) < 0)
    return hutch_make_error (err, errno, "enter `%s`", scratch);
  environ = env;
  ret = start_interpreter (err);
  if (ret == 0)
    ret = run_bootstrap (scratch, err);
  /* Python's setenv()s may have replaced the array: leak it, it is tiny.
     Python also set LC_CTYPE (C.UTF-8, PEP 538); kernels set it again.  */
  environ = saved;
  setlocale (LC_CTYPE, ctype);
  if (fchdir (cwd) < 0 && ret == 0)
    ret = hutch_make_error (err, errno, "return to the working directory");
  return ret;
}

static int
check_zygote (const fd_set *fds_before, hutch_error_t *err)
{
  int threads = count_threads ();

  if (threads != 1)
    return hutch_make_error (err, ENOTRECOVERABLE,
                             "the interpreter left %d threads running: this process must not fork",
                             threads);
  return record_kept_fds (fds_before, err);
}

int
pyzygote_init (hutch_error_t *err)
{
  char scratch[] = "/tmp/hutch-pyzygote-XXXXXX";
  struct timespec start;
  fd_set fds_before;
  int ret;

  clock_gettime (CLOCK_MONOTONIC, &start);
  if (ready || Py_IsInitialized ())
    return hutch_make_error (err, EALREADY, "pyzygote_init");
  if (count_threads () != 1)
    return hutch_make_error (err, EBUSY, "pyzygote_init needs a single-threaded process");
  if (open_fds (&fds_before) < 0)
    return hutch_make_error (err, errno, "list `/proc/self/fd`");
  if (mkdtemp (scratch) == NULL)
    return hutch_make_error (err, errno, "create `%s`", scratch);
  ret = preload (scratch, err);
  remove_tree (scratch);
  if (ret == 0)
    ret = check_zygote (&fds_before, err);
  if (ret == 0)
    log_debug ("pyzygote: %zu KiB of free pymalloc blocks taken", pyzygote_fill_pools () / 1024);
  /* A failed interpreter stays as it is, GIL held: finalizing one that
     imported half the data stack is not reliable, and nothing calls it.  */
  if (ret < 0)
    return ret;
  log_info ("pyzygote: Python kernels preloaded in %ld ms, RSS %ld MiB", elapsed_ms (&start),
            rss_kib () / 1024);
  /* Other threads of the forked agents take the GIL to fork kernels.  */
  PyEval_SaveThread ();
  ready = true;
  return 0;
}

bool
pyzygote_ready (void)
{
  return ready;
}

/* Forking a kernel.  Everything that may allocate or read files is done
   before fork, in the parent.  */

struct plan
{
  gid_t groups[MAX_GROUPS];
  int n_groups;
  char **env; /* "NAME=value", NULL-terminated */
};

static void
plan_free (struct plan *p)
{
  cleanup_strvp (&p->env);
}

/* The supplementary groups of UID, as login would set them.  */
static void
plan_groups (const struct pyzygote_kernel *k, const char *user, struct plan *p)
{
  p->n_groups = MAX_GROUPS;
  if (user == NULL || getgrouplist (user, k->gid, p->groups, &p->n_groups) < 0)
    {
      p->groups[0] = k->gid;
      p->n_groups = 1;
    }
}

/* Set NAME=VALUE in P's environment, replacing an earlier NAME.  */
static void
plan_setenv (struct plan *p, size_t *n, const char *entry)
{
  const char *eq = strchr (entry, '=');
  size_t len = eq ? (size_t)(eq - entry) : 0;

  if (len == 0)
    return;
  for (size_t i = 0; i < *n; i++)
    if (strncmp (p->env[i], entry, len + 1) == 0)
      {
        free (p->env[i]);
        p->env[i] = xstrdup (entry);
        return;
      }
  p->env[(*n)++] = xstrdup (entry);
}

static void
plan_env (const struct pyzygote_kernel *k, const char *user, struct plan *p)
{
  size_t cap = 5, n = 0;
  char *entry;

  for (char *const *e = k->env; e && *e; e++)
    cap++;
  p->env = xzalloc (cap * sizeof *p->env);
  plan_setenv (p, &n, "PATH=" KERNEL_PATH);
  xasprintf (&entry, "HOME=%s", k->home);
  plan_setenv (p, &n, entry);
  free (entry);
  if (user)
    {
      xasprintf (&entry, "USER=%s", user);
      plan_setenv (p, &n, entry);
      free (entry);
      xasprintf (&entry, "LOGNAME=%s", user);
      plan_setenv (p, &n, entry);
      free (entry);
    }
  for (char *const *e = k->env; e && *e; e++)
    plan_setenv (p, &n, *e);
}

static void
plan_kernel (const struct pyzygote_kernel *k, struct plan *p)
{
  struct passwd pw, *found = NULL;
  char buf[4096];

  getpwuid_r (k->uid, &pw, buf, sizeof buf, &found);
  plan_groups (k, found ? found->pw_name : NULL, p);
  plan_env (k, found ? found->pw_name : NULL, p);
}

/* In the kernel: become K's user, in K's directory, in a session of its
   own.  Returns 0 or -1 with errno.  */
static int
become_user (const struct pyzygote_kernel *k, const struct plan *p)
{
  sigset_t none;

  sigemptyset (&none);
  /* The forking thread may block signals (the agent blocks SIGINT and
     SIGTERM); a kernel is interrupted with SIGINT.  */
  if (sigprocmask (SIG_SETMASK, &none, NULL) < 0 || setsid () < 0)
    return -1;
  if (k->uid != getuid () || k->gid != getgid ())
    {
      if (setgroups ((size_t)p->n_groups, p->groups) < 0 || setresgid (k->gid, k->gid, k->gid) < 0
          || setresuid (k->uid, k->uid, k->uid) < 0)
        return -1;
      /* Changing uid without exec makes the process undumpable, and then
         its /proc/PID files belong to root: the kernel could not read
         /proc/self/fd, nor psutil its own process.  */
      if (prctl (PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
        return -1;
    }
  return chdir (k->cwd);
}

static int
above_kept_fds (void)
{
  int fd = 3;
  for (size_t i = 0; i < n_kept_fds; i++)
    if (kept_fds[i] >= fd)
      fd = kept_fds[i] + 1;
  return fd;
}

/* In the kernel: /dev/null on 0, the log (or /dev/null) on 1 and 2, the
   interpreter's /dev/null descriptors at their numbers, and nothing else
   but *STATUS_FD, moved above them all.  Returns 0 or -1 with errno.  */
static int
set_descriptors (int log_fd, int *status_fd)
{
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  int out = log_fd >= 0 ? log_fd : null;
  int status = fcntl (*status_fd, F_DUPFD_CLOEXEC, above_kept_fds ());

  if (null < 0 || status < 0)
    return -1;
  *status_fd = status;
  if (dup2 (null, 0) < 0 || dup2 (out, 1) < 0 || dup2 (out, 2) < 0)
    return -1;
  if (syscall (SYS_close_range, 3, status - 1, 0) < 0
      || syscall (SYS_close_range, status + 1, ~0U, 0) < 0)
    return -1;
  for (size_t i = 0; i < n_kept_fds; i++)
    {
      int fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
      if (fd < 0 || (fd != kept_fds[i] && dup3 (fd, kept_fds[i], O_CLOEXEC) < 0))
        return -1;
      if (fd != kept_fds[i])
        close (fd);
    }
  return 0;
}

static PyObject *
env_dict (char **env)
{
  PyObject *d = PyDict_New ();

  for (char **e = env; d && *e; e++)
    {
      char *eq = strchr (*e, '=');
      PyObject *v = PyUnicode_DecodeFSDefault (eq + 1);
      PyObject *k = PyUnicode_DecodeFSDefaultAndSize (*e, eq - *e);
      if (k == NULL || v == NULL || PyDict_SetItem (d, k, v) < 0)
        Py_CLEAR (d);
      Py_XDECREF (k);
      Py_XDECREF (v);
    }
  return d;
}

/* In the kernel, set up: run the kernel until it stops and exit with its
   status, as python3 would.  */
static void __attribute__ ((noreturn)) run_kernel (const struct pyzygote_kernel *k, struct plan *p)
{
  PyObject *env = env_dict (p->env);
  PyObject *status = NULL;
  int code = 1;

  if (env)
    status
        = PyObject_CallFunction (PyDict_GetItemString (boot, "run"), "sO", k->connection_file, env);
  if (status && PyLong_Check (status))
    code = (int)PyLong_AsLong (status);
  else
    PyErr_Print ();
  Py_XDECREF (status);
  Py_XDECREF (env);
  if (Py_FinalizeEx () < 0)
    code = 120;
  _exit (code);
}

static void __attribute__ ((noreturn))
kernel_main (const struct pyzygote_kernel *k, struct plan *p, int status_fd)
{
  if (become_user (k, p) < 0 || set_descriptors (k->log_fd, &status_fd) < 0)
    {
      int e = errno;
      (void)!write (status_fd, &e, sizeof e);
      _exit (127);
    }
  /* Python rebuilds the environment from the plan (with setenv(): the
     parent's threads must not be changing their environment).  */
  clearenv ();
  /* One malloc arena per thread would give each of the kernel's threads
     (IOPub, heartbeat, control, ZeroMQ's) pages of its own.  */
  mallopt (M_ARENA_MAX, 2);
  close (status_fd); /* tells the parent the kernel is set up */
  run_kernel (k, p);
}

/* Wait until the kernel is set up (STATUS_FD closes) or failed (it sends
   an errno).  */
static pid_t
wait_setup (pid_t pid, int status_fd)
{
  int e;
  ssize_t n = TEMP_FAILURE_RETRY (read (status_fd, &e, sizeof e));

  if (n == 0)
    return pid;
  waitpid (pid, NULL, 0);
  errno = n == (ssize_t)sizeof e ? e : EIO;
  return -1;
}

pid_t
pyzygote_spawn (const struct pyzygote_kernel *k)
{
  struct plan p = { 0 };
  PyGILState_STATE gil;
  int status[2], e;
  pid_t pid;

  if (!ready)
    {
      errno = ENOSYS;
      return -1;
    }
  if (pipe2 (status, O_CLOEXEC) < 0)
    return -1;
  plan_kernel (k, &p);
  /* The forking protocol of an embedded CPython (see PyOS_BeforeFork).  */
  gil = PyGILState_Ensure ();
  PyOS_BeforeFork ();
  pid = fork ();
  if (pid == 0)
    {
      PyOS_AfterFork_Child ();
      close (status[0]);
      kernel_main (k, &p, status[1]);
    }
  e = errno;
  PyOS_AfterFork_Parent ();
  PyGILState_Release (gil);
  close (status[1]);
  if (pid > 0)
    pid = wait_setup (pid, status[0]);
  else
    errno = e;
  e = errno;
  close (status[0]);
  plan_free (&p);
  errno = e;
  return pid;
}

pid_t
pyzygote_fork_kernel (const char *connection_file, uid_t uid, gid_t gid, const char *home,
                      const char *cwd)
{
  struct pyzygote_kernel k = {
    .connection_file = connection_file,
    .uid = uid,
    .gid = gid,
    .home = home,
    .cwd = cwd,
    .log_fd = -1,
  };
  return pyzygote_spawn (&k);
}
