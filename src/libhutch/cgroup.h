/* Per-sandbox control groups: memory (no swap), cpu quota and a pids limit,
   on cgroup v1 or v2.  The mode is detected once at run time from the
   filesystem under /sys/fs/cgroup; the two implementations sit behind one
   interface (cgroup-v1.c, cgroup-v2.c).

   Every sandbox group lives at "hutch/<name>" below each controller's root
   (v1) or below the unified root (v2).  */
#pragma once

#include "error.h"

#include <stdbool.h>
#include <sys/types.h>

enum hutch_cgroup_mode
{
  HUTCH_CGROUP_V1,
  HUTCH_CGROUP_V2,
};

struct hutch_cgroup_limits
{
  unsigned long long memory;  /* bytes; 0 = unlimited */
  unsigned long cpu_quota_us; /* per cpu_period_us; 0 = unlimited */
  unsigned long cpu_period_us;
  unsigned long pids; /* 0 = unlimited */
};

struct hutch_cgroup;

/* Detect the cgroup mode of this machine (cached after the first call).
   Returns 0 and sets *RET, or fails when no usable hierarchy exists.  */
int hutch_cgroup_detect (enum hutch_cgroup_mode *ret, hutch_error_t *err);

/* Create the group NAME (a plain file name, [a-z0-9]) with LIMITS.  An
   existing group of that name is an error (EEXIST).  */
int hutch_cgroup_create (const char *name, const struct hutch_cgroup_limits *limits,
                         struct hutch_cgroup **ret, hutch_error_t *err);

/* Open an existing group NAME, for cleanup after a crash.  ENOENT when no
   controller has it.  */
int hutch_cgroup_open (const char *name, struct hutch_cgroup **ret, hutch_error_t *err);

/* Move PID into the group (every controller).  */
int hutch_cgroup_attach (struct hutch_cgroup *cg, pid_t pid, hutch_error_t *err);

/* Kill every process in the group, including ones that escaped their
   session or double-forked, and return once the group is empty (bounded
   wait).  v2: cgroup.kill, else freeze + SIGKILL; v1: freezer + SIGKILL.  */
int hutch_cgroup_kill (struct hutch_cgroup *cg, hutch_error_t *err);

/* Kill everything in the group and remove it from every controller.  */
int hutch_cgroup_destroy (struct hutch_cgroup *cg, hutch_error_t *err);

/* Freeze (stop scheduling) or thaw every process of the group.  Returns
   once the request is made; freezing completes asynchronously.  */
int hutch_cgroup_freeze (struct hutch_cgroup *cg, bool frozen, hutch_error_t *err);

/* The group's share of cpu time when cpus are contended, on cgroup v2's
   cpu.weight scale (v1: cpu.shares = WEIGHT * 1024 / 100).  */
#define HUTCH_CGROUP_WEIGHT_MIN 1
#define HUTCH_CGROUP_WEIGHT_DEFAULT 100
#define HUTCH_CGROUP_WEIGHT_MAX 10000
int hutch_cgroup_set_cpu_weight (struct hutch_cgroup *cg, unsigned weight, hutch_error_t *err);

/* True when the kernel OOM-killed a process of the group.  */
bool hutch_cgroup_oom_killed (struct hutch_cgroup *cg);

/* Memory in use by the group, in bytes (0 when unknown).  */
unsigned long long hutch_cgroup_memory_current (struct hutch_cgroup *cg);

/* Number of processes in the group, or -1 when unknown.  */
int hutch_cgroup_count_procs (struct hutch_cgroup *cg);

/* Free the handle; the group itself is left as it is.  NULL is fine.  */
void hutch_cgroup_free (struct hutch_cgroup *cg);

/* Names of every group under "hutch/" (NULL-terminated, free with
   cleanup_strv).  */
int hutch_cgroup_list (char ***ret, hutch_error_t *err);

static inline void
cleanup_cgroupp (struct hutch_cgroup **cg)
{
  hutch_cgroup_free (*cg);
}
#define cleanup_cgroup __attribute__ ((cleanup (cleanup_cgroupp)))
