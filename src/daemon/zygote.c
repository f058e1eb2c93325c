#define _GNU_SOURCE
#include "zygote.h"
#include "agent/agent.h"
#include "interp/interp.h"
#include "libhutch/cgroup.h"
#include "libhutch/log.h"
#include "libhutch/util.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define MAX_INIT_JSON (256 * 1024)
/* plug_heap_holes(): the chunk it takes, and the free bytes it leaves.  */
#define HEAP_PLUG_SIZE 32
#define HEAP_HOLES_LEFT 4096

enum zygote_op
{
  ZYGOTE_CREATE = 1,
  ZYGOTE_DESTROY,
  ZYGOTE_FREEZE,
  ZYGOTE_THAW,
  ZYGOTE_PING,
};

struct zygote_msg
{
  int32_t op;
  char id[HUTCH_ID_MAX + 1];
  char template_id[64];
  uint64_t memory_bytes, disk_bytes;
  uint64_t cpu_millis, pids;
  uint32_t init_len; /* bytes of agent init JSON following this header */
};

struct zygote_reply
{
  int32_t status; /* 0 or an errno */
  char message[480];
  int32_t pid;
  uint32_t uid_base;
};

static int zygote_fd = -1;
static pid_t zygote_pid = -1;
static pthread_mutex_t zygote_mu = PTHREAD_MUTEX_INITIALIZER;

/* Zygote side.  */

struct live
{
  struct hutch_sandbox *sb;
  struct live *next;
};

static struct live *live_list;

static struct hutch_sandbox *
live_find (const char *id, bool unlink)
{
  for (struct live **p = &live_list; *p; p = &(*p)->next)
    if (strcmp ((*p)->sb->id, id) == 0)
      {
        struct live *l = *p;
        struct hutch_sandbox *sb = l->sb;
        if (unlink)
          {
            *p = l->next;
            free (l);
          }
        return sb;
      }
  return NULL;
}

static void
reply (int fd, int status, const char *message, const struct hutch_sandbox *sb, int *fds, int nfds)
{
  struct zygote_reply r = { .status = status };
  struct iovec iov = { &r, sizeof r };
  char control[CMSG_SPACE (sizeof (int) * 2)];
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

  snprintf (r.message, sizeof r.message, "%s", message ? message : "");
  if (sb)
    {
      r.pid = sb->pid;
      r.uid_base = sb->uid_base;
    }
  if (nfds > 0)
    {
      struct cmsghdr *c;
      memset (control, 0, sizeof control);
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * (size_t)nfds);
      c = CMSG_FIRSTHDR (&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (sizeof (int) * (size_t)nfds);
      memcpy (CMSG_DATA (c), fds, sizeof (int) * (size_t)nfds);
    }
  (void)!sendmsg (fd, &msg, MSG_NOSIGNAL);
}

static void
serve_create (struct hutch_runtime *rt, int fd, const struct zygote_msg *m, const char *init_json)
{
  cleanup_error hutch_error_t err = NULL;
  struct agent_args args = { .sandbox_id = m->id, .init_json = init_json };
  struct hutch_sandbox_config config = {
    .id = m->id,
    .template = m->template_id,
    .memory_bytes = m->memory_bytes,
    .disk_bytes = m->disk_bytes,
    .cpu_millis = (unsigned long)m->cpu_millis,
    .pids = (unsigned long)m->pids,
    .root = true,
    .stdio = { -1, -1, -1 },
    .init = agent_main,
    .init_arg = &args,
    .wait_ready = true,
  };
  struct hutch_sandbox *sb = NULL;
  struct live *l;
  char path[64];
  int fds[2];

  if (hutch_sandbox_create (rt, &config, &sb, &err) < 0)
    {
      reply (fd, err->status ? err->status : EIO, err->msg, NULL, NULL, 0);
      return;
    }
  snprintf (path, sizeof path, "/proc/%d/ns/net", (int)sb->pid);
  fds[0] = sb->pidfd;
  fds[1] = open (path, O_RDONLY | O_CLOEXEC);
  if (fds[1] < 0)
    {
      int e = errno;
      hutch_sandbox_destroy (sb, &err);
      reply (fd, e, "open network namespace of the new sandbox", NULL, NULL, 0);
      return;
    }
  l = xzalloc (sizeof *l);
  l->sb = sb;
  l->next = live_list;
  live_list = l;
  reply (fd, 0, NULL, sb, fds, 2);
  close (fds[1]);
}

