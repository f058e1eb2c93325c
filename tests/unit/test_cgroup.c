/* Unit tests of the cgroup layer.  They need root and a real cgroup
   hierarchy: they create groups named "t<pid>n<i>" under hutch/ and
   destroy them again in the teardown, whatever the outcome.  */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "libhutch/cgroup-internal.h"
#include "libhutch/util.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#define MiB (1024ULL * 1024ULL)

static char *names[8];
static int n_names;

static void
teardown (void)
{
  for (int i = 0; i < n_names; i++)
    {
      cleanup_error hutch_error_t err = NULL;
      cleanup_cgroup struct hutch_cgroup *cg = NULL;

      if (hutch_cgroup_open (names[i], &cg, &err) == 0 && hutch_cgroup_destroy (cg, &err) < 0)
        fprintf (stderr, "teardown: %s\n", err->msg);
      free (names[i]);
    }
  n_names = 0;
}

TestSuite (cgroup, .fini = teardown, .timeout = 60);

/* A name unique to this test process, padded with 'z' to LEN characters,
   destroyed by the teardown.  */
static const char *
new_name_len (size_t len)
{
  char *name;
  int n;

  cr_assert_lt (n_names, (int)ARRAY_SIZE (names));
  n = xasprintf (&name, "t%dn%d", (int)getpid (), n_names);
  if ((size_t)n < len)
    {
      name = xrealloc (name, len + 1);
      memset (name + n, 'z', len - (size_t)n);
      name[len] = '\0';
    }
  names[n_names++] = name;
  return name;
}

static const char *
new_name (void)
{
  return new_name_len (0);
}

static struct hutch_cgroup *
create_ok (const char *name, const struct hutch_cgroup_limits *limits)
{
  cleanup_error hutch_error_t err = NULL;
  struct hutch_cgroup *cg = NULL;

  cr_assert_eq (hutch_cgroup_create (name, limits, &cg, &err), 0, "create %s: %s", name,
                err ? err->msg : "");
  return cg;
}

static enum hutch_cgroup_mode
mode (void)
{
  cleanup_error hutch_error_t err = NULL;
  enum hutch_cgroup_mode m;

  cr_assert_eq (hutch_cgroup_detect (&m, &err), 0, "detect: %s", err ? err->msg : "");
  return m;
}

/* The directory of CG for the v1 controller CTRL (v2: the one directory).  */
static const char *
group_dir (struct hutch_cgroup *cg, enum hutch__cgroup_v1_ctrl ctrl)
{
  return mode () == HUTCH_CGROUP_V2 ? cg->path : cg->ctrl_path[ctrl];
}

static char *
read_text (const char *dir, const char *file)
{
  cleanup_free char *path = NULL;
  char *buf = NULL;

  xasprintf (&path, "%s/%s", dir, file);
  cr_assert_eq (read_file_at (AT_FDCWD, path, &buf, NULL), 0, "read %s: %s", path,
                strerror (errno));
  return buf;
}

static unsigned long long
read_number (const char *dir, const char *file)
{
  cleanup_free char *buf = read_text (dir, file);

  return strtoull (buf, NULL, 10);
}

static bool
has_ctrl (const char *list, const char *ctrl)
{
  cleanup_free char *copy = xstrdup (list);
  char *save = NULL;

  for (char *c = strtok_r (copy, ",", &save); c; c = strtok_r (NULL, ",", &save))
    if (strcmp (c, ctrl) == 0)
      return true;
  return false;
}

/* Children block in block_on (FD) until the test process goes away.  */
static void __attribute__ ((noreturn)) block_on (int fd)
{
  char c;

  while (read (fd, &c, 1) != 0)
    ;
  _exit (0);
}

/* Whether /proc/PID/cgroup puts PID in hutch/NAME for the v1 controller
   CTRL, or for the unified hierarchy ("0::") when CTRL is NULL.  */
