/* Cgroup mode detection, the public functions (dispatching to cgroup-v1.c or
   cgroup-v2.c through struct hutch_cgroup_ops) and the small file helpers
   both implementations share.  */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cgroup-internal.h"
#include "log.h"
#include "util.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

#define NAME_MAX_LEN 64

/* Detection result: -1 until known, then an enum hutch_cgroup_mode.  */
static int cached_mode = -1;

int
hutch_cgroup_detect (enum hutch_cgroup_mode *ret, hutch_error_t *err)
{
  int mode = __atomic_load_n (&cached_mode, __ATOMIC_ACQUIRE);
  struct statfs sfs;

  if (mode < 0)
    {
      if (statfs (HUTCH__CGROUP_ROOT, &sfs) < 0)
        return hutch_make_error (err, errno, "statfs `%s`", HUTCH__CGROUP_ROOT);
      /* A hybrid layout (tmpfs with v1 mounts and an extra cgroup2 mount at
         unified/) counts as v1: the controllers live on the v1 side.  */
      mode = sfs.f_type == CGROUP2_SUPER_MAGIC ? HUTCH_CGROUP_V2 : HUTCH_CGROUP_V1;
      if (mode == HUTCH_CGROUP_V1)
        {
          int r = hutch__cgroup_v1_init (err);
          if (r < 0)
            return r;
        }
      __atomic_store_n (&cached_mode, mode, __ATOMIC_RELEASE);
    }
  *ret = (enum hutch_cgroup_mode)mode;
  return 0;
}

static bool
valid_name (const char *name)
{
  size_t len = strlen (name);

  if (len == 0 || len > NAME_MAX_LEN)
    return false;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
      return false;
  return true;
}

static int
get_ops (const struct hutch_cgroup_ops **ret, hutch_error_t *err)
{
  enum hutch_cgroup_mode mode;
  int r = hutch_cgroup_detect (&mode, err);

  if (r < 0)
    return r;
  *ret = mode == HUTCH_CGROUP_V2 ? &hutch__cgroup_v2_ops : &hutch__cgroup_v1_ops;
  return 0;
}

static int
new_handle (const char *name, struct hutch_cgroup **ret, hutch_error_t *err)
{
  const struct hutch_cgroup_ops *ops;
  struct hutch_cgroup *cg;
  int r;

  if (name == NULL || !valid_name (name))
    return hutch_make_error (err, EINVAL, "invalid cgroup name `%s` (want [a-z0-9]{1,%d})",
                             name ? name : "(null)", NAME_MAX_LEN);
  r = get_ops (&ops, err);
  if (r < 0)
    return r;
  cg = xzalloc (sizeof *cg);
  cg->ops = ops;
  cg->name = xstrdup (name);
  *ret = cg;
  return 0;
}

int
hutch_cgroup_create (const char *name, const struct hutch_cgroup_limits *limits,
                     struct hutch_cgroup **ret, hutch_error_t *err)
{
  static const struct hutch_cgroup_limits unlimited;
  cleanup_cgroup struct hutch_cgroup *cg = NULL;
  int r = new_handle (name, &cg, err);

  if (r < 0)
    return r;
  r = cg->ops->create (cg, limits ? limits : &unlimited, err);
  if (r < 0)
    return r;
  *ret = steal_pointer (&cg);
  return 0;
}

int
hutch_cgroup_open (const char *name, struct hutch_cgroup **ret, hutch_error_t *err)
{
  cleanup_cgroup struct hutch_cgroup *cg = NULL;
  int r = new_handle (name, &cg, err);

  if (r < 0)
    return r;
  r = cg->ops->open (cg, err);
  if (r < 0)
    return r;
  *ret = steal_pointer (&cg);
  return 0;
}

int
hutch_cgroup_attach (struct hutch_cgroup *cg, pid_t pid, hutch_error_t *err)
{
  return cg->ops->attach (cg, pid, err);
}

int
hutch_cgroup_kill (struct hutch_cgroup *cg, hutch_error_t *err)
{
  return cg->ops->kill (cg, err);
}

int
hutch_cgroup_destroy (struct hutch_cgroup *cg, hutch_error_t *err)
{
  return cg->ops->destroy (cg, err);
}

bool
hutch_cgroup_oom_killed (struct hutch_cgroup *cg)
{
  return cg->ops->oom_killed (cg);
}

unsigned long long
hutch_cgroup_memory_current (struct hutch_cgroup *cg)
{
  return cg->ops->memory_current (cg);
}

int
hutch_cgroup_count_procs (struct hutch_cgroup *cg)
{
  return cg->ops->count_procs (cg);
}