static void
serve_destroy (int fd, const char *id)
{
  cleanup_error hutch_error_t err = NULL;
  struct hutch_sandbox *sb = live_find (id, true);

  if (sb == NULL)
    {
      reply (fd, ENOENT, "no such sandbox", NULL, NULL, 0);
      return;
    }
  if (hutch_sandbox_destroy (sb, &err) < 0)
    reply (fd, err->status ? err->status : EIO, err->msg, NULL, NULL, 0);
  else
    reply (fd, 0, NULL, NULL, NULL, 0);
}

static void
serve_freeze (int fd, const char *id, bool frozen)
{
  cleanup_error hutch_error_t err = NULL;
  struct hutch_sandbox *sb = live_find (id, false);

  if (sb == NULL)
    reply (fd, ENOENT, "no such sandbox", NULL, NULL, 0);
  else if (hutch_sandbox_freeze (sb, frozen, &err) < 0)
    reply (fd, err->status ? err->status : EIO, err->msg, NULL, NULL, 0);
  else
    reply (fd, 0, NULL, NULL, NULL, 0);
}

static void
serve_one (struct hutch_runtime *rt, int fd, char *buf, ssize_t n)
{
  struct zygote_msg *m = (struct zygote_msg *)buf;

  if (n < (ssize_t)sizeof *m || (size_t)m->init_len != (size_t)n - sizeof *m)
    {
      reply (fd, EPROTO, "malformed request", NULL, NULL, 0);
      return;
    }
  m->id[sizeof m->id - 1] = '\0';
  m->template_id[sizeof m->template_id - 1] = '\0';
  buf[n] = '\0';
  switch (m->op)
    {
    case ZYGOTE_CREATE:
      serve_create (rt, fd, m, m->init_len ? buf + sizeof *m : NULL);
      break;
    case ZYGOTE_DESTROY:
      serve_destroy (fd, m->id);
      break;
    case ZYGOTE_FREEZE:
    case ZYGOTE_THAW:
      serve_freeze (fd, m->id, m->op == ZYGOTE_FREEZE);
      break;
    case ZYGOTE_PING:
      reply (fd, 0, NULL, NULL, NULL, 0);
      break;
    default:
      reply (fd, EPROTO, "unknown request", NULL, NULL, 0);
    }
}

static void
destroy_all (void)
{
  while (live_list)
    {
      hutch_error_t err = NULL;
      struct hutch_sandbox *sb = live_find (live_list->sb->id, true);
      hutch_sandbox_destroy (sb, &err);
      hutch_error_release (&err);
    }
}

/* Builds without src/interp/pyzygote.c (the sanitizer build) start
   Python kernels cold.  */
#pragma weak pyzygote_init

/* Python kernels are forked from this interpreter, already holding the
   data stack, instead of starting cold in each sandbox.  */
static void
preload_python (void)
{
  cleanup_error hutch_error_t err = NULL;

  if (pyzygote_init == NULL)
    return;
  if (pyzygote_init (&err) == 0)
    return;
  log_warn ("zygote: Python kernels will start cold: %s", err->msg);
  /* Threads were left behind: forking sandboxes from here is unsafe.  */
  if (err->status == ENOTRECOVERABLE)
    _exit (1);
}

/* Take every free chunk of the heap (never to be freed).  Sandboxes
   inherit the zygote's heap: its free chunks, left by the work of each
   create and scattered over pages that every sandbox shares, are where
   their allocations would land first, copying one shared page for each.
   Plugged, they leave sandboxes to allocate from pages of their own.  */
static void
plug_heap_holes (void)
{
  size_t last = SIZE_MAX;

  for (;;)
    {
      struct mallinfo2 mi = mallinfo2 ();
      /* Free bytes in the bins: less the top chunk and the fast bins
         (there are none: see zygote_main).  */
      size_t holes = mi.fordblks - mi.keepcost - mi.fsmblks;

      if (holes < HEAP_HOLES_LEFT || holes >= last)
        return;
      last = holes;
      /* Each small request takes at least its size from a free chunk, so
         asking for half of the free bytes never reaches the top chunk.  */
      for (size_t taken = 0; taken < holes / 2; taken += HEAP_PLUG_SIZE)
        if (malloc (HEAP_PLUG_SIZE - sizeof (size_t)) == NULL)
          return;
    }
}

static void __attribute__ ((noreturn)) zygote_main (struct hutch_runtime *rt, int fd)
{
  char *buf = xmalloc (sizeof (struct zygote_msg) + MAX_INIT_JSON + 1);

  prctl (PR_SET_NAME, "hutch-zygote", 0, 0, 0);
  preload_python ();
  /* No fast bins: their chunks would stay free whatever plug_heap_holes()
     asks for.  */
  mallopt (M_MXFAST, 0);
  plug_heap_holes ();
  for (;;)
    {
      ssize_t n
          = TEMP_FAILURE_RETRY (recv (fd, buf, sizeof (struct zygote_msg) + MAX_INIT_JSON, 0));
      if (n <= 0)
        break;
      serve_one (rt, fd, buf, n);
      plug_heap_holes ();
    }
  destroy_all ();
  _exit (0);
}