static bool
in_group (pid_t pid, const char *ctrl, const char *name)
{
  cleanup_free char *dir = NULL, *text = NULL, *want = NULL;
  char *save = NULL;

  xasprintf (&dir, "/proc/%d", (int)pid);
  xasprintf (&want, "/%s/%s", HUTCH__CGROUP_PARENT, name);
  text = read_text (dir, "cgroup");
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *ctrls = strchr (line, ':'), *path = ctrls ? strchr (ctrls + 1, ':') : NULL;
      if (path == NULL || strcmp (path + 1, want) != 0)
        continue;
      *path = '\0';
      ctrls++;
      if (ctrl == NULL ? *ctrls == '\0' : has_ctrl (ctrls, ctrl))
        return true;
    }
  return false;
}

static void
wait_killed (pid_t pid)
{
  int status;

  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL, "status %#x", status);
}

Test (cgroup, detect_matches_filesystem)
{
  struct statfs sfs;

  cr_assert_eq (statfs ("/sys/fs/cgroup", &sfs), 0);
  cr_assert_eq (mode (), sfs.f_type == CGROUP2_SUPER_MAGIC ? HUTCH_CGROUP_V2 : HUTCH_CGROUP_V1);
  cr_assert_eq (mode (), mode ());
}

Test (cgroup, create_sets_limits)
{
  struct hutch_cgroup_limits limits
      = { .memory = 32 * MiB, .cpu_quota_us = 50000, .cpu_period_us = 100000, .pids = 16 };
  cleanup_cgroup struct hutch_cgroup *cg = create_ok (new_name (), &limits);
  const char *mem = group_dir (cg, HUTCH__CG_MEMORY);

  cr_assert_eq (read_number (group_dir (cg, HUTCH__CG_PIDS), "pids.max"), 16);
  cr_assert_not (hutch_cgroup_oom_killed (cg));
  cr_assert_eq (hutch_cgroup_count_procs (cg), 0);
  if (mode () == HUTCH_CGROUP_V2)
    {
      cleanup_free char *cpu = read_text (cg->path, "cpu.max");
      cr_assert_eq (read_number (mem, "memory.max"), 32 * MiB);
      cr_assert_str_eq (cpu, "50000 100000\n");
      return;
    }
  cr_assert_eq (read_number (mem, "memory.limit_in_bytes"), 32 * MiB);
  if (hutch__cgroup_has_file (mem, "memory.memsw.limit_in_bytes"))
    cr_assert_eq (read_number (mem, "memory.memsw.limit_in_bytes"), 32 * MiB);
  cr_assert_eq (read_number (group_dir (cg, HUTCH__CG_CPU), "cpu.cfs_period_us"), 100000);
  cr_assert_eq (read_number (group_dir (cg, HUTCH__CG_CPU), "cpu.cfs_quota_us"), 50000);
}

Test (cgroup, create_without_limits)
{
  cleanup_cgroup struct hutch_cgroup *cg = create_ok (new_name (), NULL);
  cleanup_free char *pids = read_text (group_dir (cg, HUTCH__CG_PIDS), "pids.max");

  cr_assert_str_eq (pids, "max\n");
}

static void
check_in_group (pid_t pid, const char *name)
{
  static const char *const v1_ctrls[] = { "memory", "cpu", "pids", "freezer" };

  if (mode () == HUTCH_CGROUP_V2)
    {
      cr_assert (in_group (pid, NULL, name));
      return;
    }
  for (size_t i = 0; i < ARRAY_SIZE (v1_ctrls); i++)
    cr_assert (in_group (pid, v1_ctrls[i], name), "%d not in %s of %s", (int)pid, v1_ctrls[i],
               name);
}

Test (cgroup, attach_and_count)
{
  cleanup_error hutch_error_t err = NULL;
  const char *name = new_name ();
  cleanup_cgroup struct hutch_cgroup *cg = create_ok (name, NULL);
  int go[2], ready[2];
  pid_t pid;
  char c = 'x';

  cr_assert_eq (pipe (go), 0);
  cr_assert_eq (pipe (ready), 0);
  pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0)
    {
      char *mem;
      close (go[1]);
      if (read (go[0], &c, 1) != 1)
        _exit (1);
      mem = mmap (NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mem == MAP_FAILED)
        _exit (1);
      memset (mem, 1, 4 * MiB);
      if (write (ready[1], &c, 1) != 1)
        _exit (1);
      block_on (go[0]);
    }
  close (go[0]);
  close (ready[1]);
  cr_assert_eq (hutch_cgroup_attach (cg, pid, &err), 0, "attach: %s", err ? err->msg : "");
  cr_assert_eq (write (go[1], &c, 1), 1);
  cr_assert_eq (read (ready[0], &c, 1), 1);

  check_in_group (pid, name);
  cr_assert_eq (hutch_cgroup_count_procs (cg), 1);
  cr_assert_geq (hutch_cgroup_memory_current (cg), 4 * MiB);
  cr_assert_eq (hutch_cgroup_destroy (cg, &err), 0, "destroy: %s", err ? err->msg : "");
  wait_killed (pid);
  close (go[1]);
  close (ready[0]);
}

