/* Sandboxes: create, run, kill and clean up isolated Linux sandboxes.

   A sandbox is a process tree in its own pid, mount, network (loopback
   only), uts, ipc, cgroup and user namespaces.  Root inside maps to a host
   uid range of 65536 ids that belongs to this sandbox alone.  The root
   filesystem is an overlay of a read-only template and a per-sandbox tmpfs
   upper layer (bounded by the disk limit), living only in the sandbox's
   mount namespace, so no mount is ever visible on the host.

   The supervisor (the process that calls hutch_sandbox_create) runs the
   pid 1 function of the sandbox in a child.  When the supervisor dies the
   kernel kills pid 1 and with it every process of the sandbox.  What is left
   on disk (the state directory, the cgroup) is removed by hutch_gc() the
   next time a supervisor starts.  */
#pragma once

#include "error.h"
#include "seccomp.h"

#include <stdbool.h>
#include <sys/types.h>

#define HUTCH_ID_MAX 64
/* Ids hutch makes itself: HUTCH_ID_LEN characters of this alphabet.  */
#define HUTCH_ID_LEN 20
#define HUTCH_ID_ALPHABET "abcdefghijklmnopqrstuvwxyz0123456789"
#define HUTCH_SANDBOX_UID 1000 /* "user" inside every sandbox */

struct hutch_runtime;

/* Open (creating it when needed) the data directory DATA_DIR: state of live
   sandboxes, uid slots and templates.  Compiles the seccomp filter once.  */
int hutch_runtime_new (const char *data_dir, struct hutch_runtime **ret, hutch_error_t *err);
void hutch_runtime_free (struct hutch_runtime *rt);
const char *hutch_runtime_data_dir (struct hutch_runtime *rt);

/* Remove everything left by sandboxes whose supervisor is gone: processes,
   cgroups, state directories and uid slots.  Returns the number of
   sandboxes cleaned, or < 0.  */
int hutch_gc (struct hutch_runtime *rt, hutch_error_t *err);

struct hutch_sandbox_config
{
  const char *id;                  /* NULL: a new random id ([a-z0-9]{20}) */
  const char *template;            /* NULL: "host" */
  unsigned long long memory_bytes; /* 0: no limit */
  unsigned long long disk_bytes;   /* size of the writable layer */
  unsigned long cpu_millis;        /* 1000 = one cpu; 0: no limit */
  unsigned long pids;              /* 0: no limit */
  bool root;                       /* pid 1 runs as root (else as "user") */
  int stdio[3];                    /* host fds for 0, 1, 2; -1: /dev/null */
  /* Pid 1 of the sandbox: runs inside, fully isolated, with the seccomp
     filter installed.  Its return value is the sandbox's exit status.
     The supervisor's command line and environment strings are blanked in
     the sandbox (they are readable in /proc/1), so INIT_ARG must not point
     into argv[] or environ[] strings: copy them first.  */
  int (*init) (void *arg);
  void *init_arg;
  /* When set, hutch_sandbox_create returns only once init has called
     hutch_sandbox_notify_ready() (or has exited, which is an error).  */
  bool wait_ready;
};

struct hutch_sandbox
{
  char id[HUTCH_ID_MAX + 1];
  pid_t pid;      /* pid 1 of the sandbox, as seen on the host */
  int pidfd;      /* pollable: readable once pid 1 has exited */
  uid_t uid_base; /* host uid of root inside */
  bool exited;
  int wait_status; /* valid when exited */
  struct hutch_runtime *rt;
  struct hutch_cgroup *cgroup;
  int lock_fd; /* flock held on the state directory while alive */
  int slot;    /* uid slot: host uids uid_base .. uid_base + 65535 */
};

/* Create and start a sandbox.  Returns once pid 1 runs CONFIG->init.  */
int hutch_sandbox_create (struct hutch_runtime *rt, const struct hutch_sandbox_config *config,
                          struct hutch_sandbox **ret, hutch_error_t *err);

/* SIGKILL every process of the sandbox (asynchronous: wait afterwards).  */
int hutch_sandbox_kill (struct hutch_sandbox *sb, hutch_error_t *err);

/* Send SIG to pid 1 (it forwards to what it runs).  */
int hutch_sandbox_signal (struct hutch_sandbox *sb, int sig, hutch_error_t *err);

/* Reap pid 1 if it has exited.  TIMEOUT_MS < 0 waits forever.  Returns 1
   when it exited (status in sb->wait_status), 0 on timeout, < 0 on error.  */
int hutch_sandbox_wait (struct hutch_sandbox *sb, int timeout_ms, hutch_error_t *err);

/* Freeze (pause) or thaw every process of the sandbox.  */
int hutch_sandbox_freeze (struct hutch_sandbox *sb, bool frozen, hutch_error_t *err);

/* True when the kernel OOM-killed a process of the sandbox.  */
bool hutch_sandbox_oom_killed (struct hutch_sandbox *sb);

/* Kill, reap and remove every trace of the sandbox, then free SB.  */
int hutch_sandbox_destroy (struct hutch_sandbox *sb, hutch_error_t *err);

/* Inside the sandbox, from the init function of a sandbox created with
   wait_ready: tell the supervisor that init is ready.  Call once.  */
void hutch_sandbox_notify_ready (void);

/* Is ID a valid sandbox id?  */
bool hutch_id_valid (const char *id);
