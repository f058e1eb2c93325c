/* cgroup v1: a group is one directory hutch/NAME in each of the memory,
   cpu, pids and freezer hierarchies, wherever /proc/self/mountinfo says
   they are mounted (cpu is often co-mounted as "cpu,cpuacct").  */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cgroup-internal.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

#define MOUNTINFO "/proc/self/mountinfo"
#define DEFAULT_CPU_PERIOD_US 100000UL

static const char *const ctrl_names[HUTCH__CG_NCTRL] = { "memory", "cpu", "pids", "freezer" };

/* Mount point of each controller, published once by hutch__cgroup_v1_init
   (before any v1 op can run) and never freed.  */
static char **v1_mounts;

static const char *
mount_of (int ctrl)
{
  return __atomic_load_n (&v1_mounts, __ATOMIC_ACQUIRE)[ctrl];
}

/* Undo the octal escapes of mountinfo ("\040" for a space).  */
static void
unescape (char *s)
{
  char *out = s;

  for (; *s; s++, out++)
    {
      if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0'
          && s[3] <= '7')
        {
          *out = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
          s += 3;
        }
      else
        *out = *s;
    }
  *out = '\0';
}

/* Whether the comma-separated OPTS contains NAME exactly.  */
static bool
has_option (const char *opts, const char *name)
{
  size_t len = strlen (name);

  for (const char *p = opts; p; p = strchr (p, ','), p = p ? p + 1 : NULL)
    if (strncmp (p, name, len) == 0 && (p[len] == ',' || p[len] == '\0'))
      return true;
  return false;
}

/* Record the mount point of the mountinfo LINE in FOUND for each wanted
   controller it carries (the first mount of a controller wins).  Fields:
   id parent dev root mountpoint options [optional...] - fstype source super.  */
static void
scan_mountinfo_line (char *line, char *found[])
{
  char *sep = strstr (line, " - ");
  char *save = NULL, *fstype, *super, *mnt;

  if (sep == NULL)
    return;
  *sep = '\0';
  fstype = strtok_r (sep + 3, " \n", &save);
  strtok_r (NULL, " \n", &save);
  super = strtok_r (NULL, " \n", &save);
  if (fstype == NULL || super == NULL || strcmp (fstype, "cgroup") != 0)
    return;
  mnt = strtok_r (line, " ", &save);
  for (int i = 0; mnt && i < 4; i++)
    mnt = strtok_r (NULL, " ", &save);
  if (mnt == NULL)
    return;
  for (int i = 0; i < HUTCH__CG_NCTRL; i++)
    if (found[i] == NULL && has_option (super, ctrl_names[i]))
      {
        found[i] = xstrdup (mnt);
        unescape (found[i]);
      }
}

static void
free_mounts (char **mounts)
{
  for (int i = 0; i < HUTCH__CG_NCTRL; i++)
    free (mounts[i]);
  free (mounts);
}

static int
read_mounts (char **found, hutch_error_t *err)
{
  cleanup_file FILE *f = fopen (MOUNTINFO, "re");
  cleanup_free char *line = NULL;
  size_t cap = 0;

  if (f == NULL)
    return hutch_make_error (err, errno, "open `%s`", MOUNTINFO);
  while (getline (&line, &cap, f) > 0)
    scan_mountinfo_line (line, found);
  if (ferror (f))
    return hutch_make_error (err, errno, "read `%s`", MOUNTINFO);
  for (int i = 0; i < HUTCH__CG_NCTRL; i++)
    if (found[i] == NULL)
      return hutch_make_error (err, ENOENT, "cgroup v1 controller `%s` is not mounted",
                               ctrl_names[i]);
  return 0;
}

int
hutch__cgroup_v1_init (hutch_error_t *err)
{
  char **found, **expected = NULL;
  int r;

  if (__atomic_load_n (&v1_mounts, __ATOMIC_ACQUIRE) != NULL)
    return 0;
  found = xzalloc (HUTCH__CG_NCTRL * sizeof *found);
  r = read_mounts (found, err);
  /* Two threads may race here; both read the same table, one keeps it.  */
  if (r < 0
      || !__atomic_compare_exchange_n (&v1_mounts, &expected, found, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE))
    free_mounts (found);
  return r < 0 ? r : 0;
}

static void
set_paths (struct hutch_cgroup *cg)
{
  for (int i = 0; i < HUTCH__CG_NCTRL; i++)
    xasprintf (&cg->ctrl_path[i], "%s/%s/%s", mount_of (i), HUTCH__CGROUP_PARENT, cg->name);
}

/* Whether controller I shares its directory with an earlier one (both on
   one hierarchy): such a directory is handled once, at the first.  */
