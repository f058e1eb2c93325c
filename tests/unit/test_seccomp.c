/* Unit tests of the seccomp filter: most checks run one raw syscall in a
   forked child that installed the filter and compare what it got with the
   same call in an unfiltered child.  The children make only raw syscalls
   (plus glibc's clone wrapper and execve), then _exit, which keeps them clear
   of the sanitizer runtime.  */
#define _GNU_SOURCE
#include "libhutch/seccomp.h"
#include "libhutch/util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <linux/futex.h>
#include <linux/if_ether.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif

/* The child's exit code when it could not install the filter.  */
#define CHILD_SETUP_FAILED 200

static struct hutch_seccomp_prog prog;

static void
build_prog (void)
{
  cleanup_error hutch_error_t err = NULL;
  int ret = hutch_seccomp_build (&prog, &err);
  cr_assert_eq (ret, 0, "hutch_seccomp_build: %s", err ? err->msg : "?");
}

static void
release_prog (void)
{
  hutch_seccomp_prog_release (&prog);
}

TestSuite (seccomp, .init = build_prog, .fini = release_prog);

/* Run FN (ARG) in a child, under the filter when FILTERED, and return its
   exit code, or -SIG when a signal killed it.  */
static int
in_child (bool filtered, int (*fn) (const void *), const void *arg)
{
  int status;
  pid_t pid = fork ();

  cr_assert_geq (pid, 0, "fork: %s", strerror (errno));
  if (pid == 0)
    {
      if (filtered && hutch_seccomp_install (&prog) < 0)
        _exit (CHILD_SETUP_FAILED);
      _exit (fn (arg));
    }
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  if (WIFSIGNALED (status))
    return -WTERMSIG (status);
  cr_assert (WIFEXITED (status));
  cr_assert_neq (WEXITSTATUS (status), CHILD_SETUP_FAILED, "the filter was not installed");
  return WEXITSTATUS (status);
}

struct call
{
  long nr;
  long args[6];
};

/* 0 when the call succeeded (a clone child exits with 0 too), else its
   errno.  */
static int
do_call (const void *p)
{
  const struct call *c = p;
  long r = syscall (c->nr, c->args[0], c->args[1], c->args[2], c->args[3], c->args[4], c->args[5]);
  return r < 0 ? errno : 0;
}

#define CALL(filtered, nr, ...)                                                                    \
  in_child ((filtered), do_call, &(struct call){ (nr), { __VA_ARGS__ } })
#define FILTERED(nr, ...) CALL (true, (nr), __VA_ARGS__)
#define UNFILTERED(nr, ...) CALL (false, (nr), __VA_ARGS__)

/* The filter lets the call through: same result as without it.  */
#define assert_allowed(nr, ...)                                                                    \
  do                                                                                               \
    {                                                                                              \
      int unfiltered_ = UNFILTERED ((nr), __VA_ARGS__);                                            \
      int filtered_ = FILTERED ((nr), __VA_ARGS__);                                                \
      cr_assert_eq (filtered_, unfiltered_, "%s: %d (%s) under the filter, %d (%s) without",       \
                    #nr ", " #__VA_ARGS__, filtered_, strerror (filtered_), unfiltered_,           \
                    strerror (unfiltered_));                                                       \
    }                                                                                              \
  while (0)

