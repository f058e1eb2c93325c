/* Internal interface between cgroup.c (detection, dispatch, shared file
   helpers) and the two implementations, cgroup-v1.c and cgroup-v2.c.  Not
   installed; nothing outside src/libhutch/cgroup*.c includes it.  */
#pragma once

#include "cgroup.h"
#include "error.h"

#include <stdbool.h>
#include <sys/types.h>

#define HUTCH__CGROUP_ROOT "/sys/fs/cgroup"
#define HUTCH__CGROUP_PARENT "hutch"

/* Upper bound of every wait (freezing, emptying, rmdir on EBUSY).  */
#define HUTCH__CGROUP_WAIT_MS 2000U

/* The v1 controllers a group is created in, in this order.  */
enum hutch__cgroup_v1_ctrl
{
  HUTCH__CG_MEMORY,
  HUTCH__CG_CPU,
  HUTCH__CG_PIDS,
  HUTCH__CG_FREEZER,
  HUTCH__CG_NCTRL,
};

struct hutch_cgroup
{
  const struct hutch_cgroup_ops *ops;
  char *name;
  /* v2: the group directory.  */
  char *path;
  /* v1: the group directory in each controller.  Two entries are equal
     when their controllers share one hierarchy.  */
  char *ctrl_path[HUTCH__CG_NCTRL];
};

/* CG arrives with ops and a validated name set; create and open fill in
   the paths.  Every function reports failure through ERR and < 0.  */
struct hutch_cgroup_ops
{
  int (*create) (struct hutch_cgroup *cg, const struct hutch_cgroup_limits *limits,
                 hutch_error_t *err);
  int (*open) (struct hutch_cgroup *cg, hutch_error_t *err);
  int (*attach) (struct hutch_cgroup *cg, pid_t pid, hutch_error_t *err);
  int (*kill) (struct hutch_cgroup *cg, hutch_error_t *err);
  int (*destroy) (struct hutch_cgroup *cg, hutch_error_t *err);
  bool (*oom_killed) (struct hutch_cgroup *cg);
  unsigned long long (*memory_current) (struct hutch_cgroup *cg);
  int (*count_procs) (struct hutch_cgroup *cg);
  int (*list) (char ***ret, hutch_error_t *err);
  int (*freeze) (struct hutch_cgroup *cg, bool frozen, hutch_error_t *err);
  int (*set_cpu_weight) (struct hutch_cgroup *cg, unsigned weight, hutch_error_t *err);
};

extern const struct hutch_cgroup_ops hutch__cgroup_v1_ops;
extern const struct hutch_cgroup_ops hutch__cgroup_v2_ops;

/* cgroup-v1.c: find (once) where the controllers we need are mounted.
   Fails with ENOENT when one of them is not mounted.  */
int hutch__cgroup_v1_init (hutch_error_t *err);

/* cgroup.c: helpers shared by both implementations.  DIR is a group
   directory, FILE a control file in it.  */

/* Write VALUE to DIR/FILE in one write (cgroup files parse per write).  */
int hutch__cgroup_write (const char *dir, const char *file, const char *value, hutch_error_t *err);
int hutch__cgroup_write_ull (const char *dir, const char *file, unsigned long long value,
                             hutch_error_t *err);

/* Read DIR/FILE whole into *RET (NUL-terminated, free it).  */
int hutch__cgroup_read (const char *dir, const char *file, char **ret, hutch_error_t *err);

/* Read a file holding one number ("123\n").  */
int hutch__cgroup_read_ull (const char *dir, const char *file, unsigned long long *ret,
                            hutch_error_t *err);

/* Read the value of the line "KEY N" of a flat keyed file (memory.events,
   memory.oom_control, cgroup.events).  A missing key is an error.  */
int hutch__cgroup_read_keyed (const char *dir, const char *file, const char *key,
                              unsigned long long *ret, hutch_error_t *err);

bool hutch__cgroup_has_file (const char *dir, const char *file);

/* Number of processes listed in DIR/cgroup.procs.  */
int hutch__cgroup_count_procs (const char *dir, hutch_error_t *err);

/* SIGKILL every process listed in DIR/cgroup.procs.  Returns how many
   were listed (0 when DIR is gone).  */
int hutch__cgroup_kill_procs (const char *dir, hutch_error_t *err);

/* How a hierarchy freezes a group: FILE takes FROZEN or THAWED, and
   IS_FROZEN (given the group directory) says when freezing is complete.  */
struct hutch__cgroup_freezer
{
  const char *file;
  const char *frozen;
  const char *thawed;
  int (*is_frozen) (void *dir, hutch_error_t *err);
};

/* Freeze DIR, SIGKILL everything in it and thaw it again: frozen tasks
   cannot fork, so nothing escapes the kill, and the kill takes effect at
   the latest as they thaw.  A group that does not finish freezing in time
   (a task stuck in the kernel) is killed all the same.  */
int hutch__cgroup_kill_frozen (const char *dir, const struct hutch__cgroup_freezer *f,
                               hutch_error_t *err);

/* mkdir DIR.  EEXIST is an error unless EXIST_OK.  */
int hutch__cgroup_mkdir (const char *dir, bool exist_ok, hutch_error_t *err);

/* rmdir DIR, retrying EBUSY for a bounded time; a missing DIR is fine.  */
int hutch__cgroup_rmdir (const char *dir, hutch_error_t *err);

/* Call CHECK (DATA) until it returns > 0 (done) or < 0 (failed, ERR set),
   sleeping briefly between calls, for at most TIMEOUT_MS.  Returns 1 when
   done, 0 on timeout, < 0 on failure.  */
int hutch__cgroup_poll (int (*check) (void *data, hutch_error_t *err), void *data,
                        unsigned timeout_ms, hutch_error_t *err);

/* Names of the subdirectories of DIR as a NULL-terminated vector (empty
   when DIR does not exist).  */
int hutch__cgroup_list_dir (const char *dir, char ***ret, hutch_error_t *err);
