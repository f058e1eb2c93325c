/* The runtime: the data directory, the compiled seccomp filter, the
   templates, and the cleanup of whatever crashed supervisors left.  */
#define _GNU_SOURCE
#include "cgroup.h"
#include "log.h"
#include "sandbox-internal.h"
#include "state.h"
#include "util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const data_subdirs[] = { "sandboxes", "slots", "mnt", "templates" };

static int
open_data_dir (struct hutch_runtime *rt, hutch_error_t *err)
{
  if (strpbrk (rt->data_dir, ",:\n") != NULL || rt->data_dir[0] != '/')
    return hutch_make_error (err, EINVAL,
                             "data directory `%s` must be an absolute path without `,` or `:`",
                             rt->data_dir);
  if (mkdir_p_at (AT_FDCWD, rt->data_dir, 0711) < 0)
    return hutch_make_error (err, errno, "create data directory `%s`", rt->data_dir);
  rt->data_fd = open (rt->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rt->data_fd < 0)
    return hutch_make_error (err, errno, "open data directory `%s`", rt->data_dir);
  for (size_t i = 0; i < ARRAY_SIZE (data_subdirs); i++)
    if (mkdirat (rt->data_fd, data_subdirs[i], 0700) < 0 && errno != EEXIST)
      return hutch_make_error (err, errno, "create `%s/%s`", rt->data_dir, data_subdirs[i]);
  /* Templates are read by sandbox users through the overlay.  */
  if (fchmodat (rt->data_fd, "templates", 0755, 0) < 0)
    return hutch_make_error (err, errno, "chmod `%s/templates`", rt->data_dir);
  return 0;
}

int
hutch_runtime_new (const char *data_dir, struct hutch_runtime **ret, hutch_error_t *err)
{
  struct hutch_runtime *rt = xzalloc (sizeof *rt);
  char *abs = realpath (data_dir, NULL);
  int r;

  rt->data_dir = abs ? abs : xstrdup (data_dir);
  rt->data_fd = -1;
  r = open_data_dir (rt, err);
  if (r >= 0)
    r = hutch_seccomp_build (&rt->seccomp, err);
  if (r >= 0)
    r = hutch_template_open (rt->data_dir, "host", &rt->template_host, err);
  if (r < 0)
    {
      hutch_runtime_free (rt);
      return r;
    }
  *ret = rt;
  return 0;
}

void
hutch_runtime_free (struct hutch_runtime *rt)
{
  if (rt == NULL)
    return;
  if (rt->data_fd >= 0)
    close (rt->data_fd);
  hutch_seccomp_prog_release (&rt->seccomp);
  hutch_template_free (rt->template_host);
  free (rt->data_dir);
  free (rt);
}

const char *
hutch_runtime_data_dir (struct hutch_runtime *rt)
{
  return rt->data_dir;
}

/* Clean one sandbox if its supervisor is gone.  Returns 1 when cleaned, 0
   when it is alive, < 0 on error.  */
static int
gc_one (struct hutch_runtime *rt, const char *id, hutch_error_t *err)
{
  cleanup_close int lock = -1;
  cleanup_cgroup struct hutch_cgroup *cg = NULL;
  char path[256];
  int r;

  snprintf (path, sizeof path, "sandboxes/%s/lock", id);
  lock = openat (rt->data_fd, path, O_RDWR | O_CLOEXEC);
  if (lock >= 0 && flock (lock, LOCK_EX | LOCK_NB) < 0)
    return errno == EWOULDBLOCK ? 0 : hutch_make_error (err, errno, "lock `%s`", path);
  r = hutch_cgroup_open (id, &cg, err);
  if (r < 0 && (*err)->status != ENOENT)
    return r;
  hutch_error_release (err);
  if (cg && (r = hutch_cgroup_destroy (cg, err)) < 0)
    return r;
  hutch__slot_release (rt->data_fd, hutch__state_slot (rt->data_fd, id), id);
  if ((r = hutch__state_remove (rt->data_fd, id, err)) < 0)
    return r;
  log_info ("cleaned up sandbox %s left by a previous run", id);
  return 1;
}

/* Slots whose sandbox directory no longer exists (a crash between claiming
   the slot and recording it).  */
static void
gc_slots (struct hutch_runtime *rt)
{
  cleanup_dir DIR *dir = NULL;
  struct dirent *de;
  int fd = openat (rt->data_fd, "slots", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0 || (dir = fdopendir (fd)) == NULL)
    {
      if (fd >= 0)
        close (fd);
      return;
    }
  while ((de = readdir (dir)))
    {
      char owner[256], path[512];
      ssize_t n = readlinkat (dirfd (dir), de->d_name, owner, sizeof owner - 1);
      if (n < 0)
        continue;
      owner[n] = '\0';
      snprintf (path, sizeof path, "sandboxes/%s", owner);
      if (!hutch_id_valid (owner) || faccessat (rt->data_fd, path, F_OK, 0) < 0)
        unlinkat (dirfd (dir), de->d_name, 0);
    }
}

int
hutch_gc (struct hutch_runtime *rt, hutch_error_t *err)
{
  cleanup_dir DIR *dir = NULL;
  struct dirent *de;
  int fd = openat (rt->data_fd, "sandboxes", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int cleaned = 0;

  if (fd < 0 || (dir = fdopendir (fd)) == NULL)
    return hutch_make_error (err, errno, "open `%s/sandboxes`", rt->data_dir);
  while ((de = readdir (dir)))
    {
      int r;
      if (!hutch_id_valid (de->d_name))
        continue;
      r = gc_one (rt, de->d_name, err);
      if (r < 0)
        return hutch_error_wrap (err, "clean up sandbox `%s`", de->d_name);
      cleaned += r;
    }
  gc_slots (rt);
  return cleaned;
}
