/* probe: a static helper the tests copy into sandboxes to observe their
   isolation from the inside.  Each subcommand prints plain lines that the
   tests parse.  */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

static long
try_clone_ns (void)
{
  long r = syscall (SYS_clone, CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, 0);
  if (r == 0)
    _exit (0);
  if (r > 0)
    waitpid ((pid_t)r, NULL, 0);
  return r;
}

static long
try_clone3 (void)
{
  struct clone_args args = { .exit_signal = SIGCHLD };
  long r = syscall (SYS_clone3, &args, sizeof args);
  if (r == 0)
    _exit (0);
  if (r > 0)
    waitpid ((pid_t)r, NULL, 0);
  return r;
}

static long
try_socket (int domain, int type)
{
  long r = socket (domain, type, 0);
  if (r >= 0)
    close ((int)r);
  return r;
}

static long
try_ioctl_sti (void)
{
  char c = 'x';
  return ioctl (0, TIOCSTI, &c);
}

static long
try_ioctl_sti_high (void)
{
  char c = 'x';
  return syscall (SYS_ioctl, 0, 0x100000000UL | TIOCSTI, &c);
}

static long
try_ioctl_linux (void)
{
  char c = 0;
  return ioctl (0, TIOCLINUX, &c);
}

static long
try_process_vm_readv (void)
{
  char buf[4];
  struct iovec local = { buf, sizeof buf }, remote = { buf, sizeof buf };
  return syscall (SYS_process_vm_readv, getpid (), &local, 1, &remote, 1, 0);
}

#define SC(name, ...)                                                                              \
  {                                                                                                \
#name, __VA_ARGS__                                                                             \
  }
struct check
{
  const char *name;
  long (*fn) (void);
  long nr;
  long a[6];
};

static const struct check checks[] = {
  SC (keyctl, NULL, SYS_keyctl, { 0, -1, 0 }),
  SC (add_key, NULL, SYS_add_key, { (long)"user", (long)"k", (long)"v", 1, -2 }),
  SC (request_key, NULL, SYS_request_key, { (long)"user", (long)"k", 0, -2 }),
  SC (bpf, NULL, SYS_bpf, { 5, 0, 0 }),
  SC (userfaultfd, NULL, SYS_userfaultfd, { 0 }),
  SC (perf_event_open, NULL, SYS_perf_event_open, { 0, 0, -1, -1, 0 }),
  SC (io_uring_setup, NULL, SYS_io_uring_setup, { 1, 0 }),
  SC (io_uring_enter, NULL, SYS_io_uring_enter, { -1, 0, 0, 0, 0 }),
  SC (io_uring_register, NULL, SYS_io_uring_register, { -1, 0, 0, 0 }),
  SC (kexec_load, NULL, SYS_kexec_load, { 0, 0, 0, 0 }),
  SC (kexec_file_load, NULL, SYS_kexec_file_load, { -1, -1, 0, 0, 0 }),
  SC (init_module, NULL, SYS_init_module, { 0, 0, (long)"" }),
  SC (finit_module, NULL, SYS_finit_module, { -1, (long)"", 0 }),
  SC (delete_module, NULL, SYS_delete_module, { (long)"nonexistent", 0 }),
  SC (mount, NULL, SYS_mount, { (long)"none", (long)"/tmp", (long)"tmpfs", 0, 0 }),
  SC (umount2, NULL, SYS_umount2, { (long)"/proc", 0 }),
  SC (fsopen, NULL, SYS_fsopen, { (long)"tmpfs", 0 }),
  SC (open_tree, NULL, SYS_open_tree, { -100, (long)"/tmp", 0 }),
  SC (move_mount, NULL, SYS_move_mount, { -1, (long)"", -1, (long)"", 0 }),
  SC (fsmount, NULL, SYS_fsmount, { -1, 0, 0 }),
  SC (fspick, NULL, SYS_fspick, { -100, (long)"/tmp", 0 }),
  SC (mount_setattr, NULL, SYS_mount_setattr, { -100, (long)"/tmp", 0, 0, 0 }),
  SC (pivot_root, NULL, SYS_pivot_root, { (long)"/tmp", (long)"/tmp" }),
  SC (chroot, NULL, SYS_chroot, { (long)"/tmp" }),
  SC (unshare, NULL, SYS_unshare, { CLONE_NEWUSER }),
  SC (unshare_ns, NULL, SYS_unshare, { CLONE_NEWNS }),
  SC (setns, NULL, SYS_setns, { -1, 0 }),
  SC (clone_newns, try_clone_ns, 0, { 0 }),
  SC (clone3, try_clone3, 0, { 0 }),
  SC (ptrace, NULL, SYS_ptrace, { 0 /* PTRACE_TRACEME */ }),
  SC (process_vm_readv, try_process_vm_readv, 0, { 0 }),
  SC (process_vm_writev, NULL, SYS_process_vm_writev, { 1, 0, 0, 0, 0, 0 }),
  SC (kcmp, NULL, SYS_kcmp, { 1, 1, 0, 0, 0 }),
  SC (pidfd_getfd, NULL, SYS_pidfd_getfd, { -1, 0, 0 }),
  SC (open_by_handle_at, NULL, SYS_open_by_handle_at, { -1, 0, 0 }),
  SC (swapon, NULL, SYS_swapon, { (long)"/nonexistent", 0 }),
  SC (swapoff, NULL, SYS_swapoff, { (long)"/nonexistent" }),
  SC (reboot, NULL, SYS_reboot, { 0, 0, 0, 0 }),
  SC (acct, NULL, SYS_acct, { 0 }),
  SC (syslog, NULL, SYS_syslog, { 10, 0, 0 }),
  SC (settimeofday, NULL, SYS_settimeofday, { 0, 0 }),
  SC (clock_settime, NULL, SYS_clock_settime, { 0, 0 }),
  SC (socket_packet, NULL, SYS_socket, { AF_PACKET, SOCK_RAW, 0 }),
  SC (socket_vsock, NULL, SYS_socket, { AF_VSOCK, SOCK_STREAM, 0 }),
  SC (socket_alg, NULL, SYS_socket, { AF_ALG, SOCK_SEQPACKET, 0 }),
  SC (socket_raw, NULL, SYS_socket, { AF_INET, SOCK_RAW, IPPROTO_ICMP }),
  SC (socket_raw6, NULL, SYS_socket, { AF_INET6, SOCK_RAW, IPPROTO_ICMPV6 }),
  SC (ioctl_tiocsti, try_ioctl_sti, 0, { 0 }),
  SC (ioctl_tiocsti_high, try_ioctl_sti_high, 0, { 0 }),
  SC (ioctl_tioclinux, try_ioctl_linux, 0, { 0 }),
};

