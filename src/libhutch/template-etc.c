#define _GNU_SOURCE
#include "template-etc.h"
#include "util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Entries of the host's /etc that programs read and that hold nothing
   secret.  Everything else (shadow, ssh keys, machine-id, sudoers...) stays
   on the host.  Within these, only world-readable files are copied.  */
static const char *const copied[] = {
  "alternatives",
  "ld.so.cache",
  "ld.so.conf",
  "ld.so.conf.d",
  "localtime",
  "timezone",
  "mime.types",
  "matplotlibrc",
  "python3",
  "python3.11",
  "python3.12",
  "python3.13",
  "fonts",
  "ssl/certs",
  "ssl/openssl.cnf",
  "ca-certificates",
  "ca-certificates.conf",
  "bash.bashrc",
  "profile",
  "profile.d",
  "inputrc",
  "host.conf",
  "protocols",
  "services",
  "environment",
  "os-release",
  "debian_version",
  "R",
  "jupyter",
  "gai.conf",
  "magic",
  "magic.mime",
  "mailcap",
  "terminfo",
  "skel",
  "shells",
  "networks",
  "rpc",
  "ethertypes",
  "nodejs",
  "npmrc",
  "gitconfig",
  "vim",
  "xdg",
  "default/locale",
  "locale.alias",
  "locale.gen",
};

static const struct
{
  const char *path;
  const char *content;
} generated[] = {
  { "passwd", "root:x:0:0:root:/root:/bin/bash\n"
              "user:x:1000:1000:user:/home/user:/bin/bash\n"
              "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n" },
  { "group", "root:x:0:\n"
             "tty:x:5:\n"
             "users:x:100:user\n"
             "user:x:1000:\n"
             "nogroup:x:65534:\n" },
  { "nsswitch.conf", "passwd: files\n"
                     "group: files\n"
                     "shadow: files\n"
                     "hosts: files dns\n"
                     "networks: files\n"
                     "protocols: files\n"
                     "services: files\n" },
  { "hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n" },
  { "hostname", "sandbox\n" },
  { "resolv.conf", "# hutch sandboxes have no network but loopback\n" },
};

static int copy_tree (int srcdir, int dstdir, const char *name);

static int
copy_file (int srcdir, int dstdir, const char *name, const struct stat *st)
{
  cleanup_close int in = openat (srcdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int out = -1;
  char buf[65536];
  ssize_t n;

  if (in < 0)
    return -1;
  out = openat (dstdir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                st->st_mode & 0777);
  if (out < 0)
    return -1;
  while ((n = TEMP_FAILURE_RETRY (read (in, buf, sizeof buf))) > 0)
    if (write_all (out, buf, (size_t)n) < 0)
      return -1;
  return n < 0 ? -1 : 0;
}

static int
copy_dir (int srcdir, int dstdir, const char *name, const struct stat *st)
{
  cleanup_close int src = openat (srcdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int dst = -1;
  cleanup_dir DIR *dir = NULL;
  struct dirent *de;

  if (src < 0)
    return -1;
  if (mkdirat (dstdir, name, st->st_mode & 0777) < 0 && errno != EEXIST)
    return -1;
  dst = openat (dstdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dst < 0)
    return -1;
  dir = fdopendir (src);
  if (dir == NULL)
    return -1;
  src = -1;
  while ((de = readdir (dir)))
    if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
      if (copy_tree (dirfd (dir), dst, de->d_name) < 0)
        return -1;
  return 0;
}

/* Copy NAME from SRCDIR to DSTDIR: symlinks as symlinks, world-readable
   files and directories only; anything else is passed over.  */
static int
copy_tree (int srcdir, int dstdir, const char *name)
{
  struct stat st;

  if (fstatat (srcdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : -1;
  if (S_ISLNK (st.st_mode))
    {
      char target[4096];
      ssize_t n = readlinkat (srcdir, name, target, sizeof target - 1);
      if (n < 0)
        return -1;
      target[n] = '\0';
      return symlinkat (target, dstdir, name) < 0 && errno != EEXIST ? -1 : 0;
    }
  if (S_ISDIR (st.st_mode) && (st.st_mode & 05) == 05)
    return copy_dir (srcdir, dstdir, name, &st);
  if (S_ISREG (st.st_mode) && (st.st_mode & 04))
    return copy_file (srcdir, dstdir, name, &st);
  return 0;
}

/* Copy a path like "ssl/certs": make the parents, then the last part.  */
static int
copy_entry (int hostetc, int etcfd, const char *path)
{
  cleanup_free char *parent = xstrdup (path);
  char *slash = strrchr (parent, '/');
  cleanup_close int src = -1, dst = -1;

  if (slash == NULL)
    return copy_tree (hostetc, etcfd, path);
  *slash = '\0';
  if (mkdir_p_at (etcfd, parent, 0755) < 0)
    return -1;
  src = openat (hostetc, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  dst = openat (etcfd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (src < 0)
    return errno == ENOENT ? 0 : -1;
  if (dst < 0)
    return -1;
  return copy_tree (src, dst, slash + 1);
}

int
hutch__template_write_etc (int rootfd, hutch_error_t *err)
{
  cleanup_close int etcfd = openat (rootfd, "etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int hostetc = open ("/etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (etcfd < 0)
    return hutch_make_error (err, errno, "open template `etc`");
  if (hostetc < 0)
    return hutch_make_error (err, errno, "open `/etc`");
  for (size_t i = 0; i < ARRAY_SIZE (copied); i++)
    if (copy_entry (hostetc, etcfd, copied[i]) < 0)
      return hutch_make_error (err, errno, "copy `/etc/%s`", copied[i]);
  for (size_t i = 0; i < ARRAY_SIZE (generated); i++)
    if (write_file_at (etcfd, generated[i].path, generated[i].content, 0644) < 0)
      return hutch_make_error (err, errno, "write `etc/%s`", generated[i].path);
  return 0;
}