/* The sandboxed child: fork a middle process that starts a new session and
   forks the grandchild, then exits.  Child and grandchild report their pids
   on READY_FD and block; every one of them holds ALIVE_FD open.  */
static void __attribute__ ((noreturn)) double_fork (int go_fd, int ready_fd)
{
  pid_t mid, self;
  char c;

  if (read (go_fd, &c, 1) != 1)
    _exit (1);
  mid = fork ();
  if (mid == 0)
    {
      if (setsid () < 0 || fork () != 0)
        _exit (0);
      self = getpid ();
      if (write (ready_fd, &self, sizeof self) != sizeof self)
        _exit (1);
      block_on (go_fd);
    }
  if (mid < 0 || waitpid (mid, NULL, 0) != mid)
    _exit (1);
  self = getpid ();
  if (write (ready_fd, &self, sizeof self) != sizeof self)
    _exit (1);
  block_on (go_fd);
}

Test (cgroup, kill_reaches_escaped_grandchild)
{
  cleanup_error hutch_error_t err = NULL;
  cleanup_cgroup struct hutch_cgroup *cg = create_ok (new_name (), NULL);
  int go[2], ready[2], alive[2];
  pid_t child, pids[2], grandchild;
  char c = 'x';

  /* The grandchild is orphaned; be its reaper so the test can wait for it.  */
  cr_assert_eq (prctl (PR_SET_CHILD_SUBREAPER, 1), 0);
  cr_assert_eq (pipe (go), 0);
  cr_assert_eq (pipe (ready), 0);
  cr_assert_eq (pipe (alive), 0);
  child = fork ();
  cr_assert_geq (child, 0);
  if (child == 0)
    {
      close (go[1]);
      close (ready[0]);
      close (alive[0]);
      double_fork (go[0], ready[1]);
    }
  close (go[0]);
  close (ready[1]);
  close (alive[1]);
  cr_assert_eq (hutch_cgroup_attach (cg, child, &err), 0, "attach: %s", err ? err->msg : "");
  cr_assert_eq (write (go[1], &c, 1), 1);
  cr_assert_eq (read_all (ready[0], pids, sizeof pids), (ssize_t)sizeof pids);
  grandchild = pids[0] == child ? pids[1] : pids[0];
  cr_assert (pids[0] == child || pids[1] == child);
  cr_assert_neq (getsid (grandchild), getsid (0));
  cr_assert_eq (hutch_cgroup_count_procs (cg), 2);

  cr_assert_eq (hutch_cgroup_kill (cg, &err), 0, "kill: %s", err ? err->msg : "");
  cr_assert_eq (hutch_cgroup_count_procs (cg), 0);
  /* EOF once no process holds the write end any more: all are gone.  */
  cr_assert_eq (read (alive[0], &c, 1), 0);
  wait_killed (child);
  wait_killed (grandchild);
  close (go[1]);
  close (ready[0]);
  close (alive[0]);
}

Test (cgroup, destroy_removes_directories)
{
  cleanup_error hutch_error_t err = NULL;
  const char *name = new_name ();
  cleanup_cgroup struct hutch_cgroup *cg = create_ok (name, NULL);
  cleanup_cgroup struct hutch_cgroup *again = NULL;
  struct stat st;

  cr_assert_eq (hutch_cgroup_destroy (cg, &err), 0, "destroy: %s", err ? err->msg : "");
  for (int i = 0; i < HUTCH__CG_NCTRL; i++)
    {
      const char *dir = group_dir (cg, i);
      cr_assert_eq (stat (dir, &st), -1, "%s still exists", dir);
      cr_assert_eq (errno, ENOENT);
    }
  /* Destroying what is gone already is fine; opening it is not.  */
  cr_assert_eq (hutch_cgroup_destroy (cg, &err), 0, "destroy again: %s", err ? err->msg : "");
  cr_assert_lt (hutch_cgroup_open (name, &again, &err), 0);
  cr_assert_eq (err->status, ENOENT);
}