/* Prints "NAME ERRNO" (0 when the call succeeded).  */
static int
cmd_syscalls (void)
{
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
    {
      const struct check *c = &checks[i];
      long r;
      errno = 0;
      if (c->fn)
        r = c->fn ();
      else
        r = syscall (c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
      printf ("%s %d\n", c->name, r < 0 ? errno : 0);
    }
  /* Allowed calls, as a control.  */
  printf ("socket_tcp %d\n", try_socket (AF_INET, SOCK_STREAM) < 0 ? errno : 0);
  printf ("socket_udp6 %d\n", try_socket (AF_INET6, SOCK_DGRAM) < 0 ? errno : 0);
  printf ("socket_unix %d\n", try_socket (AF_UNIX, SOCK_STREAM) < 0 ? errno : 0);
  return 0;
}

static int
cmd_int80 (void)
{
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
  printf ("survived %ld\n", ret);
  return 0;
}

static int
cmd_x32 (void)
{
  long r = syscall (0x40000000L | 39L);
  printf ("survived %ld\n", r);
  return 0;
}

/* Every open descriptor of every process, but 0-2 and the probe's own
   directory stream: "PID FD TARGET".  */
static int
cmd_fds (void)
{
  DIR *proc = opendir ("/proc");
  struct dirent *p;

  while ((p = readdir (proc)))
    {
      char path[300];
      DIR *fds;
      struct dirent *f;
      if (p->d_name[0] < '0' || p->d_name[0] > '9')
        continue;
      snprintf (path, sizeof path, "/proc/%s/fd", p->d_name);
      if ((fds = opendir (path)) == NULL)
        continue;
      while ((f = readdir (fds)))
        {
          char link[600], target[512];
          ssize_t n;
          int fd = atoi (f->d_name);
          if (f->d_name[0] == '.' || fd <= 2)
            continue;
          if (atoi (p->d_name) == getpid () && (fd == dirfd (fds) || fd == dirfd (proc)))
            continue;
          snprintf (link, sizeof link, "%s/%s", path, f->d_name);
          n = readlink (link, target, sizeof target - 1);
          target[n < 0 ? 0 : n] = '\0';
          printf ("%s %d %s\n", p->d_name, fd, target);
        }
      closedir (fds);
    }
  closedir (proc);
  return 0;
}

/* Fork until refused; children wait forever.  Prints "forked N errno E".  */
static int
cmd_forkbomb (void)
{
  int n = 0;
  for (;;)
    {
      pid_t pid = fork ();
      if (pid == 0)
        {
          pause ();
          _exit (0);
        }
      if (pid < 0)
        {
          printf ("forked %d errno %d\n", n, errno);
          fflush (stdout);
          return 0;
        }
      n++;
    }
}

static int
cmd_membomb (const char *mb_s)
{
  size_t mb = strtoul (mb_s, NULL, 10);
  for (size_t i = 0; i < mb; i++)
    {
      char *p = mmap (NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED)
        {
          printf ("mmap failed after %zu MiB\n", i);
          return 1;
        }
      memset (p, 1, 1 << 20);
    }
  printf ("touched %zu MiB\n", mb);
  return 0;
}

/* Write 1 MiB blocks to PATH until the write fails: "wrote N MiB errno E".  */
static int
cmd_fill (const char *path)
{
  static char block[1 << 20];
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  size_t n = 0;
  if (fd < 0)
    {
      printf ("open errno %d\n", errno);
      return 1;
    }
  memset (block, 'x', sizeof block);
  for (;;)
    {
      ssize_t w = write (fd, block, sizeof block);
      if (w < (ssize_t)sizeof block)
        {
          printf ("wrote %zu MiB errno %d\n", n, w < 0 ? errno : ENOSPC);
          return 0;
        }
      n++;
    }
}

/* A setsid, double-forked sleeper named NAME; prints its pid, returns.  */
static int
cmd_daemon (const char *name)
{
  int p[2];
  pid_t pid;
  if (pipe (p) < 0)
    return 1;
  pid = fork ();
  if (pid == 0)
    {
      setsid ();
      if (fork () == 0)
        {
          pid_t me = getpid ();
          prctl (PR_SET_NAME, name, 0, 0, 0);
          (void)!write (p[1], &me, sizeof me);
          close (p[1]);
          close (p[0]);
          for (;;)
            pause ();
        }
      _exit (0);
    }
  close (p[1]);
  waitpid (pid, NULL, 0);
  if (read (p[0], &pid, sizeof pid) != sizeof pid)
    return 1;
  printf ("daemon %d\n", (int)pid);
  return 0;
}

/* Network: interfaces, an outside connect, a loopback round trip.  */
static int
cmd_net (void)
{
  struct if_nameindex *ifs = if_nameindex (), *i;
  struct sockaddr_in out = { .sin_family = AF_INET, .sin_port = htons (80) };
  struct sockaddr_in lo = { .sin_family = AF_INET };
  socklen_t len = sizeof lo;
  int s, c, a;
  char buf[8] = { 0 };

  for (i = ifs; i && i->if_index; i++)
    printf ("interface %s\n", i->if_name);
  inet_pton (AF_INET, "192.0.2.1", &out.sin_addr); /* TEST-NET-1: never routed */
  s = socket (AF_INET, SOCK_STREAM, 0);
  printf ("connect_outside %d\n", connect (s, (struct sockaddr *)&out, sizeof out) < 0 ? errno : 0);
  close (s);
  inet_pton (AF_INET, "127.0.0.1", &lo.sin_addr);
  s = socket (AF_INET, SOCK_STREAM, 0);
  if (bind (s, (struct sockaddr *)&lo, sizeof lo) < 0 || listen (s, 1) < 0
      || getsockname (s, (struct sockaddr *)&lo, &len) < 0)
    return 1;
  c = socket (AF_INET, SOCK_STREAM, 0);
  if (connect (c, (struct sockaddr *)&lo, sizeof lo) < 0 || (a = accept (s, NULL, NULL)) < 0)
    return 1;
  (void)!write (c, "ping", 4);
  printf ("loopback %s\n", read (a, buf, 4) == 4 ? buf : "failed");
  return 0;
}

int
main (int argc, char **argv)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && strcmp (argv[1], "syscalls") == 0)
    return cmd_syscalls ();
  if (argc >= 2 && strcmp (argv[1], "int80") == 0)
    return cmd_int80 ();
  if (argc >= 2 && strcmp (argv[1], "x32") == 0)
    return cmd_x32 ();
  if (argc >= 2 && strcmp (argv[1], "fds") == 0)
    return cmd_fds ();
  if (argc >= 2 && strcmp (argv[1], "forkbomb") == 0)
    return cmd_forkbomb ();
  if (argc >= 3 && strcmp (argv[1], "membomb") == 0)
    return cmd_membomb (argv[2]);
  if (argc >= 3 && strcmp (argv[1], "fill") == 0)
    return cmd_fill (argv[2]);
  if (argc >= 3 && strcmp (argv[1], "daemon") == 0)
    return cmd_daemon (argv[2]);
  if (argc >= 2 && strcmp (argv[1], "net") == 0)
    return cmd_net ();
  fprintf (stderr,
           "usage: probe syscalls|int80|x32|fds|forkbomb|membomb MB|fill PATH|daemon NAME|net\n");
  return 2;
}
