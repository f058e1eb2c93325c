/* The sandbox seccomp filter: an allowlist modelled on Docker's default
   profile (moby profiles/seccomp/default.json) for a container with no extra
   capabilities, made stricter in a few places.

   Everything not allowed below fails with EPERM.  In particular these stay
   denied (Docker allows the ones marked *): keyctl, add_key, request_key,
   bpf, userfaultfd, perf_event_open, io_uring_* (*older profiles), kexec_*,
   init_module, finit_module, delete_module, the mount API (mount, umount2,
   mount_setattr, move_mount, open_tree, fsopen, fsconfig, fsmount, fspick),
   pivot_root, chroot, unshare, setns, ptrace*, process_vm_readv*,
   process_vm_writev*, kcmp, pidfd_getfd, process_madvise, open_by_handle_at,
   name_to_handle_at*, swapon, swapoff, reboot, acct, syslog, settimeofday,
   clock_settime, clock_adjtime*, adjtimex*, lookup_dcookie, quotactl,
   quotactl_fd, nfsservctl, vhangup, iopl, ioperm, modify_ldt*, create_module,
   get_kernel_syms, query_module, uselib, ustat, sysfs, _sysctl,
   sethostname, setdomainname, fanotify_init, fanotify_mark*, the NUMA policy
   calls (mbind, set_mempolicy, get_mempolicy, migrate_pages, move_pages) and
   the unimplemented tuxcall, security, vserver, afs_syscall, getpmsg and
   putpmsg.

   Only the native architecture is in the filter (x86_64, or aarch64 when
   built there); a syscall made through any other ABI (i386 via int 0x80,
   x32 numbers with bit 30 set) kills the process.  The lists name the calls
   of 64-bit architectures: on a 32-bit build the filter is stricter than
   needed rather than weaker.  */
#define _GNU_SOURCE
#include "seccomp.h"
#include "util.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* Process lifetime.  clone, clone3 and personality are in cond_rules.  */
static const char *const allow_process[] = {
  "exit",
  "exit_group",
  "execve",
  "execveat",
  "fork",
  "vfork",
  "wait4",
  "waitid",
  "kill",
  "tkill",
  "tgkill",
  "pidfd_open",
  "pidfd_send_signal",
  "process_mrelease",
};

/* Process identity and per-thread state.  */
static const char *const allow_thread[] = {
  "getpid",          "getppid",         "gettid",          "getpgid",
  "getpgrp",         "setpgid",         "getsid",          "setsid",
  "set_tid_address", "set_robust_list", "get_robust_list", "rseq",
  "restart_syscall", "prctl",           "arch_prctl",      "get_thread_area",
  "set_thread_area", "membarrier",
};

/* Processes may confine themselves further.  */
static const char *const allow_self_confinement[] = {
  "seccomp",
  "landlock_create_ruleset",
  "landlock_add_rule",
  "landlock_restrict_self",
};

/* Credentials.  Changing them needs capabilities the sandbox does not
   have; the calls still have to work for a process that only drops.  */
static const char *const allow_credentials[] = {
  "getuid",    "geteuid",  "getgid",   "getegid",   "getresuid", "getresgid",
  "getgroups", "setuid",   "setgid",   "setreuid",  "setregid",  "setresuid",
  "setresgid", "setfsuid", "setfsgid", "setgroups", "capget",    "capset",
};

/* Scheduling and I/O priorities.  */
static const char *const allow_sched[] = {
  "sched_yield",
  "sched_getaffinity",
  "sched_setaffinity",
  "sched_getparam",
  "sched_setparam",
  "sched_getscheduler",
  "sched_setscheduler",
  "sched_getattr",
  "sched_setattr",
  "sched_get_priority_max",
  "sched_get_priority_min",
  "sched_rr_get_interval",
  "getpriority",
  "setpriority",
  "ioprio_get",
  "ioprio_set",
};

/* Limits, resource usage and system information.  */
static const char *const allow_sysinfo[] = {
  "getrlimit", "setrlimit", "prlimit64", "getrusage", "times",
  "sysinfo",   "uname",     "getcpu",    "umask",     "getrandom",
};

