/* cgroup v2 (Documentation/admin-guide/cgroup-v2.rst): a group is the
   directory /sys/fs/cgroup/hutch/NAME of the unified hierarchy.  The memory,
   cpu and pids controllers have to be enabled in the subtree_control of the
   root and of hutch/ for their files to appear in NAME.  hutch/ itself never
   holds processes, so the "no internal processes" rule is kept.  */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cgroup-internal.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

#define PARENT_DIR HUTCH__CGROUP_ROOT "/" HUTCH__CGROUP_PARENT
#define DEFAULT_CPU_PERIOD_US 100000UL

static const char *const wanted_controllers[] = { "memory", "cpu", "pids" };

/* Whether the space-separated LIST (cgroup.controllers,
   cgroup.subtree_control) contains WORD.  */
static bool
has_word (const char *list, const char *word)
{
  size_t len = strlen (word);

  for (const char *p = list; (p = strstr (p, word)); p += len)
    if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\n' || p[len] == '\0'))
      return true;
  return false;
}

/* Enable the wanted controllers for the children of DIR.  Only the ones
   DIR has (its cgroup.controllers) can be; a missing one is not an error
   here (its limit files will then be missing in the group).  */
static int
enable_controllers (const char *dir, hutch_error_t *err)
{
  cleanup_free char *avail = NULL;
  cleanup_free char *enabled = NULL;
  int r = hutch__cgroup_read (dir, "cgroup.controllers", &avail, err);

  if (r >= 0)
    r = hutch__cgroup_read (dir, "cgroup.subtree_control", &enabled, err);
  for (size_t i = 0; r >= 0 && i < ARRAY_SIZE (wanted_controllers); i++)
    {
      const char *c = wanted_controllers[i];
      char buf[32];

      if (has_word (enabled, c))
        continue;
      if (!has_word (avail, c))
        {
          log_debug ("cgroup controller `%s` is not available in `%s`", c, dir);
          continue;
        }
      snprintf (buf, sizeof buf, "+%s", c);
      r = hutch__cgroup_write (dir, "cgroup.subtree_control", buf, err);
    }
  return r < 0 ? r : 0;
}

/* memory.swap.max = 0: no swap at all, whatever the memory limit.  */
static int
set_limits (const char *dir, const struct hutch_cgroup_limits *limits, hutch_error_t *err)
{
  int r = 0;

  if (limits->memory)
    r = hutch__cgroup_write_ull (dir, "memory.max", limits->memory, err);
  if (r >= 0 && hutch__cgroup_has_file (dir, "memory.swap.max"))
    r = hutch__cgroup_write (dir, "memory.swap.max", "0", err);
  if (r >= 0 && limits->cpu_quota_us)
    {
      char buf[64];
      snprintf (buf, sizeof buf, "%lu %lu", limits->cpu_quota_us,
                limits->cpu_period_us ? limits->cpu_period_us : DEFAULT_CPU_PERIOD_US);
      r = hutch__cgroup_write (dir, "cpu.max", buf, err);
    }
  if (r >= 0 && limits->pids)
    r = hutch__cgroup_write_ull (dir, "pids.max", limits->pids, err);
  return r < 0 ? r : 0;
}

static int
v2_create (struct hutch_cgroup *cg, const struct hutch_cgroup_limits *limits, hutch_error_t *err)
{
  int r = enable_controllers (HUTCH__CGROUP_ROOT, err);

  if (r >= 0)
    r = hutch__cgroup_mkdir (PARENT_DIR, true, err);
  if (r >= 0)
    r = enable_controllers (PARENT_DIR, err);
  if (r < 0)
    return r;
  xasprintf (&cg->path, "%s/%s", PARENT_DIR, cg->name);
  r = hutch__cgroup_mkdir (cg->path, false, err);
  if (r < 0)
    return r;
  r = set_limits (cg->path, limits, err);
  if (r < 0 && rmdir (cg->path) < 0)
    log_debug ("rmdir `%s`: %s", cg->path, strerror (errno));
  return r;
}

static int
v2_open (struct hutch_cgroup *cg, hutch_error_t *err)
{
  xasprintf (&cg->path, "%s/%s", PARENT_DIR, cg->name);
  if (access (cg->path, F_OK) < 0)
    return hutch_make_error (err, errno, "cgroup `%s`", cg->path);
  return 0;
}

static int
v2_attach (struct hutch_cgroup *cg, pid_t pid, hutch_error_t *err)
{
  char buf[32];

  snprintf (buf, sizeof buf, "%d", (int)pid);
  return hutch__cgroup_write (cg->path, "cgroup.procs", buf, err);
}

