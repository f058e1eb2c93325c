#define _GNU_SOURCE
#include "template.h"
#include "template-etc.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const aliases[][2] = {
  { "host", "host" },
  { "base", "host" },
  { "code-interpreter-v1", "host" },
  { "code-interpreter", "host" },
};

/* Top-level directories of the host that are (or link to) system trees.  */
static const char *const system_dirs[]
    = { "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32" };

/* Empty directories every root filesystem has; mode per entry.  */
static const struct
{
  const char *path;
  mode_t mode;
} skeleton_dirs[] = {
  { "usr", 0755 },       { "proc", 0555 },     { "sys", 0555 },     { "dev", 0755 },
  { "tmp", 01777 },      { "home", 0755 },     { "root", 0700 },    { "etc", 0755 },
  { "var", 0755 },       { "var/tmp", 01777 }, { "var/lib", 0755 }, { "var/log", 0755 },
  { "var/cache", 0755 }, { "run", 0755 },      { "mnt", 0755 },     { "opt", 0755 },
  { "srv", 0755 },       { "media", 0755 },
};

const char *
hutch_template_canonical (const char *name)
{
  if (name == NULL || *name == '\0')
    return "host";
  for (size_t i = 0; i < ARRAY_SIZE (aliases); i++)
    if (strcmp (name, aliases[i][0]) == 0)
      return aliases[i][1];
  return NULL;
}

void
hutch_template_free (struct hutch_template *t)
{
  if (t == NULL)
    return;
  free (t->name);
  free (t->root);
  cleanup_strvp (&t->ro_binds);
  free (t);
}

/* Replicate the host's /bin, /lib... : a symlink stays a symlink (merged
   /usr), a real directory becomes a read-only bind mount point.  */
static int
add_system_dirs (int rootfd, hutch_error_t *err)
{
  for (size_t i = 0; i < ARRAY_SIZE (system_dirs); i++)
    {
      char target[256], host[64];
      struct stat st;
      ssize_t n;

      snprintf (host, sizeof host, "/%s", system_dirs[i]);
      if (lstat (host, &st) < 0)
        continue;
      if (S_ISLNK (st.st_mode))
        {
          n = readlink (host, target, sizeof target - 1);
          if (n < 0)
            return hutch_make_error (err, errno, "readlink `%s`", host);
          target[n] = '\0';
          if (symlinkat (target, rootfd, system_dirs[i]) < 0 && errno != EEXIST)
            return hutch_make_error (err, errno, "symlink `%s`", system_dirs[i]);
          continue;
        }
      if (!S_ISDIR (st.st_mode))
        continue;
      if (mkdirat (rootfd, system_dirs[i], 0755) < 0 && errno != EEXIST)
        return hutch_make_error (err, errno, "mkdir `%s`", system_dirs[i]);
    }
  return 0;
}

static int
make_skeleton (int rootfd, hutch_error_t *err)
{
  for (size_t i = 0; i < ARRAY_SIZE (skeleton_dirs); i++)
    {
      if (mkdirat (rootfd, skeleton_dirs[i].path, skeleton_dirs[i].mode) < 0 && errno != EEXIST)
        return hutch_make_error (err, errno, "mkdir `%s`", skeleton_dirs[i].path);
      if (fchmodat (rootfd, skeleton_dirs[i].path, skeleton_dirs[i].mode, 0) < 0)
        return hutch_make_error (err, errno, "chmod `%s`", skeleton_dirs[i].path);
    }
  return 0;
}

static int
build_host (const char *dir, hutch_error_t *err)
{
  cleanup_close int rootfd = -1;
  int ret;

  if (mkdir (dir, 0755) < 0)
    return hutch_make_error (err, errno, "mkdir `%s`", dir);
  rootfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return hutch_make_error (err, errno, "open `%s`", dir);
  ret = make_skeleton (rootfd, err);
  if (ret == 0)
    ret = add_system_dirs (rootfd, err);
  if (ret == 0)
    ret = hutch__template_write_etc (rootfd, err);
  return ret;
}

static char **
host_binds (void)
{
  char **binds = xzalloc (sizeof (char *) * (ARRAY_SIZE (system_dirs) + 1));
  size_t n = 0;

  for (size_t i = 0; i < ARRAY_SIZE (system_dirs); i++)
    {
      char host[64];
      struct stat st;
      snprintf (host, sizeof host, "/%s", system_dirs[i]);
      if (lstat (host, &st) == 0 && S_ISDIR (st.st_mode))
        binds[n++] = xstrdup (host);
    }
  return binds;
}

/* Build into a private directory, then rename into place: concurrent
   builders race harmlessly and a crash never leaves half a template.  */
static int
build_into_place (const char *data_dir, const char *final, bool replace, hutch_error_t *err)
{
  cleanup_free char *tmp = NULL;
  cleanup_free char *old = NULL;
  int ret;

  xasprintf (&tmp, "%s/templates/.build-%d", data_dir, (int)getpid ());
  rm_rf_at (AT_FDCWD, tmp);
  ret = build_host (tmp, err);
  if (ret < 0)
    {
      rm_rf_at (AT_FDCWD, tmp);
      return hutch_error_wrap (err, "build template `host`");
    }
  if (replace && renameat2 (AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) == 0)
    return rm_rf_at (AT_FDCWD, tmp) < 0 ? hutch_make_error (err, errno, "remove old template") : 0;
  if (rename (tmp, final) < 0)
    {
      int saved = errno;
      rm_rf_at (AT_FDCWD, tmp);
      if (saved != EEXIST && saved != ENOTEMPTY)
        return hutch_make_error (err, saved, "rename `%s`", tmp);
    }
  return 0;
}

int
hutch_template_rebuild_host (const char *data_dir, hutch_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_free char *final = NULL;

  xasprintf (&dir, "%s/templates", data_dir);
  if (mkdir_p_at (AT_FDCWD, dir, 0755) < 0)
    return hutch_make_error (err, errno, "mkdir `%s`", dir);
  xasprintf (&final, "%s/host", dir);
  return build_into_place (data_dir, final, access (final, F_OK) == 0, err);
}

int
hutch_template_open (const char *data_dir, const char *name, struct hutch_template **ret,
                     hutch_error_t *err)
{
  const char *canonical = hutch_template_canonical (name);
  struct hutch_template *t;
  cleanup_free char *root = NULL;

  if (canonical == NULL)
    return hutch_make_error (err, ENOENT, "template `%s`", name);
  xasprintf (&root, "%s/templates/%s", data_dir, canonical);
  if (access (root, F_OK) < 0)
    {
      int r = hutch_template_rebuild_host (data_dir, err);
      if (r < 0)
        return r;
    }
  t = xzalloc (sizeof *t);
  t->name = xstrdup (canonical);
  t->root = steal_pointer (&root);
  t->ro_binds = host_binds ();
  *ret = t;
  return 0;
}