int
zygote_start (struct hutch_runtime *rt, hutch_error_t *err)
{
  int sv[2];
  pid_t parent = getpid ();

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return hutch_make_error (err, errno, "socketpair for the zygote");
  zygote_pid = fork ();
  if (zygote_pid < 0)
    return hutch_make_error (err, errno, "fork the zygote");
  if (zygote_pid == 0)
    {
      close (sv[0]);
      if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid () != parent)
        _exit (1);
      signal (SIGINT, SIG_IGN);
      signal (SIGTERM, SIG_IGN);
      zygote_main (rt, sv[1]);
    }
  close (sv[1]);
  zygote_fd = sv[0];
  return 0;
}

/* Daemon side.  */

static int
call (const struct zygote_msg *m, const char *init_json, struct zygote_reply *r, int *fds, int nfds,
      hutch_error_t *err)
{
  struct iovec out[2] = { { (void *)m, sizeof *m }, { (void *)init_json, m->init_len } };
  struct msghdr req = { .msg_iov = out, .msg_iovlen = m->init_len ? 2 : 1 };
  char control[CMSG_SPACE (sizeof (int) * 2)];
  struct iovec in = { r, sizeof *r };
  struct msghdr resp = {
    .msg_iov = &in, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control
  };
  ssize_t n;

  pthread_mutex_lock (&zygote_mu);
  n = sendmsg (zygote_fd, &req, MSG_NOSIGNAL);
  if (n >= 0)
    n = TEMP_FAILURE_RETRY (recvmsg (zygote_fd, &resp, MSG_CMSG_CLOEXEC));
  pthread_mutex_unlock (&zygote_mu);
  if (n != (ssize_t)sizeof *r)
    return hutch_make_error (err, n < 0 ? errno : EPIPE, "talk to the zygote");
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&resp); c; c = CMSG_NXTHDR (&resp, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS
        && c->cmsg_len == CMSG_LEN (sizeof (int) * (size_t)nfds))
      memcpy (fds, CMSG_DATA (c), sizeof (int) * (size_t)nfds);
  if (r->status != 0)
    {
      r->message[sizeof r->message - 1] = '\0';
      return hutch_make_error (err, 0, "%s", r->message);
    }
  return 0;
}

int
zygote_create (const struct zygote_create *req, struct zygote_sandbox *ret, hutch_error_t *err)
{
  struct zygote_msg m = { .op = ZYGOTE_CREATE };
  struct zygote_reply r;
  size_t init_len = req->agent_init_json ? strlen (req->agent_init_json) : 0;
  int fds[2] = { -1, -1 };
  int rc;

  if (init_len > MAX_INIT_JSON)
    return hutch_make_error (err, E2BIG, "sandbox settings too large");
  snprintf (m.id, sizeof m.id, "%s", req->id);
  snprintf (m.template_id, sizeof m.template_id, "%s", req->template_id);
  m.memory_bytes = req->memory_bytes;
  m.disk_bytes = req->disk_bytes;
  m.cpu_millis = req->cpu_millis;
  m.pids = req->pids;
  m.init_len = (uint32_t)init_len;
  rc = call (&m, req->agent_init_json, &r, fds, 2, err);
  if (rc < 0)
    return rc;
  ret->pid = r.pid;
  ret->uid_base = r.uid_base;
  ret->pidfd = fds[0];
  ret->netns_fd = fds[1];
  return 0;
}

static int
simple_call (int op, const char *id, hutch_error_t *err)
{
  struct zygote_msg m = { .op = op };
  struct zygote_reply r;

  snprintf (m.id, sizeof m.id, "%s", id);
  return call (&m, NULL, &r, NULL, 0, err);
}

int
zygote_destroy (const char *id, hutch_error_t *err)
{
  return simple_call (ZYGOTE_DESTROY, id, err);
}

int
zygote_wait_ready (hutch_error_t *err)
{
  return simple_call (ZYGOTE_PING, "", err);
}

int
zygote_freeze (const char *id, bool frozen, hutch_error_t *err)
{
  return simple_call (frozen ? ZYGOTE_FREEZE : ZYGOTE_THAW, id, err);
}

void
zygote_stop (void)
{
  if (zygote_fd >= 0)
    {
      shutdown (zygote_fd, SHUT_RDWR);
      close (zygote_fd);
      zygote_fd = -1;
    }
  if (zygote_pid > 0)
    {
      waitpid (zygote_pid, NULL, 0);
      zygote_pid = -1;
    }
}