static bool
is_dup (const struct hutch_cgroup *cg, int i)
{
  for (int j = 0; j < i; j++)
    if (strcmp (cg->ctrl_path[i], cg->ctrl_path[j]) == 0)
      return true;
  return false;
}

/* Roll back: remove the (empty, just made) directories of the first N
   controllers.  */
static void
remove_dirs (struct hutch_cgroup *cg, int n)
{
  for (int i = 0; i < n; i++)
    if (!is_dup (cg, i) && rmdir (cg->ctrl_path[i]) < 0)
      log_debug ("rmdir `%s`: %s", cg->ctrl_path[i], strerror (errno));
}

static int
make_dirs (struct hutch_cgroup *cg, hutch_error_t *err)
{
  for (int i = 0; i < HUTCH__CG_NCTRL; i++)
    {
      cleanup_free char *parent = NULL;
      int r;

      if (is_dup (cg, i))
        continue;
      xasprintf (&parent, "%s/%s", mount_of (i), HUTCH__CGROUP_PARENT);
      r = hutch__cgroup_mkdir (parent, true, err);
      if (r >= 0)
        r = hutch__cgroup_mkdir (cg->ctrl_path[i], false, err);
      if (r < 0)
        {
          remove_dirs (cg, i);
          return r;
        }
    }
  return 0;
}

/* No swap beyond the limit: memsw (memory + swap) gets the same value.  It
   must never be below limit_in_bytes, so it is written second.  */
static int
set_memory (const char *dir, unsigned long long bytes, hutch_error_t *err)
{
  int r;

  if (bytes == 0)
    return 0;
  r = hutch__cgroup_write_ull (dir, "memory.limit_in_bytes", bytes, err);
  if (r < 0 || !hutch__cgroup_has_file (dir, "memory.memsw.limit_in_bytes"))
    return r;
  return hutch__cgroup_write_ull (dir, "memory.memsw.limit_in_bytes", bytes, err);
}

static int
set_cpu (const char *dir, const struct hutch_cgroup_limits *limits, hutch_error_t *err)
{
  unsigned long period = limits->cpu_period_us ? limits->cpu_period_us : DEFAULT_CPU_PERIOD_US;
  int r;

  if (limits->cpu_quota_us == 0)
    return 0;
  r = hutch__cgroup_write_ull (dir, "cpu.cfs_period_us", period, err);
  if (r < 0)
    return r;
  return hutch__cgroup_write_ull (dir, "cpu.cfs_quota_us", limits->cpu_quota_us, err);
}

static int
set_limits (struct hutch_cgroup *cg, const struct hutch_cgroup_limits *limits, hutch_error_t *err)
{
  int r = set_memory (cg->ctrl_path[HUTCH__CG_MEMORY], limits->memory, err);

  if (r >= 0)
    r = set_cpu (cg->ctrl_path[HUTCH__CG_CPU], limits, err);
  if (r >= 0 && limits->pids)
    r = hutch__cgroup_write_ull (cg->ctrl_path[HUTCH__CG_PIDS], "pids.max", limits->pids, err);
  return r < 0 ? r : 0;
}

static int
v1_create (struct hutch_cgroup *cg, const struct hutch_cgroup_limits *limits, hutch_error_t *err)
{
  int r;

  set_paths (cg);
  r = make_dirs (cg, err);
  if (r < 0)
    return r;
  r = set_limits (cg, limits, err);
  if (r < 0)
    remove_dirs (cg, HUTCH__CG_NCTRL);
  return r;
}

static int
v1_open (struct hutch_cgroup *cg, hutch_error_t *err)
{
  set_paths (cg);
  for (int i = 0; i < HUTCH__CG_NCTRL; i++)
    if (access (cg->ctrl_path[i], F_OK) == 0)
      return 0;
  return hutch_make_error (err, ENOENT, "cgroup `%s`", cg->name);
}

static int
v1_attach (struct hutch_cgroup *cg, pid_t pid, hutch_error_t *err)
{
  char buf[32];

  snprintf (buf, sizeof buf, "%d", (int)pid);
  for (int i = 0; i < HUTCH__CG_NCTRL; i++)
    {
      int r;
      if (is_dup (cg, i))
        continue;
      r = hutch__cgroup_write (cg->ctrl_path[i], "cgroup.procs", buf, err);
      if (r < 0)
        return r;
    }
  return 0;
}

static int
is_frozen (void *data, hutch_error_t *err)
{
  cleanup_free char *state = NULL;
  int r = hutch__cgroup_read (data, "freezer.state", &state, err);

  if (r < 0)
    return r;
  return strncmp (state, "FROZEN", 6) == 0;
}

/* The freezer hierarchy: for pause and for killing a whole group.  */
static const struct hutch__cgroup_freezer v1_freezer
    = { "freezer.state", "FROZEN", "THAWED", is_frozen };