/* Memory management (no NUMA policy calls).  */
static const char *const allow_memory[] = {
  "brk",           "mmap",
  "munmap",        "mremap",
  "mprotect",      "madvise",
  "mincore",       "msync",
  "mlock",         "mlock2",
  "mlockall",      "munlock",
  "munlockall",    "remap_file_pages",
  "pkey_alloc",    "pkey_free",
  "pkey_mprotect", "map_shadow_stack",
  "mseal",
};

/* Anonymous memory files.  */
static const char *const allow_memfd[] = {
  "memfd_create",
  "memfd_secret",
};

/* Signals.  */
static const char *const allow_signals[] = {
  "rt_sigaction",  "rt_sigprocmask",  "rt_sigreturn",    "rt_sigsuspend",
  "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
  "sigaltstack",   "signalfd",        "signalfd4",       "pause",
  "alarm",
};

/* Clocks (read only), sleeping and timers.  */
static const char *const allow_time[] = {
  "clock_gettime",    "clock_getres",   "clock_nanosleep", "nanosleep",
  "gettimeofday",     "time",           "getitimer",       "setitimer",
  "timer_create",     "timer_delete",   "timer_gettime",   "timer_settime",
  "timer_getoverrun", "timerfd_create", "timerfd_gettime", "timerfd_settime",
};

/* Futexes, polling and event descriptors.  */
static const char *const allow_wait[] = {
  "futex",      "futex_waitv", "futex_wait",   "futex_wake",   "futex_requeue", "poll",
  "ppoll",      "select",      "pselect6",     "epoll_create", "epoll_create1", "epoll_ctl",
  "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd",      "eventfd2",
};

/* Descriptor I/O, pipes and syncing.  ioctl is handled by
   allow_ioctl_prefix.  */
static const char *const allow_fd_io[] = {
  "read",      "write",     "readv",       "writev",    "pread64",
  "pwrite64",  "preadv",    "pwritev",     "preadv2",   "pwritev2",
  "lseek",     "close",     "close_range", "dup",       "dup2",
  "dup3",      "fcntl",     "flock",       "pipe",      "pipe2",
  "sendfile",  "splice",    "tee",         "vmsplice",  "copy_file_range",
  "fsync",     "fdatasync", "sync",        "syncfs",    "sync_file_range",
  "fallocate", "fadvise64", "readahead",   "ftruncate", "truncate",
  "cachestat",
};

/* The old asynchronous I/O interface (io_uring stays denied).  */
static const char *const allow_aio[] = {
  "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
};

/* Paths, directories and file metadata.  */
static const char *const allow_files[] = {
  "open",     "openat",  "openat2",   "creat",      "access",     "faccessat", "faccessat2",
  "stat",     "lstat",   "fstat",     "newfstatat", "statx",      "statfs",    "fstatfs",
  "getcwd",   "chdir",   "fchdir",    "mkdir",      "mkdirat",    "mknod",     "mknodat",
  "rmdir",    "rename",  "renameat",  "renameat2",  "link",       "linkat",    "unlink",
  "unlinkat", "symlink", "symlinkat", "readlink",   "readlinkat", "getdents",  "getdents64",
  "chmod",    "fchmod",  "fchmodat",  "fchmodat2",  "chown",      "fchown",    "lchown",
  "fchownat", "utime",   "utimes",    "utimensat",  "futimesat",
};

/* Extended attributes.  */
static const char *const allow_xattr[] = {
  "getxattr",  "lgetxattr",  "fgetxattr",  "setxattr",    "lsetxattr",    "fsetxattr",
  "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr",
};

/* inotify (fanotify stays denied).  */
static const char *const allow_inotify[] = {
  "inotify_init",
  "inotify_init1",
  "inotify_add_watch",
  "inotify_rm_watch",
};