Test (cgroup, invalid_names_rejected)
{
  static const char *const bad[]
      = { "",
          "A",
          "a-b",
          "a/b",
          "..",
          ".",
          "a b",
          "a\n",
          "caf\xc3\xa9",
          "12345678901234567890123456789012345678901234567890123456789012345" };
  struct hutch_cgroup *cg = NULL;

  for (size_t i = 0; i < ARRAY_SIZE (bad); i++)
    {
      cleanup_error hutch_error_t err = NULL;
      cr_assert_lt (hutch_cgroup_create (bad[i], NULL, &cg, &err), 0, "`%s` accepted", bad[i]);
      cr_assert_eq (err->status, EINVAL);
      hutch_error_release (&err);
      cr_assert_lt (hutch_cgroup_open (bad[i], &cg, &err), 0);
      cr_assert_eq (err->status, EINVAL);
    }
  cr_assert_null (cg);
}

Test (cgroup, longest_name_accepted)
{
  const char *name = new_name_len (64);
  cleanup_cgroup struct hutch_cgroup *cg = NULL;

  cr_assert_eq (strlen (name), 64);
  cg = create_ok (name, NULL);
}

Test (cgroup, create_existing_fails)
{
  cleanup_error hutch_error_t err = NULL;
  const char *name = new_name ();
  cleanup_cgroup struct hutch_cgroup *cg = create_ok (name, NULL);
  cleanup_cgroup struct hutch_cgroup *dup = NULL;
  cleanup_cgroup struct hutch_cgroup *opened = NULL;

  cr_assert_lt (hutch_cgroup_create (name, NULL, &dup, &err), 0);
  cr_assert_eq (err->status, EEXIST);
  cr_assert_null (dup);
  hutch_error_release (&err);
  /* The failed create left the first group alone.  */
  cr_assert_eq (hutch_cgroup_open (name, &opened, &err), 0, "open: %s", err ? err->msg : "");
  cr_assert_eq (hutch_cgroup_count_procs (opened), 0);
}

Test (cgroup, list_has_group)
{
  cleanup_error hutch_error_t err = NULL;
  const char *name = new_name ();
  cleanup_cgroup struct hutch_cgroup *cg = create_ok (name, NULL);
  cleanup_strv char **list = NULL;
  bool found = false;

  cr_assert_eq (hutch_cgroup_list (&list, &err), 0, "list: %s", err ? err->msg : "");
  for (char **p = list; *p; p++)
    found |= strcmp (*p, name) == 0;
  cr_assert (found);
}

Test (cgroup, oom_is_reported)
{
  struct hutch_cgroup_limits limits = { .memory = 32 * MiB };
  cleanup_error hutch_error_t err = NULL;
  cleanup_cgroup struct hutch_cgroup *cg = create_ok (new_name (), &limits);
  int go[2];
  pid_t pid;
  char c = 'x';

  cr_assert_eq (pipe (go), 0);
  pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0)
    {
      const size_t size = 128 * MiB;
      volatile char *mem;
      close (go[1]);
      if (read (go[0], &c, 1) != 1)
        _exit (1);
      mem = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mem == MAP_FAILED)
        _exit (1);
      for (size_t i = 0; i < size; i += 4096)
        mem[i] = 1;
      _exit (0);
    }
  close (go[0]);
  cr_assert_eq (hutch_cgroup_attach (cg, pid, &err), 0, "attach: %s", err ? err->msg : "");
  cr_assert_not (hutch_cgroup_oom_killed (cg));
  cr_assert_eq (write (go[1], &c, 1), 1);
  wait_killed (pid);
  cr_assert (hutch_cgroup_oom_killed (cg));
  close (go[1]);
}
