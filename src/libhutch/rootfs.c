/* The sandbox's root filesystem, built inside its new mount namespace by
   the pre-init child while it still has the supervisor's credentials.  All
   mounts are private to that namespace: nothing here is ever visible on the
   host, and everything goes away with the namespace.  */
#define _GNU_SOURCE
#include "sandbox-internal.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STEP(expr, name)                                                                           \
  do                                                                                               \
    {                                                                                              \
      if ((expr) < 0)                                                                              \
        {                                                                                          \
          *what = (name);                                                                          \
          return -1;                                                                               \
        }                                                                                          \
    }                                                                                              \
  while (0)

static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };

static const char *const dev_links[][2] = {
  { "ptmx", "pts/ptmx" },          { "fd", "/proc/self/fd" },       { "stdin", "/proc/self/fd/0" },
  { "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
};

/* As Docker does: files that leak host details are covered by /dev/null,
   directories by an empty read-only tmpfs, and kernel knobs are read-only.  */
static const char *const masked_files[] = {
  "proc/kcore",         "proc/keys",        "proc/timer_list", "proc/sched_debug",
  "proc/latency_stats", "proc/timer_stats", "proc/kallsyms",   "proc/kmsg",
};
static const char *const masked_dirs[] = {
  "proc/acpi",
  "proc/scsi",
  "proc/asound",
  "sys/firmware",
  "sys/devices/virtual/powercap",
  "sys/kernel/security",
  "sys/kernel/debug",
};
static const char *const readonly_paths[] = {
  "proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus", "proc/fs",
};

static char path_buf[4096];

/* ROOT/REL in a static buffer: the child is single-threaded.  */
static const char *
at_root (const char *root, const char *rel)
{
  snprintf (path_buf, sizeof path_buf, "%s/%s", root, rel);
  return path_buf;
}

static int
bind_readonly (const char *src, const char *dst, unsigned long extra)
{
  if (mount (src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
    return -1;
  return mount (NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | extra, NULL);
}

/* The sandbox's own top-level directories, made in its upper layer and
   owned by its users: they hide the template's (owned by host root, which
   is nobody inside) so that root inside can create files in them.  */
static const struct
{
  const char *path;
  mode_t mode;
  uid_t owner; /* inside the sandbox */
} upper_dirs[] = {
  { ".", 0755, 0 },        { "etc", 0755, 0 },
  { "home", 0755, 0 },     { "home/user", 0750, HUTCH_SANDBOX_UID },
  { "root", 0700, 0 },     { "tmp", 01777, 0 },
  { "var", 0755, 0 },      { "var/lib", 0755, 0 },
  { "var/log", 0755, 0 },  { "var/cache", 0755, 0 },
  { "var/tmp", 01777, 0 }, { "opt", 0755, 0 },
  { "srv", 0755, 0 },      { "mnt", 0755, 0 },
  { "media", 0755, 0 },    { "run", 0755, 0 },
};

static int
own_at (int fd, const char *path, mode_t mode, uid_t owner)
{
  if (fchownat (fd, path, owner, owner, AT_SYMLINK_NOFOLLOW) < 0)
    return -1;
  return fchmodat (fd, path, mode, 0);
}

static int
populate_upper (const struct hutch__child_args *a)
{
  int fd = open (a->upper_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int ret = -1;

  if (fd < 0)
    return -1;
  for (size_t i = 0; i < ARRAY_SIZE (upper_dirs); i++)
    {
      if (strcmp (upper_dirs[i].path, ".") != 0 && mkdirat (fd, upper_dirs[i].path, 0700) < 0)
        goto out;
      if (own_at (fd, upper_dirs[i].path, upper_dirs[i].mode, a->uid_base + upper_dirs[i].owner)
          < 0)
        goto out;
    }
  if (write_file_at (fd, "etc/hostname", a->hostname, 0644) < 0
      || own_at (fd, "etc/hostname", 0644, a->uid_base) < 0
      || write_file_at (fd, "etc/hosts", a->hosts, 0644) < 0
      || own_at (fd, "etc/hosts", 0644, a->uid_base) < 0)
    goto out;
  ret = 0;
out:
  close (fd);
  return ret;
}

static int
mount_layers (const struct hutch__child_args *a, const char **what)
{
  STEP (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make mounts private");
  STEP (mount ("tmpfs", a->mnt_dir, "tmpfs", MS_NOSUID | MS_NODEV, a->tmpfs_options),
        "mount writable layer");
  STEP (mkdir (a->upper_dir, 0755), "mkdir upper");
  STEP (mkdir (a->work_dir, 0700), "mkdir work");
  STEP (mkdir (a->root_dir, 0755), "mkdir root");
  STEP (populate_upper (a), "populate upper layer");
  STEP (mount ("overlay", a->root_dir, "overlay", MS_NOSUID | MS_NODEV, a->overlay_options),
        "mount overlay");
  for (char **b = a->template->ro_binds; *b; b++)
    STEP (bind_readonly (*b, at_root (a->root_dir, *b + 1), MS_NODEV), "bind template tree");
  return 0;
}

static int
mount_dev (const char *root, uid_t uid_base, const char **what)
{
  char opts[128];
  char dst[4096];

  STEP (mount ("tmpfs", at_root (root, "dev"), "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV,
               "mode=0755,size=65536,nr_inodes=256"),
        "mount /dev");
  for (size_t i = 0; i < ARRAY_SIZE (dev_nodes); i++)
    {
      char src[64];
      int fd;
      snprintf (src, sizeof src, "/dev/%s", dev_nodes[i]);
      snprintf (dst, sizeof dst, "%s/dev/%s", root, dev_nodes[i]);
      fd = open (dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      STEP (fd, "create device node");
      close (fd);
      STEP (mount (src, dst, NULL, MS_BIND, NULL), "bind device node");
    }
  STEP (mkdir (at_root (root, "dev/pts"), 0755), "mkdir /dev/pts");
  snprintf (opts, sizeof opts, "newinstance,ptmxmode=0666,mode=0620,gid=%u", uid_base + 5);
  STEP (mount ("devpts", at_root (root, "dev/pts"), "devpts", MS_NOSUID | MS_NOEXEC, opts),
        "mount /dev/pts");
  STEP (mkdir (at_root (root, "dev/shm"), 01777), "mkdir /dev/shm");
  STEP (mount ("tmpfs", at_root (root, "dev/shm"), "tmpfs", MS_NOSUID | MS_NODEV,
               "mode=1777,size=67108864"),
        "mount /dev/shm");
  for (size_t i = 0; i < ARRAY_SIZE (dev_links); i++)
    {
      snprintf (dst, sizeof dst, "%s/dev/%s", root, dev_links[i][0]);
      STEP (symlink (dev_links[i][1], dst), "symlink in /dev");
    }
  return 0;
}

static int
mask_kernel_paths (const char *root, const char **what)
{
  char null_path[4096];

  snprintf (null_path, sizeof null_path, "%s/dev/null", root);
  for (size_t i = 0; i < ARRAY_SIZE (masked_files); i++)
    if (access (at_root (root, masked_files[i]), F_OK) == 0)
      STEP (mount (null_path, path_buf, NULL, MS_BIND, NULL), "mask /proc file");
  for (size_t i = 0; i < ARRAY_SIZE (masked_dirs); i++)
    if (access (at_root (root, masked_dirs[i]), F_OK) == 0)
      STEP (mount ("tmpfs", path_buf, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   "size=0,nr_inodes=1"),
            "mask kernel directory");
  for (size_t i = 0; i < ARRAY_SIZE (readonly_paths); i++)
    if (access (at_root (root, readonly_paths[i]), F_OK) == 0)
      STEP (bind_readonly (path_buf, path_buf, MS_NODEV | MS_NOEXEC), "make /proc path read-only");
  return 0;
}

static int
mount_kernel_fs (const char *root, uid_t uid_base, const char **what)
{
  STEP (mount ("proc", at_root (root, "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
        "mount /proc");
  STEP (mount ("sysfs", at_root (root, "sys"), "sysfs",
               MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
        "mount /sys");
  if (mount_dev (root, uid_base, what) < 0)
    return -1;
  return mask_kernel_paths (root, what);
}

/* The old root is stacked under the new one and detached, as runc does:
   no directory for it is needed in the new root.  */
static int
pivot (const char *root, const char **what)
{
  STEP (chdir (root), "chdir to new root");
  STEP (syscall (SYS_pivot_root, ".", "."), "pivot_root");
  STEP (umount2 (".", MNT_DETACH), "detach old root");
  STEP (chdir ("/"), "chdir /");
  return 0;
}

int
hutch__rootfs_setup (const struct hutch__child_args *a, const char **what)
{
  if (mount_layers (a, what) < 0)
    return -1;
  if (mount_kernel_fs (a->root_dir, a->uid_base, what) < 0)
    return -1;
  return pivot (a->root_dir, what);
}