static int
is_frozen (void *data, hutch_error_t *err)
{
  unsigned long long frozen = 0;
  int r = hutch__cgroup_read_keyed (data, "cgroup.events", "frozen", &frozen, err);

  return r < 0 ? r : frozen == 1;
}

/* cgroup.freeze: for pause, and for killing where cgroup.kill is missing
   (Linux < 5.14).  */
static const struct hutch__cgroup_freezer v2_freezer = { "cgroup.freeze", "1", "0", is_frozen };

static int
send_kill (const char *dir, hutch_error_t *err)
{
  int r;

  if (hutch__cgroup_has_file (dir, "cgroup.kill"))
    return hutch__cgroup_write (dir, "cgroup.kill", "1", err);
  if (hutch__cgroup_has_file (dir, "cgroup.freeze"))
    return hutch__cgroup_kill_frozen (dir, &v2_freezer, err);
  log_debug ("`%s` has neither cgroup.kill nor cgroup.freeze; killing without freezing", dir);
  r = hutch__cgroup_kill_procs (dir, err);
  return r < 0 ? r : 0;
}

/* Done once cgroup.events says "populated 0" (no live process in the group
   or below it).  Whatever is still listed gets SIGKILL again: tasks still
   exiting, or, without freezing, ones forked after the list was read.  */
static int
is_empty (void *data, hutch_error_t *err)
{
  const char *dir = data;
  unsigned long long populated = 1;
  int r = hutch__cgroup_read_keyed (dir, "cgroup.events", "populated", &populated, err);

  if (r < 0)
    return r;
  if (populated == 0)
    return 1;
  r = hutch__cgroup_kill_procs (dir, err);
  return r < 0 ? r : 0;
}

static int
v2_kill (struct hutch_cgroup *cg, hutch_error_t *err)
{
  int r;

  if (access (cg->path, F_OK) < 0 && errno == ENOENT)
    return 0;
  r = send_kill (cg->path, err);
  if (r < 0)
    return r;
  r = hutch__cgroup_poll (is_empty, cg->path, HUTCH__CGROUP_WAIT_MS, err);
  if (r == 0)
    return hutch_make_error (err, ETIMEDOUT, "cgroup `%s` still has processes after %u ms",
                             cg->name, HUTCH__CGROUP_WAIT_MS);
  return r < 0 ? r : 0;
}

static int
v2_destroy (struct hutch_cgroup *cg, hutch_error_t *err)
{
  int r = v2_kill (cg, err);

  if (r < 0)
    return r;
  return hutch__cgroup_rmdir (cg->path, err);
}

static bool
v2_oom_killed (struct hutch_cgroup *cg)
{
  cleanup_error hutch_error_t ignored = NULL;
  unsigned long long n = 0;

  return hutch__cgroup_read_keyed (cg->path, "memory.events", "oom_kill", &n, &ignored) == 0
         && n > 0;
}

static unsigned long long
v2_memory_current (struct hutch_cgroup *cg)
{
  cleanup_error hutch_error_t ignored = NULL;
  unsigned long long n = 0;

  if (hutch__cgroup_read_ull (cg->path, "memory.current", &n, &ignored) < 0)
    return 0;
  return n;
}

static int
v2_count_procs (struct hutch_cgroup *cg)
{
  cleanup_error hutch_error_t ignored = NULL;
  int n = hutch__cgroup_count_procs (cg->path, &ignored);

  return n < 0 ? -1 : n;
}

static int
v2_list (char ***ret, hutch_error_t *err)
{
  return hutch__cgroup_list_dir (PARENT_DIR, ret, err);
}

static int
v2_freeze (struct hutch_cgroup *cg, bool frozen, hutch_error_t *err)
{
  return hutch__cgroup_write (cg->path, v2_freezer.file,
                              frozen ? v2_freezer.frozen : v2_freezer.thawed, err);
}

static int
v2_set_cpu_weight (struct hutch_cgroup *cg, unsigned weight, hutch_error_t *err)
{
  return hutch__cgroup_write_ull (cg->path, "cpu.weight", weight, err);
}

const struct hutch_cgroup_ops hutch__cgroup_v2_ops = {
  .create = v2_create,
  .open = v2_open,
  .attach = v2_attach,
  .kill = v2_kill,
  .destroy = v2_destroy,
  .oom_killed = v2_oom_killed,
  .memory_current = v2_memory_current,
  .count_procs = v2_count_procs,
  .list = v2_list,
  .freeze = v2_freeze,
  .set_cpu_weight = v2_set_cpu_weight,
};
