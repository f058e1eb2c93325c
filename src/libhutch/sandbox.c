/* The supervisor side of a sandbox: state, uid slot, cgroup, clone, the
   handshake with the pre-init child, and teardown.  */
#define _GNU_SOURCE
#include "cgroup.h"
#include "log.h"
#include "sandbox-internal.h"
#include "state.h"
#include "util.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_DISK (1ULL << 30)

bool
hutch_id_valid (const char *id)
{
  size_t n = id ? strlen (id) : 0;
  if (n == 0 || n > HUTCH_ID_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9')))
      return false;
  return true;
}

static void
free_child_args (struct hutch__child_args *a)
{
  free (a->mnt_dir);
  free (a->tmpfs_options);
  free (a->overlay_options);
  free (a->upper_dir);
  free (a->work_dir);
  free (a->root_dir);
  free (a->hosts);
  free (a->hostname);
}

static void
prepare_child_args (struct hutch__child_args *a, struct hutch_sandbox *sb,
                    const struct hutch_sandbox_config *config)
{
  const char *data = sb->rt->data_dir;

  a->config = config;
  a->rt = sb->rt;
  a->template = sb->rt->template_host;
  a->id = sb->id;
  a->uid_base = sb->uid_base;
  xasprintf (&a->mnt_dir, "%s/mnt", data);
  xasprintf (&a->tmpfs_options, "size=%llu,mode=0755",
             config->disk_bytes ? config->disk_bytes : DEFAULT_DISK);
  xasprintf (&a->upper_dir, "%s/upper", a->mnt_dir);
  xasprintf (&a->work_dir, "%s/work", a->mnt_dir);
  xasprintf (&a->root_dir, "%s/root", a->mnt_dir);
  xasprintf (&a->overlay_options, "lowerdir=%s,upperdir=%s,workdir=%s", a->template->root,
             a->upper_dir, a->work_dir);
  xasprintf (&a->hostname, "%s\n", sb->id);
  xasprintf (&a->hosts, "127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost ip6-localhost\n", sb->id);
}

static int
write_id_maps (pid_t pid, uid_t base, hutch_error_t *err)
{
  static const char *const files[] = { "uid_map", "gid_map" };
  char path[64], map[64];

  snprintf (map, sizeof map, "0 %u %u\n", base, HUTCH_UID_RANGE);
  for (size_t i = 0; i < ARRAY_SIZE (files); i++)
    {
      snprintf (path, sizeof path, "/proc/%d/%s", (int)pid, files[i]);
      if (write_file_at (AT_FDCWD, path, map, 0) < 0)
        return hutch_make_error (err, errno, "write `%s`", path);
    }
  return 0;
}

static int expect_sync (int fd, int kind, hutch_error_t *err);

/* When the child is gone, what it said last explains why.  */
static int
send_sync (int fd, int kind, hutch_error_t *err)
{
  struct hutch__sync_msg m = { .kind = kind };
  if (send (fd, &m, sizeof m, MSG_NOSIGNAL) != (ssize_t)sizeof m)
    return expect_sync (fd, -1, err);
  return 0;
}

static int
expect_sync (int fd, int kind, hutch_error_t *err)
{
  struct hutch__sync_msg m;
  ssize_t n = TEMP_FAILURE_RETRY (recv (fd, &m, sizeof m, 0));

  if (n < 0)
    return hutch_make_error (err, errno, "sandbox setup: receive from child");
  if (n != (ssize_t)sizeof m)
    return hutch_make_error (err, 0, "sandbox setup: the child died");
  if (m.kind == HUTCH_SYNC_ERROR)
    {
      m.msg[sizeof m.msg - 1] = '\0';
      return hutch_make_error (err, m.err, "sandbox setup: %s", m.msg);
    }
  if (m.kind != kind)
    return hutch_make_error (err, EPROTO, "sandbox setup: unexpected message %d", m.kind);
  return 0;
}

static pid_t
clone_child (int *ret_pidfd)
{
  struct clone_args args = {
    .flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD,
    .pidfd = (unsigned long)ret_pidfd,
    .exit_signal = SIGCHLD,
  };
  return (pid_t)syscall (SYS_clone3, &args, sizeof args);
}

/* The handshake: cgroup, then id maps once the child made its user
   namespace, then wait until it is fully isolated.  */
static int
handshake (struct hutch_sandbox *sb, int fd, bool wait_ready, hutch_error_t *err)
{
  int ret = hutch_cgroup_attach (sb->cgroup, sb->pid, err);
  if (ret < 0)
    return ret;
  if ((ret = send_sync (fd, HUTCH_SYNC_CGROUP_READY, err)) < 0)
    return ret;
  if ((ret = expect_sync (fd, HUTCH_SYNC_NEED_MAPS, err)) < 0)
    return ret;
  if ((ret = write_id_maps (sb->pid, sb->uid_base, err)) < 0)
    return ret;
  if ((ret = send_sync (fd, HUTCH_SYNC_MAPS_DONE, err)) < 0)
    return ret;
  if ((ret = expect_sync (fd, HUTCH_SYNC_RUNNING, err)) < 0 || !wait_ready)
    return ret;
  return expect_sync (fd, HUTCH_SYNC_READY, err);
}

static int
start_child (struct hutch_sandbox *sb, const struct hutch_sandbox_config *config,
             hutch_error_t *err)
{
  struct hutch__child_args args = { 0 };
  int sv[2];
  int ret;

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return hutch_make_error (err, errno, "socketpair");
  prepare_child_args (&args, sb, config);
  args.sync_fd = sv[1];
  sb->pid = clone_child (&sb->pidfd);
  if (sb->pid == 0)
    hutch__child_main (&args);
  close (sv[1]);
  if (sb->pid < 0)
    ret = hutch_make_error (err, errno, "clone sandbox");
  else
    ret = handshake (sb, sv[0], config->wait_ready, err);
  close (sv[0]);
  free_child_args (&args);
  return ret;
}

static unsigned long
cpu_quota_us (unsigned long cpu_millis)
{
  return cpu_millis * 100UL; /* per 100 ms period */
}

static int
setup_cgroup (struct hutch_sandbox *sb, const struct hutch_sandbox_config *c, hutch_error_t *err)
{
  struct hutch_cgroup_limits limits = {
    .memory = c->memory_bytes,
    .cpu_quota_us = cpu_quota_us (c->cpu_millis),
    .cpu_period_us = 100000,
    .pids = c->pids,
  };
  return hutch_cgroup_create (sb->id, &limits, &sb->cgroup, err);
}

static void
sandbox_free (struct hutch_sandbox *sb)
{
  if (sb->pidfd >= 0)
    close (sb->pidfd);
  if (sb->lock_fd >= 0)
    close (sb->lock_fd);
  hutch_cgroup_free (sb->cgroup);
  free (sb);
}

int
hutch_sandbox_create (struct hutch_runtime *rt, const struct hutch_sandbox_config *config,
                      struct hutch_sandbox **ret, hutch_error_t *err)
{
  struct hutch_sandbox *sb;
  int r;

  if (hutch_template_canonical (config->template) == NULL)
    return hutch_make_error (err, ENOENT, "unknown template `%s`", config->template);
  if (config->id && !hutch_id_valid (config->id))
    return hutch_make_error (err, EINVAL, "invalid sandbox id `%s`", config->id);
  sb = xzalloc (sizeof *sb);
  sb->rt = rt;
  sb->pidfd = sb->lock_fd = sb->slot = -1;
  sb->pid = -1;
  if (config->id)
    snprintf (sb->id, sizeof sb->id, "%s", config->id);
  else
    random_string (sb->id, HUTCH_ID_LEN, HUTCH_ID_ALPHABET);

  r = sb->lock_fd = hutch__state_create (rt->data_fd, sb->id, err);
  if (r >= 0)
    r = sb->slot = hutch__slot_claim (rt->data_fd, sb->id, err);
  if (r >= 0)
    {
      sb->uid_base = hutch__slot_uid (sb->slot);
      r = setup_cgroup (sb, config, err);
    }
  if (r >= 0)
    r = start_child (sb, config, err);
  if (r < 0)
    {
      hutch_error_t ignored = NULL;
      hutch_error_wrap (err, "create sandbox `%s`", sb->id);
      if (sb->lock_fd >= 0)
        hutch_sandbox_destroy (sb, &ignored);
      else
        sandbox_free (sb);
      hutch_error_release (&ignored);
      return r;
    }
  log_debug ("sandbox %s: running as pid %d, uids %u+", sb->id, (int)sb->pid, sb->uid_base);
  *ret = sb;
  return 0;
}

int
hutch_sandbox_signal (struct hutch_sandbox *sb, int sig, hutch_error_t *err)
{
  if (sb->exited || sb->pidfd < 0)
    return 0;
  if (syscall (SYS_pidfd_send_signal, sb->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
    return hutch_make_error (err, errno, "signal sandbox `%s`", sb->id);
  return 0;
}

int
hutch_sandbox_kill (struct hutch_sandbox *sb, hutch_error_t *err)
{
  hutch_error_t ignored = NULL;
  int r;

  /* Pid 1 dying makes the kernel kill every process of its namespace.  A
     frozen (paused) sandbox must be thawed for the kill to take effect.  */
  r = hutch_sandbox_signal (sb, SIGKILL, err);
  if (sb->cgroup)
    hutch_cgroup_freeze (sb->cgroup, false, &ignored);
  hutch_error_release (&ignored);
  return r;
}

int
hutch_sandbox_wait (struct hutch_sandbox *sb, int timeout_ms, hutch_error_t *err)
{
  struct pollfd p = { .fd = sb->pidfd, .events = POLLIN };
  int n;

  if (sb->exited)
    return 1;
  if (sb->pidfd < 0)
    return hutch_make_error (err, ECHILD, "sandbox `%s` was never started", sb->id);
  n = TEMP_FAILURE_RETRY (poll (&p, 1, timeout_ms));
  if (n < 0)
    return hutch_make_error (err, errno, "poll sandbox `%s`", sb->id);
  if (n == 0)
    return 0;
  if (TEMP_FAILURE_RETRY (waitpid (sb->pid, &sb->wait_status, 0)) < 0)
    return hutch_make_error (err, errno, "wait for sandbox `%s`", sb->id);
  sb->exited = true;
  return 1;
}

int
hutch_sandbox_freeze (struct hutch_sandbox *sb, bool frozen, hutch_error_t *err)
{
  if (sb->cgroup == NULL)
    return hutch_make_error (err, ENOENT, "sandbox `%s` has no cgroup", sb->id);
  return hutch_cgroup_freeze (sb->cgroup, frozen, err);
}

bool
hutch_sandbox_oom_killed (struct hutch_sandbox *sb)
{
  return sb->cgroup && hutch_cgroup_oom_killed (sb->cgroup);
}

int
hutch_sandbox_destroy (struct hutch_sandbox *sb, hutch_error_t *err)
{
  int ret = 0;

  if (sb->pid > 0 && !sb->exited)
    {
      hutch_sandbox_kill (sb, err);
      hutch_error_release (err);
      ret = hutch_sandbox_wait (sb, -1, err);
    }
  if (ret >= 0 && sb->cgroup)
    ret = hutch_cgroup_destroy (sb->cgroup, err);
  if (ret >= 0)
    {
      hutch__slot_release (sb->rt->data_fd, sb->slot, sb->id);
      ret = hutch__state_remove (sb->rt->data_fd, sb->id, err);
    }
  sandbox_free (sb);
  return ret;
}