#define assert_errno(expected, nr, ...)                                                            \
  do                                                                                               \
    {                                                                                              \
      int filtered_ = FILTERED ((nr), __VA_ARGS__);                                                \
      cr_assert_eq (filtered_, (expected), "%s: %d (%s), expected %s", #nr ", " #__VA_ARGS__,      \
                    filtered_, strerror (filtered_), #expected);                                   \
    }                                                                                              \
  while (0)

#define assert_denied(nr, ...) assert_errno (EPERM, (nr), __VA_ARGS__)

Test (seccomp, builds_a_program)
{
  cr_assert_not_null (prog.filter);
  cr_assert_gt (prog.len, 0);
  cr_assert_leq (prog.len, BPF_MAXINSNS);
}

Test (seccomp, release_is_idempotent)
{
  struct hutch_seccomp_prog p = { 0 };
  cleanup_error hutch_error_t err = NULL;

  cr_assert_eq (hutch_seccomp_build (&p, &err), 0);
  hutch_seccomp_prog_release (&p);
  cr_assert_null (p.filter);
  cr_assert_eq (p.len, 0);
  hutch_seccomp_prog_release (&p);
  hutch_seccomp_prog_release (NULL);
}

Test (seccomp, ordinary_calls_work)
{
  cr_assert_eq (FILTERED (SYS_getpid, 0), 0);
  cr_assert_eq (FILTERED (SYS_getuid, 0), 0);
  cr_assert_eq (FILTERED (SYS_uname, (long)&(char[512]){ 0 }), 0);
  /* A stricter filter can be stacked.  */
  assert_allowed (SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, (long)&(unsigned){ 0 });
}

Test (seccomp, dangerous_calls_get_eperm)
{
  assert_denied (SYS_keyctl, 0);
  assert_denied (SYS_add_key, 0);
  assert_denied (SYS_bpf, 0);
  assert_denied (SYS_unshare, 0);
  assert_denied (SYS_unshare, CLONE_NEWUSER);
  assert_denied (SYS_setns, -1, 0);
  assert_denied (SYS_mount, 0);
  assert_denied (SYS_umount2, 0);
  assert_denied (SYS_pivot_root, 0);
  assert_denied (SYS_chroot, 0);
  assert_denied (SYS_ptrace, 0);
  assert_denied (SYS_process_vm_readv, 0);
  assert_denied (SYS_perf_event_open, 0);
  assert_denied (SYS_io_uring_setup, 0);
  assert_denied (SYS_userfaultfd, 0);
  assert_denied (SYS_open_by_handle_at, -1, 0);
  assert_denied (SYS_name_to_handle_at, -1, 0);
  assert_denied (SYS_fanotify_init, 0);
  assert_denied (SYS_fsopen, 0);
  assert_denied (SYS_kcmp, 0);
  assert_denied (SYS_pidfd_getfd, -1, 0);
  assert_denied (SYS_set_mempolicy, 0);
  assert_denied (SYS_clock_settime, 0);
  assert_denied (SYS_adjtimex, 0);
  assert_denied (SYS_syslog, 0);
  assert_denied (SYS_sethostname, 0);
#ifdef SYS_iopl
  assert_denied (SYS_iopl, 0);
#endif
}

Test (seccomp, clone_without_namespaces_only)
{
  /* Like fork: the clone child exits with 0 from do_call as well.  */
  assert_allowed (SYS_clone, SIGCHLD, 0);
#ifdef SYS_fork
  assert_allowed (SYS_fork, 0);
#endif
  /* Thread flags pass the filter (this set lacks CLONE_SIGHAND, so the
     kernel then refuses it with EINVAL instead of starting a thread on our
     stack).  */
  assert_allowed (SYS_clone, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_THREAD, 0);
  assert_denied (SYS_clone, CLONE_NEWUSER | SIGCHLD, 0);
  assert_denied (SYS_clone, CLONE_NEWNS | SIGCHLD, 0);
  assert_denied (SYS_clone, CLONE_NEWNET | SIGCHLD, 0);
  assert_denied (SYS_clone, CLONE_NEWPID | SIGCHLD, 0);
  assert_denied (SYS_clone, CLONE_NEWCGROUP | SIGCHLD, 0);
  assert_denied (SYS_clone, 0x100000000L | CLONE_NEWUSER | SIGCHLD, 0);
}

Test (seccomp, clone3_gets_enosys)
{
  /* Without the filter the same call fails with EINVAL (size 0).  */
  cr_assert_neq (UNFILTERED (SYS_clone3, 0, 0), ENOSYS);
  assert_errno (ENOSYS, SYS_clone3, 0, 0);
}

Test (seccomp, sockets)
{
  assert_allowed (SYS_socket, AF_INET, SOCK_STREAM, 0);
  assert_allowed (SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  assert_allowed (SYS_socket, AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_allowed (SYS_socket, AF_INET6, SOCK_DGRAM, 0);
  assert_allowed (SYS_socket, AF_UNIX, SOCK_STREAM, 0);
  assert_allowed (SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  assert_allowed (SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
  assert_allowed (SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, (long)&(int[2]){ 0 });

  assert_denied (SYS_socket, AF_PACKET, SOCK_RAW, htons (ETH_P_ALL));
  assert_denied (SYS_socket, AF_INET, SOCK_RAW, IPPROTO_ICMP);
  assert_denied (SYS_socket, AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  assert_denied (SYS_socket, AF_INET, SOCK_SEQPACKET, 0);
  assert_denied (SYS_socket, AF_ALG, SOCK_SEQPACKET, 0);
  assert_denied (SYS_socket, AF_VSOCK, SOCK_STREAM, 0);
  /* High bits, which the kernel ignores, do not get around the rules.  */
  assert_denied (SYS_socket, 0x100000000L | AF_PACKET, SOCK_RAW, 0);
  assert_denied (SYS_socket, AF_INET, 0x100000000L | SOCK_RAW, IPPROTO_ICMP);
  assert_allowed (SYS_socket, 0x100000000L | AF_UNIX, SOCK_STREAM, 0);
  assert_denied (SYS_socketpair, AF_INET, SOCK_STREAM, 0, (long)&(int[2]){ 0 });
}

Test (seccomp, ioctl_terminal_injection)
{
  int fds[2];
  int n = 0;

  cr_assert_eq (pipe (fds), 0);
  /* Allowed requests reach the pipe, which answers them or says ENOTTY.  */
  assert_allowed (SYS_ioctl, fds[0], FIONREAD, (long)&n);
  assert_allowed (SYS_ioctl, fds[0], TCGETS, (long)&(struct termios){ 0 });
  assert_allowed (SYS_ioctl, fds[0], TIOCSTI - 1, (long)&n);
  assert_allowed (SYS_ioctl, fds[0], TIOCSTI + 1, (long)&n);
  assert_allowed (SYS_ioctl, fds[0], TIOCLINUX + 1, (long)&n);
  assert_allowed (SYS_ioctl, fds[0], 0x80000000L | TIOCSTI, (long)&n);
  /* The kernel truncates the request to 32 bits: so does the filter, which
     lets through requests sign-extended from an int.  */
  assert_allowed (SYS_ioctl, fds[0], 0x100000000L | FIONREAD, (long)&n);
  assert_allowed (SYS_ioctl, fds[0], (long)(int)TIOCGPTN, (long)&n);
  cr_assert_eq (FILTERED (SYS_ioctl, fds[0], FIONREAD, (long)&n), 0);

  assert_denied (SYS_ioctl, fds[0], TIOCSTI, (long)"x");
  assert_denied (SYS_ioctl, fds[0], TIOCLINUX, (long)&n);
  assert_denied (SYS_ioctl, fds[0], 0x100000000L | TIOCSTI, (long)"x");
  assert_denied (SYS_ioctl, fds[0], 0xffffffff00000000L | TIOCLINUX, (long)&n);
  close (fds[0]);
  close (fds[1]);
}

Test (seccomp, personality)
{
  assert_allowed (SYS_personality, 0xffffffffL);
  assert_allowed (SYS_personality, PER_LINUX);
  assert_allowed (SYS_personality, PER_LINUX32);
  assert_denied (SYS_personality, ADDR_NO_RANDOMIZE);
  assert_denied (SYS_personality, READ_IMPLIES_EXEC);
}

#if defined __x86_64__
static int
do_int80_getpid (const void *unused)
{
  long ret = 20; /* getpid on i386 */
  __asm__ volatile("int $0x80" : "+a"(ret) : : "r8", "r9", "r10", "r11", "memory");
  return ret > 0 ? 0 : 1;
}

Test (seccomp, i386_syscalls_kill)
{
  cr_assert_eq (in_child (false, do_int80_getpid, NULL), 0, "int 0x80 does not work here");
  cr_assert_eq (in_child (true, do_int80_getpid, NULL), -SIGSYS);
}

static uint8_t thread_stack[64 * 1024] __attribute__ ((aligned (16)));

static int
int80_thread (void *unused)
{
  return do_int80_getpid (NULL);
}

/* The bad-architecture action kills the process, not only the thread.  */
static int
do_int80_in_thread (const void *unused)
{
  volatile pid_t tid = 1;
  int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
              | CLONE_CHILD_CLEARTID;

  if (clone (int80_thread, thread_stack + sizeof thread_stack, flags, NULL, NULL, NULL, &tid) < 0)
    return 1;
  /* The kernel clears TID and wakes us when the thread is gone.  */
  while (tid != 0)
    syscall (SYS_futex, &tid, FUTEX_WAIT, 1, NULL, NULL, 0);
  return 0;
}

Test (seccomp, i386_syscall_in_a_thread_kills_the_process)
{
  cr_assert_eq (in_child (false, do_int80_in_thread, NULL), 0);
  cr_assert_eq (in_child (true, do_int80_in_thread, NULL), -SIGSYS);
}

Test (seccomp, x32_syscalls_kill)
{
  cr_assert_eq (FILTERED (0x40000000L | SYS_getpid, 0), -SIGSYS);
  cr_assert_eq (FILTERED (0x40000000L | SYS_socket, AF_INET, SOCK_STREAM, 0), -SIGSYS);
}
#endif

static int
do_exec_sh (const void *script)
{
  char *const argv[] = { (char *)"sh", (char *)"-ec", (char *)script, NULL };
  char *const envp[] = { (char *)"PATH=/usr/bin:/bin", (char *)"LC_ALL=C", NULL };

  syscall (SYS_execve, "/bin/sh", argv, envp);
  return 127;
}

/* A real userland runs: dynamic linking, pipes, fork and exec, files.  */
Test (seccomp, shell_runs)
{
  static const char script[] = "test \"$(grep '^Seccomp:' /proc/self/status | tr -dc 0-9)\" = 2\n"
                               "ls / >/dev/null\n"
                               "echo hello | tr a-z A-Z | grep -q HELLO\n"
                               "id -u >/dev/null\n"
                               "uname -a >/dev/null\n"
                               "d=$(mktemp -d)\n"
                               "echo x >\"$d/f\" && mv \"$d/f\" \"$d/g\" && rm -r \"$d\"\n";

  cr_assert_eq (in_child (true, do_exec_sh, script), 0);
}