/* Operations on sockets; socket and socketpair are in cond_rules.  */
static const char *const allow_sockets[] = {
  "bind",        "connect",    "listen",     "accept",   "accept4",  "getsockname",
  "getpeername", "getsockopt", "setsockopt", "sendto",   "recvfrom", "sendmsg",
  "recvmsg",     "sendmmsg",   "recvmmsg",   "shutdown",
};

/* System V and POSIX IPC (namespaced per sandbox).  */
static const char *const allow_ipc[] = {
  "msgget",     "msgsnd",    "msgrcv",       "msgctl",          "semget",    "semop",
  "semtimedop", "semctl",    "shmget",       "shmat",           "shmdt",     "shmctl",
  "mq_open",    "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
};

struct name_group
{
  const char *const *names;
  size_t n;
};

#define GROUP(a)                                                                                   \
  {                                                                                                \
    (a), ARRAY_SIZE (a)                                                                            \
  }

static const struct name_group allow_groups[] = {
  GROUP (allow_process),     GROUP (allow_thread),  GROUP (allow_self_confinement),
  GROUP (allow_credentials), GROUP (allow_sched),   GROUP (allow_sysinfo),
  GROUP (allow_memory),      GROUP (allow_memfd),   GROUP (allow_signals),
  GROUP (allow_time),        GROUP (allow_wait),    GROUP (allow_fd_io),
  GROUP (allow_aio),         GROUP (allow_files),   GROUP (allow_xattr),
  GROUP (allow_inotify),     GROUP (allow_sockets), GROUP (allow_ipc),
};

/* Argument comparisons.  The kernel reads int arguments (socket domain and
   type, personality, the clone flags that matter) from the low 32 bits of
   the register only, so the rules compare exactly those bits.  */
#define MASKED_EQ(arg, mask, v) (arg), SCMP_CMP_MASKED_EQ, (mask), (v)
#define LOW32_EQ(arg, v) MASKED_EQ (arg, 0xffffffffULL, v)

#define CLONE_NS_FLAGS                                                                             \
  (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET         \
   | CLONE_NEWCGROUP | CLONE_NEWTIME)

/* The socket type without SOCK_NONBLOCK and SOCK_CLOEXEC.  */
#define SOCK_TYPE_MASK 0xf

struct cond_rule
{
  const char *name;
  uint32_t action;
  unsigned int n_args;
  struct scmp_arg_cmp args[2];
};

/* Syscalls allowed only for some arguments (several rules for one syscall
   are alternatives), and clone3.  */
static const struct cond_rule cond_rules[] = {
  /* Threads and processes, never new namespaces.  */
  { "clone", SCMP_ACT_ALLOW, 1, { { MASKED_EQ (0, CLONE_NS_FLAGS, 0) } } },
  /* Its flags are in memory the filter cannot read; ENOSYS makes glibc fall
     back to clone.  */
  { "clone3", SCMP_ACT_ERRNO (ENOSYS), 0, { { 0 } } },
  /* Local sockets and netlink (getaddrinfo, getifaddrs) of any type.  */
  { "socket", SCMP_ACT_ALLOW, 1, { { LOW32_EQ (0, AF_UNIX) } } },
  { "socket", SCMP_ACT_ALLOW, 1, { { LOW32_EQ (0, AF_NETLINK) } } },
  /* IP for TCP and UDP only: no raw sockets.  */
  { "socket",
    SCMP_ACT_ALLOW,
    2,
    { { LOW32_EQ (0, AF_INET) }, { MASKED_EQ (1, SOCK_TYPE_MASK, SOCK_STREAM) } } },
  { "socket",
    SCMP_ACT_ALLOW,
    2,
    { { LOW32_EQ (0, AF_INET) }, { MASKED_EQ (1, SOCK_TYPE_MASK, SOCK_DGRAM) } } },
  { "socket",
    SCMP_ACT_ALLOW,
    2,
    { { LOW32_EQ (0, AF_INET6) }, { MASKED_EQ (1, SOCK_TYPE_MASK, SOCK_STREAM) } } },
  { "socket",
    SCMP_ACT_ALLOW,
    2,
    { { LOW32_EQ (0, AF_INET6) }, { MASKED_EQ (1, SOCK_TYPE_MASK, SOCK_DGRAM) } } },
  { "socketpair", SCMP_ACT_ALLOW, 1, { { LOW32_EQ (0, AF_UNIX) } } },
  /* Docker's personality values: Linux, 32-bit uname, the same with
     UNAME26, and the query 0xffffffff.  */
  { "personality", SCMP_ACT_ALLOW, 1, { { LOW32_EQ (0, PER_LINUX) } } },
  { "personality", SCMP_ACT_ALLOW, 1, { { LOW32_EQ (0, PER_LINUX32) } } },
  { "personality", SCMP_ACT_ALLOW, 1, { { LOW32_EQ (0, UNAME26) } } },
  { "personality", SCMP_ACT_ALLOW, 1, { { LOW32_EQ (0, UNAME26 | PER_LINUX32) } } },
  { "personality", SCMP_ACT_ALLOW, 1, { { LOW32_EQ (0, 0xffffffffU) } } },
};

