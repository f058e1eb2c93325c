/* The child between clone() and the sandbox's pid 1 function.  It starts
   in the new pid, mount, network, uts and ipc namespaces with the
   supervisor's credentials, builds the root filesystem, then enters a new
   user and cgroup namespace and drops to the sandbox user.  It must only
   make syscalls: it reports a failure to the supervisor and _exits.  */
#define _GNU_SOURCE
#include "caps.h"
#include "sandbox-internal.h"
#include "util.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SYNC_FD HUTCH__SYNC_FD

static void __attribute__ ((noreturn)) fail (const char *what, int saved_errno)
{
  struct hutch__sync_msg m = { .kind = HUTCH_SYNC_ERROR, .err = saved_errno };
  snprintf (m.msg, sizeof m.msg, "%s", what);
  (void)!send (SYNC_FD, &m, sizeof m, MSG_NOSIGNAL);
  _exit (125);
}

static void
sync_send (int kind)
{
  struct hutch__sync_msg m = { .kind = kind };
  if (send (SYNC_FD, &m, sizeof m, MSG_NOSIGNAL) != (ssize_t)sizeof m)
    _exit (125); /* the supervisor is gone */
}

static void
sync_expect (int kind)
{
  struct hutch__sync_msg m;
  ssize_t n = TEMP_FAILURE_RETRY (recv (SYNC_FD, &m, sizeof m, 0));
  if (n != (ssize_t)sizeof m || m.kind != kind)
    _exit (125);
}

/* Put the configured descriptors on 0, 1, 2 and the sync socket on 3, and
   close everything else: nothing of the supervisor leaks in.  */
static void
setup_fds (const struct hutch__child_args *a)
{
  int moved[4];

  for (int i = 0; i < 3; i++)
    {
      int src = a->config->stdio[i];
      moved[i]
          = src >= 0 ? fcntl (src, F_DUPFD_CLOEXEC, 16) : open ("/dev/null", O_RDWR | O_CLOEXEC);
      if (moved[i] < 0)
        fail ("set up stdio", errno);
    }
  moved[3] = fcntl (a->sync_fd, F_DUPFD_CLOEXEC, 16);
  if (moved[3] < 0)
    fail ("set up sync socket", errno);
  for (int i = 0; i < 4; i++)
    if (dup2 (moved[i], i) < 0)
      _exit (125);
  if (syscall (SYS_close_range, 4, ~0U, 0) < 0)
    fail ("close inherited descriptors", errno);
  if (fcntl (SYNC_FD, F_SETFD, FD_CLOEXEC) < 0)
    fail ("set close-on-exec on sync socket", errno);
}

/* The child is a copy of the supervisor: its command line and environment
   (which may hold secrets such as an API key) would be readable inside
   through /proc/1/cmdline and /proc/1/environ.  Blank them, in place.  */
static void
wipe_supervisor_args (void)
{
  static const char name[] = "hutch-init";
  unsigned long field[52] = { 0 };
  char buf[2048], *p, *save = NULL;
  int fd = open ("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read (fd, buf, sizeof buf - 1);
  int i = 3;

  if (fd >= 0)
    close (fd);
  if (n <= 0)
    fail ("read /proc/self/stat", errno);
  buf[n] = '\0';
  p = strrchr (buf, ')');
  /* Fields 48 to 51 are arg_start, arg_end, env_start, env_end.  */
  for (p = p ? strtok_r (p + 1, " ", &save) : NULL; p && i < 52; p = strtok_r (NULL, " ", &save))
    field[i++] = strtoul (p, NULL, 10);
  if (field[49] <= field[48] || field[51] < field[50])
    fail ("find the command line in /proc/self/stat", EINVAL);
  memset ((char *)field[48], 0, field[49] - field[48]);
  memset ((char *)field[50], 0, field[51] - field[50]);
  if (field[49] - field[48] > sizeof name)
    memcpy ((char *)field[48], name, sizeof name);
}

static void
loopback_up (void)
{
  struct ifreq ifr = { 0 };
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    fail ("socket for loopback", errno);
  strcpy (ifr.ifr_name, "lo");
  if (ioctl (fd, SIOCGIFFLAGS, &ifr) < 0)
    fail ("get loopback flags", errno);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl (fd, SIOCSIFFLAGS, &ifr) < 0)
    fail ("bring loopback up", errno);
  close (fd);
}

static void
set_rlimits (void)
{
  struct rlimit core = { 0, 0 };
  struct rlimit nofile;

  if (setrlimit (RLIMIT_CORE, &core) < 0)
    fail ("setrlimit core", errno);
  /* Raising a hard limit needs CAP_SYS_RESOURCE, which hutch may lack.  */
  if (getrlimit (RLIMIT_NOFILE, &nofile) < 0)
    fail ("getrlimit nofile", errno);
  if (nofile.rlim_max > 65536)
    nofile.rlim_max = 65536;
  nofile.rlim_cur = nofile.rlim_max;
  if (setrlimit (RLIMIT_NOFILE, &nofile) < 0)
    fail ("setrlimit nofile", errno);
}

static void
become_user (bool root)
{
  uid_t id = root ? 0 : HUTCH_SANDBOX_UID;
  gid_t groups[1] = { 100 };

  if (hutch__caps_limit_bounding () < 0)
    fail ("drop capability bounding set", errno);
  if (setgroups (root ? 0 : 1, groups) < 0)
    fail ("setgroups", errno);
  if (setresgid (id, id, id) < 0)
    fail ("setresgid", errno);
  if (setresuid (id, id, id) < 0)
    fail ("setresuid", errno);
  if (hutch__caps_set (root) < 0)
    fail ("set capabilities", errno);
  if (chdir (root ? "/root" : "/home/user") < 0)
    fail ("chdir home", errno);
}

void
hutch__child_main (struct hutch__child_args *a)
{
  const char *what = NULL;
  int r;

  sigset_t none;

  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal (sig, SIG_DFL);
  umask (022);
  setup_fds (a);
  wipe_supervisor_args ();
  if (sethostname (a->id, strlen (a->id)) < 0)
    fail ("sethostname", errno);
  loopback_up ();
  set_rlimits ();
  if (hutch__rootfs_setup (a, &what) < 0)
    fail (what, errno);

  sync_expect (HUTCH_SYNC_CGROUP_READY);
  if (unshare (CLONE_NEWUSER | CLONE_NEWCGROUP) < 0)
    fail ("unshare user and cgroup namespaces", errno);
  sync_send (HUTCH_SYNC_NEED_MAPS);
  sync_expect (HUTCH_SYNC_MAPS_DONE);

  become_user (a->config->root);
  if (setsid () < 0)
    fail ("setsid", errno);
  /* Credential changes clear the parent-death signal, so set it last; the
     send below fails if the supervisor died before this point.  */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    fail ("set parent-death signal", errno);
  r = hutch_seccomp_install (&a->rt->seccomp);
  if (r < 0)
    fail ("install seccomp filter", -r);
  sync_send (HUTCH_SYNC_RUNNING);
  if (!a->config->wait_ready)
    close (SYNC_FD);
  _exit (a->config->init (a->config->init_arg));
}

void
hutch_sandbox_notify_ready (void)
{
  struct hutch__sync_msg m = { .kind = HUTCH_SYNC_READY };
  (void)!send (SYNC_FD, &m, sizeof m, MSG_NOSIGNAL);
  close (SYNC_FD);
}