/* Done when no controller lists a process.  Whatever is still listed gets
   SIGKILL (again): tasks still exiting, or ones that never were in the
   freezer group.  */
static int
kill_remaining (void *data, hutch_error_t *err)
{
  struct hutch_cgroup *cg = data;
  int left = 0;

  for (int i = 0; i < HUTCH__CG_NCTRL; i++)
    {
      int n;
      if (is_dup (cg, i))
        continue;
      n = hutch__cgroup_kill_procs (cg->ctrl_path[i], err);
      if (n < 0)
        return n;
      left += n;
    }
  return left == 0;
}

static int
v1_kill (struct hutch_cgroup *cg, hutch_error_t *err)
{
  const char *freezer = cg->ctrl_path[HUTCH__CG_FREEZER];
  int r;

  if (access (freezer, F_OK) == 0)
    {
      r = hutch__cgroup_kill_frozen (freezer, &v1_freezer, err);
      if (r < 0)
        return r;
    }
  else
    log_debug ("`%s` is missing; killing without freezing", freezer);
  r = hutch__cgroup_poll (kill_remaining, cg, HUTCH__CGROUP_WAIT_MS, err);
  if (r == 0)
    return hutch_make_error (err, ETIMEDOUT, "cgroup `%s` still has processes after %u ms",
                             cg->name, HUTCH__CGROUP_WAIT_MS);
  return r < 0 ? r : 0;
}

static int
v1_destroy (struct hutch_cgroup *cg, hutch_error_t *err)
{
  cleanup_error hutch_error_t later = NULL;
  int r = v1_kill (cg, err);

  if (r < 0)
    return r;
  /* Try every controller; report the first failure.  */
  for (int i = 0; i < HUTCH__CG_NCTRL; i++)
    {
      int t;
      if (is_dup (cg, i))
        continue;
      t = hutch__cgroup_rmdir (cg->ctrl_path[i], r < 0 ? &later : err);
      if (r == 0 && t < 0)
        r = t;
    }
  return r;
}

static bool
v1_oom_killed (struct hutch_cgroup *cg)
{
  cleanup_error hutch_error_t ignored = NULL;
  unsigned long long n = 0;

  /* "oom_kill N" exists since Linux 4.13.  */
  return hutch__cgroup_read_keyed (cg->ctrl_path[HUTCH__CG_MEMORY], "memory.oom_control",
                                   "oom_kill", &n, &ignored)
             == 0
         && n > 0;
}

static unsigned long long
v1_memory_current (struct hutch_cgroup *cg)
{
  cleanup_error hutch_error_t ignored = NULL;
  unsigned long long n = 0;

  if (hutch__cgroup_read_ull (cg->ctrl_path[HUTCH__CG_MEMORY], "memory.usage_in_bytes", &n,
                              &ignored)
      < 0)
    return 0;
  return n;
}

static int
v1_count_procs (struct hutch_cgroup *cg)
{
  cleanup_error hutch_error_t ignored = NULL;
  int n = hutch__cgroup_count_procs (cg->ctrl_path[HUTCH__CG_MEMORY], &ignored);

  return n < 0 ? -1 : n;
}

static int
v1_list (char ***ret, hutch_error_t *err)
{
  cleanup_free char *dir = NULL;

  xasprintf (&dir, "%s/%s", mount_of (HUTCH__CG_MEMORY), HUTCH__CGROUP_PARENT);
  return hutch__cgroup_list_dir (dir, ret, err);
}

static int
v1_freeze (struct hutch_cgroup *cg, bool frozen, hutch_error_t *err)
{
  return hutch__cgroup_write (cg->ctrl_path[HUTCH__CG_FREEZER], v1_freezer.file,
                              frozen ? v1_freezer.frozen : v1_freezer.thawed, err);
}

/* cpu.shares: 1024 is the default, as cpu.weight's 100.  */
static int
v1_set_cpu_weight (struct hutch_cgroup *cg, unsigned weight, hutch_error_t *err)
{
  unsigned long long shares = (unsigned long long)weight * 1024 / 100;

  return hutch__cgroup_write_ull (cg->ctrl_path[HUTCH__CG_CPU], "cpu.shares",
                                  shares < 2 ? 2 : shares, err);
}

const struct hutch_cgroup_ops hutch__cgroup_v1_ops = {
  .create = v1_create,
  .open = v1_open,
  .attach = v1_attach,
  .kill = v1_kill,
  .destroy = v1_destroy,
  .oom_killed = v1_oom_killed,
  .memory_current = v1_memory_current,
  .count_procs = v1_count_procs,
  .list = v1_list,
  .freeze = v1_freeze,
  .set_cpu_weight = v1_set_cpu_weight,
};