void
hutch_cgroup_free (struct hutch_cgroup *cg)
{
  if (cg == NULL)
    return;
  free (cg->name);
  free (cg->path);
  for (size_t i = 0; i < ARRAY_SIZE (cg->ctrl_path); i++)
    free (cg->ctrl_path[i]);
  free (cg);
}

int
hutch_cgroup_list (char ***ret, hutch_error_t *err)
{
  const struct hutch_cgroup_ops *ops;
  int r = get_ops (&ops, err);

  if (r < 0)
    return r;
  return ops->list (ret, err);
}

/* Shared helpers.  */

int
hutch__cgroup_write (const char *dir, const char *file, const char *value, hutch_error_t *err)
{
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;

  xasprintf (&path, "%s/%s", dir, file);
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write_all (fd, value, strlen (value)) < 0)
    return hutch_make_error (err, errno, "write `%s`", path);
  return 0;
}

int
hutch__cgroup_write_ull (const char *dir, const char *file, unsigned long long value,
                         hutch_error_t *err)
{
  char buf[32];

  snprintf (buf, sizeof buf, "%llu", value);
  return hutch__cgroup_write (dir, file, buf, err);
}

int
hutch__cgroup_read (const char *dir, const char *file, char **ret, hutch_error_t *err)
{
  cleanup_free char *path = NULL;

  xasprintf (&path, "%s/%s", dir, file);
  if (read_file_at (AT_FDCWD, path, ret, NULL) < 0)
    return hutch_make_error (err, errno, "read `%s`", path);
  return 0;
}

/* Parse a decimal number ending at a newline, a space or the end.  */
static int
parse_number (const char *s, unsigned long long *ret)
{
  char *end;

  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  *ret = strtoull (s, &end, 10);
  if (errno != 0 || (*end != '\0' && *end != '\n' && *end != ' '))
    return -1;
  return 0;
}

int
hutch__cgroup_read_ull (const char *dir, const char *file, unsigned long long *ret,
                        hutch_error_t *err)
{
  cleanup_free char *buf = NULL;
  int r = hutch__cgroup_read (dir, file, &buf, err);

  if (r < 0)
    return r;
  if (parse_number (buf, ret) < 0)
    return hutch_make_error (err, EINVAL, "parse `%s/%s`", dir, file);
  return 0;
}

static const char *
next_line (const char *s)
{
  s = strchr (s, '\n');
  return s && s[1] ? s + 1 : NULL;
}

int
hutch__cgroup_read_keyed (const char *dir, const char *file, const char *key,
                          unsigned long long *ret, hutch_error_t *err)
{
  cleanup_free char *buf = NULL;
  size_t klen = strlen (key);
  int r = hutch__cgroup_read (dir, file, &buf, err);

  if (r < 0)
    return r;
  for (const char *line = buf; line; line = next_line (line))
    {
      if (strncmp (line, key, klen) != 0 || line[klen] != ' ')
        continue;
      if (parse_number (line + klen + 1, ret) < 0)
        return hutch_make_error (err, EINVAL, "parse `%s` in `%s/%s`", key, dir, file);
      return 0;
    }
  return hutch_make_error (err, ENOENT, "no key `%s` in `%s/%s`", key, dir, file);
}

bool
hutch__cgroup_has_file (const char *dir, const char *file)
{
  cleanup_free char *path = NULL;

  xasprintf (&path, "%s/%s", dir, file);
  return access (path, F_OK) == 0;
}

int
hutch__cgroup_count_procs (const char *dir, hutch_error_t *err)
{
  cleanup_free char *buf = NULL;
  int r = hutch__cgroup_read (dir, "cgroup.procs", &buf, err);
  int n = 0;

  if (r < 0)
    return r;
  for (const char *p = buf; *p; p++)
    if (*p == '\n')
      n++;
  return n;
}

int
hutch__cgroup_kill_procs (const char *dir, hutch_error_t *err)
{
  cleanup_free char *buf = NULL;
  cleanup_free char *path = NULL;
  int n = 0;

  xasprintf (&path, "%s/cgroup.procs", dir);
  if (read_file_at (AT_FDCWD, path, &buf, NULL) < 0)
    return errno == ENOENT ? 0 : hutch_make_error (err, errno, "read `%s`", path);
  for (char *line = buf, *end; *line; line = end)
    {
      long pid = strtol (line, &end, 10);
      if (end == line || pid <= 0)
        return hutch_make_error (err, EINVAL, "parse `%s`", path);
      if (*end == '\n')
        end++;
      /* The pid is listed, so it is alive; it may die (and, in theory, be
         reaped and reused) before the signal lands: ESRCH is fine.  */
      if (kill ((pid_t)pid, SIGKILL) < 0 && errno != ESRCH)
        return hutch_make_error (err, errno, "kill %ld", pid);
      n++;
    }
  return n;
}