/* ioctl requests that can inject input into or take over a terminal.  */
static const uint32_t ioctl_denied[] = {
  TIOCSTI,
  TIOCLINUX,
};

static inline void
cleanup_seccomp_ctxp (void *p)
{
  scmp_filter_ctx *ctx = (scmp_filter_ctx *)p;
  if (*ctx)
    seccomp_release (*ctx);
}

#define cleanup_seccomp_ctx __attribute__ ((cleanup (cleanup_seccomp_ctxp)))

/* Add one rule.  Syscalls unknown on this architecture (or known to
   libseccomp only for other architectures) are skipped.  */
static int
add_rule (scmp_filter_ctx ctx, const char *name, uint32_t action, unsigned int n_args,
          const struct scmp_arg_cmp *args, hutch_error_t *err)
{
  int nr = seccomp_syscall_resolve_name (name);
  int rc;

  if (nr < 0)
    return 0;
  rc = seccomp_rule_add_array (ctx, action, nr, n_args, args);
  if (rc < 0)
    return hutch_make_error (err, -rc, "seccomp rule for %s", name);
  return 0;
}

static int
add_allow_groups (scmp_filter_ctx ctx, hutch_error_t *err)
{
  for (size_t g = 0; g < ARRAY_SIZE (allow_groups); g++)
    for (size_t i = 0; i < allow_groups[g].n; i++)
      {
        int ret = add_rule (ctx, allow_groups[g].names[i], SCMP_ACT_ALLOW, 0, NULL, err);
        if (ret < 0)
          return ret;
      }
  return 0;
}

static int
add_cond_rules (scmp_filter_ctx ctx, hutch_error_t *err)
{
  for (size_t i = 0; i < ARRAY_SIZE (cond_rules); i++)
    {
      const struct cond_rule *r = &cond_rules[i];
      int ret = add_rule (ctx, r->name, r->action, r->n_args, r->args, err);
      if (ret < 0)
        return ret;
    }
  return 0;
}

static bool
ioctl_prefix_denied (uint32_t mask, uint32_t prefix)
{
  for (size_t i = 0; i < ARRAY_SIZE (ioctl_denied); i++)
    if ((ioctl_denied[i] & mask) == prefix)
      return true;
  return false;
}

/* Allow ioctl for the requests whose top BITS bits equal PREFIX, except the
   denied ones.  libseccomp can neither express "none of these values" on
   one argument nor carve an EPERM rule out of an allowed syscall (such a
   rule equals the default action and is refused), so the allowed requests
   are written as the bit prefixes that cover exactly the complement of
   ioctl_denied: at most 32 masked-equal rules per denied request.  Only
   the low 32 bits are compared, as the kernel truncates the request.  */