int
hutch__cgroup_mkdir (const char *dir, bool exist_ok, hutch_error_t *err)
{
  if (mkdir (dir, 0755) < 0 && !(exist_ok && errno == EEXIST))
    return hutch_make_error (err, errno, "mkdir `%s`", dir);
  return 0;
}

static int
try_rmdir (void *data, hutch_error_t *err)
{
  const char *dir = data;

  if (rmdir (dir) == 0 || errno == ENOENT)
    return 1;
  if (errno == EBUSY)
    return 0;
  return hutch_make_error (err, errno, "rmdir `%s`", dir);
}

int
hutch__cgroup_rmdir (const char *dir, hutch_error_t *err)
{
  int r = hutch__cgroup_poll (try_rmdir, (void *)dir, HUTCH__CGROUP_WAIT_MS, err);

  if (r == 0)
    return hutch_make_error (err, EBUSY, "rmdir `%s`", dir);
  return r < 0 ? r : 0;
}

int
hutch__cgroup_poll (int (*check) (void *data, hutch_error_t *err), void *data, unsigned timeout_ms,
                    hutch_error_t *err)
{
  unsigned long long deadline = now_ns () + timeout_ms * 1000000ULL;
  struct timespec nap = { 0, 1000000 };

  for (;;)
    {
      int r = check (data, err);
      if (r != 0)
        return r < 0 ? r : 1;
      if (now_ns () >= deadline)
        return 0;
      nanosleep (&nap, NULL);
      if (nap.tv_nsec < 16000000)
        nap.tv_nsec *= 2;
    }
}

static bool
is_subdir (DIR *dir, const struct dirent *de)
{
  struct stat st;

  if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
    return false;
  if (de->d_type != DT_UNKNOWN)
    return de->d_type == DT_DIR;
  return fstatat (dirfd (dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode);
}

int
hutch__cgroup_list_dir (const char *dir, char ***ret, hutch_error_t *err)
{
  cleanup_dir DIR *d = opendir (dir);
  cleanup_strv char **names = xzalloc (sizeof *names);
  size_t n = 0;
  struct dirent *de;

  if (d == NULL && errno != ENOENT)
    return hutch_make_error (err, errno, "opendir `%s`", dir);
  while (d && (errno = 0, de = readdir (d)))
    {
      if (!is_subdir (d, de))
        continue;
      names = xrealloc (names, (n + 2) * sizeof *names);
      names[n++] = xstrdup (de->d_name);
      names[n] = NULL;
    }
  if (d && errno != 0)
    return hutch_make_error (err, errno, "readdir `%s`", dir);
  *ret = steal_pointer (&names);
  return 0;
}

int
hutch_cgroup_freeze (struct hutch_cgroup *cg, bool frozen, hutch_error_t *err)
{
  return cg->ops->freeze (cg, frozen, err);
}

int
hutch_cgroup_set_cpu_weight (struct hutch_cgroup *cg, unsigned weight, hutch_error_t *err)
{
  if (weight < HUTCH_CGROUP_WEIGHT_MIN || weight > HUTCH_CGROUP_WEIGHT_MAX)
    return hutch_make_error (err, EINVAL, "cpu weight %u: expected %d to %d", weight,
                             HUTCH_CGROUP_WEIGHT_MIN, HUTCH_CGROUP_WEIGHT_MAX);
  return cg->ops->set_cpu_weight (cg, weight, err);
}

int
hutch__cgroup_kill_frozen (const char *dir, const struct hutch__cgroup_freezer *f,
                           hutch_error_t *err)
{
  cleanup_error hutch_error_t thaw_err = NULL;
  int r = hutch__cgroup_write (dir, f->file, f->frozen, err);
  int t;

  if (r >= 0)
    r = hutch__cgroup_poll (f->is_frozen, (void *)dir, HUTCH__CGROUP_WAIT_MS, err);
  if (r == 0)
    log_debug ("`%s` did not freeze in %u ms; killing it anyway", dir, HUTCH__CGROUP_WAIT_MS);
  if (r >= 0)
    r = hutch__cgroup_kill_procs (dir, err);
  t = hutch__cgroup_write (dir, f->file, f->thawed, r < 0 ? &thaw_err : err);
  if (r < 0)
    return r;
  return t < 0 ? t : 0;
}