static int
allow_ioctl_prefix (scmp_filter_ctx ctx, uint32_t prefix, unsigned int bits, hutch_error_t *err)
{
  uint32_t mask = bits ? UINT32_MAX << (32 - bits) : 0;
  uint32_t next_bit;
  int ret;

  if (!ioctl_prefix_denied (mask, prefix))
    {
      struct scmp_arg_cmp arg = { MASKED_EQ (1, mask, prefix) };
      return add_rule (ctx, "ioctl", SCMP_ACT_ALLOW, 1, &arg, err);
    }
  if (bits == 32)
    return 0; /* exactly a denied request */
  next_bit = 1U << (31 - bits);
  ret = allow_ioctl_prefix (ctx, prefix, bits + 1, err);
  if (ret < 0)
    return ret;
  return allow_ioctl_prefix (ctx, prefix | next_bit, bits + 1, err);
}

static int
setup_filter (scmp_filter_ctx ctx, hutch_error_t *err)
{
  int ret;

  /* The context holds only the native architecture: every other one hits
     this action.  So do x32 numbers on x86_64: for a filter without x32,
     libseccomp sends every number >= 0x40000000 (but -1) to it.  */
  ret = seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (ret < 0)
    return hutch_make_error (err, -ret, "seccomp: set the bad-architecture action");
  /* A binary search over the syscall numbers instead of a linear scan.  */
  ret = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  if (ret < 0)
    return hutch_make_error (err, -ret, "seccomp: enable the binary-tree optimisation");
  ret = add_allow_groups (ctx, err);
  if (ret < 0)
    return ret;
  ret = add_cond_rules (ctx, err);
  if (ret < 0)
    return ret;
  return allow_ioctl_prefix (ctx, 0, 0, err);
}

/* Export the compiled program of CTX into RET.  */
static int
export_bpf (scmp_filter_ctx ctx, struct hutch_seccomp_prog *ret, hutch_error_t *err)
{
  cleanup_close int fd = memfd_create ("hutch-seccomp", MFD_CLOEXEC);
  cleanup_free struct sock_filter *filter = NULL;
  struct stat st;
  size_t size;
  ssize_t n;
  int rc;

  if (fd < 0)
    return hutch_make_error (err, errno, "seccomp: memfd_create");
  rc = seccomp_export_bpf (ctx, fd);
  if (rc < 0)
    return hutch_make_error (err, -rc, "seccomp: export the BPF program");
  if (fstat (fd, &st) < 0)
    return hutch_make_error (err, errno, "seccomp: fstat the exported program");
  size = (size_t)st.st_size;
  if (size == 0 || size % sizeof *filter != 0 || size / sizeof *filter > BPF_MAXINSNS)
    return hutch_make_error (err, EINVAL, "seccomp: exported program has %zu bytes", size);
  filter = xmalloc (size);
  if (lseek (fd, 0, SEEK_SET) < 0)
    return hutch_make_error (err, errno, "seccomp: lseek the exported program");
  n = read_all (fd, filter, size);
  if (n < 0)
    return hutch_make_error (err, errno, "seccomp: read the exported program");
  if ((size_t)n != size)
    return hutch_make_error (err, EIO, "seccomp: short read of the exported program");
  ret->filter = steal_pointer (&filter);
  ret->len = (unsigned short)(size / sizeof *ret->filter);
  return 0;
}

int
hutch_seccomp_build (struct hutch_seccomp_prog *ret, hutch_error_t *err)
{
  cleanup_seccomp_ctx scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ERRNO (EPERM));
  int rc;

  if (ctx == NULL)
    return hutch_make_error (err, 0, "seccomp: cannot create a libseccomp context");
  rc = setup_filter (ctx, err);
  if (rc < 0)
    return rc;
  return export_bpf (ctx, ret, err);
}

void
hutch_seccomp_prog_release (struct hutch_seccomp_prog *prog)
{
  if (prog == NULL)
    return;
  free (prog->filter);
  prog->filter = NULL;
  prog->len = 0;
}

int
hutch_seccomp_install (const struct hutch_seccomp_prog *prog)
{
  struct sock_fprog fprog = { .len = prog->len, .filter = prog->filter };

  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return -errno;
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
    return -errno;
  return 0;
}
